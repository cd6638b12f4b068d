-- casewarden schema v2 (SQLite): working days remaining in the worklists.
--
-- casewarden publishes each calendar's working days into working_days whenever it loads its rule
-- set, and records each case's calendar and each item's target as a London date, so the views
-- can count the working days left without knowing about bank holidays.

ALTER TABLE cases ADD COLUMN calendar TEXT;
UPDATE cases SET calendar = CASE country
    WHEN 'scotland' THEN 'scotland'
    WHEN 'northern_ireland' THEN 'northern-ireland'
    ELSE 'england-and-wales' END;
ALTER TABLE tasks ADD COLUMN target_day TEXT;
ALTER TABLE stages ADD COLUMN target_day TEXT;

CREATE TABLE working_days (
    calendar TEXT NOT NULL,
    day      TEXT NOT NULL,
    PRIMARY KEY (calendar, day)
);

DROP VIEW worklist_by_user;
DROP VIEW worklist_by_role;
DROP VIEW worklist_tasks;
DROP VIEW worklist_stages;

-- Worklists for CRMs: every open task with its case, stage, owner, role and SLA dates.
CREATE VIEW worklist_tasks AS
SELECT t.id            AS task_id,
       c.case_ref      AS case_ref,
       c.kind          AS case_kind,
       c.scheme        AS scheme,
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
       END AS days_remaining
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

CREATE VIEW worklist_stages AS
SELECT s.id           AS stage_id,
       c.case_ref     AS case_ref,
       c.kind         AS case_kind,
       s.stage        AS stage,
       s.master_stage AS master_stage,
       s.owner        AS owner,
       s.line_manager AS line_manager,
       s.entered_at   AS entered_at,
       s.sla_state    AS sla_state,
       s.amber_at     AS amber_at,
       s.target_at    AS target_at,
       CASE WHEN s.target_day IS NULL THEN NULL
            WHEN s.target_day >= date('now')
            THEN (SELECT COUNT(*) FROM working_days w WHERE w.calendar = c.calendar
                  AND w.day > date('now') AND w.day <= s.target_day)
            ELSE -(SELECT COUNT(*) FROM working_days w WHERE w.calendar = c.calendar
                  AND w.day > s.target_day AND w.day <= date('now'))
       END AS days_remaining
FROM stages s JOIN cases c ON c.id = s.case_id
WHERE s.status = 'open';
