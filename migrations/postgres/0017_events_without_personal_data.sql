-- casewarden schema v17 (PostgreSQL): the event log holds no personal data. Events name people and
-- contacts by reference only; free text (notes, reasons typed by officers, outcomes, answers,
-- file names) lives in tables that erasure can reach, and events point at it:
--
-- - task_held's reason is kept in task_holds (the row for the task held at the event's time);
-- - case_updated names the facts that changed; their values and the reason are in
--   case_updates;
-- - task_skipped says whether a reason was given; the reason is tasks.skip_reason;
-- - task_completed says whether an outcome was given; the outcome is tasks.outcome;
-- - note_added carries only note_id (the text is in notes);
-- - file_attached and pack_rendered's files leave out the name and URI (in attachments);
-- - enquiry_submitted lists the questions that changed, not the answers (in enquiries);
-- - pack_rendered's advice says which statements were chosen, not why (the explanation, which
--   quotes answers, is packs.advice).
--
-- Events written before this version are stripped of the same fields here, since every value
-- they held is also in its table.

CREATE TABLE task_holds (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id  BIGINT NOT NULL REFERENCES cases (id),
    task_id  BIGINT NOT NULL REFERENCES tasks (id),
    held_at  TIMESTAMPTZ NOT NULL,
    until    TIMESTAMPTZ NOT NULL,
    reason   TEXT NOT NULL
);
CREATE INDEX task_holds_by_case ON task_holds (case_id);

CREATE TABLE case_updates (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id  BIGINT NOT NULL REFERENCES cases (id),
    at       TIMESTAMPTZ NOT NULL,
    actor    TEXT NOT NULL,
    reason   TEXT NOT NULL,
    changes  JSONB NOT NULL DEFAULT '[]'
);
CREATE INDEX case_updates_by_case ON case_updates (case_id);

ALTER TABLE tasks ADD COLUMN skip_reason TEXT;
ALTER TABLE packs ADD COLUMN advice JSONB NOT NULL DEFAULT '[]';

UPDATE tasks SET skip_reason = (
    SELECT e.data ->> 'reason' FROM events e
    WHERE e.case_id = tasks.case_id AND e.kind = 'task_skipped'
      AND e.data ->> 'task' = tasks.task
      AND e.data ->> 'stage' = (SELECT s.stage FROM stages s WHERE s.id = tasks.stage_id)
    ORDER BY e.id DESC LIMIT 1)
WHERE status = 'skipped';

-- The one edit of history casewarden makes, in the migration's own transaction: the trigger that
-- keeps the log append-only steps aside for it and is back before the migration commits.
ALTER TABLE events DISABLE TRIGGER events_are_append_only;

UPDATE events SET data = data - 'text' WHERE kind = 'note_added';
UPDATE events SET data = data - 'name' - 'uri' WHERE kind = 'file_attached';
UPDATE events SET data = (data - 'reason')
        || jsonb_build_object('reason_given', jsonb_typeof(data -> 'reason') IS DISTINCT FROM 'null' AND data ? 'reason')
    WHERE kind = 'task_skipped';
UPDATE events SET data = (data - 'outcome')
        || jsonb_build_object('outcome_given', jsonb_typeof(data -> 'outcome') IS DISTINCT FROM 'null' AND data ? 'outcome')
    WHERE kind = 'task_completed';
UPDATE events SET data = data - 'reason' WHERE kind = 'task_held';
UPDATE events SET data = (data - 'changes') || jsonb_build_object('changed',
        COALESCE((SELECT jsonb_agg(c.value -> 'question' ORDER BY c.ordinality)
                    FROM jsonb_array_elements(data -> 'changes') WITH ORDINALITY c), '[]'::jsonb))
    WHERE kind = 'enquiry_submitted';
UPDATE events SET data = data
        || jsonb_build_object('advice',
             COALESCE((SELECT jsonb_agg(jsonb_build_object(
                         'statement', a.value -> 'statement',
                         'section', a.value -> 'section',
                         'chosen', a.value -> 'chosen',
                         'failed', a.value ? 'error') ORDER BY a.ordinality)
                       FROM jsonb_array_elements(data -> 'advice') WITH ORDINALITY a), '[]'::jsonb),
           'files',
             COALESCE((SELECT jsonb_agg(f.value - 'name' - 'uri' ORDER BY f.ordinality)
                       FROM jsonb_array_elements(data -> 'files') WITH ORDINALITY f), '[]'::jsonb))
    WHERE kind = 'pack_rendered';

ALTER TABLE events ENABLE TRIGGER events_are_append_only;
