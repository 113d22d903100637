//! Command-line interface: `serve`, the operator's commands on the data folder, and the
//! client commands that speak API v1 to a server.

pub(crate) mod client;
mod image;
mod key;
mod ops;
mod retention;
mod serve;
mod snapshot;
mod webhook;

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
    about = "Self-hosted APT and YUM/DNF package repositories",
    long_about = "Self-hosted APT and YUM/DNF package repositories.\n\n\
        Server and operator commands (serve, migrate, status, fsck, backup ...) work on the data \
        folder and database of the configuration. Client commands (login, push, ls, show, repo \
        ...) speak API v1 to a server: the one --url, PACKYARD_URL, PACKAGECLOUD_URL, a profile of \
        ~/.config/packyard/config.toml or ~/.packagecloud names. `key`, `token rotate` and \
        `reindex` are both: with --url, --token or --profile (or, without --config, --data-dir \
        and --database-url, whenever a client configuration exists) they go through the server."
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
        /// Incremental publishes measured per size, in process and end to end (the median is
        /// reported)
        #[arg(long, default_value_t = 5)]
        samples: usize,
        /// Only the serving scenario (Packyard and nginx), printed and not recorded
        #[arg(long)]
        serving_only: bool,
        /// Only the registry scenarios (PyPI against pypiserver, npm against verdaccio) on a
        /// project of the first of --sizes files, printed and not recorded
        #[arg(long)]
        registries_only: bool,
        /// Only the client scenario (`packyard push --jobs 8 --wait` against package_cloud's
        /// requests), printed and not recorded
        #[arg(long)]
        client_only: bool,
        /// Only the end-to-end scenarios (a push over HTTP until served, at each of --sizes,
        /// against reprepro and createrepo_c), printed and not recorded
        #[arg(long)]
        end_to_end_only: bool,
        /// The formats of the end-to-end scenarios
        #[arg(long, value_delimiter = ',', default_value = "deb,rpm", value_parser = ["deb", "rpm"])]
        formats: Vec<String>,
        /// Only the push throughput scenario (1,000 debs from 16 clients, against reprepro
        /// and aptly), printed and not recorded
        #[arg(long)]
        throughput_only: bool,
        /// Only the container image scenario (skopeo pushing and pulling a 200 MiB image,
        /// against docker-registry), printed and not recorded
        #[arg(long)]
        images_only: bool,
        /// Only the sustained load scenario (readers, a push every 100 ms and apt-get update in
        /// a loop against a running server), printed and not recorded
        #[arg(long)]
        load_only: bool,
        /// Seconds the load scenario runs
        #[arg(long, default_value_t = 60)]
        load_secs: u64,
        /// Concurrent readers in the load scenario
        #[arg(long, default_value_t = 200)]
        load_clients: usize,
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
    /// Exit 0 when the server answers its readiness check, 1 otherwise: the health check of
    /// the container image, which has no other HTTP client
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
        url: String,
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
    /// Retention rules of a repository: set, show, preview, apply
    Retention {
        #[command(subcommand)]
        command: retention::RetentionCommand,
    },
    /// Snapshots of a repository: create, list, show, diff, delete, restore
    Snapshot {
        #[command(subcommand)]
        command: snapshot::SnapshotCommand,
    },
    /// Make every target of DEST equal to SOURCE's (the weekly staging-to-production move),
    /// snapshotting DEST first
    PromoteAll(snapshot::PromoteAllArgs),
    /// Webhooks of a repository: add, list, test, deliveries, redeliver, remove
    Webhook {
        #[command(subcommand)]
        command: webhook::WebhookCommand,
    },
    /// Container image tags: move a tag to a digest, roll it back, show its history (client)
    Image {
        #[command(subcommand)]
        command: image::ImageCommand,
    },
    /// Log in with an email and password and keep the account's API token (client)
    Login(client::LoginArgs),
    /// Push packages, several at once, and with --wait until hosts can install them (client)
    Push(client::PushArgs),
    /// Remove a package: OWNER/REPO/OS/DIST FILE (client)
    Yank {
        #[command(flatten)]
        remote: client::Remote,
        /// OWNER/REPO/OS/DIST
        target: String,
        file: String,
    },
    /// Move a package to another repository, or copy it with --copy (client)
    Promote {
        #[command(flatten)]
        remote: client::Remote,
        /// OWNER/REPO/OS/DIST
        source: String,
        file: String,
        /// OWNER/REPO
        destination: String,
        /// Keep it in the source repository too
        #[arg(long)]
        copy: bool,
    },
    /// List a repository's packages (client)
    Ls(client::LsArgs),
    /// One package: versions, checksums, whether it is indexed, downloads (client)
    Show {
        #[command(flatten)]
        remote: client::Remote,
        /// OWNER/REPO/OS/DIST
        target: String,
        file: String,
        #[arg(long)]
        json: bool,
    },
    /// Repositories: list, create, show (client)
    Repo {
        #[command(subcommand)]
        command: client::RepoCommand,
    },
    /// Distribution versions packages can be pushed to (client)
    Distro {
        #[command(subcommand)]
        command: DistroCommand,
    },
    /// A package's downloads, in all and per day (client)
    Stats {
        #[command(flatten)]
        remote: client::Remote,
        /// OWNER/REPO/OS/DIST
        target: String,
        file: String,
        /// Days of the daily series
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[arg(long)]
        json: bool,
    },
    /// Print the completion script of a shell (bash, zsh, fish, elvish, powershell)
    Completions { shell: clap_complete::Shell },
    /// Print the man page, or write one page per command into --dir
    Man {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DistroCommand {
    /// Every distribution version, or those of one package type (deb, rpm, dsc, py, node ...)
    List {
        #[command(flatten)]
        remote: client::Remote,
        kind: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Give a master token a new value; the old one and its read tokens keep working for the
    /// grace period, so hosts can run their install script again before they are cut off
    Rotate {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        remote: client::Remote,
        /// The repository, OWNER/REPO
        repository: String,
        /// The master token's name
        #[arg(default_value = "default")]
        master: String,
        /// How long the old value keeps working: seconds, or 30m, 24h, 7d
        #[arg(long, default_value = "24h")]
        grace: String,
    },
    /// Master tokens of a repository and their read tokens, values masked (client)
    List {
        #[command(flatten)]
        remote: client::Remote,
        /// OWNER/REPO
        repository: String,
        #[arg(long)]
        json: bool,
    },
    /// Make a master token and print its value (client)
    Create {
        #[command(flatten)]
        remote: client::Remote,
        repository: String,
        name: String,
    },
    /// Revoke a master token and, with it, its read tokens (client)
    Revoke {
        #[command(flatten)]
        remote: client::Remote,
        repository: String,
        name: String,
        /// Do not ask first
        #[arg(long)]
        yes: bool,
    },
    /// Read tokens: the per-host tokens install scripts put in sources lists (client)
    Read {
        #[command(subcommand)]
        command: client::ReadTokenCommand,
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

/// Whether a command that works both ways (`key`, `token rotate`, `reindex`) goes through a
/// server: when a server flag is given; not when a data-folder flag is (or PACKYARD_CONFIG,
/// PACKYARD_DATA_DIR or PACKYARD_DATABASE_URL, as a server's unit sets them); otherwise when
/// a client configuration exists.
fn client_form(config: &ConfigArgs, remote: &client::Remote) -> bool {
    if remote.args.given() {
        return true;
    }
    if config.given() {
        return false;
    }
    crate::client::config::configured()
}

/// The configured data and `OWNER/REPO` in it, for commands that act on one repository.
async fn open_repo(
    config: &ConfigArgs,
    repository: &str,
) -> Result<(crate::app::App, crate::db::repos::Repo)> {
    let app = crate::app::App::open(config.load()?).await?;
    let repo = find_repo(&app, repository).await?;
    Ok((app, repo))
}

async fn find_repo(app: &crate::app::App, repository: &str) -> Result<crate::db::repos::Repo> {
    let (owner, name) = repository
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("the repository is OWNER/REPO, not {repository:?}"))?;
    crate::db::repos::by_owner_and_name(&app.db, owner, name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no repository {repository}"))
}

impl ConfigArgs {
    fn given(&self) -> bool {
        let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        self.config.is_some()
            || set("PACKYARD_DATA_DIR")
            || set("PACKYARD_DATABASE_URL")
            || self.data_dir.is_some()
            || self.database_url.is_some()
            || self.storage.is_some()
            || self.s3_endpoint.is_some()
    }

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
        Err(e) => match e.downcast_ref::<crate::client::Exit>() {
            Some(exit) => {
                if !exit.message.is_empty() {
                    eprintln!("error: {}", exit.message);
                }
                ExitCode::from(exit.code)
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
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
        Command::Healthcheck { url } => {
            let ready = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(3))
                .build()?
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::OK);
            if !ready {
                eprintln!("{url} is not ready");
                std::process::exit(1);
            }
            Ok(())
        }
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
            client_only: true,
            ..
        } => crate::bench::client_only(&work).await,
        Command::Bench {
            work,
            images_only: true,
            ..
        } => crate::bench::images_only(&work),
        Command::Bench {
            work,
            throughput_only: true,
            ..
        } => crate::bench::throughput_only(&work).await,
        Command::Bench {
            work,
            sizes,
            samples,
            packyard_only,
            end_to_end_only: true,
            formats,
            ..
        } => crate::bench::end_to_end_only(&work, &sizes, &formats, samples, packyard_only).await,
        Command::Bench {
            work,
            load_only: true,
            load_secs,
            load_clients,
            ..
        } => crate::bench::load_only(&work, load_secs, load_clients).await,
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
        Command::Retention { command } => retention::run(command).await,
        Command::Snapshot { command } => snapshot::run(command).await,
        Command::PromoteAll(args) => snapshot::promote_all(args).await,
        Command::Webhook { command } => webhook::run(command).await,
        Command::Image { command } => image::run(command).await,
        Command::Login(args) => client::login(args).await,
        Command::Push(args) => client::push(args).await,
        Command::Yank {
            remote,
            target,
            file,
        } => client::yank(remote, target, file).await,
        Command::Promote {
            remote,
            source,
            file,
            destination,
            copy,
        } => client::promote(remote, source, file, destination, copy).await,
        Command::Ls(args) => client::ls(args).await,
        Command::Show {
            remote,
            target,
            file,
            json,
        } => client::show(remote, target, file, json).await,
        Command::Repo { command } => client::repo(command).await,
        Command::Distro {
            command: DistroCommand::List { remote, kind, json },
        } => client::distro_list(remote, kind, json).await,
        Command::Stats {
            remote,
            target,
            file,
            days,
            json,
        } => client::stats(remote, target, file, days, json).await,
        Command::Completions { shell } => {
            client::completions(shell, &mut <Cli as clap::CommandFactory>::command());
            Ok(())
        }
        Command::Man { dir } => {
            client::man(<Cli as clap::CommandFactory>::command(), dir.as_deref())
        }
        Command::Token {
            command:
                TokenCommand::List {
                    remote,
                    repository,
                    json,
                },
        } => client::token_list(remote, repository, json).await,
        Command::Token {
            command:
                TokenCommand::Create {
                    remote,
                    repository,
                    name,
                },
        } => client::token_create(remote, repository, name).await,
        Command::Token {
            command:
                TokenCommand::Revoke {
                    remote,
                    repository,
                    name,
                    yes,
                },
        } => client::token_revoke(remote, repository, name, yes).await,
        Command::Token {
            command: TokenCommand::Read { command },
        } => client::read_token(command).await,
        Command::Token {
            command:
                TokenCommand::Rotate {
                    config,
                    remote,
                    repository,
                    master,
                    grace,
                },
        } if client_form(&config, &remote) => {
            client::token_rotate(remote, repository, master, grace).await
        }
        Command::Token {
            command:
                TokenCommand::Rotate {
                    config,
                    repository,
                    master,
                    grace,
                    ..
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
            db::announce(&db).await?;
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
