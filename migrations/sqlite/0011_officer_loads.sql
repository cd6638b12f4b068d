-- Each officer's load: how many cases they own with status 'open' or 'awaiting_advance', the
-- count allocation rules see as `open_cases`. Allocation reads it once per batch instead of
-- counting every open case of every officer for every case it allocates.
--
-- Triggers on `cases` keep it right in the same transaction as whatever changes a case's owner
-- or status (allocation, reassignment, closure, completion, a new case with an owner, and any
-- row written by other means), so no code path can forget it. Only a change that moves a case
-- into or out of an officer's open cases fires them; advancing a stage (open <-> awaiting_advance)
-- or any other update of a case does not.
CREATE TABLE officer_loads (
    user_ref   TEXT    PRIMARY KEY REFERENCES users (ref) ON DELETE CASCADE,
    open_cases INTEGER NOT NULL
);

INSERT INTO officer_loads (user_ref, open_cases)
SELECT owner, COUNT(*) FROM cases
WHERE owner IS NOT NULL AND status IN ('open', 'awaiting_advance')
GROUP BY owner;

CREATE TRIGGER cases_load_insert AFTER INSERT ON cases
WHEN NEW.owner IS NOT NULL AND NEW.status IN ('open', 'awaiting_advance')
BEGIN
    INSERT INTO officer_loads (user_ref, open_cases) VALUES (NEW.owner, 1)
    ON CONFLICT (user_ref) DO UPDATE SET open_cases = open_cases + 1;
END;

CREATE TRIGGER cases_load_update AFTER UPDATE OF owner, status ON cases
WHEN NEW.owner IS NOT OLD.owner
  OR (NEW.status IN ('open', 'awaiting_advance')) <> (OLD.status IN ('open', 'awaiting_advance'))
BEGIN
    UPDATE officer_loads SET open_cases = open_cases - 1
    WHERE user_ref = OLD.owner AND OLD.status IN ('open', 'awaiting_advance');
    INSERT INTO officer_loads (user_ref, open_cases)
    SELECT NEW.owner, 1 WHERE NEW.owner IS NOT NULL AND NEW.status IN ('open', 'awaiting_advance')
    ON CONFLICT (user_ref) DO UPDATE SET open_cases = open_cases + 1;
END;

CREATE TRIGGER cases_load_delete AFTER DELETE ON cases
WHEN OLD.owner IS NOT NULL AND OLD.status IN ('open', 'awaiting_advance')
BEGIN
    UPDATE officer_loads SET open_cases = open_cases - 1 WHERE user_ref = OLD.owner;
END;
