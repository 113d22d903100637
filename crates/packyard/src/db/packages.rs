//! Package rows: one per pushed file, with its index entries rendered at upload.

use std::sync::Arc;

use anyhow::Result;

use super::{run, run_tx};

use super::{Db, Tx, now};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Package {
    pub id: i64,
    pub repository_id: i64,
    pub distro_version_id: i64,
    pub format: String,
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub filename: String,
    pub size: i64,
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    pub sha512: String,
    /// JSON object of relation lists, as the API shows them.
    pub dependencies: String,
    pub indexed: bool,
    pub created_at: i64,
    /// Downloads so far, as recorded (the log is written in batches).
    pub download_count: i64,
}

const COLUMNS: &str = "id, repository_id, distro_version_id, format, name, version, architecture,
    filename, size, md5, sha1, sha256, sha512, dependencies, indexed, created_at, download_count";

pub struct NewPackage<'a> {
    pub repository_id: i64,
    pub distro_version_id: i64,
    pub format: &'a str,
    pub name: &'a str,
    pub version: &'a str,
    pub architecture: &'a str,
    pub filename: &'a str,
    pub size: i64,
    pub md5: &'a str,
    pub sha1: &'a str,
    pub sha256: &'a str,
    pub sha512: &'a str,
    pub dependencies: &'a str,
    /// Index entries by part: `packages` for a .deb; `primary`, `filelists`, `other` for an .rpm.
    pub entries: &'a [(&'a str, String)],
    /// Files beside the package's own (a source package's tarballs).
    pub files: &'a [PackageFile],
}

/// A file a package has besides its own, stored as a blob under its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PackageFile {
    pub filename: String,
    pub size: i64,
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    pub sha512: String,
}

/// What an insert found in the way.
pub enum Inserted {
    New(Package),
    /// A live package with the same identity or file name exists.
    Conflict(Package),
}

pub async fn insert(tx: &mut Tx, new: &NewPackage<'_>) -> Result<Inserted> {
    let sql = format!(
        "INSERT INTO packages (repository_id, distro_version_id, format, name, version,
         architecture, filename, size, md5, sha1, sha256, sha512, dependencies, indexed, created_at,
         created_ms, version_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, FALSE, $14, $15, $16)
         ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
    );
    let version_key = version_key(new.format, new.version);
    let inserted = run_tx!(
        tx,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(new.repository_id)
            .bind(new.distro_version_id)
            .bind(new.format)
            .bind(new.name)
            .bind(new.version)
            .bind(new.architecture)
            .bind(new.filename)
            .bind(new.size)
            .bind(new.md5)
            .bind(new.sha1)
            .bind(new.sha256)
            .bind(new.sha512)
            .bind(new.dependencies)
            .bind(now())
            .bind(super::now_ms())
            .bind(&version_key),
        fetch_optional
    )?;
    // A conflict leaves no row and, unlike a failed statement, keeps the transaction usable.
    match inserted {
        Some(package) => {
            let package: Package = package;
            for (part, body) in new.entries {
                run_tx!(
                    tx,
                    sqlx::query(
                        "INSERT INTO package_entries (package_id, part, body) VALUES ($1, $2, $3)",
                    )
                    .bind(package.id)
                    .bind(part)
                    .bind(body),
                    execute
                )?;
            }
            for file in new.files {
                run_tx!(
                    tx,
                    sqlx::query(
                        "INSERT INTO package_files (package_id, filename, size, md5, sha1, sha256, sha512)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(package.id)
                    .bind(&file.filename)
                    .bind(file.size)
                    .bind(&file.md5)
                    .bind(&file.sha1)
                    .bind(&file.sha256)
                    .bind(&file.sha512),
                    execute
                )?;
            }
            Ok(Inserted::New(package))
        }
        None => {
            // Two lookups, one per unique index: with an OR between them SQLite walked every
            // live package of the distribution in id order (4 s at a million, holding the
            // write lock).
            let sql = format!(
                "SELECT {COLUMNS} FROM packages WHERE id IN (
                   SELECT id FROM packages WHERE repository_id = $1 AND distro_version_id = $2
                     AND deleted_at IS NULL AND name = $3 AND version = $4 AND architecture = $5
                   UNION ALL
                   SELECT id FROM packages WHERE repository_id = $1 AND distro_version_id = $2
                     AND deleted_at IS NULL AND filename = $6)
                 ORDER BY id LIMIT 1"
            );
            let existing = run_tx!(
                tx,
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(new.repository_id)
                    .bind(new.distro_version_id)
                    .bind(new.name)
                    .bind(new.version)
                    .bind(new.architecture)
                    .bind(new.filename),
                fetch_one
            )?;
            Ok(Inserted::Conflict(existing))
        }
    }
}

