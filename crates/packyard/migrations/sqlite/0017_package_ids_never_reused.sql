-- no-transaction
-- Package ids are never reused: SQLite hands out MAX(id) + 1 unless the key is AUTOINCREMENT,
-- so once the collector removed the highest row, the next push took its id, and anything
-- keyed by package id (incremental listings, caches, URLs) could confuse the two. The table is
-- rebuilt with AUTOINCREMENT as SQLite's documented procedure for schema changes says: with
-- foreign keys off (outside any transaction), so dropping the old table cascades nothing, and
-- the tables that refer to `packages` follow the rename.
PRAGMA foreign_keys = OFF;
BEGIN;
DROP TABLE IF EXISTS packages_rebuilt;
CREATE TABLE packages_rebuilt (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    repository_id      BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    distro_version_id  BIGINT NOT NULL,
    format             TEXT NOT NULL,
    name               TEXT NOT NULL,
    version            TEXT NOT NULL,
    architecture       TEXT NOT NULL,
    filename           TEXT NOT NULL,
    size               BIGINT NOT NULL,
    md5                TEXT NOT NULL,
    sha1               TEXT NOT NULL,
    sha256             TEXT NOT NULL,
    sha512             TEXT NOT NULL,
    dependencies       TEXT NOT NULL,
    indexed            BOOLEAN NOT NULL DEFAULT FALSE,
    created_at         BIGINT NOT NULL,
    deleted_at         BIGINT,
    created_ms         BIGINT,
    download_count     BIGINT NOT NULL DEFAULT 0,
    indexed_ms         BIGINT,
    version_key        BLOB
);
INSERT INTO packages_rebuilt (id, repository_id, distro_version_id, format, name, version,
    architecture, filename, size, md5, sha1, sha256, sha512, dependencies, indexed, created_at,
    deleted_at, created_ms, download_count, indexed_ms, version_key)
SELECT id, repository_id, distro_version_id, format, name, version, architecture, filename,
    size, md5, sha1, sha256, sha512, dependencies, indexed, created_at, deleted_at, created_ms,
    download_count, indexed_ms, version_key
FROM packages;
DROP TABLE packages;
ALTER TABLE packages_rebuilt RENAME TO packages;
CREATE UNIQUE INDEX packages_identity
    ON packages (repository_id, distro_version_id, name, version, architecture)
    WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX packages_filename
    ON packages (repository_id, distro_version_id, filename)
    WHERE deleted_at IS NULL;
CREATE INDEX packages_target ON packages (repository_id, distro_version_id, id);
CREATE INDEX packages_sha256 ON packages (sha256);
CREATE INDEX packages_live ON packages (repository_id, distro_version_id, deleted_at, id, architecture, indexed);
CREATE INDEX packages_without_version_key ON packages (id) WHERE version_key IS NULL;
CREATE INDEX packages_by_id ON packages (repository_id, deleted_at, id, filename, indexed);
CREATE INDEX packages_by_name ON packages (repository_id, deleted_at, name, id);
CREATE INDEX packages_by_size ON packages (repository_id, deleted_at, size, id);
CREATE INDEX packages_by_downloads ON packages (repository_id, deleted_at, download_count, id);
CREATE INDEX packages_by_version ON packages (repository_id, deleted_at, name, version_key, id);
CREATE INDEX packages_summary
    ON packages (repository_id, deleted_at, distro_version_id, architecture, format, size);
COMMIT;
PRAGMA foreign_keys = ON;
