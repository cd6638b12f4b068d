-- Webhook delivery: where each subscription (a [[webhooks]] table of casewarden.toml, by name)
-- stands in the event log. A row is made the first time a daemon starts with the subscription,
-- at the end of the log then; `casewarden webhooks replay` moves it back.
CREATE TABLE webhook_subscriptions (
    name                 TEXT PRIMARY KEY,
    -- Every event it wants up to this id has been acknowledged by its receiver.
    delivered_through    BIGINT NOT NULL,
    -- The batch in flight, fixed when first tried and resent unchanged until a 2xx: its
    -- webhook-id, its event ids in order (a JSON array), the first and last of them, and where
    -- delivered_through moves once it is acknowledged (past events it does not want).
    batch_id             TEXT,
    batch_events         TEXT,
    batch_first          BIGINT,
    batch_last           BIGINT,
    batch_through        BIGINT,
    batch_first_tried_at TIMESTAMPTZ,
    attempts             BIGINT NOT NULL DEFAULT 0,
    next_attempt_at      TIMESTAMPTZ,
    last_success_at      TIMESTAMPTZ,
    last_error           TEXT,
    last_error_at        TIMESTAMPTZ,
    -- When the current run of failures began, and when webhook_failing was written for it.
    failing_since        TIMESTAMPTZ,
    failing_reported_at  TIMESTAMPTZ,
    -- Who is sending its batch now, and until when: another instance leaves it alone till then.
    lease_owner          TEXT,
    lease_until          TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL,
    CHECK ((batch_id IS NULL) = (batch_events IS NULL)),
    CHECK ((batch_id IS NULL) = (batch_through IS NULL))
);