/// A live package by its file name within one distribution version.
pub async fn by_filename(
    db: &Db,
    repository_id: i64,
    distro_version_id: i64,
    filename: &str,
) -> Result<Option<Package>> {
    Ok(
        newest_by_filename(db, repository_id, distro_version_id, filename)
            .await?
            .filter(|(_, deleted_at)| deleted_at.is_none())
            .map(|(package, _)| package),
    )
}

/// The newest row for a pool file, destroyed ones included: an index that is still current
/// (or reachable by hash) may list a package destroyed a moment ago.
pub async fn for_pool_file(
    db: &Db,
    repository_id: i64,
    distro_version_id: i64,
    filename: &str,
) -> Result<Option<Package>> {
    Ok(
        newest_by_filename(db, repository_id, distro_version_id, filename)
            .await?
            .map(|(package, _)| package),
    )
}

async fn newest_by_filename(
    db: &Db,
    repository_id: i64,
    distro_version_id: i64,
    filename: &str,
) -> Result<Option<(Package, Option<i64>)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        package: Package,
        deleted_at: Option<i64>,
    }
    let sql = format!(
        "SELECT {COLUMNS}, deleted_at FROM packages WHERE repository_id = $1
         AND distro_version_id = $2 AND filename = $3 ORDER BY id DESC LIMIT 1"
    );
    let row: Option<Row> = run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(repository_id)
            .bind(distro_version_id)
            .bind(filename),
        fetch_optional
    )?;
    Ok(row.map(|r| (r.package, r.deleted_at)))
}

/// Live packages matching name and architecture, for show and versions.
pub async fn by_name_and_arch(
    db: &Db,
    repository_id: i64,
    distro_version_id: i64,
    name: &str,
    architecture: Option<&str>,
) -> Result<Vec<Package>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM packages WHERE repository_id = $1 AND distro_version_id = $2
         AND name = $3 AND ($4 IS NULL OR architecture = $4) AND deleted_at IS NULL ORDER BY id"
    );
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(repository_id)
            .bind(distro_version_id)
            .bind(name)
            .bind(architecture),
        fetch_all
    )?)
}

/// Marks a package destroyed; it leaves the index on the next publish.
pub async fn mark_deleted(tx: &mut Tx, id: i64) -> Result<()> {
    run_tx!(
        tx,
        sqlx::query("UPDATE packages SET deleted_at = $1 WHERE id = $2")
            .bind(now())
            .bind(id),
        execute
    )?;
    Ok(())
}

/// What the indexer needs of one package for one index part. A publish holds one for every
/// package of its target, so it is kept to three words: 24 MB at a million packages. Which of
/// them no index lists yet is kept beside the list ([`LiveList::unindexed`]): a flag here
/// would pad every entry to four words.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub id: i64,
    /// Shared by the entries of one listing (a thin pointer: half of an `Arc<str>`).
    pub architecture: Arc<String>,
    /// The entry's text, when the listing carries it; publishes leave it to the chunk cache,
    /// which reads the entries of a chunk only when it compresses that chunk. A thin pointer
    /// too, as nearly every entry holds none.
    pub body: Option<Box<String>>,
}

/// Live packages of a distribution version, as [`index_list_since`] reads them.
#[derive(Debug, Default)]
pub struct LiveList {
    /// In id order.
    pub entries: Vec<IndexEntry>,
    /// The ids among them that no published index lists yet, in id order.
    pub unindexed: Vec<i64>,
    /// How many packages had been removed from the distribution version before they were
    /// read (deleted or destroyed, counted by triggers).
    pub removals: i64,
}

/// The entries for `part` of the live packages with ids in `from..to`, in id order.
pub async fn index_bodies(
    db: &Db,
    repository_id: i64,
    distro_version_id: i64,
    part: &str,
    ids: std::ops::Range<i64>,
) -> Result<Vec<(i64, String)>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT p.id, e.body FROM packages p
             JOIN package_entries e ON e.package_id = p.id AND e.part = $3
             WHERE p.repository_id = $1 AND p.distro_version_id = $2 AND p.deleted_at IS NULL
             AND p.id >= $4 AND p.id < $5 ORDER BY p.id",
        )
        .bind(repository_id)
        .bind(distro_version_id)
        .bind(part)
        .bind(ids.start)
        .bind(ids.end),
        fetch_all
    )?)
}

