-- Every accepted OpenLineage event, as sent, for replay and the events view.
-- Identity: event_id = hash of the event's canonical JSON (never a Kafka offset, which
-- restarts at 0 when the memory-only embedded broker restarts). A re-delivered event
-- has the same event_id, event_time and content, so ReplacingMergeTree collapses it;
-- only the delivery columns (source_*, ingested_at) may differ between the copies.
CREATE TABLE IF NOT EXISTS {db}.events_raw {on_cluster}
(
    event_id          UUID COMMENT 'hash of the canonical JSON of the event',
    event_time        DateTime64(3, 'UTC'),
    event_kind        LowCardinality(String) COMMENT 'run, dataset or job',
    event_type        LowCardinality(String) COMMENT 'START, RUNNING, COMPLETE, ABORT, FAIL, OTHER; empty for dataset and job events',
    run_id            String,
    job_namespace     String,
    job_name          String,
    dataset_namespace String,
    dataset_name      String,
    producer          String,
    schema_url        String,
    payload           String CODEC(ZSTD(3)) COMMENT 'the event JSON as received',
    source_topic      LowCardinality(String),
    source_partition  Int32,
    source_offset     Int64,
    source_key        String,
    ingested_at       DateTime64(3, 'UTC'),
    INDEX idx_event_time event_time TYPE minmax GRANULARITY 1,
    INDEX idx_job_name job_name TYPE bloom_filter GRANULARITY 4,
    INDEX idx_run_id run_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = {engine:ReplacingMergeTree()}
PARTITION BY toYYYYMM(event_time)
ORDER BY event_id;
