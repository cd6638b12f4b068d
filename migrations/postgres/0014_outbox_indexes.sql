-- Metrics (schema v14, PostgreSQL): a scrape reads the outbox's backlog through these partial
-- indexes, so its cost does not grow with the mail sent over the years. `outbox_due`
-- (next_attempt_at) gives neither the notification waiting longest, the one written first, nor
-- a cheap count of the dead ones.
CREATE INDEX outbox_waiting_since ON outbox (created_at) WHERE status IN ('pending', 'claimed');
CREATE INDEX outbox_dead ON outbox (id) WHERE status = 'dead';
