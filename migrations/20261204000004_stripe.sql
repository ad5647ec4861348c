-- Stripe: every verified webhook event is stored before it is acknowledged, with the outcome of
-- its processing; payments and refunds per Stripe object make amounts idempotent and cumulative.

CREATE TABLE stripe_events (
    id              text PRIMARY KEY,
    type            text NOT NULL,
    livemode        boolean NOT NULL,
    api_version     text,
    -- The event's `created`, used to order events of one object.
    created_at      timestamptz NOT NULL,
    -- The body exactly as received, whose bytes the signature covered.
    raw_body        text NOT NULL,
    status          text NOT NULL DEFAULT 'received'
        CHECK (status IN ('received', 'processed', 'ignored', 'unmatched', 'livemode_mismatch')),
    reason          text,
    invoice_id      text REFERENCES invoices (id),
    received_at     timestamptz NOT NULL DEFAULT now(),
    processed_at    timestamptz
);

CREATE INDEX stripe_events_created_idx ON stripe_events (created_at DESC);
CREATE INDEX stripe_events_invoice_idx ON stripe_events (invoice_id) WHERE invoice_id IS NOT NULL;

-- Links from Stripe objects (payment intents, charges, checkout sessions, invoices) to our
-- invoices, learnt from metadata, stored ids and events, so charge and dispute events find theirs.
CREATE TABLE stripe_object_links (
    object_id   text PRIMARY KEY,
    invoice_id  text NOT NULL REFERENCES invoices (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The latest known amount of each Stripe object for an invoice: received per payment (payment
-- intent or checkout session), paid per Stripe invoice, refunded per charge. Amounts are the
-- object's cumulative figures in minor units, so replays and reordering cannot add up twice.
CREATE TABLE invoice_stripe_amounts (
    invoice_id  text NOT NULL REFERENCES invoices (id),
    object_id   text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('payment', 'stripe_invoice', 'refund')),
    amount      bigint NOT NULL CHECK (amount >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (invoice_id, object_id, kind)
);

-- Payment events applied to an invoice, as GET /v1/invoices/{id} lists them.
CREATE TABLE invoice_payment_events (
    invoice_id       text NOT NULL REFERENCES invoices (id),
    stripe_event_id  text NOT NULL,
    type             text NOT NULL,
    status_before    text NOT NULL,
    status_after     text NOT NULL,
    note             text NOT NULL,
    applied_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (invoice_id, stripe_event_id)
);
