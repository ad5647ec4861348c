-- Domain tables pushed by the DueSpark app: accounts (DueSpark customers), their clients (who owe money)
-- and invoices. Ids are the app's own strings, unique across accounts.

CREATE TABLE accounts (
    id               text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name             text NOT NULL,
    sender_name      text NOT NULL,
    reply_to         text NOT NULL,
    timezone         text NOT NULL,
    reminders_paused boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE clients (
    id               text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    account_id       text NOT NULL REFERENCES accounts (id),
    name             text NOT NULL,
    email            text NOT NULL,
    reminders_paused boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX clients_account_id_idx ON clients (account_id);

CREATE TABLE invoices (
    id                          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    account_id                  text NOT NULL REFERENCES accounts (id),
    client_id                   text NOT NULL REFERENCES clients (id),
    number                      text NOT NULL,
    -- Amounts are integers in the currency's minor unit (cents for USD, whole yen for JPY).
    amount_due                  bigint NOT NULL CHECK (amount_due >= 0),
    amount_paid                 bigint NOT NULL DEFAULT 0 CHECK (amount_paid >= 0),
    amount_refunded             bigint NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
    currency                    text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    issued_on                   date NOT NULL,
    due_on                      date NOT NULL CHECK (due_on >= issued_on),
    pay_url                     text NOT NULL,
    status                      text NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'payment_pending', 'paid', 'void', 'refunded', 'disputed')),
    reminders_paused            boolean NOT NULL DEFAULT false,
    -- Set when Stripe confirmed the current status; the app's upsert cannot then reopen the invoice.
    status_confirmed_by_stripe  boolean NOT NULL DEFAULT false,
    stripe_payment_intent_id    text,
    stripe_invoice_id           text,
    stripe_checkout_session_id  text,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX invoices_client_id_idx ON invoices (client_id);
CREATE INDEX invoices_account_id_idx ON invoices (account_id);
-- The scheduler scans open invoices by due date.
CREATE INDEX invoices_open_due_on_idx ON invoices (due_on) WHERE status = 'open';