/// Marks packages indexed; returns when the oldest of them was pushed, in milliseconds.
pub async fn mark_indexed(tx: &mut Tx, ids: &[i64]) -> Result<Option<i64>> {
    // Ids are integers, so a literal list is safe; one statement per thousand keeps the first
    // publish of a large import from making one round trip per package.
    let mut oldest: Option<i64> = None;
    for batch in ids.chunks(1000) {
        let list = batch
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "UPDATE packages SET indexed = TRUE, indexed_ms = COALESCE(indexed_ms, $1)
             WHERE id IN ({list})"
        );
        run_tx!(
            tx,
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(super::now_ms()),
            execute
        )?;
        let sql = format!(
            "SELECT MIN(COALESCE(created_ms, created_at * 1000)) FROM packages WHERE id IN ({list})"
        );
        let min: Option<i64> =
            run_tx!(tx, sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), fetch_one)?;
        oldest = match (oldest, min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(oldest)
}

/// The highest package id every transaction has finished with: taken while no writer runs, so
/// a package committed later has a higher id. (Ids are never handed out twice, on SQLite since
/// migration 0017 made them AUTOINCREMENT, except a rolled-back one nobody saw; the live count
/// that `index_list_since` returns still catches any surprise.)
pub async fn committed_watermark(db: &Db) -> Result<i64> {
    let mut tx = db.begin_exclusive().await?;
    let max: Option<i64> = run_tx!(
        &mut tx,
        sqlx::query_scalar("SELECT MAX(id) FROM packages"),
        fetch_one
    )?;
    tx.commit().await?;
    Ok(max.unwrap_or(0))
}

/// Rows per statement when listing packages: a million are read in pages, so the rows never
/// sit in memory twice over.
const LIST_PAGE: i64 = 50_000;

/// The live packages of a distribution version with an id above `after` (0: all of them)
/// whose architecture is `listed`, in id order, without entries; and how many packages had
/// been removed from it before they were read: a removal while they are read makes the count
/// stale, which the next publish notices.
pub async fn index_list_since(
    db: &Db,
    repository_id: i64,
    distro_version_id: i64,
    after: i64,
    listed: &(dyn Fn(&str) -> bool + Sync),
) -> Result<LiveList> {
    let removals: i64 = run!(
        db,
        sqlx::query_scalar(
            "SELECT COALESCE(MAX(removals), 0) FROM package_removals
             WHERE repository_id = $1 AND distro_version_id = $2",
        )
        .bind(repository_id)
        .bind(distro_version_id),
        fetch_one
    )?;
    // A handful of architectures, each shared by every entry that has it (and listed or not).
    let mut architectures: Vec<(Arc<String>, bool)> = Vec::new();
    // A whole list is allocated at its size with room for the pushes of a while (grown by
    // doubling, its last copy would hold one and a half lists at once, and a list of a
    // million would take two million's room).
    let mut entries = match after {
        0 => Vec::with_capacity(with_room(
            live_count(db, repository_id, distro_version_id).await?,
        )),
        _ => Vec::new(),
    };
    let mut unindexed = Vec::new();
    let mut after = after;
    loop {
        let rows: Vec<(i64, String, bool)> = run!(
            db,
            sqlx::query_as(
                "SELECT id, architecture, indexed FROM packages
                 WHERE repository_id = $1 AND distro_version_id = $2 AND deleted_at IS NULL
                   AND id > $3
                 ORDER BY id LIMIT $4",
            )
            .bind(repository_id)
            .bind(distro_version_id)
            .bind(after)
            .bind(LIST_PAGE),
            fetch_all
        )?;
        let full = rows.len() as i64 == LIST_PAGE;
        for (id, architecture, indexed) in rows {
            after = id;
            let (architecture, listed) = match architectures.iter().find(|a| *a.0 == architecture) {
                Some((shared, listed)) => (shared.clone(), *listed),
                None => {
                    let listed = listed(&architecture);
                    let shared = Arc::new(architecture);
                    architectures.push((shared.clone(), listed));
                    (shared, listed)
                }
            };
            if !listed {
                continue;
            }
            entries.push(IndexEntry {
                id,
                architecture,
                body: None,
            });
            if !indexed {
                unindexed.push(id);
            }
        }
        if !full {
            // Room reserved for every live package and never touched takes no memory; a list
            // of a few of them gives it back rather than keep it for later pushes.
            if entries.len() < entries.capacity() / 2 {
                entries.shrink_to(with_room(entries.len()));
            }
            return Ok(LiveList {
                entries,
                unindexed,
                removals,
            });
        }
    }
}

/// Room for `len` entries and some to add: a thirty-second more, and at least a thousand.
pub fn with_room(len: usize) -> usize {
    len + (len / 32).max(1024)
}

/// How many live packages a distribution version of a repository has.
async fn live_count(db: &Db, repository_id: i64, distro_version_id: i64) -> Result<usize> {
    let count: i64 = run!(
        db,
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM packages
             WHERE repository_id = $1 AND distro_version_id = $2 AND deleted_at IS NULL",
        )
        .bind(repository_id)
        .bind(distro_version_id),
        fetch_one
    )?;
    Ok(usize::try_from(count)?)
}

