-- Quality metrics as one row per dataset and run (and direction) instead of one per
-- column: the whole-dataset counts and the column metrics are each a
-- max(Tuple(time, event_id, ...)), so the latest event of the run that reported them
-- wins, whatever the order of arrival. The columns go together: the latest event that
-- reported column metrics gives all of them (before, each column's latest report counted
-- on its own; emitters report a dataset's columns together, in one facet). The benchmark
-- event's 7 metric rows are 3: less for the processor to build and for ClickHouse to
-- parse and merge per event (BENCHMARKS.md, 2026-12-03, session 5).
--
-- A part no event reported has time 0 (the smallest tuple, so any report wins over it).
CREATE TABLE IF NOT EXISTS {db}.dataset_metrics {on_cluster}
(
    namespace      String,
    name           String,
    run_id         String COMMENT 'empty for a DatasetEvent',
    direction      LowCardinality(String) COMMENT 'input, output, or empty for a DatasetEvent',
    dataset_key    SimpleAggregateFunction(max, String),
    job_namespace  SimpleAggregateFunction(max, String),
    job_name       SimpleAggregateFunction(max, String),
    first_seen     SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen      SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    dataset        SimpleAggregateFunction(max, Tuple(
                       time DateTime64(3, 'UTC'),
                       event_id String,
                       row_count Nullable(Int64),
                       byte_count Nullable(Int64),
                       file_count Nullable(Int64),
                       last_updated Nullable(DateTime64(3, 'UTC')))),
    columns        SimpleAggregateFunction(max, Tuple(
                       time DateTime64(3, 'UTC'),
                       event_id String,
                       metrics Array(Tuple(
                           name String,
                           null_count Nullable(Int64),
                           distinct_count Nullable(Int64),
                           sum Nullable(Float64),
                           count Nullable(Float64),
                           min Nullable(Float64),
                           max Nullable(Float64),
                           quantiles String)))) COMMENT 'quantiles: JSON object, quantile -> value'
)
ENGINE = {engine:AggregatingMergeTree()}
ORDER BY (namespace, name, run_id, direction);

-- What the per-column table holds, regrouped (its final rows: each column's latest). The
-- columns' part takes the time and event of the latest column report. quality_metrics is
-- no longer written and stays as it is, for a downgrade; drop it when you like.
INSERT INTO {db}.dataset_metrics
SELECT
    namespace, name, run_id, direction,
    max(dataset_key), max(job_namespace), max(job_name), min(first_seen), max(last_seen),
    maxIf(
        (tupleElement(metrics, 'time'), tupleElement(metrics, 'event_id'),
         tupleElement(metrics, 'row_count'), tupleElement(metrics, 'byte_count'),
         tupleElement(metrics, 'file_count'), tupleElement(metrics, 'last_updated')),
        column_name = ''),
    (
        maxIf(tupleElement(metrics, 'time'), column_name != ''),
        argMaxIf(tupleElement(metrics, 'event_id'), tupleElement(metrics, 'time'), column_name != ''),
        arraySort(groupArrayIf(
            (column_name, tupleElement(metrics, 'null_count'),
             tupleElement(metrics, 'distinct_count'), tupleElement(metrics, 'sum'),
             tupleElement(metrics, 'count'), tupleElement(metrics, 'min'),
             tupleElement(metrics, 'max'), tupleElement(metrics, 'quantiles')),
            column_name != ''))
    )
FROM (SELECT * FROM {db}.quality_metrics FINAL)
GROUP BY namespace, name, run_id, direction;
