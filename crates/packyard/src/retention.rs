//! Retention: which versions a repository's rules let go, and yanking them through the
//! normal path (one transaction, one publish per target, the files downloadable for the grace
//! period as after any destroy).
//!
//! Versions are grouped by distribution version, format, name and architecture, and ordered
//! by the format's own version order (not upload order). A version stays when it is the
//! newest, among the newest `keep_last`, newer than `keep_days`, or matches `protect`; a rule
//! with neither `keep_last` nor `keep_days` lets nothing go. The keyring package is never a
//! candidate.
//!
//! Container images follow their own rule, set for the distribution `oci/1` only (the
//! repository's rule does not reach them): tags are what `keep_last` counts (those matching
//! `tags`, never those matching `protect`), and `keep_days` is how long a manifest no tag
//! names stays (`images::retention_plan`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db::{self, packages::Package, repos::Repo, retention::Rule};
use crate::distros::{self, PackageFormat};

/// How often the daily run comes round for each repository with rules.
pub const INTERVAL_SECS: i64 = 86_400;

/// A rule as given: `--keep-last`, `--keep-days`, `--protect`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RuleSpec {
    pub keep_last: Option<i64>,
    pub keep_days: Option<i64>,
    pub protect: Option<String>,
    /// For the images' rule (`oci/1`): the tags `keep_last` counts.
    pub tags: Option<String>,
}

/// A package the rules let go.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub distribution: String,
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub filename: String,
    pub size: i64,
    pub pushed_at: i64,
    #[serde(skip)]
    pub package: Package,
}

/// What a run would do, or did.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub repository: String,
    pub candidates: Vec<Candidate>,
    pub bytes_freed: i64,
    pub packages_kept: usize,
    /// What the images' rule lets go, when the repository has one.
    pub images: crate::images::RetentionPlan,
}

/// Checks and stores a rule for the repository, or for one of its distributions (`OS/DIST`).
pub async fn set(app: &App, repo: &Repo, target: Option<&str>, spec: &RuleSpec) -> Result<Rule> {
    let distro_version_id = match target {
        Some(target) => {
            let (os, dist) = target
                .split_once('/')
                .with_context(|| format!("the target is OS/DIST, not {target:?}"))?;
            distros::by_path(os, dist)
                .with_context(|| format!("{target} is not a known distribution"))?
                .id
        }
        None => 0,
    };
    anyhow::ensure!(
        spec.keep_last.is_none_or(|n| n >= 1),
        "keep-last must be at least 1 (the newest version is always kept)"
    );
    anyhow::ensure!(
        spec.keep_days.is_none_or(|d| d >= 0),
        "keep-days cannot be negative"
    );
    let for_images =
        distros::by_id(distro_version_id).is_some_and(|d| d.format == PackageFormat::Oci);
    anyhow::ensure!(
        spec.tags.is_none() || for_images,
        "--tags applies to the images' rule only (--target oci/1)"
    );
    for pattern in [&spec.protect, &spec.tags].into_iter().flatten() {
        anyhow::ensure!(
            pattern.len() <= 1000,
            "a pattern is longer than 1000 characters"
        );
        regex::Regex::new(pattern)
            .with_context(|| format!("{pattern:?} is not a regular expression"))?;
    }
    let rule = Rule {
        repository_id: repo.id,
        distro_version_id,
        keep_last: spec.keep_last,
        keep_days: spec.keep_days,
        protect: spec.protect.clone().filter(|p| !p.is_empty()),
        tags: spec.tags.clone().filter(|p| !p.is_empty()),
        updated_at: db::now(),
    };
    db::retention::set(&app.db, &rule).await?;
    Ok(rule)
}

/// A rule for display: its target as `OS/DIST`, or `*` for the repository's.
pub fn target_name(rule: &Rule) -> String {
    match distros::by_id(rule.distro_version_id) {
        Some(d) if rule.distro_version_id != 0 => format!("{}/{}", d.os, d.dist),
        _ => "*".into(),
    }
}

/// What the repository's rules would let go now.
pub async fn plan(app: &App, repo: &Repo) -> Result<Plan> {
    let rules = db::retention::rules(&app.db, repo.id).await?;
    let packages = if rules.is_empty() {
        Vec::new()
    } else {
        db::packages::live(&app.db, repo.id, None).await?
    };
    let now = db::now();
    let mut plan = plan_of(repo, &rules, packages, now)?;
    plan.repository = format!("{}/{}", repo.owner, repo.name);
    let images_rule = rules.iter().find(|r| {
        distros::by_id(r.distro_version_id).is_some_and(|d| d.format == PackageFormat::Oci)
    });
    if let Some(rule) = images_rule {
        plan.images = crate::images::retention_plan(app, repo, rule, now).await?;
        plan.bytes_freed += plan.images.bytes_freed;
    }
    Ok(plan)
}

