-- Parts up to 256 MiB (uncompressed) are written in the Compact format: one data file
-- for all columns instead of two files per column (Wide, ClickHouse's format from 10 MiB
-- up). Every insert of the sink makes a part in each table it writes, and merges make
-- and delete more; creating and deleting those files was a fifth of the embedded
-- server's CPU (perf: ext4 inode allocation); this cut ClickHouse's CPU per event
-- by ~15% in `bench/bench_pipeline.py` (BENCHMARKS.md, session 13). Merged parts past
-- 256 MiB are Wide, which reads one column of a large part without the others. On a
-- cluster the setting applies to the `_local` tables; change it per table with
-- `ALTER TABLE ... MODIFY SETTING min_bytes_for_wide_part = ...`.
ALTER TABLE {db}.events_raw {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.dead_letters {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.api_keys {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.runs {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.jobs {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.datasets {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.dataset_versions {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.io_edges {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.column_edges {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.facets {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.dataset_aliases {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.annotations {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.quality_assertions {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.quality_metrics {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.issues {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.webhooks {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.webhook_deliveries {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.job_runs {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.dataset_metrics {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.dataset_io {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.dataset_facets {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE {db}.facet_values {on_cluster} MODIFY SETTING min_bytes_for_wide_part = 268435456;
