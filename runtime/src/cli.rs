//! The `opsconductor` command line: `serve`, and commands for addons, SNMP trap credentials,
//! poll targets, poll credentials, users, and authentication (signing key, API keys).
//!
//! This file holds the top-level parser and the dispatch; each command tree has its file under
//! `cli/` (`addon`, `snmp`, `target`, `credential`, `user`, `auth`, `secrets`, `serve`), and
//! `output` how they print tables and one-time secrets.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Config;

mod addon;
mod auth;
mod config;
mod credential;
mod import;
mod output;
mod secrets;
mod serve;
mod snmp;
mod target;
mod user;

pub use addon::AddonCommand;
pub use auth::{ApiKeyCommand, AuthCommand};
pub use credential::{CredentialCommand, CredentialFlags};
pub use import::ImportCommand;
pub use secrets::SecretsCommand;
pub use snmp::{CommunityCommand, SnmpCommand, UsmUserCommand};
pub use target::{ScheduleArgs, TargetCommand};
pub use user::AccountCommand;

#[derive(Debug, Parser)]
#[command(
    name = "opsconductor",
    version,
    about = "Alert-ingestion runtime with sandboxed WebAssembly addons"
)]
pub struct Cli {
    /// Configuration file (TOML). Default: ./opsconductor.toml when it exists.
    #[arg(long, global = true, env = "OPSCONDUCTOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Overrides the configured database (`sqlite://file.db` or `postgres://…`).
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the runtime: HTTP API, webhooks and the enabled addons.
    Serve {
        /// Overrides the configured listen address, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Prints the REST API's OpenAPI 3.1 document (what docs/openapi.json holds).
    Openapi,
    /// Manages installed addons.
    #[command(subcommand)]
    Addon(AddonCommand),
    /// Manages the SNMP trap receiver: engine ID, communities, SNMPv3 users.
    #[command(subcommand)]
    Snmp(SnmpCommand),
    /// Manages poll targets: the devices and services addons poll.
    #[command(subcommand)]
    Target(TargetCommand),
    /// Manages the credentials targets poll with.
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// Manages the users who sign in to the API.
    #[command(subcommand)]
    User(AccountCommand),
    /// Manages the token signing key and API keys.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Manages the key that seals the database's secrets.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Checks a configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Brings alerts, targets and settings over from the legacy system's database, or alerts
    /// from a JSON file.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Writes a consistent copy of the SQLite database to FILE while the runtime keeps running
    /// (PostgreSQL: use pg_dump).
    Backup {
        /// The new file; it must not exist yet.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Reads a configuration file as `serve` would (then the environment's overrides) and says
    /// what is wrong and where, without opening the database or binding a port.
    Check {
        /// The file; default: `--config`, or ./opsconductor.toml.
        file: Option<std::path::PathBuf>,
    },
}

impl Cli {
    /// Runs the commands that read the configuration file themselves (`config check`, which
    /// reports a broken file rather than failing on it); `None` for every other command.
    pub fn run_without_config(&self) -> Option<anyhow::Result<()>> {
        match &self.command {
            Command::Config(ConfigCommand::Check { file }) => Some(config::check(&file_to_check(
                file.clone(),
                self.config.clone(),
            ))),
            _ => None,
        }
    }

    pub fn load_config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(url) = &self.database_url {
            config.database_url = url.clone();
        }
        Ok(config)
    }
}

/// The file `config check` reads: the one named, else `--config`, else ./opsconductor.toml.
fn file_to_check(file: Option<PathBuf>, global: Option<PathBuf>) -> PathBuf {
    file.or(global)
        .unwrap_or_else(|| crate::config::DEFAULT_CONFIG_FILE.into())
}

/// Runs the parsed command with `config` (loaded by [`Cli::load_config`]).
pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { listen } => serve::serve(config, listen).await,
        Command::Openapi => {
            print!(
                "{}",
                crate::api::openapi::pretty(&crate::api::openapi::build(&crate::api::routes()))
            );
            Ok(())
        }
        Command::Addon(cmd) => addon::addon_command(cmd, &config).await,
        Command::Snmp(cmd) => snmp::snmp_command(cmd, &config).await,
        Command::Target(cmd) => target::target_command(cmd, &config).await,
        Command::Credential(cmd) => credential::credential_command(cmd, &config).await,
        Command::User(cmd) => user::account_command(cmd, &config).await,
        Command::Auth(cmd) => auth::auth_command(cmd, &config).await,
        Command::Secrets(SecretsCommand::RotateKey) => secrets::rotate_secrets_key(&config).await,
        Command::Import(cmd) => import::import_command(cmd, &config).await,
        Command::Backup { file } => {
            let store = crate::server::connect_store(&config).await?;
            store.backup_to(&file).await?;
            let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            println!("backed up to {} ({bytes} bytes)", file.display());
            Ok(())
        }
        Command::Config(ConfigCommand::Check { file }) => {
            config::check(&file_to_check(file, cli.config))
        }
    }
}
