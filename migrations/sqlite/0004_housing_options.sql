-- casewarden schema v4 (SQLite): housing options cases.
--
-- A housing options case follows one workflow (cases.workflow): a dependency graph of tasks. Its
-- target is the end of the longest path through them (cases.target_at, recomputed as tasks are
-- activated, completed, held and released; target_path names the tasks on that path). Its
-- enquiry answers are kept per case (history in the events), and each personalised housing pack
-- rendered for it is recorded with the attachments that hold it.

ALTER TABLE cases ADD COLUMN target_at TEXT;
ALTER TABLE cases ADD COLUMN target_day TEXT;
ALTER TABLE cases ADD COLUMN target_path TEXT;

CREATE TABLE enquiries (
    case_id      INTEGER PRIMARY KEY REFERENCES cases (id),
    form_id      TEXT NOT NULL,
    form_version TEXT NOT NULL,
    answers      TEXT NOT NULL DEFAULT '{}',
    submissions  INTEGER NOT NULL DEFAULT 0,
    updated_at   TEXT NOT NULL,
    updated_by   TEXT
);

-- Packs to make: one row per request (the pack task became active, or render_pack). due_at is
-- NULL while the case has no answers yet; submit_enquiry makes it due.
CREATE TABLE pack_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id      INTEGER NOT NULL REFERENCES cases (id),
    task_id      INTEGER REFERENCES tasks (id),
    requested_at TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    due_at       TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT
);
CREATE INDEX pack_requests_due ON pack_requests (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX pack_requests_by_case ON pack_requests (case_id);

CREATE TABLE packs (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id            INTEGER NOT NULL REFERENCES cases (id),
    version            INTEGER NOT NULL,
    task_id            INTEGER REFERENCES tasks (id),
    statements         TEXT NOT NULL DEFAULT '{}',
    html_attachment_id INTEGER NOT NULL REFERENCES attachments (id),
    text_attachment_id INTEGER NOT NULL REFERENCES attachments (id),
    sent_to_applicant  INTEGER NOT NULL DEFAULT 0,
    rendered_at        TEXT NOT NULL,
    UNIQUE (case_id, version)
);

DROP VIEW worklist_by_user;
DROP VIEW worklist_by_role;
DROP VIEW worklist_tasks;

-- Worklists for CRMs: every open task with its case, stage, owner, role and SLA dates.
CREATE VIEW worklist_tasks AS
SELECT t.id            AS task_id,
       c.case_ref      AS case_ref,
       c.kind          AS case_kind,
       c.scheme        AS scheme,
       c.workflow      AS workflow,
       c.country       AS country,
       s.stage         AS stage,
       s.master_stage  AS master_stage,
       t.task          AS task,
       t.status        AS status,
       t.owner         AS owner,
       t.line_manager  AS line_manager,
       t.role_ref      AS role,
       CASE WHEN t.owner IS NULL THEN c.queue_role END AS queue_role,
       t.mandatory     AS mandatory,
       t.activated_at  AS activated_at,
       t.hold_until    AS hold_until,
       t.sla_state     AS sla_state,
       t.amber_at      AS amber_at,
       t.target_at     AS target_at,
       CASE WHEN t.target_day IS NULL THEN NULL
            WHEN t.target_day >= date('now')
            THEN (SELECT COUNT(*) FROM working_days w WHERE w.calendar = c.calendar
                  AND w.day > date('now') AND w.day <= t.target_day)
            ELSE -(SELECT COUNT(*) FROM working_days w WHERE w.calendar = c.calendar
                  AND w.day > t.target_day AND w.day <= date('now'))
       END AS days_remaining,
       c.target_at     AS case_target_at,
       CASE WHEN c.target_day IS NULL THEN NULL
            WHEN c.target_day >= date('now')
            THEN (SELECT COUNT(*) FROM working_days w WHERE w.calendar = c.calendar
                  AND w.day > date('now') AND w.day <= c.target_day)
            ELSE -(SELECT COUNT(*) FROM working_days w WHERE w.calendar = c.calendar
                  AND w.day > c.target_day AND w.day <= date('now'))
       END AS case_days_remaining
FROM tasks t
JOIN stages s ON s.id = t.stage_id
JOIN cases c ON c.id = t.case_id
WHERE t.status IN ('active', 'on_hold');

CREATE VIEW worklist_by_user AS
SELECT owner AS user_ref, * FROM worklist_tasks WHERE owner IS NOT NULL;

-- A task is on a role's list when the role is the task's own, when its owner holds the role, or
-- when its case could not be allocated and waits on that role's queue.
CREATE VIEW worklist_by_role AS
SELECT role AS role_ref, * FROM worklist_tasks WHERE role IS NOT NULL
UNION
SELECT ur.role_ref AS role_ref, w.*
FROM worklist_tasks w JOIN user_roles ur ON ur.user_ref = w.owner
UNION
SELECT queue_role AS role_ref, * FROM worklist_tasks WHERE queue_role IS NOT NULL;
