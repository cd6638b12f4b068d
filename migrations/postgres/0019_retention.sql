-- casewarden schema v19 (PostgreSQL): retention. rules/retention.toml says how long after closure a
-- case's personal data is kept and what then happens (see docs/data-protection.md#retention).
--
-- cases.retention_rule: the retention rule that applies to a closed case (its label, '' when no
-- rule does), set by the retention step once the case has closed; NULL until then, and again
-- whenever the retention rules change, so that the step works the case's date out afresh.
-- cases.retention_action: what the rule does when the date comes: anonymise or delete.
-- cases.retention_due_at: when it does it; NULL when no rule applies or once it is done.
-- cases.retained_at: when it was done.
-- retention_schedule: the fingerprint of the retention rules the dates were worked out with.

ALTER TABLE cases ADD COLUMN retention_rule TEXT;
ALTER TABLE cases ADD COLUMN retention_action TEXT CHECK (retention_action IN ('anonymise', 'delete'));
ALTER TABLE cases ADD COLUMN retention_due_at TIMESTAMPTZ;
ALTER TABLE cases ADD COLUMN retained_at TIMESTAMPTZ;

-- The step finds closed cases still to be given a date, and cases whose date has come, by these.
CREATE INDEX cases_retention_unscheduled ON cases (id)
    WHERE closed_at IS NOT NULL AND retention_rule IS NULL AND retained_at IS NULL;
CREATE INDEX cases_retention_due ON cases (retention_due_at) WHERE retention_due_at IS NOT NULL;

CREATE TABLE retention_schedule (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint TEXT NOT NULL
);
