//! Backups and restores. A backup is a folder: a consistent copy of the database (SQLite's
//! `VACUUM INTO`, or `pg_dump --format=custom`), then every package blob a row refers to
//! (hard links where storage is local, incremental by name on later runs), optionally the
//! server secret that seals the signing keys, and `manifest.json` with the version, schema
//! version, counts and the SHA-256 of every file. Index files are never backed up: the
//! database is the source of truth, and a restore queues a rebuild of every index.
//!
//! ```text
//! DIR/manifest.json
//! DIR/database/packyard.sqlite   (or packyard.pgdump)
//! DIR/blobs/ab/cd/abcd...        (named by SHA-256, as in storage)
//! DIR/secret.key                 (with --include-secret)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::config::Config;
use crate::db::{self, Db};
use crate::storage::BlobKey;

const MANIFEST: &str = "manifest.json";
const SQLITE_FILE: &str = "database/packyard.sqlite";
const PG_FILE: &str = "database/packyard.pgdump";
const SECRET_FILE: &str = "secret.key";

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub packyard_version: String,
    pub commit: String,
    pub schema_version: i64,
    pub created_at: i64,
    /// `sqlite` or `postgres`.
    pub database: String,
    pub counts: BTreeMap<String, i64>,
    /// Every file of the backup but this manifest, by relative path: its SHA-256.
    pub files: BTreeMap<String, String>,
    pub includes_secret: bool,
}

#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub dir: PathBuf,
    pub blobs: usize,
    /// Blobs copied by this run (the rest were there from an earlier one).
    pub blobs_copied: usize,
    /// Blobs of destroyed packages that the collector removed while the backup ran.
    pub blobs_gone: usize,
    pub manifest: Manifest,
}

