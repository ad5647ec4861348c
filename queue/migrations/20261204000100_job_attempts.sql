-- Attempt history of every job: one row per attempt with the worker that ran it and, for a failed
-- attempt, its error. The job rows themselves live in the backend's own schema.

CREATE TABLE duespark_queue.job_attempts (
    job_id       text NOT NULL,
    attempt      integer NOT NULL CHECK (attempt >= 1),
    worker       text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    error        text,
    PRIMARY KEY (job_id, attempt)
);
