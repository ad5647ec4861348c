-- Small indexes for the health and metrics reads that run every few seconds: the newest email
-- sent and the count of uncertain reminders, without scanning all reminders.

CREATE INDEX reminders_sent_at_idx ON reminders (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX reminders_uncertain_idx ON reminders (id) WHERE status = 'uncertain';