/// Backs up the database and the package blobs of `app` into `dir` (made if missing).
pub async fn backup(app: &App, dir: &Path, include_secret: bool) -> Result<BackupReport> {
    std::fs::create_dir_all(dir.join("database"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let mut files = BTreeMap::new();
    let database = match &app.db {
        Db::Sqlite(..) => {
            let dest = dir.join(SQLITE_FILE);
            let partial = dir.join("database/packyard.sqlite.partial");
            let _ = std::fs::remove_file(&partial);
            let quoted = partial.display().to_string().replace('\'', "''");
            app.db
                .execute_sql(&format!("VACUUM INTO '{quoted}'"))
                .await
                .context("copying the SQLite database (VACUUM INTO)")?;
            std::fs::rename(&partial, &dest)?;
            files.insert(SQLITE_FILE.to_owned(), file_sha256(&dest)?);
            "sqlite"
        }
        Db::Postgres(_) => {
            let dest = dir.join(PG_FILE);
            pg_dump(app, &dest).await?;
            files.insert(PG_FILE.to_owned(), file_sha256(&dest)?);
            "postgres"
        }
    };
    // After the copy: every row in it has its blob (blob before row), bar destroyed packages
    // the collector removed meanwhile.
    let blobs = app
        .db
        .texts("SELECT sha256 FROM packages UNION SELECT sha256 FROM package_files ORDER BY sha256")
        .await?;
    let (mut copied, mut gone) = (0, 0);
    for sha256 in &blobs {
        let key = BlobKey::from_sha256(sha256)?;
        let dest = dir.join(key.path());
        if dest.exists() {
            files.insert(key.path(), sha256.clone());
            continue;
        }
        std::fs::create_dir_all(dest.parent().expect("blob paths have folders"))?;
        if copy_blob(app, &key, &dest).await? {
            copied += 1;
            files.insert(key.path(), sha256.clone());
        } else {
            gone += 1;
        }
    }
    let includes_secret = include_secret;
    if include_secret {
        let secret = crate::secrets::SecretBox::raw_key(&app.config)?;
        let path = dir.join(SECRET_FILE);
        write_private(&path, &secret)?;
        files.insert(SECRET_FILE.to_owned(), file_sha256(&path)?);
    } else {
        let _ = std::fs::remove_file(dir.join(SECRET_FILE));
    }
    let mut counts = BTreeMap::new();
    for table in [
        "users",
        "repositories",
        "packages",
        "signing_keys",
        "master_tokens",
        "read_tokens",
    ] {
        counts.insert(
            table.to_owned(),
            app.db
                .scalar_i64(&format!("SELECT COUNT(*) FROM {table}"))
                .await?,
        );
    }
    counts.insert("blobs".into(), (blobs.len() - gone) as i64);
    let manifest = Manifest {
        packyard_version: crate::status::VERSION.into(),
        commit: crate::status::COMMIT.into(),
        schema_version: app.db.schema_version().await?,
        created_at: db::now(),
        database: database.into(),
        counts,
        files,
        includes_secret,
    };
    // The manifest last, once what it lists is on stable storage: a backup that says it is
    // done survives a power loss.
    sync_files(dir, manifest.files.keys())?;
    std::fs::write(dir.join(MANIFEST), serde_json::to_vec_pretty(&manifest)?)?;
    sync_files(dir, [MANIFEST])?;
    Ok(BackupReport {
        dir: dir.to_owned(),
        blobs: blobs.len() - gone,
        blobs_copied: copied,
        blobs_gone: gone,
        manifest,
    })
}

/// Syncs each file (paths relative to `dir`) and every folder from it up to `dir`.
fn sync_files<P: AsRef<Path>>(dir: &Path, files: impl IntoIterator<Item = P>) -> Result<()> {
    let mut folders = std::collections::BTreeSet::from([dir.to_owned()]);
    for file in files {
        let path = dir.join(file);
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", path.display()))?;
        let mut folder = path.parent();
        while let Some(f) = folder.filter(|f| f.starts_with(dir)) {
            if !folders.insert(f.to_owned()) {
                break;
            }
            folder = f.parent();
        }
    }
    for folder in folders {
        std::fs::File::open(&folder)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", folder.display()))?;
    }
    Ok(())
}

/// Copies one blob into the backup: a hard link from local storage where it can, else a
/// download. False when the blob no longer exists.
async fn copy_blob(app: &App, key: &BlobKey, dest: &Path) -> Result<bool> {
    if let Some(source) = app.blobs.local_path(key)
        && std::fs::hard_link(&source, dest).is_ok()
    {
        return Ok(true);
    }
    let partial = dest.with_extension("partial");
    let copied = app.blobs.download_to(key, &partial).await?;
    match copied {
        Some(digests) => {
            anyhow::ensure!(
                digests.sha256 == key.sha256(),
                "blob {} in storage has SHA-256 {}",
                key.sha256(),
                digests.sha256
            );
            std::fs::rename(&partial, dest)?;
            Ok(true)
        }
        None => {
            let _ = std::fs::remove_file(&partial);
            Ok(false)
        }
    }
}

async fn pg_dump(app: &App, dest: &Path) -> Result<()> {
    let server: i64 = app
        .db
        .scalar_i64("SELECT CAST(current_setting('server_version_num') AS BIGINT)")
        .await?;
    let version = tokio::process::Command::new("pg_dump")
        .arg("--version")
        .output()
        .await
        .context("pg_dump is not on the PATH: install the PostgreSQL client of the server's version, or rely on the database's own backups (docs/DEPLOYMENT.md)")?;
    let text = String::from_utf8_lossy(&version.stdout);
    let client_major: i64 = text
        .split_whitespace()
        .find_map(|word| word.split('.').next()?.parse().ok())
        .with_context(|| format!("cannot read pg_dump's version from {text:?}"))?;
    anyhow::ensure!(
        client_major >= server / 10_000,
        "pg_dump {client_major} is older than the PostgreSQL {} server; install pg_dump {} or later",
        server / 10_000,
        server / 10_000
    );
    let partial = dest.with_extension("partial");
    let out = tokio::process::Command::new("pg_dump")
        .args(["--format=custom", "--no-owner", "--file"])
        .arg(&partial)
        .arg(app.config.database_url())
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&partial, dest)?;
    Ok(())
}

/// Empties the database a failed restore filled, so it can run again.
async fn undo(app: &App) -> Result<()> {
    match &app.db {
        Db::Sqlite(pool, _) => {
            pool.close().await;
            let path = app.config.data_dir.join("packyard.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        Db::Postgres(_) => {
            app.db.execute_sql("DROP SCHEMA public CASCADE").await?;
            app.db.execute_sql("CREATE SCHEMA public").await?;
        }
    }
    Ok(())
}

fn file_sha256(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(packyard_formats::digest::sha256_hex_of(file)?)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let _ = std::fs::remove_file(path);
    crate::storage::create_private_file(path, bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads a backup's manifest and checks every file it lists; returns the manifest and the
/// problems found (none for a good backup).
pub fn verify(dir: &Path) -> Result<(Manifest, Vec<String>)> {
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(dir.join(MANIFEST))
            .with_context(|| format!("{} has no {MANIFEST}: not a backup", dir.display()))?,
    )
    .context("the manifest does not parse")?;
    let mut problems = Vec::new();
    for (path, sha256) in &manifest.files {
        match file_sha256(&dir.join(path)) {
            Ok(actual) if &actual == sha256 => {}
            Ok(actual) => problems.push(format!(
                "{path} has SHA-256 {actual}, the manifest says {sha256}"
            )),
            Err(_) => problems.push(format!("{path} is missing")),
        }
    }
    Ok((manifest, problems))
}

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub schema_version: i64,
    pub blobs: usize,
    pub targets_queued: usize,
    /// Rows of destroyed packages dropped because the backup had no blob for them.
    pub destroyed_rows_dropped: u64,
}

/// Restores the backup in `dir` into the configured database and storage, which must be
/// empty; then queues a rebuild of every index.
pub async fn restore(config: Config, dir: &Path) -> Result<RestoreReport> {
    let (manifest, problems) = verify(dir)?;
    anyhow::ensure!(
        problems.is_empty(),
        "the backup is damaged, nothing was restored:\n  {}",
        problems.join("\n  ")
    );
    let newest = Db::latest_schema_version();
    anyhow::ensure!(
        manifest.schema_version <= newest,
        "the backup has schema version {}, newer than this Packyard knows ({newest}); restore it with Packyard {} or later",
        manifest.schema_version,
        manifest.packyard_version
    );
    // The secret first: the signing keys open with it or not at all.
    let secret_file = config.data_dir.join(SECRET_FILE);
    if config.secret_key.is_none() && !secret_file.exists() {
        anyhow::ensure!(
            manifest.includes_secret,
            "the backup has no server secret and none is configured, so its signing keys would not open: \
             set PACKYARD_SECRET_KEY (or secret_key) to the secret of the server the backup came from \
             (base64 of its DATA_DIR/secret.key), or use a backup made with --include-secret; nothing was restored"
        );
        std::fs::create_dir_all(&config.data_dir)?;
        write_private(&secret_file, &std::fs::read(dir.join(SECRET_FILE))?)?;
    }
    {
        let db = Db::open(&config.database_url()).await?;
        let rows = db
            .scalar_i64("SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM repositories)")
            .await?;
        anyhow::ensure!(
            rows == 0,
            "the configured database is not empty; restore into an empty data folder or database"
        );
        match (&db, manifest.database.as_str()) {
            (Db::Sqlite(pool, _), "sqlite") => {
                pool.close().await;
                let path = config.data_dir.join("packyard.db");
                anyhow::ensure!(
                    config.database_url.is_none(),
                    "restoring SQLite needs the database in the data folder"
                );
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                std::fs::copy(dir.join(SQLITE_FILE), &path)?;
                sync_files(&config.data_dir, ["packyard.db"])?;
            }
            (Db::Postgres(pool), "postgres") => {
                pool.close().await;
                let out = tokio::process::Command::new("pg_restore")
                    .args([
                        "--clean",
                        "--if-exists",
                        "--no-owner",
                        "--single-transaction",
                        "--dbname",
                    ])
                    .arg(config.database_url())
                    .arg(dir.join(PG_FILE))
                    .output()
                    .await
                    .context("pg_restore is not on the PATH")?;
                anyhow::ensure!(
                    out.status.success(),
                    "pg_restore failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            (db, kind) => anyhow::bail!(
                "the backup holds a {kind} database, but the configuration points at {}",
                db.kind()
            ),
        }
    }
    let app = App::open(config).await?;
    // Every signing key must open with this server's secret; if one does not, the database
    // is emptied again so the restore can be repeated with the right secret.
    for (owner, repo, key) in db::signing_keys::all_keys(&app.db).await? {
        if app.secrets.open(&key.secret_armored).is_err() {
            undo(&app).await?;
            anyhow::bail!(
                "the signing key {} of {owner}/{repo} does not open with this server's secret: set PACKYARD_SECRET_KEY \
                 (or secret_key) to the secret of the server the backup came from, or use a backup made with \
                 --include-secret; the database was emptied again",
                key.fingerprint
            );
        }
    }
    let mut blobs = 0;
    let mut missing = Vec::new();
    for sha256 in app
        .db
        .texts(
            "SELECT sha256 FROM packages WHERE deleted_at IS NULL
             UNION SELECT f.sha256 FROM package_files f JOIN packages p ON p.id = f.package_id
             WHERE p.deleted_at IS NULL ORDER BY sha256",
        )
        .await?
    {
        let key = BlobKey::from_sha256(&sha256)?;
        let source = dir.join(key.path());
        if source.exists() {
            app.blobs.put_file(&key, &source).await?;
            blobs += 1;
        } else {
            missing.push(sha256);
        }
    }
    anyhow::ensure!(
        missing.is_empty(),
        "the backup lacks the files of {} live package(s): {}",
        missing.len(),
        missing.join(", ")
    );
    // Destroyed packages in their grace period: keep those whose files came along.
    let mut dropped = 0;
    for sha256 in app
        .db
        .texts(
            "SELECT sha256 FROM packages WHERE deleted_at IS NOT NULL
             UNION SELECT f.sha256 FROM package_files f JOIN packages p ON p.id = f.package_id
             WHERE p.deleted_at IS NOT NULL",
        )
        .await?
    {
        let key = BlobKey::from_sha256(&sha256)?;
        let source = dir.join(key.path());
        if source.exists() {
            app.blobs.put_file(&key, &source).await?;
        } else {
            dropped += db::packages::drop_destroyed(&app.db, &sha256).await?;
        }
    }
    let mut targets_queued = 0;
    for repo in db::repos::all(&app.db).await? {
        let scope = crate::reindex::Scope {
            repo: &repo,
            distro: None,
            filename: None,
        };
        targets_queued += crate::reindex::reindex(&app, &scope, false)
            .await?
            .targets_queued;
    }
    Ok(RestoreReport {
        schema_version: manifest.schema_version,
        blobs,
        targets_queued,
        destroyed_rows_dropped: dropped,
    })
}
