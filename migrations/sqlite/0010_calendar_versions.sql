-- casewarden schema v10 (SQLite): the working days published for each calendar carry a hash,
-- so they are rewritten only when the calendars change (a new bank holiday file, a new calendar,
-- or the published range moving on), not at every start and rule reload. casewarden's own
-- table, not part of the CRM contract.

CREATE TABLE calendar_versions (
    calendar TEXT PRIMARY KEY,
    hash     TEXT NOT NULL
);