/// The binary architectures a YUM distribution publishes: the defaults plus every architecture
/// pushed to it.
pub async fn rpm_arches(
    tx: &mut Tx,
    repository_id: i64,
    distro_version_id: i64,
) -> Result<Vec<String>> {
    let pushed: Vec<String> = run_tx!(tx, sqlx::query_scalar(
        "SELECT DISTINCT architecture FROM packages WHERE repository_id = $1 AND distro_version_id = $2
         AND deleted_at IS NULL AND architecture NOT IN ('noarch', 'src')",
    )
    .bind(repository_id)
    .bind(distro_version_id), fetch_all)?;
    let mut arches: Vec<String> = crate::formats::rpm::DEFAULT_ARCHES
        .iter()
        .map(|a| a.to_string())
        .collect();
    for arch in pushed {
        if !arches.contains(&arch) {
            arches.push(arch);
        }
    }
    Ok(arches)
}

/// What a package listing keeps; `None` keeps everything.
#[derive(Debug, Default)]
pub struct Filter {
    pub format: Option<String>,
    pub distro_version_ids: Option<Vec<i64>>,
    pub architecture: Option<String>,
    /// A substring of the file name.
    pub filename: Option<String>,
    /// Only packages in (or not yet in) the signed index.
    pub indexed: Option<bool>,
}

enum Bind {
    Int(i64),
    Text(String),
}

/// How a package listing is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Newest first when descending: upload order.
    #[default]
    Uploaded,
    Name,
    Size,
    Downloads,
    /// By name, then each name's versions in the format's own order (descending: names Z to
    /// A, each with its newest version first).
    Version,
}

/// A version's sort key (`packyard_formats::sort_key`) for its format.
fn version_key(format: &str, version: &str) -> Vec<u8> {
    crate::formats::PackageFormat::from_name(format)
        .map_or_else(|| version.as_bytes().to_vec(), |f| f.version_key(version))
}

/// Fills in the version keys of rows stored before they existed; returns how many.
pub async fn fill_version_keys(db: &Db) -> Result<usize> {
    let mut filled = 0;
    loop {
        let rows: Vec<(i64, String, String)> = run!(
            db,
            sqlx::query_as(
                "SELECT id, format, version FROM packages WHERE version_key IS NULL LIMIT 5000"
            ),
            fetch_all
        )?;
        if rows.is_empty() {
            return Ok(filled);
        }
        let mut tx = db.begin_write().await?;
        for (id, format, version) in &rows {
            run_tx!(
                &mut tx,
                sqlx::query("UPDATE packages SET version_key = $2 WHERE id = $1")
                    .bind(id)
                    .bind(version_key(format, version)),
                execute
            )?;
        }
        tx.commit().await?;
        filled += rows.len();
    }
}

/// The `WHERE` condition of a listing and its bound values.
fn condition(repository_id: i64, filter: &Filter) -> Option<(String, Vec<Bind>)> {
    let mut conditions = vec![
        "repository_id = $1".to_owned(),
        "deleted_at IS NULL".to_owned(),
    ];
    let mut binds = vec![Bind::Int(repository_id)];
    let placeholder = |binds: &mut Vec<Bind>, bind: Bind| {
        binds.push(bind);
        format!("${}", binds.len())
    };
    if let Some(format) = &filter.format {
        let p = placeholder(&mut binds, Bind::Text(format.clone()));
        conditions.push(format!("format = {p}"));
    }
    if let Some(ids) = &filter.distro_version_ids {
        if ids.is_empty() {
            return None;
        }
        let list: Vec<String> = ids
            .iter()
            .map(|id| placeholder(&mut binds, Bind::Int(*id)))
            .collect();
        conditions.push(format!("distro_version_id IN ({})", list.join(", ")));
    }
    if let Some(arch) = &filter.architecture {
        let p = placeholder(&mut binds, Bind::Text(arch.clone()));
        conditions.push(format!("architecture = {p}"));
    }
    if let Some(text) = &filter.filename {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let p = placeholder(&mut binds, Bind::Text(format!("%{escaped}%")));
        conditions.push(format!("filename LIKE {p} ESCAPE '\\'"));
    }
    if let Some(indexed) = filter.indexed {
        conditions.push(if indexed { "indexed" } else { "NOT indexed" }.to_owned());
    }
    Some((conditions.join(" AND "), binds))
}

macro_rules! bound {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                Bind::Int(v) => query.bind(*v),
                Bind::Text(v) => query.bind(v.clone()),
            };
        }
        query
    }};
}

/// One page of a repository's live packages, newest first, and the number of all that match.
pub async fn list(
    db: &Db,
    repository_id: i64,
    filter: &Filter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Package>, i64)> {
    list_sorted(
        db,
        repository_id,
        filter,
        Order::Uploaded,
        true,
        offset,
        limit,
    )
    .await
}

