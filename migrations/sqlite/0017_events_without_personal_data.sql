-- casewarden schema v17 (SQLite): the event log holds no personal data. Events name people and
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
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id  INTEGER NOT NULL REFERENCES cases (id),
    task_id  INTEGER NOT NULL REFERENCES tasks (id),
    held_at  TEXT NOT NULL,
    until    TEXT NOT NULL,
    reason   TEXT NOT NULL
);
CREATE INDEX task_holds_by_case ON task_holds (case_id);

CREATE TABLE case_updates (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id  INTEGER NOT NULL REFERENCES cases (id),
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    reason   TEXT NOT NULL,
    changes  TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX case_updates_by_case ON case_updates (case_id);

ALTER TABLE tasks ADD COLUMN skip_reason TEXT;
ALTER TABLE packs ADD COLUMN advice TEXT NOT NULL DEFAULT '[]';

UPDATE tasks SET skip_reason = (
    SELECT json_extract(e.data, '$.reason') FROM events e
    WHERE e.case_id = tasks.case_id AND e.kind = 'task_skipped'
      AND json_extract(e.data, '$.task') = tasks.task
      AND json_extract(e.data, '$.stage') = (SELECT s.stage FROM stages s WHERE s.id = tasks.stage_id)
    ORDER BY e.id DESC LIMIT 1)
WHERE status = 'skipped';

-- The one edit of history casewarden makes, in the migration's own transaction: the trigger that
-- keeps the log append-only steps aside for it and is back before the migration commits.
DROP TRIGGER events_are_append_only_update;

UPDATE events SET data = json_remove(data, '$.text') WHERE kind = 'note_added';
UPDATE events SET data = json_remove(data, '$.name', '$.uri') WHERE kind = 'file_attached';
UPDATE events SET data = json_set(json_remove(data, '$.reason'), '$.reason_given',
        json(CASE WHEN json_extract(data, '$.reason') IS NULL THEN 'false' ELSE 'true' END))
    WHERE kind = 'task_skipped';
UPDATE events SET data = json_set(json_remove(data, '$.outcome'), '$.outcome_given',
        json(CASE WHEN json_extract(data, '$.outcome') IS NULL THEN 'false' ELSE 'true' END))
    WHERE kind = 'task_completed';
UPDATE events SET data = json_remove(data, '$.reason') WHERE kind = 'task_held';
UPDATE events SET data = json_set(json_remove(data, '$.changes'), '$.changed',
        (SELECT json_group_array(json_extract(c.value, '$.question'))
           FROM json_each(json_extract(events.data, '$.changes')) c))
    WHERE kind = 'enquiry_submitted';
UPDATE events SET data = json_set(data,
        '$.advice', (SELECT json_group_array(json_object(
                         'statement', json_extract(a.value, '$.statement'),
                         'section', json_extract(a.value, '$.section'),
                         'chosen', json(CASE WHEN json_extract(a.value, '$.chosen') THEN 'true' ELSE 'false' END),
                         'failed', json(CASE WHEN json_extract(a.value, '$.error') IS NULL THEN 'false' ELSE 'true' END)))
                     FROM json_each(json_extract(events.data, '$.advice')) a),
        '$.files', (SELECT json_group_array(json_remove(f.value, '$.name', '$.uri'))
                     FROM json_each(json_extract(events.data, '$.files')) f))
    WHERE kind = 'pack_rendered';

CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
