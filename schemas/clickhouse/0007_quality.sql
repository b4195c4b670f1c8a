-- Data quality and issues.
--
-- quality_assertions and quality_metrics are derived from events like the lineage model
-- (processors/derive.py): AggregatingMergeTree, one row per run, dataset, check (or
-- column) whatever how often or in which order the events arrive; "the latest result" is
-- max(Tuple(time, event_id, ...)).
--
-- issues is written by the issues stage (processors/issue_stage.py), which recomputes
-- the issues of every subject a batch touched from the tables above and `runs`. An
-- issue's id is a hash of its kind, subject and the run that raised it, so writing it
-- again changes nothing; its resolution is min(Tuple(time, run, how)) over what was seen,
-- which converges on the first run that resolved it (a late event can only move it
-- earlier). An open issue's resolution is the far-future sentinel (2299-12-31).

CREATE TABLE IF NOT EXISTS {db}.quality_assertions {on_cluster}
(
    namespace      String,
    name           String,
    run_id         String COMMENT 'empty for a DatasetEvent',
    assertion      String COMMENT 'the kind of check: not_null, unique, expect_column_values_to_not_be_null, ...',
    column_name    String COMMENT 'empty: the check is about the whole dataset',
    check_name     String COMMENT 'the name the emitter gives the check (a dbt test name); may be empty',
    dataset_key    SimpleAggregateFunction(max, String),
    job_namespace  SimpleAggregateFunction(max, String),
    job_name       SimpleAggregateFunction(max, String),
    source         SimpleAggregateFunction(max, String) COMMENT 'the facet: dataQualityAssertions or greatExpectations_assertions',
    first_seen     SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen      SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    result         SimpleAggregateFunction(max, Tuple(
                       time DateTime64(3, 'UTC'),
                       event_id String,
                       status String,
                       severity String,
                       expected String,
                       actual String,
                       description String,
                       content String)) COMMENT 'status: pass, fail or skipped (the run was aborted, or the check says skip)'
)
ENGINE = {engine:AggregatingMergeTree()}
ORDER BY (namespace, name, run_id, assertion, column_name, check_name);

CREATE TABLE IF NOT EXISTS {db}.quality_metrics {on_cluster}
(
    namespace      String,
    name           String,
    run_id         String COMMENT 'empty for a DatasetEvent',
    direction      LowCardinality(String) COMMENT 'input, output, or empty for a DatasetEvent',
    column_name    String COMMENT 'empty: metrics of the whole dataset (rows, bytes, files)',
    dataset_key    SimpleAggregateFunction(max, String),
    job_namespace  SimpleAggregateFunction(max, String),
    job_name       SimpleAggregateFunction(max, String),
    first_seen     SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen      SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    metrics        SimpleAggregateFunction(max, Tuple(
                       time DateTime64(3, 'UTC'),
                       event_id String,
                       row_count Nullable(Int64),
                       byte_count Nullable(Int64),
                       file_count Nullable(Int64),
                       last_updated Nullable(DateTime64(3, 'UTC')),
                       null_count Nullable(Int64),
                       distinct_count Nullable(Int64),
                       sum Nullable(Float64),
                       count Nullable(Float64),
                       min Nullable(Float64),
                       max Nullable(Float64),
                       quantiles String)) COMMENT 'quantiles: JSON object, quantile -> value'
)
ENGINE = {engine:AggregatingMergeTree()}
ORDER BY (namespace, name, run_id, direction, column_name);

CREATE TABLE IF NOT EXISTS {db}.issues {on_cluster}
(
    issue_id           String COMMENT 'hash of kind, subject and the run that raised it',
    kind               SimpleAggregateFunction(max, String) COMMENT 'assertion_failed, run_failed, duration_outlier or schema_changed',
    severity           SimpleAggregateFunction(max, String) COMMENT 'info, warning, error or breaking',
    namespace          SimpleAggregateFunction(max, String) COMMENT 'of the dataset, else of the job',
    dataset_namespace  SimpleAggregateFunction(max, String),
    dataset_name       SimpleAggregateFunction(max, String),
    column_name        SimpleAggregateFunction(max, String),
    assertion          SimpleAggregateFunction(max, String),
    job_namespace      SimpleAggregateFunction(max, String),
    job_name           SimpleAggregateFunction(max, String),
    run_id             SimpleAggregateFunction(max, String) COMMENT 'the run that raised it',
    opened_at          SimpleAggregateFunction(max, DateTime64(3, 'UTC')) COMMENT 'event time of the cause',
    summary            SimpleAggregateFunction(max, String),
    details            SimpleAggregateFunction(max, String) COMMENT 'JSON object',
    resolution         SimpleAggregateFunction(min, Tuple(time DateTime64(3, 'UTC'), run_id String, how String)) COMMENT 'time 2299-12-31: still open',
    detected_at        SimpleAggregateFunction(min, DateTime64(3, 'UTC')) COMMENT 'when Lineagehouse first saw it',
    updated_at         SimpleAggregateFunction(max, DateTime64(3, 'UTC')) COMMENT 'last written by the issues stage or the API'
)
ENGINE = {engine:AggregatingMergeTree()}
ORDER BY issue_id;

CREATE VIEW IF NOT EXISTS {db}.issue_states {on_cluster} AS
SELECT
    issue_id, kind, severity, namespace, dataset_namespace, dataset_name, column_name,
    assertion, job_namespace, job_name, run_id, opened_at, summary, details,
    if(tupleElement(resolution, 'time') >= toDateTime64('2299-01-01', 3, 'UTC'), NULL,
       tupleElement(resolution, 'time')) AS resolved_at,
    tupleElement(resolution, 'run_id') AS resolved_by_run,
    tupleElement(resolution, 'how') AS resolved_how,
    if(resolved_at IS NULL, 'open', 'resolved') AS status,
    detected_at, updated_at
FROM (SELECT * FROM {db}.issues FINAL);

-- Webhook subscriptions (lineagehouse webhooks, /api/v2/webhooks). The secret signs
-- each call (HMAC-SHA256 of the body); it is never returned by the API.
CREATE TABLE IF NOT EXISTS {db}.webhooks {on_cluster}
(
    webhook_id  String,
    url         String,
    secret      String,
    kinds       Array(String) COMMENT 'empty: every kind',
    namespaces  Array(String) COMMENT 'glob patterns; empty: every namespace',
    severities  Array(String) COMMENT 'empty: every severity',
    created_at  DateTime64(3, 'UTC'),
    created_by  String,
    active      UInt8 COMMENT '0: removed',
    version     UInt64 COMMENT 'nanoseconds since the epoch of this row; the highest wins'
)
ENGINE = {engine:ReplacingMergeTree(version)}
ORDER BY webhook_id;

-- One row per webhook, issue and transition (opened, resolved): the outbox. A pair with
-- no delivered or failed row here is pending, so a crash between a call and its record
-- calls again (at least once; receivers dedupe on the X-Lineagehouse-Delivery header).
CREATE TABLE IF NOT EXISTS {db}.webhook_deliveries {on_cluster}
(
    webhook_id       String,
    issue_id         String,
    transition       LowCardinality(String) COMMENT 'opened or resolved',
    status           LowCardinality(String) COMMENT 'delivered, retrying or failed (gave up)',
    attempts         UInt32,
    response_code    UInt16,
    last_error       String,
    next_attempt_at  DateTime64(3, 'UTC'),
    updated_at       DateTime64(3, 'UTC'),
    version          UInt64
)
ENGINE = {engine:ReplacingMergeTree(version)}
ORDER BY (webhook_id, issue_id, transition);
