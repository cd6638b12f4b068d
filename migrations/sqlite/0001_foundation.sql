-- casewarden schema v1 (SQLite). The PostgreSQL twin is migrations/postgres/0001_foundation.sql;
-- keep the two in step. Timestamps are UTC, written by casewarden as RFC 3339 text.

-- Commands from the CRM. A CRM may INSERT (body) directly, or use `casewarden submit`.
CREATE TABLE inbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    body         TEXT    NOT NULL,
    command_id   TEXT,
    command_type TEXT,
    case_ref     TEXT,
    status       TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'accepted', 'rejected', 'duplicate')),
    reason       TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    received_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')),
    processed_at TEXT
);
CREATE INDEX inbox_pending ON inbox (id) WHERE status = 'pending';
CREATE INDEX inbox_rejected ON inbox (id) WHERE status = 'rejected';

-- The first inbox row that carried each command_id: a repeat is marked 'duplicate'.
CREATE TABLE processed_commands (
    command_id TEXT PRIMARY KEY,
    inbox_id   INTEGER NOT NULL REFERENCES inbox (id)
);

CREATE TABLE roles (
    ref  TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE users (
    ref          TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    email        TEXT NOT NULL,
    line_manager TEXT,
    active       INTEGER NOT NULL DEFAULT 1,
    updated_at   TEXT NOT NULL
);

CREATE TABLE user_roles (
    user_ref TEXT NOT NULL REFERENCES users (ref) ON DELETE CASCADE,
    role_ref TEXT NOT NULL REFERENCES roles (ref),
    PRIMARY KEY (user_ref, role_ref)
);
CREATE INDEX user_roles_by_role ON user_roles (role_ref, user_ref);

CREATE TABLE contacts (
    ref        TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    email      TEXT,
    phone      TEXT,
    address    TEXT,
    updated_at TEXT NOT NULL
);

CREATE TABLE contact_groups (
    ref  TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE contact_group_members (
    group_ref   TEXT NOT NULL REFERENCES contact_groups (ref) ON DELETE CASCADE,
    contact_ref TEXT NOT NULL REFERENCES contacts (ref),
    PRIMARY KEY (group_ref, contact_ref)
);

CREATE TABLE cases (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    case_ref           TEXT NOT NULL UNIQUE,
    kind               TEXT NOT NULL,
    scheme             TEXT,
    country            TEXT NOT NULL,
    workflow           TEXT,
    definition_id      TEXT NOT NULL,
    definition_version TEXT NOT NULL,
    applicant_contact  TEXT REFERENCES contacts (ref),
    applicant_group    TEXT REFERENCES contact_groups (ref),
    property_ref       TEXT,
    property_address   TEXT,
    tenure             TEXT,
    received_at        TEXT NOT NULL,
    attributes         TEXT NOT NULL DEFAULT '{}',
    status             TEXT NOT NULL DEFAULT 'open'
                       CHECK (status IN ('open', 'awaiting_advance', 'completed', 'closed')),
    outcome            TEXT,
    owner              TEXT REFERENCES users (ref),
    -- pending: the allocation step has still to run; allocated; needed: on the queue role's list
    allocation         TEXT NOT NULL DEFAULT 'pending'
                       CHECK (allocation IN ('pending', 'allocated', 'needed')),
    queue_role         TEXT,
    created_at         TEXT NOT NULL,
    closed_at          TEXT
);
CREATE INDEX cases_allocation_pending ON cases (id) WHERE allocation = 'pending';
CREATE INDEX cases_open_by_owner ON cases (owner) WHERE status IN ('open', 'awaiting_advance');

-- One row per entry into a stage (a stage entered twice, e.g. after a delay, has two rows).
CREATE TABLE stages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id       INTEGER NOT NULL REFERENCES cases (id),
    stage         TEXT NOT NULL,
    master_stage  TEXT NOT NULL,
    entry         INTEGER NOT NULL DEFAULT 1,
    status        TEXT NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'completed', 'diverted', 'closed')),
    owner         TEXT REFERENCES users (ref),
    line_manager  TEXT REFERENCES users (ref),
    entered_at    TEXT NOT NULL,
    completed_at  TEXT,
    -- SLA clock (filled by the SLA sweep)
    target_at     TEXT,
    amber_at      TEXT,
    sla_state     TEXT NOT NULL DEFAULT 'none'
                  CHECK (sla_state IN ('none', 'on_track', 'amber', 'exceeded', 'stopped')),
    follow_ons    INTEGER NOT NULL DEFAULT 0,
    next_check_at TEXT,
    UNIQUE (case_id, stage, entry)
);
CREATE INDEX stages_open_by_case ON stages (case_id) WHERE status = 'open';
CREATE INDEX stages_sla_due ON stages (next_check_at) WHERE next_check_at IS NOT NULL;