fn plan_of(repo: &Repo, rules: &[Rule], packages: Vec<Package>, now: i64) -> Result<Plan> {
    let mut compiled = BTreeMap::new();
    for rule in rules {
        let protect = match &rule.protect {
            Some(pattern) => Some(regex::Regex::new(pattern)?),
            None => None,
        };
        compiled.insert(rule.distro_version_id, (rule, protect));
    }
    let mut groups: BTreeMap<(i64, String, String, String), Vec<Package>> = BTreeMap::new();
    for p in packages {
        if crate::keyring::is_keyring(repo, &p.name)
            || !PackageFormat::name_in_package_lifecycle(&p.format)
        {
            continue;
        }
        let key = (
            p.distro_version_id,
            p.format.clone(),
            p.name.clone(),
            p.architecture.clone(),
        );
        groups.entry(key).or_default().push(p);
    }
    let mut plan = Plan {
        repository: String::new(),
        candidates: Vec::new(),
        bytes_freed: 0,
        packages_kept: 0,
        images: Default::default(),
    };
    for ((distro_id, format, _, _), mut versions) in groups {
        let Some((rule, protect)) = compiled.get(&distro_id).or_else(|| compiled.get(&0)) else {
            plan.packages_kept += versions.len();
            continue;
        };
        let format = PackageFormat::from_name(&format).unwrap_or(PackageFormat::AnyFile);
        versions.sort_by_cached_key(|p| {
            std::cmp::Reverse((format.version_key(&p.version), p.created_at, p.id))
        });
        let lets_go = rule.keep_last.is_some() || rule.keep_days.is_some();
        for (rank, p) in versions.into_iter().enumerate() {
            let kept = !lets_go
                || rank == 0
                || rule.keep_last.is_some_and(|n| (rank as i64) < n)
                || rule
                    .keep_days
                    .is_some_and(|d| p.created_at >= now - d * 86_400)
                || protect.as_ref().is_some_and(|r| r.is_match(&p.version));
            if kept {
                plan.packages_kept += 1;
                continue;
            }
            let distribution = distros::path_of(p.distro_version_id);
            plan.bytes_freed += p.size;
            plan.candidates.push(Candidate {
                distribution,
                name: p.name.clone(),
                version: p.version.clone(),
                architecture: p.architecture.clone(),
                filename: p.filename.clone(),
                size: p.size,
                pushed_at: p.created_at,
                package: p,
            });
        }
    }
    Ok(plan)
}

/// Yanks what the rules let go, in one transaction that queues one publish per target, and
/// records the run in the audit log.
pub async fn apply(app: &App, repo: &Repo, actor: Actor, ip: Option<IpAddr>) -> Result<Plan> {
    let plan = plan(app, repo).await?;
    let images = &plan.images;
    if !plan.candidates.is_empty() || !images.tags.is_empty() || !images.manifests.is_empty() {
        let mut tx = app.db.begin_write().await?;
        crate::images::apply_retention(&mut tx, repo, images).await?;
        let mut queued = BTreeSet::new();
        for c in &plan.candidates {
            let p = &c.package;
            db::packages::mark_deleted(&mut tx, p.id).await?;
            let mut data = crate::webhooks::package_data(&plan.repository, p);
            data["by"] = "retention".into();
            crate::webhooks::emit_tx(&mut tx, repo.id, "package.yanked", data).await?;
            let Some(distro) = distros::by_id(p.distro_version_id) else {
                continue;
            };
            if queued.insert((p.distro_version_id, p.name.clone(), p.architecture.clone())) {
                crate::ingest::enqueue_publishes(&mut tx, repo, distro, &p.name, &p.architecture)
                    .await?;
            }
        }
        tx.commit().await?;
        app.queued();
    }
    tracing::info!(repository = %plan.repository, yanked = plan.candidates.len(), bytes = plan.bytes_freed, "retention applied");
    let mut event = Event::new(actor, "retention.apply")
        .repository(&repo.owner, &repo.name)
        .details(json!({
            "yanked": plan.candidates.len(),
            "bytes_freed": plan.bytes_freed,
            "packages_kept": plan.packages_kept,
            "tags_removed": images.tags.iter().map(|t| format!("{}:{}", t.image, t.tag)).collect::<Vec<_>>(),
            "manifests_removed": images.manifests.iter().map(|m| format!("{}@{}", m.image, m.digest)).collect::<Vec<_>>(),
            "files": plan.candidates.iter().map(|c| format!("{}/{}", c.distribution, c.filename)).collect::<Vec<_>>(),
        }));
    if let Some(ip) = ip {
        event = event.ip(ip);
    }
    audit::record(&app.db, event).await;
    Ok(plan)
}

