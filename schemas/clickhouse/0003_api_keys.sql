-- API keys for HTTP ingestion (`lineagehouse keys create/list/revoke`).
-- Identity: key_id, the public part of the key (`lh_<key_id>_<secret>`). The key itself
-- is never stored, only key_hash = HMAC-SHA256 of the whole key under the server secret
-- (LINEAGEHOUSE_API__KEY_SECRET). A revocation is a new row for the same key_id with a
-- higher version and revoked_at set; read with FINAL to see each key's latest state.
CREATE TABLE IF NOT EXISTS {db}.api_keys {on_cluster}
(
    key_id      String COMMENT 'public id of the key (12 characters)',
    name        String COMMENT 'what the key is for, given at creation',
    role        LowCardinality(String) COMMENT 'write, read or admin',
    namespaces  Array(String) COMMENT 'fnmatch patterns the key may act on; empty = all',
    key_hash    String COMMENT 'hex HMAC-SHA256 of the whole key under the server secret',
    created_at  DateTime64(3, 'UTC'),
    revoked_at  Nullable(DateTime64(3, 'UTC')) COMMENT 'NULL while the key is valid',
    version     UInt64 COMMENT 'microseconds since the epoch of this row; the highest wins'
)
ENGINE = {engine:ReplacingMergeTree(version)}
ORDER BY key_id;