CREATE TABLE tasks (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id        INTEGER NOT NULL REFERENCES cases (id),
    stage_id       INTEGER NOT NULL REFERENCES stages (id),
    task           TEXT NOT NULL,
    mandatory      INTEGER NOT NULL,
    activation     TEXT NOT NULL CHECK (activation IN ('auto', 'manual')),
    status         TEXT NOT NULL DEFAULT 'waiting'
                   CHECK (status IN ('waiting', 'active', 'on_hold', 'completed', 'skipped', 'cancelled')),
    owner          TEXT REFERENCES users (ref),
    line_manager   TEXT REFERENCES users (ref),
    role_ref       TEXT,
    activated_at   TEXT,
    completed_at   TEXT,
    completed_by   TEXT,
    outcome        TEXT,
    hold_until     TEXT,
    hold_reason    TEXT,
    held_since     TEXT,
    held_seconds   INTEGER NOT NULL DEFAULT 0,
    -- SLA clock (filled by the SLA sweep)
    target_at      TEXT,
    amber_at       TEXT,
    sla_state      TEXT NOT NULL DEFAULT 'none'
                   CHECK (sla_state IN ('none', 'on_track', 'amber', 'exceeded', 'stopped')),
    follow_ons     INTEGER NOT NULL DEFAULT 0,
    next_check_at  TEXT,
    UNIQUE (stage_id, task)
);
CREATE INDEX tasks_by_case ON tasks (case_id, status);
CREATE INDEX tasks_open_by_owner ON tasks (owner) WHERE status IN ('active', 'on_hold');
CREATE INDEX tasks_open_by_role ON tasks (role_ref) WHERE status IN ('active', 'on_hold');
CREATE INDEX tasks_hold_due ON tasks (hold_until) WHERE status = 'on_hold';
CREATE INDEX tasks_sla_due ON tasks (next_check_at) WHERE next_check_at IS NOT NULL;

-- Each escalation of an item fires once: the primary key is the guarantee.
CREATE TABLE escalations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    item_kind  TEXT NOT NULL CHECK (item_kind IN ('task', 'stage')),
    item_id    INTEGER NOT NULL,
    level      TEXT NOT NULL CHECK (level IN ('amber', 'exceeded', 'follow_on')),
    repetition INTEGER NOT NULL DEFAULT 0,
    case_id    INTEGER NOT NULL REFERENCES cases (id),
    fired_at   TEXT NOT NULL,
    UNIQUE (item_kind, item_id, level, repetition)
);

-- Notifications to send, written in the transaction that asked for them.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id         INTEGER REFERENCES cases (id),
    escalation_id   INTEGER REFERENCES escalations (id),
    template        TEXT NOT NULL,
    recipient_kind  TEXT NOT NULL,
    recipient_ref   TEXT,
    recipient_email TEXT,
    facts           TEXT NOT NULL DEFAULT '{}',
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'claimed', 'sent', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    claimed_until   TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status IN ('pending', 'claimed');

CREATE TABLE notes (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id INTEGER NOT NULL REFERENCES cases (id),
    author  TEXT NOT NULL,
    body    TEXT NOT NULL,
    at      TEXT NOT NULL
);
CREATE INDEX notes_by_case ON notes (case_id);

CREATE TABLE attachments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id    INTEGER NOT NULL REFERENCES cases (id),
    name       TEXT NOT NULL,
    media_type TEXT NOT NULL,
    uri        TEXT NOT NULL,
    size       INTEGER,
    sha256     TEXT,
    at         TEXT NOT NULL
);
CREATE INDEX attachments_by_case ON attachments (case_id);

-- The append-only log CRMs follow by id. Triggers refuse edits.
CREATE TABLE events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id  INTEGER REFERENCES cases (id),
    case_ref TEXT,
    at       TEXT NOT NULL,
    kind     TEXT NOT NULL,
    actor    TEXT NOT NULL,
    data     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_case ON events (case_id, id);
CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

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
       t.target_at     AS target_at
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
       s.target_at    AS target_at
FROM stages s JOIN cases c ON c.id = s.case_id
WHERE s.status = 'open';