/// One page of a repository's live packages in `order`, and the number of all that match.
pub async fn list_sorted(
    db: &Db,
    repository_id: i64,
    filter: &Filter,
    order: Order,
    descending: bool,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Package>, i64)> {
    let Some((condition, binds)) = condition(repository_id, filter) else {
        return Ok((Vec::new(), 0));
    };
    let direction = if descending { "DESC" } else { "ASC" };
    let order_by = match order {
        Order::Uploaded => format!("id {direction}"),
        Order::Name => format!("name {direction}, id {direction}"),
        Order::Size => format!("size {direction}, id {direction}"),
        Order::Downloads => format!("download_count {direction}, id {direction}"),
        Order::Version => format!("name {direction}, version_key {direction}, id {direction}"),
    };
    let total = format!("SELECT COUNT(*) FROM packages WHERE {condition}");
    let total: i64 = run!(
        db,
        bound!(
            sqlx::query_scalar(sqlx::AssertSqlSafe(total.clone())),
            &binds
        ),
        fetch_one
    )?;
    // A search or status filter that keeps few rows: find them first (the newest-first index
    // carries the file name and state), then order only those. Otherwise the order's own
    // index fills a page quickly, testing rows as it goes.
    let narrow = (filter.filename.is_some() || filter.indexed.is_some())
        && order != Order::Uploaded
        && total <= NARROW_ROWS;
    let source = if narrow {
        format!("id IN (SELECT id FROM packages WHERE {condition})")
    } else {
        condition
    };
    let page = format!(
        "SELECT {COLUMNS} FROM packages WHERE {source}
         ORDER BY {order_by} LIMIT {limit} OFFSET {offset}"
    );
    let packages: Vec<Package> = run!(
        db,
        bound!(sqlx::query_as(sqlx::AssertSqlSafe(page.clone())), &binds),
        fetch_all
    )?;
    Ok((packages, total))
}

/// The most rows a filtered listing orders after finding them, rather than in its order's
/// index.
const NARROW_ROWS: i64 = 5000;

/// When a package was pushed and when it first entered a published index, in milliseconds.
pub async fn timing(db: &Db, id: i64) -> Result<(Option<i64>, Option<i64>)> {
    Ok(run!(
        db,
        sqlx::query_as("SELECT created_ms, indexed_ms FROM packages WHERE id = $1").bind(id),
        fetch_one
    )?)
}

/// Whether a package is in its target's published index; `None` once it is destroyed.
pub async fn is_indexed(db: &Db, id: i64) -> Result<Option<bool>> {
    let row: Option<(bool,)> = run!(
        db,
        sqlx::query_as("SELECT indexed FROM packages WHERE id = $1 AND deleted_at IS NULL")
            .bind(id),
        fetch_optional
    )?;
    Ok(row.map(|(indexed,)| indexed))
}

/// Live packages of one target and architecture, counted and sized, by format.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TargetSummary {
    pub distro_version_id: i64,
    pub architecture: String,
    pub format: String,
    pub count: i64,
    pub bytes: i64,
}

pub async fn summary(db: &Db, repository_id: i64) -> Result<Vec<TargetSummary>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT distro_version_id, architecture, format, CAST(COUNT(*) AS BIGINT) AS count,
                    CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes
             FROM packages WHERE repository_id = $1 AND deleted_at IS NULL
             GROUP BY distro_version_id, architecture, format
             ORDER BY distro_version_id, architecture",
        )
        .bind(repository_id),
        fetch_all
    )?)
}

/// The live versions of one package name in a target, with their rows.
pub async fn versions_of(
    db: &Db,
    repository_id: i64,
    distro_version_id: i64,
    name: &str,
) -> Result<Vec<Package>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM packages WHERE repository_id = $1 AND distro_version_id = $2
         AND name = $3 AND deleted_at IS NULL ORDER BY id DESC LIMIT 500"
    );
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(repository_id)
            .bind(distro_version_id)
            .bind(name),
        fetch_all
    )?)
}

/// A package's index entries by part.
pub async fn entries(db: &Db, package_id: i64) -> Result<Vec<(String, String)>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT part, body FROM package_entries WHERE package_id = $1 ORDER BY part"
        )
        .bind(package_id),
        fetch_all
    )?)
}

/// Destroys every live package named `name` in one target but `keep_id`; returns how many.
pub async fn mark_deleted_named_except(
    tx: &mut Tx,
    repository_id: i64,
    distro_version_id: i64,
    name: &str,
    keep_id: i64,
) -> Result<u64> {
    Ok(run_tx!(
        tx,
        sqlx::query(
            "UPDATE packages SET deleted_at = $5 WHERE repository_id = $1 AND distro_version_id = $2
             AND name = $3 AND id <> $4 AND deleted_at IS NULL",
        )
        .bind(repository_id)
        .bind(distro_version_id)
        .bind(name)
        .bind(keep_id)
        .bind(now()),
        execute
    )?)
}

