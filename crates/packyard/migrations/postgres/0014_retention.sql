-- Retention rules: one per repository (distro_version_id 0) and overrides per distribution
-- version. A version is kept when it is among the newest keep_last of its name, architecture
-- and target (in the format's version order), newer than keep_days, or matches protect; the
-- newest is always kept.
CREATE TABLE retention_rules (
    repository_id     BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    distro_version_id BIGINT NOT NULL DEFAULT 0,
    keep_last         BIGINT,
    keep_days         BIGINT,
    protect           TEXT,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (repository_id, distro_version_id)
);

-- When retention last ran on a repository; the daily run claims a repository by moving it.
ALTER TABLE repositories ADD COLUMN retention_ran_at BIGINT;
