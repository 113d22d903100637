-- One row per package download, recorded off the request path in batches.
CREATE TABLE downloads (
    id             INTEGER PRIMARY KEY,
    package_id     BIGINT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    downloaded_at  BIGINT NOT NULL,
    ip_address     TEXT NOT NULL,
    user_agent     TEXT NOT NULL,
    read_token     TEXT
);
CREATE INDEX downloads_package ON downloads (package_id, downloaded_at);