/// The distribution versions the repository has live packages in.
pub async fn distro_versions(db: &Db, repository_id: i64) -> Result<Vec<i64>> {
    Ok(run!(
        db,
        sqlx::query_scalar(
            "SELECT DISTINCT distro_version_id FROM packages
             WHERE repository_id = $1 AND deleted_at IS NULL ORDER BY distro_version_id",
        )
        .bind(repository_id),
        fetch_all
    )?)
}

/// Replaces a package's index entries, and the name its file is served under, with ones
/// rendered anew.
pub async fn replace_entries(
    db: &Db,
    package_id: i64,
    filename: &str,
    entries: &[(&str, String)],
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    run_tx!(
        &mut tx,
        sqlx::query("UPDATE packages SET filename = $1 WHERE id = $2")
            .bind(filename)
            .bind(package_id),
        execute
    )?;
    run_tx!(
        &mut tx,
        sqlx::query("DELETE FROM package_entries WHERE package_id = $1").bind(package_id),
        execute
    )?;
    for (part, body) in entries {
        run_tx!(
            &mut tx,
            sqlx::query("INSERT INTO package_entries (package_id, part, body) VALUES ($1, $2, $3)")
                .bind(package_id)
                .bind(part)
                .bind(body),
            execute
        )?;
    }
    tx.commit().await
}

/// A package with when it was pushed and first indexed, in milliseconds.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Timed {
    #[sqlx(flatten)]
    pub package: Package,
    pub created_ms: Option<i64>,
    pub indexed_ms: Option<i64>,
}

/// These packages with their times, inside a transaction.
pub async fn timed_tx(tx: &mut Tx, ids: &[i64]) -> Result<Vec<Timed>> {
    let mut found = Vec::new();
    for batch in ids.chunks(1000) {
        // Integers only: a literal list is safe.
        let list = batch
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "SELECT {COLUMNS}, created_ms, indexed_ms FROM packages WHERE id IN ({list}) ORDER BY id"
        );
        let rows: Vec<Timed> = run_tx!(tx, sqlx::query_as(sqlx::AssertSqlSafe(sql)), fetch_all)?;
        found.extend(rows);
    }
    Ok(found)
}

/// The packages a snapshot names (live or destroyed since), by id.
pub async fn in_snapshot(db: &Db, snapshot_id: i64) -> Result<Vec<Package>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM packages JOIN snapshot_packages ON package_id = id
         WHERE snapshot_id = $1 ORDER BY id"
    );
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(snapshot_id),
        fetch_all
    )?)
}

/// The live packages of the repository (of one distribution version, if given), by id.
pub async fn live(
    db: &Db,
    repository_id: i64,
    distro_version_id: Option<i64>,
) -> Result<Vec<Package>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM packages WHERE repository_id = $1 AND deleted_at IS NULL
         AND ($2 IS NULL OR distro_version_id = $2) ORDER BY id"
    );
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(repository_id)
            .bind(distro_version_id),
        fetch_all
    )?)
}

/// Marks live packages not indexed until their target's next publish lists them; all of
/// the repository's (of one distribution version), or one package.
pub async fn mark_unindexed(
    tx: &mut Tx,
    repository_id: i64,
    distro_version_id: Option<i64>,
    package_id: Option<i64>,
) -> Result<()> {
    run_tx!(
        tx,
        sqlx::query(
            "UPDATE packages SET indexed = FALSE WHERE repository_id = $1 AND deleted_at IS NULL
             AND ($2 IS NULL OR distro_version_id = $2) AND ($3 IS NULL OR id = $3)",
        )
        .bind(repository_id)
        .bind(distro_version_id)
        .bind(package_id),
        execute
    )?;
    Ok(())
}

/// How many live packages of the repository (of one distribution version) are not indexed.
pub async fn unindexed(db: &Db, repository_id: i64, distro_version_id: Option<i64>) -> Result<i64> {
    Ok(run!(
        db,
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM packages WHERE repository_id = $1 AND deleted_at IS NULL
             AND NOT indexed AND ($2 IS NULL OR distro_version_id = $2)",
        )
        .bind(repository_id)
        .bind(distro_version_id),
        fetch_one
    )?)
}

/// Whether the target has a live package of `architecture`.
pub async fn has_architecture(
    tx: &mut Tx,
    repository_id: i64,
    distro_version_id: i64,
    architecture: &str,
) -> Result<bool> {
    let count: i64 = run_tx!(
        tx,
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM packages WHERE repository_id = $1 AND distro_version_id = $2
             AND architecture = $3 AND deleted_at IS NULL",
        )
        .bind(repository_id)
        .bind(distro_version_id)
        .bind(architecture),
        fetch_one
    )?;
    Ok(count > 0)
}

