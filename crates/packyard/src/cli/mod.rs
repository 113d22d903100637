//! Command-line interface: `serve` and the operator's `admin` commands.

mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};

#[derive(Parser)]
#[command(
    name = "packyard",
    version,
    about = "Self-hosted APT package repositories"
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
    },
    /// Operator commands that work on the data folder directly, also while the server runs
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an API token (and the user, if new) and print it
    CreateToken {
        #[command(flatten)]
        config: ConfigArgs,
        /// User the token belongs to
        #[arg(long, default_value = "admin")]
        user: String,
    },
}

impl ConfigArgs {
    fn load(&self, listen: Option<std::net::SocketAddr>) -> Result<Config> {
        let overrides = Overrides {
            data_dir: self.data_dir.clone(),
            listen,
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
    match cli.command {
        Command::Serve { config, listen } => serve::run(config.load(listen)?).await,
        Command::Admin {
            command: AdminCommand::CreateToken { config, user },
        } => {
            let config = config.load(None)?;
            let db = crate::db::Db::open(&config.database_url()).await?;
            let user = crate::db::users::find_or_create(&db, &user).await?;
            println!("{}", crate::db::users::create_token(&db, user.id).await?);
            Ok(())
        }
    }
}