/// Runs retention on each repository with rules once a day, whichever process gets there
/// first.
pub async fn run_daily(app: App, shutdown: CancellationToken) {
    loop {
        loop {
            let claimed = match db::retention::claim_due(&app.db, INTERVAL_SECS).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "claiming a retention run failed");
                    None
                }
            };
            let Some(repository_id) = claimed else { break };
            let repo = match db::repos::by_id(&app.db, repository_id).await {
                Ok(Some(repo)) => repo,
                _ => continue,
            };
            if let Err(e) = apply(&app, &repo, Actor::System("retention"), None).await {
                tracing::error!(repository = %format!("{}/{}", repo.owner, repo.name), error = %format!("{e:#}"), "retention failed");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(600)) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> Repo {
        Repo {
            id: 1,
            owner_id: 1,
            owner: "acme".into(),
            name: "nightly".into(),
            private: false,
            created_at: 0,
            last_push_at: None,
            index_zstd: false,
            index_xz: false,
            keyring_version: 1,
        }
    }

    fn deb(id: i64, version: &str, created_at: i64) -> Package {
        Package {
            id,
            repository_id: 1,
            distro_version_id: 12,
            format: "deb".into(),
            name: "app".into(),
            version: version.into(),
            architecture: "amd64".into(),
            filename: format!("app_{version}_amd64.deb"),
            size: 100,
            md5: String::new(),
            sha1: String::new(),
            sha256: String::new(),
            sha512: String::new(),
            dependencies: "{}".into(),
            indexed: true,
            created_at,
            download_count: 0,
        }
    }

    fn rule(keep_last: Option<i64>, keep_days: Option<i64>, protect: Option<&str>) -> Rule {
        Rule {
            repository_id: 1,
            distro_version_id: 0,
            keep_last,
            keep_days,
            protect: protect.map(String::from),
            tags: None,
            updated_at: 0,
        }
    }

    fn gone(rules: &[Rule], packages: Vec<Package>, now: i64) -> Vec<String> {
        plan_of(&repo(), rules, packages, now)
            .unwrap()
            .candidates
            .into_iter()
            .map(|c| c.version)
            .collect()
    }

    #[test]
    fn the_format_s_version_order_decides_not_the_upload_order() {
        // 1.10 was pushed first but is the newest; 1.9~rc1 sorts before 1.9, pushed later.
        let mut packages = vec![
            deb(1, "1.10", 10),
            deb(2, "1.2", 20),
            deb(3, "1.9", 30),
            deb(4, "1.9~rc1", 40),
        ];
        assert_eq!(
            gone(&[rule(Some(2), None, None)], packages.clone(), 100),
            ["1.9~rc1", "1.2"]
        );
        // An epoch makes 1:0.1 the newest of all.
        packages.push(deb(5, "1:0.1", 5));
        assert_eq!(
            gone(&[rule(Some(1), None, None)], packages, 100),
            ["1.10", "1.9", "1.9~rc1", "1.2"]
        );
    }

    #[test]
    fn age_and_protection_keep_versions_and_the_newest_always_stays() {
        let day = 86_400;
        let packages = vec![
            deb(1, "1.0", 0),
            deb(2, "2.0", 5 * day),
            deb(3, "3.0", 9 * day),
            deb(4, "4.0", 0),
        ];
        let now = 10 * day;
        assert_eq!(
            gone(&[rule(None, Some(2), None)], packages.clone(), now),
            ["2.0", "1.0"]
        );
        assert_eq!(
            gone(&[rule(Some(1), None, Some("^1\\."))], packages.clone(), now),
            ["3.0", "2.0"]
        );
        // 4.0 is old but the newest.
        assert!(
            !gone(&[rule(None, Some(0), None)], packages.clone(), now).contains(&"4.0".to_string())
        );
        // Protection alone lets nothing go.
        assert!(gone(&[rule(None, None, Some("x"))], packages, now).is_empty());
    }

    #[test]
    fn a_distribution_s_override_wins_and_the_keyring_is_never_a_candidate() {
        let mut other = deb(9, "0.5", 0);
        other.distro_version_id = 13;
        let mut keyring = deb(10, "1", 0);
        keyring.name = "acme-nightly-archive-keyring".into();
        let mut newer_keyring = keyring.clone();
        newer_keyring.id = 11;
        newer_keyring.version = "2".into();
        let packages = vec![
            deb(1, "1.0", 0),
            deb(2, "2.0", 0),
            other,
            deb(3, "3.0", 0),
            keyring,
            newer_keyring,
        ];
        let mut bookworm = rule(Some(2), None, None);
        bookworm.distro_version_id = 12;
        let everywhere = rule(Some(1), None, None);
        assert_eq!(
            gone(&[everywhere.clone(), bookworm], packages.clone(), 0),
            ["1.0"]
        );
        assert_eq!(gone(&[everywhere], packages, 0), ["2.0", "1.0"]);
    }
}
