-- casewarden schema v1 (PostgreSQL). The SQLite twin is migrations/sqlite/0001_foundation.sql;
-- keep the two in step. Timestamps are UTC, timestamptz.

-- Commands from the CRM. A CRM may INSERT (body) directly, or use `casewarden submit`.
CREATE TABLE inbox (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body         TEXT    NOT NULL,
    command_id   TEXT,
    command_type TEXT,
    case_ref     TEXT,
    status       TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'accepted', 'rejected', 'duplicate')),
    reason       TEXT,
    attempts     BIGINT NOT NULL DEFAULT 0,
    received_at  TIMESTAMPTZ    NOT NULL DEFAULT now(),
    processed_at TIMESTAMPTZ
);
CREATE INDEX inbox_pending ON inbox (id) WHERE status = 'pending';
CREATE INDEX inbox_rejected ON inbox (id) WHERE status = 'rejected';

-- The first inbox row that carried each command_id: a repeat is marked 'duplicate'.
CREATE TABLE processed_commands (
    command_id TEXT PRIMARY KEY,
    inbox_id   BIGINT NOT NULL REFERENCES inbox (id)
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
    active       BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at   TIMESTAMPTZ NOT NULL
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
    updated_at TIMESTAMPTZ NOT NULL
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
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    received_at        TIMESTAMPTZ NOT NULL,
    attributes         JSONB NOT NULL DEFAULT '{}',
    status             TEXT NOT NULL DEFAULT 'open'
                       CHECK (status IN ('open', 'awaiting_advance', 'completed', 'closed')),
    outcome            TEXT,
    owner              TEXT REFERENCES users (ref),
    -- pending: the allocation step has still to run; allocated; needed: on the queue role's list
    allocation         TEXT NOT NULL DEFAULT 'pending'
                       CHECK (allocation IN ('pending', 'allocated', 'needed')),
    queue_role         TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    closed_at          TIMESTAMPTZ
);
CREATE INDEX cases_allocation_pending ON cases (id) WHERE allocation = 'pending';
CREATE INDEX cases_open_by_owner ON cases (owner) WHERE status IN ('open', 'awaiting_advance');

-- One row per entry into a stage (a stage entered twice, e.g. after a delay, has two rows).
CREATE TABLE stages (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id       BIGINT NOT NULL REFERENCES cases (id),
    stage         TEXT NOT NULL,
    master_stage  TEXT NOT NULL,
    entry         BIGINT NOT NULL DEFAULT 1,
    status        TEXT NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'completed', 'diverted', 'closed')),
    owner         TEXT REFERENCES users (ref),
    line_manager  TEXT REFERENCES users (ref),
    entered_at    TIMESTAMPTZ NOT NULL,
    completed_at  TIMESTAMPTZ,
    -- SLA clock (filled by the SLA sweep)
    target_at     TIMESTAMPTZ,
    amber_at      TIMESTAMPTZ,
    sla_state     TEXT NOT NULL DEFAULT 'none'
                  CHECK (sla_state IN ('none', 'on_track', 'amber', 'exceeded', 'stopped')),
    follow_ons    BIGINT NOT NULL DEFAULT 0,
    next_check_at TIMESTAMPTZ,
    UNIQUE (case_id, stage, entry)
);
CREATE INDEX stages_open_by_case ON stages (case_id) WHERE status = 'open';
CREATE INDEX stages_sla_due ON stages (next_check_at) WHERE next_check_at IS NOT NULL;