/// Deletes the rows of destroyed packages with this blob (a restore whose backup lacks it).
pub async fn drop_destroyed(db: &Db, sha256: &str) -> Result<u64> {
    Ok(run!(
        db,
        sqlx::query(
            "DELETE FROM packages WHERE deleted_at IS NOT NULL AND (sha256 = $1
             OR id IN (SELECT package_id FROM package_files WHERE sha256 = $1))"
        )
        .bind(sha256),
        execute
    )?)
}

/// The files a package has besides its own, by name.
pub async fn files(db: &Db, package_id: i64) -> Result<Vec<PackageFile>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT filename, size, md5, sha1, sha256, sha512 FROM package_files
             WHERE package_id = $1 ORDER BY filename"
        )
        .bind(package_id),
        fetch_all
    )?)
}

/// A file of a package in a target's pool that is not the package's own: the newest holder,
/// destroyed ones included (an index still current may list it), with the file.
pub async fn pool_companion(
    db: &Db,
    repository_id: i64,
    distro_version_id: i64,
    filename: &str,
) -> Result<Option<(Package, PackageFile)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        package: Package,
        file_size: i64,
        file_sha256: String,
    }
    let columns = COLUMNS
        .split(',')
        .map(|c| format!("p.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {columns}, f.size AS file_size, f.sha256 AS file_sha256
         FROM package_files f JOIN packages p ON p.id = f.package_id
         WHERE f.filename = $1 AND p.repository_id = $2 AND p.distro_version_id = $3
         ORDER BY p.deleted_at IS NULL DESC, p.id DESC LIMIT 1"
    );
    let row: Option<Row> = run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(filename)
            .bind(repository_id)
            .bind(distro_version_id),
        fetch_optional
    )?;
    Ok(row.map(|row| {
        let file = PackageFile {
            filename: filename.to_owned(),
            size: row.file_size,
            md5: String::new(),
            sha1: String::new(),
            sha256: row.file_sha256,
            sha512: String::new(),
        };
        (row.package, file)
    }))
}

/// The SHA-256 of the file named `filename` that a live package of the target holds besides
/// its own, if any does: two source packages may share a tarball, never under other bytes.
pub async fn live_companion_sha256(
    tx: &mut Tx,
    repository_id: i64,
    distro_version_id: i64,
    filename: &str,
) -> Result<Option<String>> {
    Ok(run_tx!(
        tx,
        sqlx::query_scalar(
            "SELECT f.sha256 FROM package_files f JOIN packages p ON p.id = f.package_id
             WHERE f.filename = $1 AND p.repository_id = $2 AND p.distro_version_id = $3
             AND p.deleted_at IS NULL LIMIT 1"
        )
        .bind(filename)
        .bind(repository_id)
        .bind(distro_version_id),
        fetch_optional
    )?)
}

/// One live package of a name with one of its entries, for formats that publish an index
/// document per name (a PyPI project page).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NamedEntry {
    pub id: i64,
    pub version: String,
    pub filename: String,
    pub indexed: bool,
    pub body: String,
}

/// The live packages named `name` in a target with their entry `part`, by id.
pub async fn named_entries(
    db: &Db,
    repository_id: i64,
    distro_version_id: i64,
    name: &str,
    part: &str,
) -> Result<Vec<NamedEntry>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT p.id, p.version, p.filename, p.indexed, e.body FROM packages p
             JOIN package_entries e ON e.package_id = p.id AND e.part = $4
             WHERE p.repository_id = $1 AND p.distro_version_id = $2 AND p.name = $3
             AND p.deleted_at IS NULL ORDER BY p.id"
        )
        .bind(repository_id)
        .bind(distro_version_id)
        .bind(name)
        .bind(part),
        fetch_all
    )?)
}

const LIVE_NAMES: &str = "SELECT DISTINCT name FROM packages WHERE repository_id = $1
    AND distro_version_id = $2 AND deleted_at IS NULL ORDER BY name";

/// The names of the live packages of a distribution version in a repository, sorted.
pub async fn live_names(
    db: &Db,
    repository_id: i64,
    distro_version_id: i64,
) -> Result<Vec<String>> {
    Ok(run!(
        db,
        sqlx::query_scalar(LIVE_NAMES)
            .bind(repository_id)
            .bind(distro_version_id),
        fetch_all
    )?)
}

