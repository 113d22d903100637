-- What a publish lists of every package, readable from the index alone.
CREATE INDEX packages_listing ON packages (repository_id, distro_version_id, id, architecture, indexed)
    WHERE deleted_at IS NULL;
