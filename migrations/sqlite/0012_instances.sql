-- casewarden schema v12 (SQLite): each daemon that runs on this database keeps a row of
-- what it is doing (host, process, version, rule set, its last pass and how it ended), written
-- at start, after each pass and at a clean stop, so `casewarden status` can tell an operator
-- from any machine whether passes are running and how the last one went. casewarden's own
-- table, not part of the CRM contract. Rows of daemons not seen for 30 days are removed at the
-- next start.

CREATE TABLE instances (
    id                   TEXT        PRIMARY KEY,
    host                 TEXT        NOT NULL,
    pid                  BIGINT      NOT NULL,
    version              TEXT        NOT NULL,
    started_at           TEXT        NOT NULL,
    seen_at              TEXT        NOT NULL,
    stopped_at           TEXT,
    rules_hash           TEXT        NOT NULL,
    rules_loaded_at      TEXT        NOT NULL,
    passes               BIGINT      NOT NULL DEFAULT 0,
    failed_passes        BIGINT      NOT NULL DEFAULT 0,
    last_pass_started_at TEXT,
    last_pass_us         BIGINT,
    last_pass_ok         INTEGER,
    last_pass_summary    TEXT
);

CREATE INDEX instances_seen ON instances (seen_at);
