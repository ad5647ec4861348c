-- Seed a migrated, empty DueSpark database with production-like volumes, for measuring backup and
-- restore times. The database then takes about 1.1 GB on disk and contains:
--   - 500 accounts, 50,000 clients and 500,000 invoices;
--   - 1,000,001 reminders, 1 to 3 stages per invoice;
--   - 1,050,001 jobs, one reminder.send job per reminder and one stripe.event job per Stripe event,
--     98 % of them done or dead and 20,000 waiting;
--   - 50,000 Stripe events with a raw body of about 1.2 kB each;
--   - 10,000 email events and 2,000 suppressions.
--
-- Run it after `duespark migrate`:
--   psql -v ON_ERROR_STOP=1 -d DATABASE -f scripts/seed_realistic.sql
-- It takes about 80 s on 2 cores. random() is seeded, so every run creates the same data.

\set ON_ERROR_STOP on
SET synchronous_commit = off;
SELECT setseed(0.42);

BEGIN;

INSERT INTO accounts (id, name, sender_name, reply_to, timezone, created_at, updated_at)
SELECT format('acct-%s', lpad(a::text, 4, '0')),
       format('Studio %s', a),
       format('Owner %s', a),
       format('billing@studio-%s.example', a),
       (ARRAY['UTC', 'Europe/Berlin', 'America/New_York', 'America/Los_Angeles', 'Asia/Tokyo',
              'Australia/Sydney'])[1 + a % 6],
       now() - interval '400 days' + a * interval '10 minutes',
       now() - interval '1 day' * (a % 30)
FROM generate_series(1, 500) AS a;

-- 100 clients per account.
INSERT INTO clients (id, account_id, name, email, email_key, reminders_paused, created_at, updated_at)
SELECT format('client-%s', lpad(c::text, 6, '0')),
       format('acct-%s', lpad((1 + (c - 1) / 100)::text, 4, '0')),
       format('Client %s Ltd', c),
       format('AP+%s@Client-%s.example', c, c),
       format('ap+%s@client-%s.example', c, c),
       c % 200 = 0,
       now() - interval '300 days' + c * interval '1 minute',
       now() - interval '1 hour' * (c % 500)
FROM generate_series(1, 50000) AS c;

-- 10 invoices per client, issued over the last 120 days and due 30 days later.
INSERT INTO invoices (id, account_id, client_id, number, amount_due, amount_paid, currency, issued_on,
                      due_on, pay_url, status, status_confirmed_by_stripe, stripe_payment_intent_id,
                      created_at, updated_at)
SELECT format('inv-%s', lpad(i::text, 7, '0')),
       format('acct-%s', lpad((1 + (c - 1) / 100)::text, 4, '0')),
       format('client-%s', lpad(c::text, 6, '0')),
       format('INV-%s', 10000 + i),
       amount,
       CASE WHEN status = 'paid' THEN amount ELSE 0 END,
       (ARRAY['usd', 'eur', 'gbp', 'jpy'])[1 + i % 4],
       issued,
       issued + 30,
       format('https://pay.example.com/inv-%s', i),
       status,
       status = 'paid',
       CASE WHEN i % 4 = 0 THEN format('pi_%s', md5(i::text)) END,
       issued::timestamptz,
       issued::timestamptz + interval '2 days'
FROM (
    SELECT i,
           1 + (i - 1) / 10 AS c,
           (1000 + floor(random() * 500000))::bigint AS amount,
           current_date - 120 + (i % 120) AS issued,
           CASE WHEN i % 20 = 0 THEN 'void' WHEN i % 5 < 3 THEN 'paid' ELSE 'open' END AS status
    FROM generate_series(1, 500000) AS i
) AS generated;

-- Stages 1 to 1 + (invoice number mod 3) of each invoice: about 1,000,000 reminders.
INSERT INTO reminders (invoice_id, stage, status, reason, message_id, send_at, created_at, updated_at,
                       sending_at, sent_at)
SELECT format('inv-%s', lpad(i::text, 7, '0')),
       (ARRAY['upcoming', 'due', 'overdue_3', 'overdue_7', 'overdue_14', 'final'])[s],
       status,
       CASE status
           WHEN 'skipped' THEN 'invoice is paid'
           WHEN 'failed' THEN 'recipient rejected: 550 5.1.1 mailbox unavailable'
           WHEN 'uncertain' THEN 'an earlier attempt stopped during the send, so the email may have been delivered'
       END,
       CASE WHEN status IN ('sent', 'uncertain') THEN format('<r-%s-%s@duespark.example>', i, s) END,
       send_at,
       send_at - interval '1 day',
       send_at + interval '5 seconds',
       CASE WHEN status IN ('sent', 'uncertain') THEN send_at END,
       CASE WHEN status = 'sent' THEN send_at + interval '1 second' END
