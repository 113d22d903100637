//! Command-line interface: `serve` and the operator's `admin` commands.

mod key;
mod ops;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::audit::{self, Actor, Event};
use crate::config::{Config, Overrides, Role};

#[derive(Parser)]
#[command(
    name = "packyard",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("PACKYARD_COMMIT"), ", ", env!("PACKYARD_BUILD_DATE"), ")"),
    about = "Self-hosted APT and YUM/DNF package repositories"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where settings come from; shared by every command that opens the data folder.
#[derive(clap::Args)]
struct ConfigArgs {
    /// TOML configuration file
    #[arg(long, env = "PACKYARD_CONFIG")]
    config: Option<PathBuf>,
    /// Folder holding the database and blobs [default: ./packyard-data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// postgres://... to keep metadata in PostgreSQL [default: SQLite in the data folder]
    #[arg(long)]
    database_url: Option<String>,
    /// Where blobs live: local, or s3://BUCKET[/PREFIX] [default: local]
    #[arg(long)]
    storage: Option<String>,
    /// Endpoint of an S3-compatible store, such as http://127.0.0.1:9000
    #[arg(long)]
    s3_endpoint: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server and index workers
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
        /// Address to listen on [default: 127.0.0.1:8080]
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// What this process runs [default: all]
        #[arg(long, value_enum)]
        role: Option<Role>,
    },
    /// Operator commands that work on the data folder directly, also while the server runs
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Measure publishing, ingest, serving and footprint side by side with the reference tools (see BENCHMARKS.md)
    Bench {
        /// Repository sizes to measure
        #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
        sizes: Vec<usize>,
        /// Where results.json and results.md go
        #[arg(long, default_value = "bench-results")]
        out: PathBuf,
        /// Scratch folder for generated packages and repositories
        #[arg(long, default_value = "target/bench-work")]
        work: PathBuf,
        /// Size of the package pushed by the upload ingest scenario, in MiB
        #[arg(long, default_value_t = 2048)]
        ingest_mib: u64,
        /// Only write results.md and the chart again from results.json
        #[arg(long)]
        render_only: bool,
        /// Only Packyard's publish times, without the reference tools or server scenarios
        #[arg(long)]
        packyard_only: bool,
        /// Incremental publishes measured per size (the median is reported)
        #[arg(long, default_value_t = 3)]
        samples: usize,
        /// Only the serving scenario (Packyard and nginx), printed and not recorded
        #[arg(long)]
        serving_only: bool,
        /// Only the registry scenarios (PyPI against pypiserver, npm against verdaccio) on a
        /// project of the first of --sizes files, printed and not recorded
        #[arg(long)]
        registries_only: bool,
    },
    /// Bring the database schema up to date (safe to run again) and exit
    Migrate {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Check the configuration, the database and the data folder, and say what is wrong
    CheckConfig {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Signing keys of a repository: list, rotate, retire, extend, import, export
    Key {
        #[command(subcommand)]
        command: key::KeyCommand,
    },
    /// Rebuild indexes from the database: one repository, one distribution, or --all
    Reindex(ops::ReindexArgs),
    /// Version, processes, job queue and failing jobs, last publishes, key expiry, last backup
    Status {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        json: bool,
    },
    /// Failing jobs
    Jobs {
        #[command(subcommand)]
        command: ops::JobsCommand,
    },
    /// Check every package's blob, every current index against its signed document, the
    /// signatures, and the job queue; exit 1 on any problem
    Fsck {
        #[command(flatten)]
        config: ConfigArgs,
        /// Queue a rebuild of each target whose index is broken
        #[arg(long)]
        repair: bool,
        #[arg(long)]
        json: bool,
    },
    /// Run the collector now: old generations, destroyed packages and unreferenced blobs
    Gc {
        #[command(flatten)]
        config: ConfigArgs,
        /// Report what would be removed and remove nothing
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Back up the database and the package files to a folder (`backup verify DIR` checks one)
    Backup(ops::BackupArgs),
    /// Restore a backup into an empty data folder or database and bucket, then rebuild every index
    Restore {
        #[command(flatten)]
        config: ConfigArgs,
        /// The backup folder
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The audit log: who changed what, newest first
    Audit {
        #[command(flatten)]
        config: ConfigArgs,
        /// How far back: seconds, or 30m, 24h, 7d
        #[arg(long, default_value = "7d")]
        since: String,
        /// Only this repository, OWNER/REPO
        #[arg(long)]
        repo: Option<String>,
        /// At most this many events
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Master and read tokens of private repositories
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Give a master token a new value; the old one and its read tokens keep working for the
    /// grace period, so hosts can run their install script again before they are cut off
    Rotate {
        #[command(flatten)]
        config: ConfigArgs,
        /// The repository, OWNER/REPO
        repository: String,
        /// The master token's name
        #[arg(default_value = "default")]
        master: String,
        /// How long the old value keeps working: seconds, or 30m, 24h, 7d
        #[arg(long, default_value = "24h")]
        grace: String,
    },
}

// The variant names are the commands' names (`admin create-token` ...), an interface.
#[allow(clippy::enum_variant_names)]
#[derive(Subcommand)]
enum AdminCommand {
    /// Create an API token (and the user, if new) and print it
    CreateToken {
        #[command(flatten)]
        config: ConfigArgs,
        /// User the token belongs to
        #[arg(long, default_value = "admin")]
        user: String,
        /// Make the user an administrator (reads the audit log and all of /api/system);
        /// the user named admin is one already
        #[arg(long)]
        admin: bool,
    },
    /// Create a user who logs in with an email and a password (read from standard input, or
    /// PACKYARD_PASSWORD), or change an existing user's
    CreateUser {
        #[command(flatten)]
        config: ConfigArgs,
        name: String,
        #[arg(long)]
        email: String,
    },
    /// Create an organisation whose members may push to its repositories
    CreateOrg {
        #[command(flatten)]
        config: ConfigArgs,
        name: String,
        /// A user who may act for the organisation (repeatable)
        #[arg(long = "member")]
        members: Vec<String>,
    },
}

impl ConfigArgs {
    fn load(&self) -> Result<Config> {
        self.load_with(Overrides::default())
    }

    /// Loads the settings with these flags, and those of this command, on top.
    fn load_with(&self, overrides: Overrides) -> Result<Config> {
        let overrides = Overrides {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            storage: self.storage.clone(),
            s3_endpoint: self.s3_endpoint.clone(),
            ..overrides
        };
        Config::load(self.config.as_deref(), &overrides)
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    use crate::db::{self, Db};
    match cli.command {
        Command::Serve {
            config,
            listen,
            role,
        } => {
            let overrides = Overrides {
                listen,
                role,
                ..Overrides::default()
            };
            serve::run(config.load_with(overrides)?).await
        }
        Command::Migrate { config } => {
            let config = config.load()?;
            let db = Db::open(&config.database_url()).await?;
            println!("{} database schema is up to date", db.kind());
            Ok(())
        }
        Command::CheckConfig { config } => check_config(config.load()?).await,
        Command::Key { command } => key::run(command).await,
        Command::Reindex(args) => ops::reindex(args).await,
        Command::Backup(args) => ops::backup(args).await,
        Command::Restore { config, from, json } => ops::restore(config, &from, json).await,
        Command::Status { config, json } => ops::status(config, json).await,
        Command::Jobs { command } => ops::jobs(command).await,
        Command::Fsck {
            config,
            repair,
            json,
        } => ops::fsck(config, repair, json).await,
        Command::Gc {
            config,
            dry_run,
            json,
        } => ops::gc(config, dry_run, json).await,
        Command::Bench {
            out,
            render_only: true,
            ..
        } => crate::bench::render(&out),
        Command::Bench {
            work,
            serving_only: true,
            ..
        } => crate::bench::serving_only(&work),
        Command::Bench {
            work,
            sizes,
            registries_only: true,
            ..
        } => crate::bench::registries_only(&work, sizes.first().copied().unwrap_or(1000)),
        Command::Bench {
            sizes,
            out,
            work,
            ingest_mib,
            packyard_only,
            samples,
            ..
        } => {
            serve::init_logging("text");
            let options = crate::bench::Options {
                sizes,
                ingest_bytes: ingest_mib << 20,
                packyard_only,
                samples,
                out,
                work,
            };
            crate::bench::run(options).await
        }
        Command::Admin {
            command:
                AdminCommand::CreateToken {
                    config,
                    user,
                    admin,
                },
        } => {
            let db = Db::open(&config.load()?.database_url()).await?;
            let user = db::users::find_or_create(&db, &user).await?;
            if admin || user.name == "admin" {
                db::users::set_admin(&db, user.id, true).await?;
            }
            println!("{}", db::users::create_token(&db, user.id).await?);
            let event = Event::new(Actor::local(), "admin.create_token")
                .target(user.name.clone())
                .details(serde_json::json!({ "admin": admin || user.name == "admin" }));
            audit::record(&db, event).await;
            Ok(())
        }
        Command::Audit {
            config,
            since,
            repo,
            limit,
            json,
        } => {
            let db = Db::open(&config.load()?.database_url()).await?;
            let since_secs = crate::config::parse_duration_secs(&since).ok_or_else(|| {
                anyhow::anyhow!("--since {since:?} is not a duration such as 3600, 30m, 24h or 7d")
            })?;
            let events =
                db::audit::list(&db, db::now() - since_secs, repo.as_deref(), limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&events)?);
                return Ok(());
            }
            for e in &events {
                println!(
                    "{}  {:<7}  {:<24}  {:<22}  {:<20}  {}  {}{}",
                    audit::datetime(e.at),
                    e.outcome,
                    format!("{}:{}", e.actor_kind, e.actor),
                    e.action,
                    e.repository.as_deref().unwrap_or("-"),
                    e.target.as_deref().unwrap_or("-"),
                    e.ip_address
                        .as_deref()
                        .map(|ip| format!("from {ip} "))
                        .unwrap_or_default(),
                    e.details,
                );
            }
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::CreateUser {
                    config,
                    name,
                    email,
                },
        } => {
            let db = Db::open(&config.load()?.database_url()).await?;
            let password = match std::env::var("PACKYARD_PASSWORD") {
                Ok(password) => password,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            anyhow::ensure!(
                password.len() >= 8,
                "the password must be at least 8 characters"
            );
            let user = db::users::set_login(&db, &name, &email, &password).await?;
            println!("user {} ({email}) can log in", user.name);
            audit::record(
                &db,
                Event::new(Actor::local(), "admin.create_user").target(user.name.clone()),
            )
            .await;
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::CreateOrg {
                    config,
                    name,
                    members,
                },
        } => {
            let db = Db::open(&config.load()?.database_url()).await?;
            let mut users = Vec::new();
            for member in &members {
                let user = db::users::by_name(&db, member).await?;
                users.push(user.ok_or_else(|| anyhow::anyhow!("no user named {member}"))?);
            }
            let org = db::users::create_org(&db, &name, &users).await?;
            println!("organisation {} with {} member(s)", org.name, users.len());
            let event = Event::new(Actor::local(), "admin.create_org")
                .target(org.name.clone())
                .details(serde_json::json!({ "members": members }));
            audit::record(&db, event).await;
            Ok(())
        }
        Command::Token {
            command:
                TokenCommand::Rotate {
                    config,
                    repository,
                    master,
                    grace,
                },
        } => {
            let db = Db::open(&config.load()?.database_url()).await?;
            let grace_secs = crate::config::parse_duration_secs(&grace).ok_or_else(|| {
                anyhow::anyhow!("--grace {grace:?} is not a duration such as 3600, 30m, 24h or 7d")
            })?;
            let (owner, name) = repository.split_once('/').ok_or_else(|| {
                anyhow::anyhow!("the repository is OWNER/REPO, not {repository:?}")
            })?;
            let repo = db::repos::by_owner_and_name(&db, owner, name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no repository {repository}"))?;
            let token = db::tokens::masters(&db, repo.id)
                .await?
                .into_iter()
                .find(|m| m.name == master)
                .ok_or_else(|| {
                    anyhow::anyhow!("{repository} has no master token named {master}")
                })?;
            let rotated = db::tokens::rotate_master(&db, &token, grace_secs).await?;
            let event = Event::new(Actor::local(), "token.rotate")
                .repository(owner, name)
                .target(rotated.name.clone())
                .details(serde_json::json!({ "kind": "master", "grace_secs": grace_secs }));
            audit::record(&db, event).await;
            println!("{}", rotated.value);
            eprintln!("the previous value and its read tokens keep working for {grace}");
            Ok(())
        }
    }
}

/// Opens what `serve` would open and reports each part, so mistakes show before start-up.
async fn check_config(config: Config) -> Result<()> {
    println!("listen: {}", config.listen);
    let db = crate::db::Db::open(&config.database_url())
        .await
        .context("database")?;
    db.ping().await.context("database")?;
    println!("database: {} reachable, schema up to date", db.kind());
    let blobs = crate::storage::Blobs::open(&config).context("storage")?;
    let probe =
        tempfile::NamedTempFile::new_in(blobs.tmp_dir()).context("data folder is not writable")?;
    drop(probe);
    println!("data folder: {} writable", config.data_dir.display());
    blobs.ping().await.context("storage")?;
    println!("storage: {} reachable", config.storage);
    println!("role: {}", config.role.name());
    let app = crate::app::App::open(config).await?;
    let warnings = crate::keys::expiry_warnings(&app).await?;
    let mut failing = 0;
    for warning in &warnings {
        // A repository whose last usable key is about to expire breaks every host at once.
        if warning.only_key && warning.days_left < 30 {
            failing += 1;
            println!("signing keys: FAIL {}", warning.message);
        } else {
            println!("signing keys: warning: {}", warning.message);
        }
    }
    anyhow::ensure!(
        failing == 0,
        "{failing} repository signing key(s) expire within 30 days with no other key to take over"
    );
    println!("signing keys: no repository's last key expires within 30 days");
    println!("configuration is valid");
    Ok(())
}
