-- Browser sessions of the web UI. The cookie carries a random id; only its SHA-256 is kept.
CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    ip_address    TEXT,
    user_agent    TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Each package's downloads, kept up to date as downloads are recorded, so the package list
-- sorts by them without adding up the download log on every request.
ALTER TABLE packages ADD COLUMN download_count BIGINT NOT NULL DEFAULT 0;
UPDATE packages SET download_count =
    COALESCE((SELECT SUM(d.count) FROM downloads d WHERE d.package_id = packages.id), 0);

-- When a package first entered a published index, in milliseconds: the package page shows
-- how long it took from push to visible.
ALTER TABLE packages ADD COLUMN indexed_ms BIGINT;

-- Each version as bytes whose order is the format's own version order
-- (`packyard_formats::sort_key`), so the package list sorts by version through an index.
-- Rows from before are filled in when the server starts (`db::packages::fill_version_keys`).
ALTER TABLE packages ADD COLUMN version_key BYTEA;
-- The rows still without one: empty once they are filled, so the check at each start is free.
CREATE INDEX packages_without_version_key ON packages (id) WHERE version_key IS NULL;

-- The package list's orders over every target of a repository: its live rows are one range
-- of each index, in the order shown. The newest-first order carries the file name and
-- state, so a search or a status filter reads that index alone.
CREATE INDEX packages_by_id ON packages (repository_id, deleted_at, id, filename, indexed);
CREATE INDEX packages_by_name ON packages (repository_id, deleted_at, name, id);
CREATE INDEX packages_by_size ON packages (repository_id, deleted_at, size, id);
CREATE INDEX packages_by_downloads ON packages (repository_id, deleted_at, download_count, id);
CREATE INDEX packages_by_version ON packages (repository_id, deleted_at, name, version_key, id);

-- The tokens page shows when each read token was last used.
CREATE INDEX downloads_read_token ON downloads (read_token, downloaded_at);

-- The repository page's matrix of targets, architectures, counts and sizes reads this
-- index alone.
CREATE INDEX packages_summary
    ON packages (repository_id, deleted_at, distro_version_id, architecture, format, size);
