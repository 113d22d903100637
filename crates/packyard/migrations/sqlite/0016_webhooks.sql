-- Webhooks of a repository: where events go, signed with the hook's secret (sealed like the
-- signing keys) as the Standard Webhooks specification says.
CREATE TABLE webhooks (
    id          INTEGER PRIMARY KEY,
    repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    -- Comma-separated event types, or '*' for all.
    events      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX webhooks_by_repository ON webhooks (repository_id);

-- Each event for each hook: the delivery log and the queue the delivery workers claim from.
CREATE TABLE webhook_deliveries (
    id          INTEGER PRIMARY KEY,
    webhook_id  BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    message_id  TEXT NOT NULL,
    event       TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    -- pending, delivered, or failed (gave up after 24 hours).
    state       TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    last_status BIGINT,
    last_error  TEXT,
    delivered_ms BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_ms);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);

-- The nearest expiry threshold (180, 90, 30 or 7 days) a key's `key.expiring` event went out
-- for, so each goes out once whatever the number of processes.
ALTER TABLE signing_keys ADD COLUMN expiry_announced_days BIGINT;
