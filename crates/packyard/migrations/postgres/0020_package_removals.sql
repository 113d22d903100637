-- Removals of packages per distribution version of a repository, counted by triggers so that
-- no code path can forget them: a publish that kept the package list of its last publish
-- trusts it while this count is unchanged, instead of counting every live package (tens of
-- milliseconds at a million) to notice a delete. Only removals are counted, so pushes do not
-- contend for the row.
CREATE TABLE package_removals (
    repository_id     BIGINT NOT NULL,
    distro_version_id BIGINT NOT NULL,
    removals          BIGINT NOT NULL,
    PRIMARY KEY (repository_id, distro_version_id)
);

CREATE FUNCTION count_package_removal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO package_removals (repository_id, distro_version_id, removals)
    VALUES (OLD.repository_id, OLD.distro_version_id, 1)
    ON CONFLICT (repository_id, distro_version_id)
    DO UPDATE SET removals = package_removals.removals + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER packages_deleted AFTER UPDATE OF deleted_at ON packages FOR EACH ROW
    WHEN (OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION count_package_removal();

CREATE TRIGGER packages_destroyed AFTER DELETE ON packages FOR EACH ROW
    EXECUTE FUNCTION count_package_removal();
