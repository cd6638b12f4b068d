-- casewarden schema v15 (SQLite): homelessness duties on record.
--
-- A housing options case records the statutory duties owed to its applicant (prevention, relief,
-- the main duty), each once, with its start date and, when it ends, its end date and the reason;
-- how the applicant came (a self-referral, or a public authority's referral under the duty to
-- refer, Housing Act 1996 s.213B); and the steps of the personalised housing plan, each named by
-- the CRM's own reference. Free text (the step, the end reason, the authority's name) lives here,
-- where erasure reaches it; the events name the rows by id and reference and carry the dates.
-- Dates are London calendar dates (YYYY-MM-DD).

CREATE TABLE duties (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id     INTEGER NOT NULL REFERENCES cases (id),
    duty        TEXT NOT NULL CHECK (duty IN ('prevention', 'relief', 'main')),
    start_date  TEXT NOT NULL,
    end_date    TEXT,
    end_reason  TEXT,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (case_id, duty),
    CHECK (end_date IS NULL OR end_date >= start_date),
    CHECK ((end_date IS NULL) = (end_reason IS NULL))
);
-- The quarterly extract finds the duties open in a quarter by their dates.
CREATE INDEX duties_by_start ON duties (start_date);

CREATE TABLE referrals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id     INTEGER NOT NULL UNIQUE REFERENCES cases (id),
    source      TEXT NOT NULL CHECK (source IN ('self', 'duty_to_refer', 'other_agency')),
    authority   TEXT,
    referred_on TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    CHECK ((source = 'self') = (authority IS NULL))
);

CREATE TABLE plan_steps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id     INTEGER NOT NULL REFERENCES cases (id),
    step_ref    TEXT NOT NULL,
    owner       TEXT NOT NULL CHECK (owner IN ('applicant', 'council')),
    step        TEXT NOT NULL,
    agreed_on   TEXT NOT NULL,
    review_on   TEXT,
    status      TEXT NOT NULL CHECK (status IN ('agreed', 'done', 'not_done', 'withdrawn')),
    recorded_at TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    UNIQUE (case_id, step_ref),
    CHECK (review_on IS NULL OR review_on >= agreed_on)
);
