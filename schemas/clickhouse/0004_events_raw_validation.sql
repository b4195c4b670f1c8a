-- What validation found in an accepted event: JSON-Schema format problems (warnings, not
-- rejections), the facets kept without a spec schema (custom), and the core version the
-- event's schemaURL names (recorded, not trusted).
ALTER TABLE {db}.events_raw {on_cluster}
    ADD COLUMN IF NOT EXISTS warnings Array(String) COMMENT 'path: message of each format problem';
ALTER TABLE {db}.events_raw {on_cluster}
    ADD COLUMN IF NOT EXISTS custom_facets Array(String) COMMENT 'JSON paths of facets without a known spec schema';
ALTER TABLE {db}.events_raw {on_cluster}
    ADD COLUMN IF NOT EXISTS core_version LowCardinality(String) COMMENT 'e.g. 2-0-2, from schemaURL';
