-- Who changed what: every change with its time, actor, client address, action, repository,
-- target, outcome and details (never a secret). Kept 400 days.
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY,
    at          BIGINT NOT NULL,
    -- `user` (an API caller), `local` (an operator command on this machine), or `system`.
    actor_kind  TEXT NOT NULL,
    actor       TEXT NOT NULL,
    ip_address  TEXT,
    action      TEXT NOT NULL,
    repository  TEXT,
    target      TEXT,
    outcome     TEXT NOT NULL,
    details     TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);

-- Administrators read the audit log and the whole of /api/system.
ALTER TABLE users ADD COLUMN is_admin BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE users SET is_admin = TRUE WHERE name = 'admin' AND NOT is_org;

-- A failing job keeps when it first and last failed, beside its attempts and last error.
ALTER TABLE jobs ADD COLUMN first_failed_at BIGINT;
ALTER TABLE jobs ADD COLUMN last_failed_at BIGINT;
-- A reindex: the publish rebuilds every index file from the database and writes every blob,
-- trusting nothing a previous generation stored.
ALTER TABLE jobs ADD COLUMN rebuild BOOLEAN NOT NULL DEFAULT FALSE;

-- Processes announce themselves every half minute: `status` lists the roles seen lately.
CREATE TABLE processes (
    instance    TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    version     TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    seen_at     BIGINT NOT NULL
);

-- When a package was pushed, in milliseconds; and when the oldest package a generation newly
-- lists was pushed: the generation's commit minus this is the push-to-visible lag.
ALTER TABLE packages ADD COLUMN created_ms BIGINT;
ALTER TABLE generations ADD COLUMN pushed_ms BIGINT;
