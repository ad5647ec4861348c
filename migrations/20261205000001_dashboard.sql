-- The operations dashboard: login sessions, and the audit log of the actions people take on jobs
-- and queues. Also indexes for the dashboard's "today" figures on the domain tables.

CREATE TABLE dashboard_sessions (
    -- Lowercase hex SHA-256 of the 256-bit random session id; only the browser's cookie holds
    -- the id itself, so a leaked table row cannot be used as a session.
    id_hash     text PRIMARY KEY CHECK (id_hash ~ '^[0-9a-f]{64}$'),
    -- The `sub` claim of the token used to log in.
    subject     text NOT NULL,
    -- The dashboard scope the token granted; dashboard:admin allows the actions.
    scope       text NOT NULL CHECK (scope IN ('dashboard:read', 'dashboard:admin')),
    -- The synchronizer token every form of this session must send back.
    csrf_token  text NOT NULL CHECK (csrf_token ~ '^[0-9a-f]{64}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Never later than the login token's own expiry.
    expires_at  timestamptz NOT NULL
);

CREATE INDEX dashboard_sessions_expires_at_idx ON dashboard_sessions (expires_at);

CREATE TABLE dashboard_audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    -- The `sub` claim of the session's login token.
    actor   text NOT NULL,
    action  text NOT NULL CHECK (action IN ('retry', 'cancel', 'retry_dead', 'pause', 'resume')),
    queue   text,
    -- A job id of the job store; NULL for actions on a whole queue.
    job_id  bigint,
    -- Facts of the action, such as the job's status before it or the number of jobs retried.
    detail  jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX dashboard_audit_log_job_id_idx ON dashboard_audit_log (job_id, id DESC)
    WHERE job_id IS NOT NULL;

-- Reminders, bounces and payments of the current day, for the overview's business panel.
CREATE INDEX reminders_updated_at_idx ON reminders (updated_at);
CREATE INDEX email_events_received_at_idx ON email_events (received_at);
CREATE INDEX invoice_payment_events_applied_at_idx ON invoice_payment_events (applied_at);
