-- Items a pass step could not process for a reason of the engine's own (a row it cannot read, a
-- database error, a defect). Each failure is counted here; after a few the step sets the item
-- aside with an event, so one bad item never stops the others. A success clears nothing: a
-- count older than a day starts again.
CREATE TABLE item_failures (
    step             TEXT    NOT NULL,
    item_id          INTEGER  NOT NULL,
    attempts         INTEGER  NOT NULL,
    last_error       TEXT    NOT NULL,
    first_failed_at  TEXT    NOT NULL,
    last_failed_at   TEXT    NOT NULL,
    set_aside_at     TEXT,
    PRIMARY KEY (step, item_id)
);
