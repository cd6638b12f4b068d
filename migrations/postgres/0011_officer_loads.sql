-- Each officer's load: how many cases they own with status 'open' or 'awaiting_advance', the
-- count allocation rules see as `open_cases`. Allocation reads it once per batch instead of
-- counting every open case of every officer for every case it allocates.
--
-- A trigger on `cases` keeps it right in the same transaction as whatever changes a case's owner
-- or status (allocation, reassignment, closure, completion, a new case with an owner, and any
-- row written by other means), so no code path can forget it. Only a change that moves a case
-- into or out of an officer's open cases fires it; advancing a stage (open <-> awaiting_advance)
-- or any other update of a case does not. Engine writers hold the writer lock
-- (pg_advisory_xact_lock), so two of them never wait on each other's load rows.
CREATE TABLE officer_loads (
    user_ref   TEXT   PRIMARY KEY REFERENCES users (ref) ON DELETE CASCADE,
    open_cases BIGINT NOT NULL
);

INSERT INTO officer_loads (user_ref, open_cases)
SELECT owner, COUNT(*) FROM cases
WHERE owner IS NOT NULL AND status IN ('open', 'awaiting_advance')
GROUP BY owner;

CREATE FUNCTION casewarden_track_load() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF OLD.owner IS NOT NULL AND OLD.status IN ('open', 'awaiting_advance') THEN
            UPDATE officer_loads SET open_cases = open_cases - 1 WHERE user_ref = OLD.owner;
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NEW.owner IS NOT NULL AND NEW.status IN ('open', 'awaiting_advance') THEN
            INSERT INTO officer_loads (user_ref, open_cases) VALUES (NEW.owner, 1)
            ON CONFLICT (user_ref) DO UPDATE SET open_cases = officer_loads.open_cases + 1;
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER cases_load_insert AFTER INSERT ON cases FOR EACH ROW
    WHEN (NEW.owner IS NOT NULL AND NEW.status IN ('open', 'awaiting_advance'))
    EXECUTE FUNCTION casewarden_track_load();

CREATE TRIGGER cases_load_update AFTER UPDATE OF owner, status ON cases FOR EACH ROW
    WHEN (NEW.owner IS DISTINCT FROM OLD.owner
          OR (NEW.status IN ('open', 'awaiting_advance')) <> (OLD.status IN ('open', 'awaiting_advance')))
    EXECUTE FUNCTION casewarden_track_load();

CREATE TRIGGER cases_load_delete AFTER DELETE ON cases FOR EACH ROW
    WHEN (OLD.owner IS NOT NULL AND OLD.status IN ('open', 'awaiting_advance'))
    EXECUTE FUNCTION casewarden_track_load();