/// How many live packages are named `name` in a target.
pub async fn live_count_named(
    tx: &mut Tx,
    repository_id: i64,
    distro_version_id: i64,
    name: &str,
) -> Result<i64> {
    Ok(run_tx!(
        tx,
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM packages WHERE repository_id = $1 AND distro_version_id = $2
             AND name = $3 AND deleted_at IS NULL"
        )
        .bind(repository_id)
        .bind(distro_version_id)
        .bind(name),
        fetch_one
    )?)
}

/// The names of the live packages in a transaction's view, for reindexing every per-name
/// target.
pub async fn live_names_tx(
    tx: &mut Tx,
    repository_id: i64,
    distro_version_id: i64,
) -> Result<Vec<String>> {
    Ok(run_tx!(
        tx,
        sqlx::query_scalar(LIVE_NAMES)
            .bind(repository_id)
            .bind(distro_version_id),
        fetch_all
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::{self, KeyAlgorithm};

    #[tokio::test]
    async fn listings_span_pages_and_removals_are_counted_by_triggers() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("packyard.db"))
            .await
            .unwrap();
        let user = crate::db::users::find_or_create(&db, "acme").await.unwrap();
        let key = sign::generate("t <t@example.invalid>", KeyAlgorithm::Ed25519, 86_400).unwrap();
        let new = crate::db::repos::NewRepo {
            owner_id: user.id,
            name: "stable",
            private: false,
            index_zstd: false,
            index_xz: false,
        };
        let repository_id = crate::db::repos::create(&db, &new, &key)
            .await
            .unwrap()
            .unwrap();
        // Two and a half pages of packages, every third one for arm64.
        let n = LIST_PAGE * 5 / 2;
        let sql = format!(
            "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n})
             INSERT INTO packages (repository_id, distro_version_id, format, name, version,
               architecture, filename, size, md5, sha1, sha256, sha512, dependencies, created_at)
             SELECT {repository_id}, 12, 'deb', 'p' || i, '1.0',
               CASE WHEN i % 3 = 0 THEN 'arm64' ELSE 'amd64' END, 'p' || i || '.deb', 1,
               '', '', printf('%064d', i), '', '', 0
             FROM seq"
        );
        assert_eq!(db.execute_sql(&sql).await.unwrap() as i64, n);

        // Every tenth package is in a published index already.
        let indexed = "UPDATE packages SET indexed = TRUE WHERE id % 10 = 0";
        db.execute_sql(indexed).await.unwrap();
        let list = |after: i64, listed: fn(&str) -> bool| {
            let db = db.clone();
            async move {
                index_list_since(&db, repository_id, 12, after, &listed)
                    .await
                    .unwrap()
            }
        };

        let all = list(0, |_| true).await;
        assert_eq!(all.removals, 0);
        let (all, unindexed) = (all.entries, all.unindexed);
        assert_eq!(all.len() as i64, n);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id), "in id order");
        assert_eq!(&*all[2].architecture, "arm64");
        assert!(
            Arc::ptr_eq(&all[0].architecture, &all[all.len() - 1].architecture),
            "one architecture string for the whole listing"
        );
        let not_tenth: Vec<i64> = all.iter().map(|e| e.id).filter(|id| id % 10 != 0).collect();
        assert_eq!(unindexed, not_tenth);
        let above = list(all[LIST_PAGE as usize].id, |_| true).await;
        assert_eq!(above.entries.len() as i64, n - LIST_PAGE - 1);
        assert!(
            above
                .unindexed
                .iter()
                .all(|&id| id > all[LIST_PAGE as usize].id)
        );
        // Only the architectures asked for, in a list without the room of every package.
        let arm64 = list(0, |a| a == "arm64").await;
        let every_third: Vec<i64> = all.iter().skip(2).step_by(3).map(|e| e.id).collect();
        let ids: Vec<i64> = arm64.entries.iter().map(|e| e.id).collect();
        assert_eq!(ids, every_third);
        let unindexed_arm64: Vec<i64> = ids.iter().copied().filter(|id| id % 10 != 0).collect();
        assert_eq!(arm64.unindexed, unindexed_arm64);
        assert!(
            arm64.entries.capacity() < all.len() / 2,
            "{}",
            arm64.entries.capacity()
        );

        // A delete and a destroy each count.
        let first = all[0].id;
        let delete = format!("UPDATE packages SET deleted_at = 1 WHERE id = {first}");
        db.execute_sql(&delete).await.unwrap();
        let listed = list(0, |_| true).await;
        assert_eq!((listed.entries.len() as i64, listed.removals), (n - 1, 1));
        let destroy = format!("DELETE FROM packages WHERE id = {first}");
        db.execute_sql(&destroy).await.unwrap();
        assert_eq!(list(0, |_| true).await.removals, 2);
        let other = index_list_since(&db, repository_id, 13, 0, &|_| true)
            .await
            .unwrap()
            .removals;
        assert_eq!(other, 0, "counted per distribution version");
    }
}
