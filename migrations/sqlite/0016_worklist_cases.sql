-- casewarden schema v16 (SQLite): worklists that miss no case. A case with no task to work on
-- still needs someone: one waiting for the CRM to choose its next stage (`advance_case`), or one
-- whose open stage has only manual tasks left, none of them activated yet (`activate_task`).
-- worklist_cases gives one row per such case, with what it waits for; worklist_cases_by_user
-- and worklist_cases_by_role put it on its owner's and roles' lists, beside worklist_by_user and
-- worklist_by_role for tasks.

CREATE VIEW worklist_cases AS
SELECT c.id          AS case_id,
       c.case_ref    AS case_ref,
       c.kind        AS case_kind,
       c.scheme      AS scheme,
       c.workflow    AS workflow,
       c.country     AS country,
       c.owner       AS owner,
       c.queue_role  AS queue_role,
       CASE WHEN c.status = 'awaiting_advance' THEN 'advance_case' ELSE 'activate_task' END AS waits_for,
       s.id          AS stage_id,
       s.stage       AS stage,
       CASE WHEN c.status = 'awaiting_advance' THEN s.completed_at
            ELSE COALESCE((SELECT MAX(t.completed_at) FROM tasks t WHERE t.stage_id = s.id), s.entered_at)
       END AS since,
       -- advance_case: the stages the CRM may choose, from the latest advance_needed event.
       CASE WHEN c.status = 'awaiting_advance' THEN
            (SELECT json_extract(e.data, '$.choices') FROM events e
              WHERE e.case_id = c.id AND e.kind = 'advance_needed' ORDER BY e.id DESC LIMIT 1)
       END AS choices,
       -- activate_task: the manual tasks waiting in the open stage, in the definition's order.
       CASE WHEN c.status = 'open' THEN
            (SELECT json_group_array(task) FROM
               (SELECT t.task FROM tasks t WHERE t.stage_id = s.id AND t.status = 'waiting'
                  AND t.activation = 'manual' ORDER BY t.id))
       END AS tasks_to_activate,
       c.target_at   AS case_target_at,
       CASE WHEN c.target_day IS NULL THEN NULL
            WHEN c.target_day >= (SELECT day FROM london_today)
            THEN (SELECT COUNT(*) FROM working_days w WHERE w.calendar = c.calendar
                  AND w.day > (SELECT day FROM london_today) AND w.day <= c.target_day)
            ELSE -(SELECT COUNT(*) FROM working_days w WHERE w.calendar = c.calendar
                  AND w.day > c.target_day AND w.day <= (SELECT day FROM london_today))
       END AS case_days_remaining,
       c.target_day  AS case_target_day,
       c.calendar    AS calendar
FROM cases c
JOIN stages s ON s.id = (SELECT MAX(id) FROM stages WHERE case_id = c.id)
WHERE c.status = 'awaiting_advance'
   OR (c.status = 'open' AND s.status = 'open'
       AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.case_id = c.id AND t.status IN ('active', 'on_hold'))
       AND EXISTS (SELECT 1 FROM tasks t WHERE t.stage_id = s.id AND t.status = 'waiting'
                   AND t.activation = 'manual'));

CREATE VIEW worklist_cases_by_user AS
SELECT owner AS user_ref, * FROM worklist_cases WHERE owner IS NOT NULL;

-- A case is on a role's list when its owner holds the role, when it could not be allocated and
-- waits on that role's queue, or when a manual task it waits for belongs to the role.
CREATE VIEW worklist_cases_by_role AS
SELECT ur.role_ref AS role_ref, w.*
FROM worklist_cases w JOIN user_roles ur ON ur.user_ref = w.owner
UNION
SELECT queue_role AS role_ref, * FROM worklist_cases WHERE queue_role IS NOT NULL
UNION
SELECT t.role_ref AS role_ref, w.*
FROM worklist_cases w JOIN tasks t ON t.stage_id = w.stage_id
WHERE w.waits_for = 'activate_task' AND t.status = 'waiting' AND t.activation = 'manual'
  AND t.role_ref IS NOT NULL;
