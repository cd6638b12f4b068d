-- casewarden schema v18 (PostgreSQL): erasure. `casewarden erase contact` removes a person's
-- data everywhere casewarden holds it; what remains is a tombstone that says when and why.
--
-- contacts.erased_at: when the contact's name, e-mail, phone and address were erased.
-- erasures: one row per erasure, with the reason the operator gave (free text, kept here and
-- out of the event log) and the cases it reached.
-- inbox_by_case, outbox_by_case: a case's commands and notifications found by index, so
-- scrubbing a case costs what the case holds, not what the whole inbox and outbox hold.

ALTER TABLE contacts ADD COLUMN erased_at TIMESTAMPTZ;

CREATE TABLE erasures (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contact_ref  TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    actor        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    cases        JSONB NOT NULL DEFAULT '[]'
);

CREATE INDEX inbox_by_case ON inbox (case_ref) WHERE case_ref IS NOT NULL;
CREATE INDEX outbox_by_case ON outbox (case_id) WHERE case_id IS NOT NULL;
