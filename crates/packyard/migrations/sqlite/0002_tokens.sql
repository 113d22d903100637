-- Accounts that log in, organisations, and the tokens that read private repositories.
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN is_org BOOLEAN NOT NULL DEFAULT FALSE;
CREATE UNIQUE INDEX users_email ON users (email);

CREATE TABLE org_members (
    org_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (org_id, user_id)
);

-- A master token mints read tokens (it cannot read packages itself). Rotating it keeps the
-- previous value, and the read tokens minted so far, working until `previous_expires_at`.
CREATE TABLE master_tokens (
    id                   INTEGER PRIMARY KEY,
    repository_id        BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    value                TEXT NOT NULL UNIQUE,
    previous_value       TEXT UNIQUE,
    previous_expires_at  BIGINT,
    created_at           BIGINT NOT NULL,
    UNIQUE (repository_id, name)
);

-- A read token reads one private repository; it dies with its master token, and at
-- `expires_at` when its master token was rotated with a grace period.
CREATE TABLE read_tokens (
    id               INTEGER PRIMARY KEY,
    master_token_id  BIGINT NOT NULL REFERENCES master_tokens (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    value            TEXT NOT NULL UNIQUE,
    expires_at       BIGINT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX read_tokens_master ON read_tokens (master_token_id);
