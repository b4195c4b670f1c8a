-- Facet values stored once. A dataset's facets (its schema, its column lineage) and a
-- job's (its SQL) repeat from event to event, and storing each event's facets whole was
-- the largest share of ClickHouse's work per event. Now each distinct value of those is
-- one row of `facet_values`, keyed by a hash of its JSON, and their `facets` row names,
-- per facet, the id of its value. A run's facets and input/output statistics seldom
-- repeat: their rows keep the JSON inline in `facets_json`, as every row written before
-- this migration does.
CREATE TABLE IF NOT EXISTS {db}.facet_values {on_cluster}
(
    facet_id    String COMMENT 'hash of facet_json (BLAKE2b, 128 bits, hex)',
    facet_json  String CODEC(ZSTD(3)) COMMENT 'one facet as sent, or its summary over the size limit'
)
ENGINE = {engine:ReplacingMergeTree()}
ORDER BY facet_id;

ALTER TABLE {db}.facets {on_cluster}
    ADD COLUMN IF NOT EXISTS facet_names Array(String) COMMENT 'the facets of this entity in this event' AFTER facet_group;
ALTER TABLE {db}.facets {on_cluster}
    ADD COLUMN IF NOT EXISTS facet_ids Array(String) COMMENT 'the facet_values id of each of facet_names' AFTER facet_names;
ALTER TABLE {db}.facets {on_cluster}
    COMMENT COLUMN facets_json 'JSON object, facet name -> facet as sent, of facets kept inline (runs, statistics; every row written before 0012)';

-- The processor now writes `dataset_facets` itself, combined per batch (one row per dataset
-- facet per batch instead of one per event), so the view that split every facets row's
-- JSON on insert goes. The processor combines a batch's rows as the table does, comparing
-- event ids as text (as `runs` does); ClickHouse orders UUIDs differently, so the tuple's
-- event id becomes text too.
DROP VIEW IF EXISTS {db}.dataset_facets_mv {on_cluster};
ALTER TABLE {db}.dataset_facets {on_cluster}
    MODIFY COLUMN latest SimpleAggregateFunction(max, Tuple(time DateTime64(3, 'UTC'), event_id String, json String)) CODEC(ZSTD(3));