CREATE TABLE tasks (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id        BIGINT NOT NULL REFERENCES cases (id),
    stage_id       BIGINT NOT NULL REFERENCES stages (id),
    task           TEXT NOT NULL,
    mandatory      BOOLEAN NOT NULL,
    activation     TEXT NOT NULL CHECK (activation IN ('auto', 'manual')),
    status         TEXT NOT NULL DEFAULT 'waiting'
                   CHECK (status IN ('waiting', 'active', 'on_hold', 'completed', 'skipped', 'cancelled')),
    owner          TEXT REFERENCES users (ref),
    line_manager   TEXT REFERENCES users (ref),
    role_ref       TEXT,
    activated_at   TIMESTAMPTZ,
    completed_at   TIMESTAMPTZ,
    completed_by   TEXT,
    outcome        TEXT,
    hold_until     TIMESTAMPTZ,
    hold_reason    TEXT,
    held_since     TIMESTAMPTZ,
    held_seconds   BIGINT NOT NULL DEFAULT 0,
    -- SLA clock (filled by the SLA sweep)
    target_at      TIMESTAMPTZ,
    amber_at       TIMESTAMPTZ,
    sla_state      TEXT NOT NULL DEFAULT 'none'
                   CHECK (sla_state IN ('none', 'on_track', 'amber', 'exceeded', 'stopped')),
    follow_ons     BIGINT NOT NULL DEFAULT 0,
    next_check_at  TIMESTAMPTZ,
    UNIQUE (stage_id, task)
);
CREATE INDEX tasks_by_case ON tasks (case_id, status);
CREATE INDEX tasks_open_by_owner ON tasks (owner) WHERE status IN ('active', 'on_hold');
CREATE INDEX tasks_open_by_role ON tasks (role_ref) WHERE status IN ('active', 'on_hold');
CREATE INDEX tasks_hold_due ON tasks (hold_until) WHERE status = 'on_hold';
CREATE INDEX tasks_sla_due ON tasks (next_check_at) WHERE next_check_at IS NOT NULL;

-- Each escalation of an item fires once: the primary key is the guarantee.
CREATE TABLE escalations (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_kind  TEXT NOT NULL CHECK (item_kind IN ('task', 'stage')),
    item_id    BIGINT NOT NULL,
    level      TEXT NOT NULL CHECK (level IN ('amber', 'exceeded', 'follow_on')),
    repetition BIGINT NOT NULL DEFAULT 0,
    case_id    BIGINT NOT NULL REFERENCES cases (id),
    fired_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (item_kind, item_id, level, repetition)
);

-- Notifications to send, written in the transaction that asked for them.
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id         BIGINT REFERENCES cases (id),
    escalation_id   BIGINT REFERENCES escalations (id),
    template        TEXT NOT NULL,
    recipient_kind  TEXT NOT NULL,
    recipient_ref   TEXT,
    recipient_email TEXT,
    facts           JSONB NOT NULL DEFAULT '{}',
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'claimed', 'sent', 'dead')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    claimed_until   TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    sent_at         TIMESTAMPTZ
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status IN ('pending', 'claimed');

CREATE TABLE notes (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id BIGINT NOT NULL REFERENCES cases (id),
    author  TEXT NOT NULL,
    body    TEXT NOT NULL,
    at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX notes_by_case ON notes (case_id);

CREATE TABLE attachments (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id    BIGINT NOT NULL REFERENCES cases (id),
    name       TEXT NOT NULL,
    media_type TEXT NOT NULL,
    uri        TEXT NOT NULL,
    size       BIGINT,
    sha256     TEXT,
    at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX attachments_by_case ON attachments (case_id);

-- The append-only log CRMs follow by id. Triggers refuse edits.
CREATE TABLE events (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id  BIGINT REFERENCES cases (id),
    case_ref TEXT,
    at       TIMESTAMPTZ NOT NULL,
    kind     TEXT NOT NULL,
    actor    TEXT NOT NULL,
    data     JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_case ON events (case_id, id);
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'events are append-only'; END $$;
CREATE TRIGGER events_are_append_only BEFORE UPDATE OR DELETE ON events
FOR EACH ROW EXECUTE FUNCTION events_refuse_change();

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
SELECT owner AS user_ref, worklist_tasks.* FROM worklist_tasks WHERE owner IS NOT NULL;

-- A task is on a role's list when the role is the task's own, when its owner holds the role, or
-- when its case could not be allocated and waits on that role's queue.
CREATE VIEW worklist_by_role AS
SELECT role AS role_ref, worklist_tasks.* FROM worklist_tasks WHERE role IS NOT NULL
UNION
SELECT ur.role_ref AS role_ref, w.*
FROM worklist_tasks w JOIN user_roles ur ON ur.user_ref = w.owner
UNION
SELECT queue_role AS role_ref, worklist_tasks.* FROM worklist_tasks WHERE queue_role IS NOT NULL;

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
