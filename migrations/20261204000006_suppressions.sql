-- Bounces and complaints: provider notifications are stored before they are acknowledged; the
-- suppression list is keyed by the normalised address and shared by all accounts, because every
-- account sends through the same provider account.

CREATE TABLE email_events (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider           text NOT NULL CHECK (provider IN ('postmark', 'ses')),
    -- Postmark's record ID or SNS's MessageId: the dedupe key.
    provider_event_id  text NOT NULL,
    record_type        text NOT NULL,
    raw_body           text NOT NULL,
    status             text NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'processed', 'ignored')),
    reason             text,
    -- The reminder's account and invoice, from the metadata headers it carried.
    account_id         text,
    invoice_id         text,
    received_at        timestamptz NOT NULL DEFAULT now(),
    processed_at       timestamptz,
    CONSTRAINT email_events_provider_event_key UNIQUE (provider, provider_event_id)
);

CREATE TABLE suppressions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email_key       text NOT NULL UNIQUE,
    -- The address as the provider reported it.
    email           text NOT NULL,
    reason          text NOT NULL CHECK (reason IN ('hard_bounce', 'complaint', 'soft_bounces', 'unsubscribe')),
    detail          text,
    can_reactivate  boolean NOT NULL,
    -- The account whose send caused it; other accounts only see "address undeliverable".
    account_id      text,
    -- Soft-bounce suppressions end; permanent ones do not.
    expires_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Soft bounces per address, counted over a sliding window.
CREATE TABLE soft_bounces (
    email_key      text NOT NULL,
    email_event_id bigint NOT NULL REFERENCES email_events (id),
    occurred_at    timestamptz NOT NULL,
    PRIMARY KEY (email_key, email_event_id)
);
CREATE INDEX soft_bounces_recent_idx ON soft_bounces (email_key, occurred_at);

-- The client's address in suppression-key form, set by the upsert.
ALTER TABLE clients ADD COLUMN email_key text;
UPDATE clients SET email_key = lower(email);
ALTER TABLE clients ALTER COLUMN email_key SET NOT NULL;
CREATE INDEX clients_email_key_idx ON clients (email_key);
