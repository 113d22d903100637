-- What a format keeps per package name beside its versions, rendered into its index by the
-- publisher: npm's dist-tags (`kind` 'tag': tag -> version) and deprecation messages
-- ('deprecated': version -> message), PyPI's yanked releases ('yanked': version -> reason).
CREATE TABLE package_metadata (
    repository_id      BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    distro_version_id  BIGINT NOT NULL,
    name               TEXT NOT NULL,
    kind               TEXT NOT NULL,
    key                TEXT NOT NULL,
    value              TEXT NOT NULL,
    PRIMARY KEY (repository_id, distro_version_id, name, kind, key)
);
