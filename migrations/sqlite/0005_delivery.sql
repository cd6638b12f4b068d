-- Delivery gives up by time, not by a count of attempts: when the current run of failures began.
ALTER TABLE outbox ADD COLUMN first_failed_at TEXT;

-- The mail server as delivery last found it, for `casewarden outbox` and monitoring: set when a
-- pass could not reach it (the pass then stops, charging only the message being sent), cleared by
-- the next message it accepts.
CREATE TABLE mail_server_status (
    transport         TEXT PRIMARY KEY,
    unreachable_since TEXT,
    last_tried_at     TEXT NOT NULL,
    last_error        TEXT
);
