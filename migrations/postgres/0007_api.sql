-- The integration API. Clients are the systems that call it: each has a bearer token, of which
-- only the SHA-256 is kept, and scopes saying what it may do. A revoked client keeps its row
-- (the inbox and the event log name it), so a name can be issued again only once revoked.
CREATE TABLE api_clients (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    scopes      TEXT    NOT NULL,
    created_at  TIMESTAMPTZ    NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE UNIQUE INDEX api_clients_live_name ON api_clients (name) WHERE revoked_at IS NULL;

-- Which client submitted a command (NULL: written into the table directly, or by `submit`),
-- and the range of event ids its application wrote (NULL when it wrote none).
ALTER TABLE inbox ADD COLUMN client TEXT;
ALTER TABLE inbox ADD COLUMN first_event_id BIGINT;
ALTER TABLE inbox ADD COLUMN last_event_id BIGINT;
