//! Retention rules: a repository's (distribution version 0) and its overrides per
//! distribution version, and when retention last ran on a repository.

use anyhow::Result;

use super::{Db, now, run};

/// The rule of a repository, or of one of its distribution versions.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct Rule {
    pub repository_id: i64,
    /// 0 for the whole repository.
    pub distro_version_id: i64,
    pub keep_last: Option<i64>,
    pub keep_days: Option<i64>,
    pub protect: Option<String>,
    /// For the images' rule: the tags `keep_last` counts (all when `None`).
    pub tags: Option<String>,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "repository_id, distro_version_id, keep_last, keep_days, protect, tags, updated_at";

/// Every rule of a repository, the repository's own first.
pub async fn rules(db: &Db, repository_id: i64) -> Result<Vec<Rule>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM retention_rules WHERE repository_id = $1 ORDER BY distro_version_id"
    );
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(repository_id),
        fetch_all
    )?)
}

/// Sets (replaces) a rule; a rule that keeps nothing apart is removed instead.
pub async fn set(db: &Db, rule: &Rule) -> Result<()> {
    if rule.keep_last.is_none() && rule.keep_days.is_none() && rule.protect.is_none() {
        run!(
            db,
            sqlx::query(
                "DELETE FROM retention_rules WHERE repository_id = $1 AND distro_version_id = $2"
            )
            .bind(rule.repository_id)
            .bind(rule.distro_version_id),
            execute
        )?;
        return Ok(());
    }
    run!(
        db,
        sqlx::query(
            "INSERT INTO retention_rules (repository_id, distro_version_id, keep_last, keep_days, protect, tags, updated_at)
             VALUES ($1, $2, $3, $4, $5, $7, $6)
             ON CONFLICT (repository_id, distro_version_id) DO UPDATE SET keep_last = excluded.keep_last,
                 keep_days = excluded.keep_days, protect = excluded.protect, tags = excluded.tags,
                 updated_at = excluded.updated_at",
        )
        .bind(rule.repository_id)
        .bind(rule.distro_version_id)
        .bind(rule.keep_last)
        .bind(rule.keep_days)
        .bind(&rule.protect)
        .bind(now())
        .bind(&rule.tags),
        execute
    )?;
    Ok(())
}

/// Claims the next repository with rules that retention has not run on for `interval`
/// seconds, marking it run now; one process gets each.
pub async fn claim_due(db: &Db, interval: i64) -> Result<Option<i64>> {
    let at = now();
    let due: Option<(i64,)> = run!(
        db,
        sqlx::query_as(
            "SELECT r.id FROM repositories r
             WHERE EXISTS (SELECT 1 FROM retention_rules t WHERE t.repository_id = r.id)
               AND (r.retention_ran_at IS NULL OR r.retention_ran_at <= $1)
             ORDER BY r.retention_ran_at NULLS FIRST, r.id LIMIT 1"
        )
        .bind(at - interval),
        fetch_optional
    )?;
    let Some((id,)) = due else {
        return Ok(None);
    };
    let claimed = run!(
        db,
        sqlx::query(
            "UPDATE repositories SET retention_ran_at = $1
             WHERE id = $2 AND (retention_ran_at IS NULL OR retention_ran_at <= $3)"
        )
        .bind(at)
        .bind(id)
        .bind(at - interval),
        execute
    )?;
    Ok((claimed == 1).then_some(id))
}
