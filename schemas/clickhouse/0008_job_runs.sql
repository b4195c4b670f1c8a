-- Which runs belong to a job, ordered by job: `runs` is ordered by run_id, so "the runs of
-- these jobs" (the issues stage, per batch) would otherwise scan every run. Filled by a
-- materialized view on every insert into `runs`, and once from what `runs` holds.
CREATE TABLE IF NOT EXISTS {db}.job_runs {on_cluster}
(
    job_namespace  String,
    job_name       String,
    run_id         String
)
ENGINE = {engine:ReplacingMergeTree()}
ORDER BY (job_namespace, job_name, run_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.job_runs_mv {on_cluster} TO {db}.job_runs AS
SELECT job_namespace, job_name, run_id FROM {db}.runs;

INSERT INTO {db}.job_runs SELECT DISTINCT job_namespace, job_name, run_id FROM {db}.runs;
