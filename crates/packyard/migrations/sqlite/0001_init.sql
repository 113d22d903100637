-- Users, API tokens, repositories and their signing keys.
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE repositories (
    id           INTEGER PRIMARY KEY,
    owner_id     BIGINT NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    private      BOOLEAN NOT NULL DEFAULT FALSE,
    index_zstd   BOOLEAN NOT NULL DEFAULT FALSE,
    index_xz     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT NOT NULL,
    last_push_at BIGINT,
    UNIQUE (owner_id, name)
);

CREATE TABLE signing_keys (
    id              INTEGER PRIMARY KEY,
    repository_id   BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    fingerprint     TEXT NOT NULL,
    public_armored  TEXT NOT NULL,
    secret_armored  TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    active          BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE INDEX signing_keys_repository ON signing_keys (repository_id);

-- One row per pushed file. `dependencies` is a JSON object of relation lists, as the API shows
-- them. A destroyed package keeps its row (deleted_at set) until the grace period ends, so a pool
-- file listed by a still-current index stays downloadable.
CREATE TABLE packages (
    id                 INTEGER PRIMARY KEY,
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
    deleted_at         BIGINT
);
CREATE UNIQUE INDEX packages_identity
    ON packages (repository_id, distro_version_id, name, version, architecture)
    WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX packages_filename
    ON packages (repository_id, distro_version_id, filename)
    WHERE deleted_at IS NULL;
CREATE INDEX packages_target ON packages (repository_id, distro_version_id, id);
CREATE INDEX packages_sha256 ON packages (sha256);

-- Each package's index entries, rendered once at upload and never changed: the Packages stanza
-- (`packages`) of a .deb; the `primary`, `filelists` and `other` XML fragments of an .rpm.
-- Publishing concatenates these; it never reads package files.
CREATE TABLE package_entries (
    package_id  BIGINT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    part        TEXT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (package_id, part)
);

-- The job queue. A job publishes one target: (repository, distribution version, arch), where
-- arch is '' for APT (one target holds every architecture) and the rpm architecture or
-- 'SRPMS' for YUM. At most one queued job per target: pushes that arrive while a target is
-- queued coalesce into it; pushes that arrive while it runs queue exactly one more run.
CREATE TABLE jobs (
    id                 INTEGER PRIMARY KEY,
    kind               TEXT NOT NULL,
    repository_id      BIGINT NOT NULL,
    distro_version_id  BIGINT NOT NULL,
    arch               TEXT NOT NULL,
    state              TEXT NOT NULL,
    attempts           BIGINT NOT NULL DEFAULT 0,
    run_at             BIGINT NOT NULL,
    lease_until        BIGINT,
    last_error         TEXT,
    created_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX jobs_queued_target
    ON jobs (kind, repository_id, distro_version_id, arch)
    WHERE state = 'queued';

-- Index generations: immutable sets of index files of one target. `publish_targets` points at
-- the current one; flipping that pointer is the atomic publish. Documents are the small signed
-- files served by name (InRelease, Release, Release.gpg; repomd.xml, repomd.xml.asc).
CREATE TABLE generations (
    id                 INTEGER PRIMARY KEY,
    repository_id      BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    distro_version_id  BIGINT NOT NULL,
    arch               TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    -- When the next generation replaced it; it stays reachable for the grace period after.
    superseded_at      BIGINT
);
CREATE INDEX generations_target ON generations (repository_id, distro_version_id, arch);

CREATE TABLE generation_documents (
    generation_id  BIGINT NOT NULL REFERENCES generations (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    body           TEXT NOT NULL,
    PRIMARY KEY (generation_id, name)
);

CREATE TABLE generation_files (
    generation_id  BIGINT NOT NULL REFERENCES generations (id) ON DELETE CASCADE,
    path           TEXT NOT NULL,
    size           BIGINT NOT NULL,
    md5            TEXT NOT NULL,
    sha1           TEXT NOT NULL,
    sha256         TEXT NOT NULL,
    sha512         TEXT NOT NULL,
    -- The stored blob: the file itself, or for an uncompressed index its .gz sibling.
    blob_sha256    TEXT NOT NULL,
    gunzip         BOOLEAN NOT NULL,
    PRIMARY KEY (generation_id, path)
);
CREATE INDEX generation_files_path ON generation_files (path);
CREATE INDEX generation_files_sha256 ON generation_files (sha256);
CREATE INDEX generation_files_sha512 ON generation_files (sha512);
CREATE INDEX generation_files_blob ON generation_files (blob_sha256);

CREATE TABLE publish_targets (
    repository_id          BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    distro_version_id      BIGINT NOT NULL,
    arch                   TEXT NOT NULL,
    current_generation_id  BIGINT NOT NULL,
    published_at           BIGINT NOT NULL,
    PRIMARY KEY (repository_id, distro_version_id, arch)
);

-- Compressed chunks of index files, reused by the next publish when their packages are
-- unchanged. `part` names the file within the target (an APT architecture such as `amd64`, or
-- `primary`, `filelists`, `other`); `fingerprint` hashes the ids of the packages in the chunk.
CREATE TABLE index_chunks (
    repository_id      BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    distro_version_id  BIGINT NOT NULL,
    arch               TEXT NOT NULL,
    part               TEXT NOT NULL,
    chunk_no           BIGINT NOT NULL,
    fingerprint        TEXT NOT NULL,
    gz                 BLOB NOT NULL,
    zst                BLOB,
    PRIMARY KEY (repository_id, distro_version_id, arch, part, chunk_no)
);

-- Public keys uploaded to a repository, such as the keys its rpm packages are signed with.
-- They are listed and served next to the repository's own signing keys.
CREATE TABLE gpg_keys (
    id              INTEGER PRIMARY KEY,
    repository_id   BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    keytype         TEXT NOT NULL,
    public_armored  TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (repository_id, name)
);
