-- Indexes for the operations dashboard.
-- NOTE: on an existing table each index builds under a lock that blocks writes to the jobs until
-- the build ends, because migrations run in a transaction and so cannot use CONCURRENTLY.

-- Counts of waiting jobs split by run_at (scheduled or pending as reported), read from the index
-- alone. Without it each count visits the table row by row.
CREATE INDEX jobs_waiting_run_at_idx ON duespark_queue.jobs (queue, run_at)
    WHERE status IN ('scheduled', 'pending');

-- Lookup of jobs by the invoice id in their payload (payment sync jobs carry one), for the
-- dashboard's search by invoice. The index is partial, so jobs without an invoice id add no entry.
CREATE INDEX jobs_payload_invoice_id_idx ON duespark_queue.jobs ((payload ->> 'invoice_id'))
    WHERE payload ? 'invoice_id';
