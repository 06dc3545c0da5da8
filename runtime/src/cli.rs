//! The `opsconductor` command line: `serve` and the addon commands.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::registry::{install_bundle, set_enabled};
use crate::server::{Core, Server};

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
    /// Manages installed addons.
    #[command(subcommand)]
    Addon(AddonCommand),
}

#[derive(Debug, Subcommand)]
pub enum AddonCommand {
    /// Installs (or upgrades) addon bundles: folders holding manifest.json and addon.wasm.
    Install {
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
    },
    /// Lists installed addons.
    List,
    /// Enables an addon; running servers pick it up within seconds.
    Enable { id: String },
    /// Disables an addon; running servers stop routing to it within seconds.
    Disable { id: String },
}

impl Cli {
    pub fn load_config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(url) = &self.database_url {
            config.database_url = url.clone();
        }
        Ok(config)
    }
}

pub async fn run(cli: Cli, mut config: Config) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { listen } => {
            if let Some(listen) = listen {
                config.listen = listen;
            }
            let listener = TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            let server = Server::start(&config, listener).await?;
            println!("opsconductor listening on http://{}", server.addr());
            shutdown_signal().await;
            tracing::info!("shutting down");
            server.stop().await?;
            Ok(())
        }
        Command::Addon(cmd) => {
            let core = Core::open(&config).await?;
            match cmd {
                AddonCommand::Install { bundles } => {
                    for dir in bundles {
                        let r = install_bundle(&core.store, &core.sandbox, &dir).await?;
                        println!(
                            "{} {} {} ({}; sha256 {})",
                            if r.changed { "installed" } else { "unchanged" },
                            r.id,
                            r.version,
                            if r.enabled { "enabled" } else { "disabled" },
                            &r.wasm_sha256[..12]
                        );
                    }
                }
                AddonCommand::List => {
                    let rows = core.store.list_addons().await?;
                    if rows.is_empty() {
                        println!("no addons installed");
                    }
                    for row in rows {
                        println!(
                            "{:<20} {:<10} {:<9} {}",
                            row.id,
                            row.version,
                            if row.enabled { "enabled" } else { "disabled" },
                            row.methods.join(",")
                        );
                    }
                }
                AddonCommand::Enable { id } => {
                    set_enabled(&core.store, &id, true).await?;
                    println!("enabled {id}");
                }
                AddonCommand::Disable { id } => {
                    set_enabled(&core.store, &id, false).await?;
                    println!("disabled {id}");
                }
            }
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
