-- Container images (the registry at /v2/). A manifest is a package row of format `oci` in the
-- distribution `oci/1`, named after its image with its digest as version, so lists, search,
-- downloads, destroy and the collector treat it as they treat any package; these tables hold
-- what the registry needs beside it.

-- The blobs an image holds (uploaded, mounted or named by a manifest pushed to it): what
-- `GET /v2/NAME/blobs/DIGEST` serves. The bytes are the content-addressed blob of that SHA-256.
CREATE TABLE oci_blobs (
    repository_id  BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    image          TEXT NOT NULL,
    sha256         TEXT NOT NULL,
    size           BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (repository_id, image, sha256)
);
CREATE INDEX oci_blobs_sha256 ON oci_blobs (sha256);

CREATE TABLE oci_manifests (
    package_id     INTEGER PRIMARY KEY REFERENCES packages (id) ON DELETE CASCADE,
    media_type     TEXT NOT NULL,
    artifact_type  TEXT,
    -- The digest of the manifest this one refers to (`subject`), for the referrers API.
    subject        TEXT,
    manifest_size  BIGINT NOT NULL,
    -- JSON list of `os/arch[/variant]`.
    platforms      TEXT NOT NULL
);
CREATE INDEX oci_manifests_subject ON oci_manifests (subject);

-- What a manifest refers to: its config and layers (`blob`), or an index's manifests.
CREATE TABLE oci_references (
    package_id  BIGINT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        BIGINT NOT NULL,
    PRIMARY KEY (package_id, kind, sha256)
);
CREATE INDEX oci_references_sha256 ON oci_references (sha256);

CREATE TABLE oci_tags (
    repository_id  BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    image          TEXT NOT NULL,
    tag            TEXT NOT NULL,
    package_id     BIGINT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    updated_at     BIGINT NOT NULL,
    pulls          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (repository_id, image, tag)
);
CREATE INDEX oci_tags_package ON oci_tags (package_id);

-- Every move of a tag: what it points at from then on (empty when deleted) and what it pointed
-- at before. A rollback is a move too, and marks the move it undid.
CREATE TABLE oci_tag_history (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    repository_id  BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    image          TEXT NOT NULL,
    tag            TEXT NOT NULL,
    digest         TEXT NOT NULL,
    previous       TEXT,
    moved_at       BIGINT NOT NULL,
    actor          TEXT NOT NULL,
    rollback       BOOLEAN NOT NULL DEFAULT FALSE,
    undone         BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX oci_tag_history_tag ON oci_tag_history (repository_id, image, tag, id);

-- Upload sessions: the bytes received so far are staged under the data folder's tmp/oci/.
CREATE TABLE oci_uploads (
    id             TEXT PRIMARY KEY,
    repository_id  BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    image          TEXT NOT NULL,
    size           BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- The images' retention rule (distribution oci/1) keeps the newest keep_last of the tags
-- matching this regular expression in each image (all tags when empty).
ALTER TABLE retention_rules ADD COLUMN tags TEXT;
