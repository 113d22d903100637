-- Signing keys move through states: `next` (in the keyring package, not signing yet), `active`
-- and `retiring` (both sign every document until they expire), `retired` (neither).
ALTER TABLE signing_keys ADD COLUMN state TEXT NOT NULL DEFAULT 'active';
UPDATE signing_keys SET state = CASE WHEN active THEN 'active' ELSE 'retired' END;
-- `active` stays, kept equal to "state signs", for processes still on an older binary while
-- an upgrade rolls out.
-- The first version of the repository's keyring package that carries the key: hosts that
-- fetched that version or a later one know it.
ALTER TABLE signing_keys ADD COLUMN keyring_version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE signing_keys ADD COLUMN state_changed_at BIGINT;

-- The version of the repository's keyring package; every change of its key set raises it.
ALTER TABLE repositories ADD COLUMN keyring_version BIGINT NOT NULL DEFAULT 1;

-- The last time each host fetched one of the repository's signed documents (InRelease,
-- Release, repomd.xml): a read token's name, or the client address and user agent.
CREATE TABLE index_fetches (
    repository_id  BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    host           TEXT NOT NULL,
    fetched_at     BIGINT NOT NULL,
    PRIMARY KEY (repository_id, host)
);
CREATE INDEX index_fetches_recent ON index_fetches (repository_id, fetched_at);
