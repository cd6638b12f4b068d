-- casewarden schema v3: cases waiting for the CRM to choose their next stage (advance_case).
-- Such a case has no open stage and no open task, so without this view it is on no list.

CREATE INDEX cases_awaiting_advance ON cases (id) WHERE status = 'awaiting_advance';

CREATE VIEW worklist_decisions AS
SELECT c.case_ref   AS case_ref,
       c.kind       AS case_kind,
       c.scheme     AS scheme,
       c.country    AS country,
       c.owner      AS owner,
       c.queue_role AS queue_role,
       s.stage      AS after_stage,
       s.completed_at AS since,
       (SELECT e.data FROM events e
         WHERE e.case_id = c.id AND e.kind = 'advance_needed'
         ORDER BY e.id DESC LIMIT 1) AS decision
FROM cases c
JOIN stages s ON s.id = (SELECT MAX(id) FROM stages WHERE case_id = c.id)
WHERE c.status = 'awaiting_advance';
