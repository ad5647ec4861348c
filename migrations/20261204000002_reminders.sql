-- Reminders: at most one per (invoice, stage), ever. The unique key is what makes a reminder's email
-- idempotent under at-least-once job delivery.

CREATE TABLE reminders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_id  text NOT NULL REFERENCES invoices (id),
    stage       text NOT NULL
        CHECK (stage IN ('upcoming', 'due', 'overdue_3', 'overdue_7', 'overdue_14', 'final')),
    status      text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sending', 'sent', 'skipped', 'failed', 'uncertain')),
    reason      text,
    -- The job that delivers this reminder (an id of the queue crate).
    job_id      text,
    -- Generated before the send and stored first, so a bounce can always be traced back.
    message_id  text,
    send_at     timestamptz NOT NULL DEFAULT now(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    sending_at  timestamptz,
    sent_at     timestamptz,
    CONSTRAINT reminders_invoice_stage_key UNIQUE (invoice_id, stage)
);

CREATE UNIQUE INDEX reminders_message_id_key ON reminders (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX reminders_pending_idx ON reminders (invoice_id) WHERE status IN ('queued', 'sending');
