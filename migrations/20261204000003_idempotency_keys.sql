-- Stored responses for the Idempotency-Key header: the first response to a (token subject, route, key)
-- is replayed for 24 hours. request_hash detects the same key sent with a different body.

CREATE TABLE idempotency_keys (
    subject       text NOT NULL,
    route         text NOT NULL,
    key           text NOT NULL,
    request_hash  text NOT NULL,
    status_code   smallint,
    body          jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, route, key)
);

CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
