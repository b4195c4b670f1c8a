-- `job_runs` (0008) had no time, so retention could not expire it: it kept a row for every
-- run ever stored while `runs` dropped them. It now carries when its run was last seen
-- (`lineage_days` counts from it, as for `runs`). Rows stored before have no time (1970):
-- they are written again from `runs` with theirs; a merge keeps the row inserted last
-- (for a run whose events arrived out of order, an earlier time of the same run: its
-- row here can expire at most the run's own duration before its row in `runs`).
ALTER TABLE {db}.job_runs {on_cluster}
    ADD COLUMN IF NOT EXISTS last_seen DateTime64(3, 'UTC') COMMENT 'for retention';

DROP VIEW IF EXISTS {db}.job_runs_mv {on_cluster};

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.job_runs_mv {on_cluster} TO {db}.job_runs AS
SELECT job_namespace, job_name, run_id, last_event_time AS last_seen FROM {db}.runs;

INSERT INTO {db}.job_runs
SELECT job_namespace, job_name, run_id, max(last_event_time) AS last_seen
FROM {db}.runs
GROUP BY job_namespace, job_name, run_id;
