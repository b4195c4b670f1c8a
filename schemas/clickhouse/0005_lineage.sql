-- The lineage model derived from events (processors/derive.py, records.py).
--
-- Tables about things several events describe (runs, jobs, datasets, io_edges, aliases)
-- are AggregatingMergeTree whose ORDER BY is exactly the record's identity and whose
-- other columns combine with min, max or a union only: a replayed or reordered event
-- changes nothing, and two rows about one thing (a START and a COMPLETE) merge into the
-- same result in any order. Content tables (dataset_versions, column_edges) hold a pure
-- function of their id; per-event tables (facets) the event's identity. "Latest" values are max(Tuple(time, ..., value)): the
-- greatest version wins, ties break on the following tuple elements. Read with FINAL (or
-- the views below, which do).
--
-- Tables keyed by something other than one event are not partitioned by time (a run's
-- events may fall in different months, and copies must meet in one partition).

-- A run: state = max(Tuple(terminal, eventTime, event_id, state)), so the latest terminal
-- event wins, START/RUNNING never override a terminal state, ties break by hash.
CREATE TABLE IF NOT EXISTS {db}.runs {on_cluster}
(
    run_id                    String,
    job_namespace             SimpleAggregateFunction(max, String),
    job_name                  SimpleAggregateFunction(max, String),
    state                     SimpleAggregateFunction(max, Tuple(terminal UInt8, time DateTime64(3, 'UTC'), event_id String, name String)),
    started_at                SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))) COMMENT 'eventTime of the START event',
    first_event_time          SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_event_time           SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    nominal_start_time        SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))),
    nominal_end_time          SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))),
    parent_run_id             SimpleAggregateFunction(max, String),
    parent_job_namespace      SimpleAggregateFunction(max, String),
    parent_job_name           SimpleAggregateFunction(max, String),
    root_run_id               SimpleAggregateFunction(max, String),
    root_job_namespace        SimpleAggregateFunction(max, String),
    root_job_name             SimpleAggregateFunction(max, String),
    error_message             SimpleAggregateFunction(max, String),
    error_language            SimpleAggregateFunction(max, String),
    error_stacktrace          SimpleAggregateFunction(max, String) CODEC(ZSTD(3)),
    processing_engine         SimpleAggregateFunction(max, String),
    processing_engine_version SimpleAggregateFunction(max, String),
    adapter_version           SimpleAggregateFunction(max, String),
    integration               SimpleAggregateFunction(max, String),
    processing_type           SimpleAggregateFunction(max, String),
    job_type                  SimpleAggregateFunction(max, String),
    producer                  SimpleAggregateFunction(max, String),
    event_types               SimpleAggregateFunction(groupUniqArrayArray, Array(String))
)
ENGINE = {engine:AggregatingMergeTree()}
ORDER BY run_id;

CREATE TABLE IF NOT EXISTS {db}.jobs {on_cluster}
(
    namespace             String,
    name                  String,
    first_seen            SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen             SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    latest_run            SimpleAggregateFunction(max, Tuple(time DateTime64(3, 'UTC'), run_id String)),
    integration           SimpleAggregateFunction(max, String),
    processing_type       SimpleAggregateFunction(max, String),
    job_type              SimpleAggregateFunction(max, String),
    parent_job_namespace  SimpleAggregateFunction(max, String),
    parent_job_name       SimpleAggregateFunction(max, String),
    sql                   SimpleAggregateFunction(max, Tuple(time DateTime64(3, 'UTC'), query String)) CODEC(ZSTD(3)),
    source_code           SimpleAggregateFunction(max, Tuple(time DateTime64(3, 'UTC'), json String)) CODEC(ZSTD(3)),
    source_code_location  SimpleAggregateFunction(max, Tuple(time DateTime64(3, 'UTC'), url String)),
    documentation         SimpleAggregateFunction(max, Tuple(time DateTime64(3, 'UTC'), description String)),
    ownership             SimpleAggregateFunction(max, Tuple(time DateTime64(3, 'UTC'), json String)),
    tags                  SimpleAggregateFunction(max, Tuple(time DateTime64(3, 'UTC'), json String))
)
ENGINE = {engine:AggregatingMergeTree()}
ORDER BY (namespace, name);

-- Datasets by the name they were sent under; dataset_key joins the names of one table
-- (normalised name, or the catalog table its symlinks facet names).
CREATE TABLE IF NOT EXISTS {db}.datasets {on_cluster}
(
    namespace            String,
    name                 String,
    dataset_key          SimpleAggregateFunction(max, String),
    canonical_namespace  SimpleAggregateFunction(max, String),
    canonical_name       SimpleAggregateFunction(max, String),
    first_seen           SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen            SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    version              SimpleAggregateFunction(max, Tuple(time DateTime64(3, 'UTC'), id String)),
    storage              SimpleAggregateFunction(max, Tuple(time DateTime64(3, 'UTC'), json String)),
    datasource           SimpleAggregateFunction(max, Tuple(time DateTime64(3, 'UTC'), json String)),
    symlinks             SimpleAggregateFunction(max, Tuple(time DateTime64(3, 'UTC'), json String)),
    lifecycle            SimpleAggregateFunction(max, Tuple(time DateTime64(3, 'UTC'), state String)),
    documentation        SimpleAggregateFunction(max, Tuple(time DateTime64(3, 'UTC'), description String)),
    ownership            SimpleAggregateFunction(max, Tuple(time DateTime64(3, 'UTC'), json String))
)
ENGINE = {engine:AggregatingMergeTree()}
ORDER BY (namespace, name);

