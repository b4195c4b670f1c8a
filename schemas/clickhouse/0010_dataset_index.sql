-- What a dataset page reads, ordered by dataset. `io_edges` is ordered by job and run and
-- `facets` by run, so "the jobs and runs that read or wrote this dataset" and "its latest
-- facets" would otherwise scan every edge and every facet ever stored, and a dataset page
-- would slow down as the history grows. Both tables are filled by materialized views on
-- every insert into their source, and once from what the source holds (a migration run
-- again after an interruption fills them again: their merges keep minima and maxima, so
-- copies change nothing).

-- The io_edges rows of each dataset (without the statistics).
CREATE TABLE IF NOT EXISTS {db}.dataset_io {on_cluster}
(
    namespace      String,
    name           String,
    direction      LowCardinality(String),
    job_namespace  String,
    job_name       String,
    run_id         String,
    version_id     SimpleAggregateFunction(max, String),
    first_seen     SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen      SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = {engine:AggregatingMergeTree()}
ORDER BY (namespace, name, direction, job_namespace, job_name, run_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.dataset_io_mv {on_cluster} TO {db}.dataset_io AS
SELECT namespace, name, direction, job_namespace, job_name, run_id, version_id, first_seen,
       last_seen
FROM {db}.io_edges;

INSERT INTO {db}.dataset_io
SELECT namespace, name, direction, job_namespace, job_name, run_id, version_id, first_seen,
       last_seen
FROM {db}.io_edges;

-- The latest value of each dataset facet (`facets` group of a dataset, input or output
-- entity) any event carried: the one with the latest event time (ties: the larger event
-- id, then the larger JSON), whatever order the events arrive in.
CREATE TABLE IF NOT EXISTS {db}.dataset_facets {on_cluster}
(
    namespace  String,
    name       String,
    facet      String,
    latest     SimpleAggregateFunction(max, Tuple(time DateTime64(3, 'UTC'), event_id UUID, json String)) CODEC(ZSTD(3)),
    last_seen  SimpleAggregateFunction(max, DateTime64(3, 'UTC')) COMMENT 'for retention'
)
ENGINE = {engine:AggregatingMergeTree()}
ORDER BY (namespace, name, facet);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.dataset_facets_mv {on_cluster} TO {db}.dataset_facets AS
SELECT entity_namespace AS namespace, entity_name AS name, facet_value.1 AS facet,
       tuple(event_time, event_id, facet_value.2) AS latest, event_time AS last_seen
FROM (SELECT entity_namespace, entity_name, event_time, event_id, facets_json FROM {db}.facets
      WHERE entity_kind IN ('dataset', 'input', 'output') AND facet_group = 'facets')
ARRAY JOIN JSONExtractKeysAndValuesRaw(facets_json) AS facet_value;

INSERT INTO {db}.dataset_facets
SELECT entity_namespace AS namespace, entity_name AS name, facet_value.1 AS facet,
       tuple(event_time, event_id, facet_value.2) AS latest, event_time AS last_seen
FROM (SELECT entity_namespace, entity_name, event_time, event_id, facets_json FROM {db}.facets
      WHERE entity_kind IN ('dataset', 'input', 'output') AND facet_group = 'facets')
ARRAY JOIN JSONExtractKeysAndValuesRaw(facets_json) AS facet_value;
