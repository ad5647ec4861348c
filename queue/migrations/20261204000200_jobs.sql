-- The job table of our own queue engine. Every job, whatever its state, is one row; the status
-- words are the ones the API and the dashboard use. The apalis-postgres tables (schema `apalis`)
-- are no longer used and are left in place for existing databases.

DROP TABLE IF EXISTS duespark_queue.job_attempts;

CREATE TABLE duespark_queue.jobs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue             text NOT NULL,
    kind              text NOT NULL,
    payload           jsonb NOT NULL,
    status            text NOT NULL
        CHECK (status IN ('scheduled', 'pending', 'running', 'retrying', 'done', 'dead', 'cancelled')),
    -- Higher runs first among due jobs.
    priority          smallint NOT NULL DEFAULT 0,
    -- Attempts started so far; the running attempt's number while running.
    attempt           integer NOT NULL DEFAULT 0,
    max_attempts      integer NOT NULL CHECK (max_attempts >= 1),
    -- Times a handler snoozed the job; bounded so a job cannot snooze forever.
    snoozes           integer NOT NULL DEFAULT 0,
    run_at            timestamptz NOT NULL,
    lease_owner       text,
    lease_expires_at  timestamptz,
    cancel_requested  boolean NOT NULL DEFAULT false,
    idempotency_key   text,
    -- One object per failed attempt: {"attempt", "at", "worker", "message"}.
    errors            jsonb NOT NULL DEFAULT '[]',
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz
);

-- Fetch: due jobs of a queue by priority, then age.
CREATE INDEX jobs_fetch_idx ON duespark_queue.jobs (queue, priority DESC, run_at, id)
    WHERE status IN ('scheduled', 'pending', 'retrying');
-- Rescue of expired leases and heartbeats of a worker's running jobs.
CREATE INDEX jobs_running_lease_idx ON duespark_queue.jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX jobs_lease_owner_idx ON duespark_queue.jobs (lease_owner) WHERE status = 'running';
-- Lists and counts for the API and the dashboard, newest first.
CREATE INDEX jobs_queue_status_id_idx ON duespark_queue.jobs (queue, status, id DESC);
CREATE INDEX jobs_status_id_idx ON duespark_queue.jobs (status, id DESC);
CREATE INDEX jobs_kind_id_idx ON duespark_queue.jobs (kind, id DESC);
-- Retention deletes finished jobs by age.
CREATE INDEX jobs_finished_idx ON duespark_queue.jobs (status, finished_at) WHERE finished_at IS NOT NULL;
CREATE UNIQUE INDEX jobs_queue_idempotency_key ON duespark_queue.jobs (queue, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Paused queues: their jobs wait until the queue is resumed.
CREATE TABLE duespark_queue.paused_queues (
    queue      text PRIMARY KEY,
    paused_at  timestamptz NOT NULL DEFAULT now()
);

-- Live workers, refreshed by their heartbeat.
CREATE TABLE duespark_queue.workers (
    id              text PRIMARY KEY,
    queue           text NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    last_heartbeat  timestamptz NOT NULL DEFAULT now()
);

-- Wakes the workers of a queue when a job becomes due now. Jobs due later are found by each
-- worker's timer and polling.
CREATE FUNCTION duespark_queue.notify_job_due() RETURNS trigger AS $$
BEGIN
    IF NEW.status IN ('pending', 'retrying') AND NEW.run_at <= now() THEN
        PERFORM pg_notify('duespark_queue_jobs', NEW.queue);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER jobs_notify_due
    AFTER INSERT OR UPDATE OF status, run_at ON duespark_queue.jobs
    FOR EACH ROW WHEN (NEW.status IN ('pending', 'retrying'))
    EXECUTE FUNCTION duespark_queue.notify_job_due();