FROM (
    SELECT i, s,
           CASE WHEN (i + s) % 50 = 0 THEN 'queued'
                WHEN (i + s) % 25 = 1 THEN 'skipped'
                WHEN (i + s) % 97 = 2 THEN 'failed'
                WHEN (i + s) % 997 = 3 THEN 'uncertain'
                ELSE 'sent' END AS status,
           (current_date - 120 + (i % 120) + 27 + s * 3)::timestamptz + interval '9 hours' AS send_at
    FROM generate_series(1, 500000) AS i
    CROSS JOIN LATERAL generate_series(1, 1 + i % 3) AS s
) AS generated;

-- One reminder.send job per reminder, in the state that matches the reminder.
INSERT INTO duespark_queue.jobs (queue, kind, payload, status, attempt, max_attempts, run_at, errors,
                                 created_at, started_at, finished_at)
SELECT 'reminders', 'reminder.send', jsonb_build_object('reminder_id', r.id),
       job_status,
       CASE WHEN job_status = 'pending' THEN 0 ELSE 1 END,
       8,
       CASE WHEN job_status = 'pending' THEN now() + (r.id % 72) * interval '1 hour' ELSE finished END,
       CASE WHEN job_status = 'dead' THEN jsonb_build_array(jsonb_build_object(
           'attempt', 1, 'at', finished, 'worker', 'worker-reminders-1',
           'message', 'recipient rejected: 550 5.1.1 mailbox unavailable'))
            ELSE '[]'::jsonb END,
       finished - interval '1 minute',
       CASE WHEN job_status = 'pending' THEN NULL ELSE finished - interval '2 seconds' END,
       CASE WHEN job_status = 'pending' THEN NULL ELSE finished END
FROM (
    SELECT id,
           CASE status WHEN 'queued' THEN 'pending' WHEN 'failed' THEN 'dead' ELSE 'done' END AS job_status,
           -- Finished jobs are at most 7 days old, as job retention keeps them.
           now() - (id % 600000) * interval '1 second' AS finished
    FROM reminders
) AS r;

UPDATE reminders SET job_id = id::text;

INSERT INTO stripe_events (id, type, livemode, api_version, created_at, raw_body, status, invoice_id,
                           received_at, processed_at)
SELECT format('evt_%s', md5('event' || e)),
       'payment_intent.succeeded',
       true,
       '2024-06-20',
       now() - (e % 600000) * interval '1 second',
       jsonb_build_object(
           'id', format('evt_%s', md5('event' || e)),
           'object', 'event',
           'type', 'payment_intent.succeeded',
           'data', jsonb_build_object('object', jsonb_build_object(
               'id', format('pi_%s', md5((e * 4)::text)),
               'amount_received', 1000 + e,
               'metadata', jsonb_build_object('invoice_id', format('inv-%s', lpad((e * 4)::text, 7, '0'))),
               'client_secret', (SELECT string_agg(md5(e::text || part), '') FROM generate_series(1, 30) AS part)
           ))
       )::text,
       'processed',
       format('inv-%s', lpad((e * 4)::text, 7, '0')),
       now() - (e % 600000) * interval '1 second',
       now() - (e % 600000) * interval '1 second' + interval '1 second'
FROM generate_series(1, 50000) AS e;

INSERT INTO duespark_queue.jobs (queue, kind, payload, status, attempt, max_attempts, run_at,
                                 created_at, started_at, finished_at)
SELECT 'webhooks', 'stripe.event', jsonb_build_object('event_id', id), 'done', 1, 10,
       received_at, received_at, received_at, processed_at
FROM stripe_events;

INSERT INTO email_events (provider, provider_event_id, record_type, raw_body, status, account_id,
                          invoice_id, received_at, processed_at)
SELECT 'postmark', (100000 + b)::text, 'Bounce',
       jsonb_build_object('RecordType', 'Bounce', 'ID', 100000 + b, 'Type', 'HardBounce',
                          'Email', format('ap+%s@client-%s.example', b * 5, b * 5),
                          'Details', 'smtp;550 5.1.1 The email account that you tried to reach does not exist')::text,
       'processed',
       format('acct-%s', lpad((1 + (b * 5 - 1) / 100)::text, 4, '0')),
       format('inv-%s', lpad((b * 50)::text, 7, '0')),
       now() - b * interval '1 minute',
       now() - b * interval '1 minute' + interval '1 second'
FROM generate_series(1, 10000) AS b;

INSERT INTO suppressions (email_key, email, reason, detail, can_reactivate, account_id)
SELECT format('ap+%s@client-%s.example', b * 5, b * 5),
       format('ap+%s@client-%s.example', b * 5, b * 5),
       'hard_bounce', 'smtp;550 5.1.1', true,
       format('acct-%s', lpad((1 + (b * 5 - 1) / 100)::text, 4, '0'))
FROM generate_series(1, 2000) AS b;

COMMIT;

VACUUM ANALYZE;
