-- Listing and counting a target's live packages reads this index alone: with deleted_at
-- before id, the live rows of a target are one range of it, in id order. (The index it
-- replaces left deleted_at to the table, so every count visited every row.)
DROP INDEX packages_listing;
CREATE INDEX packages_live ON packages (repository_id, distro_version_id, deleted_at, id, architecture, indexed);
