-- Passes that start when work arrives: a new inbox row, from any writer, notifies the daemons
-- listening on `casewarden_inbox`, which then run a pass at once instead of at the next scheduled
-- one. One notification per statement: a batch insert wakes a daemon once.
CREATE FUNCTION casewarden_inbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('casewarden_inbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER inbox_notify AFTER INSERT ON inbox
    FOR EACH STATEMENT EXECUTE FUNCTION casewarden_inbox_notify();
