-- The files a package has besides its own, each a blob: the tarballs and diffs a Debian
-- source package's .dsc names. Served from the pool beside the package; collected with it.
CREATE TABLE package_files (
    package_id  BIGINT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    filename    TEXT NOT NULL,
    size        BIGINT NOT NULL,
    md5         TEXT NOT NULL,
    sha1        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    sha512      TEXT NOT NULL,
    PRIMARY KEY (package_id, filename)
);
CREATE INDEX package_files_filename ON package_files (filename);
CREATE INDEX package_files_sha256 ON package_files (sha256);
