-- What people add to the derived model through the API (api/catalog.py): tags and
-- descriptions of datasets, dataset fields and jobs, and soft deletes.
-- Identity: one row per (entity, field, attribute, key), so two writes about different
-- tags never overwrite each other. A change (a tag removed, a new description) is a new
-- row for the same identity with a higher version; read with FINAL to see the latest.
-- A soft delete hides a dataset or job until an event about it is newer than deleted_at
-- (its last_seen > updated_at): nothing is removed from the derived tables.
CREATE TABLE IF NOT EXISTS {db}.annotations {on_cluster}
(
    entity_kind  LowCardinality(String) COMMENT 'dataset or job',
    namespace    String,
    name         String,
    field        String COMMENT 'a dataset field (dotted path); empty for the dataset or job itself',
    attribute    LowCardinality(String) COMMENT 'tag, description or deleted',
    key          String COMMENT 'the tag; empty for description and deleted',
    value        String COMMENT 'the description; empty otherwise',
    active       UInt8 COMMENT '1: in force; 0: the tag was removed or the description cleared',
    updated_at   DateTime64(3, 'UTC') COMMENT 'when written (for deleted: the deletion time)',
    updated_by   String COMMENT 'id of the API key that wrote it; empty when auth is off',
    version      UInt64 COMMENT 'nanoseconds since the epoch of this row; the highest wins'
)
ENGINE = {engine:ReplacingMergeTree(version)}
ORDER BY (entity_kind, namespace, name, field, attribute, key);
