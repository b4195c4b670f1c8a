-- Every dead-lettered message, whole: the embedded broker keeps topics in memory only, so
-- ClickHouse is where an operator finds out why and replays from (`lineagehouse dlq`).
-- Identity: a hash of the message key and bytes; a redelivered bad message collapses.
CREATE TABLE IF NOT EXISTS {db}.dead_letters {on_cluster}
(
    dead_letter_id    UUID COMMENT 'hash of the message key and bytes',
    event_id          Nullable(UUID) COMMENT 'identity the event would have (if it is a JSON object)',
    origin            LowCardinality(String) COMMENT 'kafka or http',
    reason_paths      Array(String),
    reason_messages   Array(String),
    reason_count      UInt32 COMMENT 'all reasons found; the arrays keep the first ones',
    message_key       String,
    value             String CODEC(ZSTD(3)) COMMENT 'the original bytes',
    value_bytes       UInt32,
    source_topic      LowCardinality(String),
    source_partition  Int32,
    source_offset     Int64,
    dead_lettered_at  DateTime64(3, 'UTC')
)
ENGINE = {engine:ReplacingMergeTree()}
ORDER BY dead_letter_id;