-- Content-addressed: one row per schema and version facet of a dataset, a pure function
-- of version_id (copies are identical). When a run saw it: io_edges.version_id.
CREATE TABLE IF NOT EXISTS {db}.dataset_versions {on_cluster}
(
    namespace           String,
    name                String,
    version_id          String COMMENT 'hash of the whole schema facet fields and the version facet',
    schema_hash         String COMMENT 'hash of field names and types only: equal means no schema change',
    dataset_version     String COMMENT 'the version facet datasetVersion',
    field_names         Array(String) COMMENT 'nested fields as dotted paths',
    field_types         Array(String),
    field_descriptions  Array(String),
    fields_json         String CODEC(ZSTD(3)) COMMENT 'the schema facet fields as sent'
)
ENGINE = {engine:ReplacingMergeTree()}
ORDER BY (namespace, name, version_id);

-- A run's inputs and outputs: lineage at time T is a filter on first_seen/last_seen.
CREATE TABLE IF NOT EXISTS {db}.io_edges {on_cluster}
(
    job_namespace      String,
    job_name           String,
    run_id             String COMMENT 'empty for lineage a JobEvent declares',
    direction          LowCardinality(String) COMMENT 'input or output',
    namespace          String,
    name               String,
    dataset_key        SimpleAggregateFunction(max, String),
    version_id         SimpleAggregateFunction(max, String) COMMENT 'dataset_versions row the run saw',
    column_lineage_id  SimpleAggregateFunction(max, String) COMMENT 'column_edges of this output in this run',
    first_seen         SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen          SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    row_count          SimpleAggregateFunction(max, Nullable(UInt64)),
    byte_count         SimpleAggregateFunction(max, Nullable(UInt64)),
    file_count         SimpleAggregateFunction(max, Nullable(UInt64))
)
ENGINE = {engine:AggregatingMergeTree()}
ORDER BY (job_namespace, job_name, run_id, direction, namespace, name);

-- Content-addressed: the edges of one columnLineage facet, a pure function of
-- column_lineage_id. Which runs had it: io_edges.column_lineage_id.
CREATE TABLE IF NOT EXISTS {db}.column_edges {on_cluster}
(
    output_namespace        String,
    output_name             String,
    column_lineage_id       String COMMENT 'hash of the output and its columnLineage facet',
    output_field            String COMMENT 'empty: the whole output dataset depends on the input field',
    input_namespace         String,
    input_name              String,
    input_field             String,
    transformation_type     LowCardinality(String) COMMENT 'DIRECT, INDIRECT or empty',
    transformation_subtype  LowCardinality(String),
    output_dataset_key      String,
    input_dataset_key       String,
    description             String,
    masking                 UInt8
)
ENGINE = {engine:ReplacingMergeTree()}
ORDER BY (output_namespace, output_name, column_lineage_id, output_field, input_namespace,
          input_name, input_field, transformation_type, transformation_subtype);

-- Every facet of every event, one row per entity and facets object of an event (or a
-- summary when over the size limit; the whole event stays in events_raw).
CREATE TABLE IF NOT EXISTS {db}.facets {on_cluster}
(
    event_id          UUID,
    event_time        DateTime64(3, 'UTC'),
    run_id            String COMMENT 'empty for dataset and job events',
    entity_kind       LowCardinality(String) COMMENT 'run, job, dataset, input or output',
    entity_namespace  String COMMENT 'the job namespace for run and job facets',
    entity_name       String,
    facet_group       LowCardinality(String) COMMENT 'facets, inputFacets or outputFacets',
    facets_json       String CODEC(ZSTD(3)) COMMENT 'JSON object: facet name -> facet as sent',
    facets            Map(String, String) ALIAS CAST(JSONExtractKeysAndValuesRaw(facets_json), 'Map(String, String)') COMMENT 'facet name -> its JSON',
    custom            Array(String) COMMENT 'facets without an OpenLineage spec schema',
    summarised        Array(String) COMMENT 'facets over the size limit, kept as a summary'
)
ENGINE = {engine:ReplacingMergeTree()}
PARTITION BY toYYYYMM(event_time)
ORDER BY (run_id, entity_kind, entity_namespace, entity_name, facet_group, event_id);

CREATE TABLE IF NOT EXISTS {db}.dataset_aliases {on_cluster}
(
    namespace        String,
    name             String,
    alias_namespace  String,
    alias_name       String,
    alias_type       LowCardinality(String),
    dataset_key      SimpleAggregateFunction(max, String),
    alias_key        SimpleAggregateFunction(max, String),
    first_seen       SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen        SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = {engine:AggregatingMergeTree()}
ORDER BY (namespace, name, alias_namespace, alias_name, alias_type);

-- Final states, for people and dashboards. Tuple parts are read after FINAL has merged
-- the rows (in a subquery): a subcolumn read such as `state.name` straight on a FINAL
-- table skips the merge and returns one unmerged row's part (seen on ClickHouse 26.9).
CREATE VIEW IF NOT EXISTS {db}.run_states {on_cluster} AS
SELECT
    run_id, job_namespace, job_name,
    tupleElement(state, 'name') AS state_name,
    ifNull(started_at, first_event_time) AS started,
    if(tupleElement(state, 'terminal') = 1, tupleElement(state, 'time'), NULL) AS ended_at,
    if(tupleElement(state, 'terminal') = 1,
       dateDiff('millisecond', ifNull(started_at, first_event_time), tupleElement(state, 'time')),
       NULL) AS duration_ms,
    nominal_start_time, nominal_end_time,
    parent_run_id, parent_job_namespace, parent_job_name,
    root_run_id, root_job_namespace, root_job_name,
    error_message, processing_engine, processing_engine_version,
    integration, processing_type, job_type, arraySort(event_types) AS event_types,
    first_event_time, last_event_time
FROM (SELECT * FROM {db}.runs FINAL);
