//! The metadata database: the source of truth from which every index is derived.
//!
//! Access is plain async functions grouped by entity (`db::packages::insert`). SQL is written
//! once, with `$1` placeholders and portable column types, and runs on either backend: SQLite
//! (the embedded default) or PostgreSQL. `run!` and `run_tx!` send one query text to whichever
//! concrete pool or transaction is in hand.

pub mod audit;
pub mod downloads;
pub mod generations;
pub mod gpg_keys;
pub mod jobs;
pub mod metadata;
pub mod oci;
pub mod packages;
pub mod processes;
pub mod repos;
pub mod retention;
pub mod sessions;
pub mod signing_keys;
pub mod snapshots;
pub mod tokens;
pub mod users;
pub mod webhooks;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// A connection pool of either backend. SQLite's comes with the turn its writers queue for.
#[derive(Clone)]
pub enum Db {
    Sqlite(SqlitePool, WriteTurns),
    Postgres(PgPool),
}

/// A write transaction of either backend; SQLite's holds the process's write turn until it
/// ends.
pub enum Tx {
    Sqlite(
        sqlx::Transaction<'static, sqlx::Sqlite>,
        tokio::sync::OwnedMutexGuard<()>,
    ),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// The queue of this process's SQLite writers, served in arrival order.
///
/// SQLite admits one writer at a time, and one that finds the lock taken sleeps in its busy
/// handler for 1, 2, 5, then up to 100 ms before it looks again, holding a pooled connection
/// all the while. Under concurrent pushes the lock then sat free between writers that were
/// asleep, and readers waited for connections held by sleeping writers. Writers of this
/// process wait here instead, without a connection, and each begins the moment the one before
/// it ends; writers of other processes on the same file (the CLI's) still meet the busy handler.
pub type WriteTurns = std::sync::Arc<tokio::sync::Mutex<()>>;

/// Runs a query built by `$query` on the pool of `$db` (a `&Db`) with the executor method
/// `$method` (`fetch_one`, `fetch_optional`, `fetch_all`, or `execute`, which yields the
/// number of rows affected), awaiting it.
macro_rules! run {
    ($db:expr, $query:expr, execute) => {
        match $db {
            $crate::db::Db::Sqlite(pool, _) => {
                $query.execute(pool).await.map(|r| r.rows_affected())
            }
            $crate::db::Db::Postgres(pool) => $query.execute(pool).await.map(|r| r.rows_affected()),
        }
    };
    ($db:expr, $query:expr, $method:ident) => {
        match $db {
            $crate::db::Db::Sqlite(pool, _) => $query.$method(pool).await,
            $crate::db::Db::Postgres(pool) => $query.$method(pool).await,
        }
    };
}

/// As `run!`, inside the transaction `$tx` (a `&mut Tx`).
macro_rules! run_tx {
    ($tx:expr, $query:expr, execute) => {
        match $tx {
            $crate::db::Tx::Sqlite(tx, _) => {
                $query.execute(&mut **tx).await.map(|r| r.rows_affected())
            }
            $crate::db::Tx::Postgres(tx) => {
                $query.execute(&mut **tx).await.map(|r| r.rows_affected())
            }
        }
    };
    ($tx:expr, $query:expr, $method:ident) => {
        match $tx {
            $crate::db::Tx::Sqlite(tx, _) => $query.$method(&mut **tx).await,
            $crate::db::Tx::Postgres(tx) => $query.$method(&mut **tx).await,
        }
    };
}

pub(crate) use {run, run_tx};

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Key of the PostgreSQL advisory lock that stands in for SQLite's single write lock: writers
/// take it shared, the collector exclusively.
const WRITE_LOCK: i64 = 0x7061_636b_7961_7264;

impl Db {
    /// Opens the database at `url`: `postgres://...`, or `sqlite://PATH` / a plain path.
    pub async fn open(url: &str) -> Result<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Db::open_postgres(url).await
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            Db::open_sqlite(Path::new(path)).await
        }
    }

    /// Opens (creating if needed) the SQLite database at `path` and brings its schema up to date.
    pub async fn open_sqlite(path: &Path) -> Result<Db> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk (the WAL synced) before it is acknowledged, so a power
            // loss never takes back a push that got its 201. NORMAL would only keep the
            // database consistent, possibly without the last commits before the loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            // 1 MiB of pages per connection rather than SQLite's 2: eight connections' caches
            // were a tenth of a publish's memory at a million packages, and the pages a
            // connection needs again (the indexes' upper levels) fit in far less.
            .pragma("cache_size", "-1024");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .with_context(|| format!("opening the database {}", path.display()))?;
        SQLITE_MIGRATOR
            .run(&pool)
            .await
            .context("migrating the database")?;
        let db = Db::Sqlite(pool, WriteTurns::default());
        tokens::fill_digests(&db).await?;
        Ok(db)
    }

    /// Connects to PostgreSQL and brings its schema up to date.
    pub async fn open_postgres(url: &str) -> Result<Db> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .context("connecting to PostgreSQL")?;
        POSTGRES_MIGRATOR
            .run(&pool)
            .await
            .context("migrating the database")?;
        let db = Db::Postgres(pool);
        tokens::fill_digests(&db).await?;
        Ok(db)
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(..) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Begins a transaction that will write. SQLite takes its write lock up front, so the
    /// transaction waits for other writers instead of failing when it first writes; on
    /// PostgreSQL the transaction shares the advisory write lock with other writers.
    pub async fn begin_write(&self) -> Result<Tx> {
        match self {
            Db::Sqlite(pool, turns) => {
                let turn = turns.clone().lock_owned().await;
                Ok(Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?, turn))
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
                    .bind(WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(Tx::Postgres(tx))
            }
        }
    }

    /// Begins a transaction that no writer runs beside, for the collector (what it finds
    /// unreferenced stays unreferenced until it commits) and for claiming jobs.
    pub async fn begin_exclusive(&self) -> Result<Tx> {
        match self {
            Db::Sqlite(pool, turns) => {
                let turn = turns.clone().lock_owned().await;
                Ok(Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?, turn))
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(Tx::Postgres(tx))
            }
        }
    }

    /// The newest schema version this binary migrates to.
    pub fn latest_schema_version() -> i64 {
        SQLITE_MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<i64> {
        self.scalar_i64("SELECT CAST(MAX(version) AS BIGINT) FROM _sqlx_migrations")
            .await
    }

    pub async fn ping(&self) -> Result<()> {
        run!(self, sqlx::query("SELECT 1"), execute)?;
        Ok(())
    }

    /// Runs one statement without parameters, for operators and tests.
    pub async fn execute_sql(&self, sql: &str) -> Result<u64> {
        Ok(run!(
            self,
            sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())),
            execute
        )?)
    }

    /// The single integer a parameterless query returns, for operators and tests.
    pub async fn scalar_i64(&self, sql: &str) -> Result<i64> {
        Ok(run!(
            self,
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())),
            fetch_one
        )?)
    }

    /// The texts a parameterless query returns, for operators and tests.
    pub async fn texts(&self, sql: &str) -> Result<Vec<String>> {
        Ok(run!(
            self,
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())),
            fetch_all
        )?)
    }

    /// The single text a parameterless query returns, for operators and tests.
    pub async fn scalar_text(&self, sql: &str) -> Result<String> {
        Ok(run!(
            self,
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())),
            fetch_one
        )?)
    }
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx, _) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx, _) => tx.rollback().await?,
            Tx::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

