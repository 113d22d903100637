-- Snapshots: a named, immutable record of the packages every target of a repository held.
-- Rows only: the packages they name are kept from the collector (and so are their blobs)
-- while a snapshot names them, also after a destroy or a retention run.
CREATE TABLE snapshots (
    id          INTEGER PRIMARY KEY,
    repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    UNIQUE (repository_id, name)
);

CREATE TABLE snapshot_packages (
    snapshot_id BIGINT NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    package_id  BIGINT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    PRIMARY KEY (snapshot_id, package_id)
);
CREATE INDEX snapshot_packages_by_package ON snapshot_packages (package_id);
