-- What npm keeps per package beside its versions: dist-tags (`kind` 'tag': tag -> version)
-- and deprecation messages (`kind` 'deprecated': version -> message). The packument is
-- rendered from these and the packages' stored manifests.
CREATE TABLE npm_metadata (
    repository_id  BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    key            TEXT NOT NULL,
    value          TEXT NOT NULL,
    PRIMARY KEY (repository_id, name, kind, key)
);
