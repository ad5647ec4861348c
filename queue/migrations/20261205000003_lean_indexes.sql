-- Fewer index entries per job. Claims and completions change `status`, so neither is a HOT
-- update and each new row version gets an entry in every index whose predicate it matches. With
-- the indexes of 20261204000200 a job wrote 17 index entries in its life (6 on insert, 6 on claim,
-- 5 on completion); with these it writes 8 (3, 2 and 3), which raised `duespark bench`'s drain from
-- about 38,500 to 56,000-59,000 jobs/s on a 2-core machine (docs/benchmarks.md).
--
-- One list index serves the lists and counts: its key gives each queue's jobs of one status newest
-- first, and the included columns let kind and due-time filters run on the index alone. Running
-- jobs are left out (they change on every claim and completion) and are found through the running
-- index, which contains only them.
-- NOTE: on an existing table each build blocks writes to the jobs until it ends (migrations run in
-- a transaction, so CONCURRENTLY is not available); plan it like the dashboard indexes.

DROP INDEX duespark_queue.jobs_status_id_idx;
DROP INDEX duespark_queue.jobs_kind_id_idx;
DROP INDEX duespark_queue.jobs_waiting_run_at_idx;
DROP INDEX duespark_queue.jobs_lease_owner_idx;
DROP INDEX duespark_queue.jobs_running_lease_idx;
DROP INDEX duespark_queue.jobs_queue_status_id_idx;

CREATE INDEX jobs_list_idx ON duespark_queue.jobs (queue, status, id DESC)
    INCLUDE (kind, run_at)
    WHERE status <> 'running';

-- jobs_finished_idx stays: it keeps the dashboard's per-minute chart and retention off a table scan
-- (the chart's query took 170 to 200 ms of a 1,000,000-job table without it) for one entry per job.

-- Rescue of expired leases, heartbeats and the running jobs of a queue. It contains no more rows
-- than the workers' combined concurrency.
CREATE INDEX jobs_running_idx ON duespark_queue.jobs (queue, lease_expires_at)
    WHERE status = 'running';