/// Announced (on PostgreSQL) by every commit that changes what repository reads return: a
/// generation made current, or old ones collected. Queued jobs are announced on their own
/// channel (`jobs::WAKE_CHANNEL`) and change what is read too.
pub const CHANGES_CHANNEL: &str = "packyard_changes";

/// Announces `CHANGES_CHANNEL` when `tx` commits.
pub async fn announce_change(tx: &mut Tx) -> Result<()> {
    notify(tx, CHANGES_CHANNEL).await
}

/// As `announce_change`, outside any transaction (after a change already committed).
pub async fn announce(db: &Db) -> Result<()> {
    if let Db::Postgres(pool) = db {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANGES_CHANNEL)
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Notifies `channel` on PostgreSQL, delivered to every listening process when `tx`
/// commits. Nothing on SQLite: other processes on the same file find changes by polling
/// (workers) or when what they cached expires.
pub async fn notify(tx: &mut Tx, channel: &str) -> Result<()> {
    if let Tx::Postgres(tx) = tx {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(channel)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Seconds since the Unix epoch, the unit of every timestamp column.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Milliseconds since the Unix epoch, for columns named `_ms`.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writers waiting for their turn hold no connection: with more of them waiting than the
    /// pool has connections, a read still runs, and every writer gets its turn in order.
    #[tokio::test]
    async fn sqlite_writers_queue_for_their_turn_without_holding_connections() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("packyard.db"))
            .await
            .unwrap();
        db.execute_sql("CREATE TABLE turns (n INTEGER NOT NULL)")
            .await
            .unwrap();
        let first = db.begin_write().await.unwrap();
        let waiting: Vec<_> = (0..12)
            .map(|n: i64| {
                let db = db.clone();
                let writer = tokio::spawn(async move {
                    let mut tx = db.begin_write().await?;
                    run_tx!(
                        &mut tx,
                        sqlx::query("INSERT INTO turns (n) VALUES ($1)").bind(n),
                        execute
                    )?;
                    tx.commit().await
                });
                (n, writer)
            })
            .collect();
        // Let every writer reach the queue (a pool's connections are eight).
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        let read = tokio::time::timeout(
            Duration::from_secs(10),
            db.scalar_i64("SELECT COUNT(*) FROM turns"),
        );
        let count = read.await.expect("a read beside queued writers").unwrap();
        assert_eq!(count, 0, "no writer went before the first ended");
        first.commit().await.unwrap();
        for (_, writer) in waiting {
            writer.await.unwrap().unwrap();
        }
        let order = run!(
            &db,
            sqlx::query_scalar::<_, i64>("SELECT n FROM turns ORDER BY rowid"),
            fetch_all
        )
        .unwrap();
        assert_eq!(order, (0..12).collect::<Vec<_>>(), "turns in arrival order");
    }
}
