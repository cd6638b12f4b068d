-- casewarden schema v13 (SQLite): the worklists count working days remaining from today's date
-- in London, as they do on PostgreSQL. They counted from the UTC date, so between midnight and
-- 01:00 in British Summer Time a task due yesterday looked due today.
--
-- london_today: today's date in Europe/London. SQLite has no time zone database, so the view
-- applies the rule of the Summer Time Order 2002: British Summer Time runs from 01:00 UTC on the
-- last Sunday of March to 01:00 UTC on the last Sunday of October. The last Sunday of a month of
-- 31 days is the Sunday on or after its 25th. CRMs may read the view too.

CREATE VIEW london_today AS
SELECT CASE
         WHEN datetime('now') >= datetime(date('now', 'start of year', '+2 months', '+24 days', 'weekday 0'), '+1 hour')
          AND datetime('now') <  datetime(date('now', 'start of year', '+9 months', '+24 days', 'weekday 0'), '+1 hour')
         THEN date('now', '+1 hour')
         ELSE date('now')
       END AS day;

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
            WHEN t.target_day >= (SELECT day FROM london_today)
            THEN (SELECT COUNT(*) FROM working_days w WHERE w.calendar = c.calendar
                  AND w.day > (SELECT day FROM london_today) AND w.day <= t.target_day)
            ELSE -(SELECT COUNT(*) FROM working_days w WHERE w.calendar = c.calendar
                  AND w.day > t.target_day AND w.day <= (SELECT day FROM london_today))
       END AS days_remaining,
       c.target_at     AS case_target_at,
       CASE WHEN c.target_day IS NULL THEN NULL
            WHEN c.target_day >= (SELECT day FROM london_today)
            THEN (SELECT COUNT(*) FROM working_days w WHERE w.calendar = c.calendar
                  AND w.day > (SELECT day FROM london_today) AND w.day <= c.target_day)
            ELSE -(SELECT COUNT(*) FROM working_days w WHERE w.calendar = c.calendar
                  AND w.day > c.target_day AND w.day <= (SELECT day FROM london_today))
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
            WHEN s.target_day >= (SELECT day FROM london_today)
            THEN (SELECT COUNT(*) FROM working_days w WHERE w.calendar = c.calendar
                  AND w.day > (SELECT day FROM london_today) AND w.day <= s.target_day)
            ELSE -(SELECT COUNT(*) FROM working_days w WHERE w.calendar = c.calendar
                  AND w.day > s.target_day AND w.day <= (SELECT day FROM london_today))
       END AS days_remaining
FROM stages s JOIN cases c ON c.id = s.case_id
WHERE s.status = 'open';
