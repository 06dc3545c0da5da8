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
    /// Manages the SNMP trap receiver: engine ID, communities, SNMPv3 users.
    #[command(subcommand)]
    Snmp(SnmpCommand),
}

#[derive(Debug, Subcommand)]
pub enum SnmpCommand {
    /// Prints this runtime's SNMPv3 engine ID (generated and stored on first use); senders of
    /// SNMPv3 INFORMs discover it, senders of SNMPv3 traps do not need it.
    EngineId,
    /// Manages v1/v2c communities accepted for traps.
    #[command(subcommand)]
    Community(CommunityCommand),
    /// Manages SNMPv3 (USM) users accepted for traps and informs.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum CommunityCommand {
    /// Accepts a community, stored under a label that listings show instead of the secret.
    Add {
        label: String,
        /// The community string.
        #[arg(long, env = "OPSCONDUCTOR_SNMP_COMMUNITY", hide_env_values = true)]
        community: String,
    },
    /// Lists community labels (never the communities).
    List,
    /// Stops accepting the community with this label.
    Remove { label: String },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds or replaces a user. Passwords are turned into keys (RFC 3414) and not stored.
    Add {
        name: String,
        /// md5, sha (sha1), sha224, sha256, sha384 or sha512; omit for noAuthNoPriv.
        #[arg(long)]
        auth: Option<String>,
        #[arg(long, env = "OPSCONDUCTOR_SNMP_AUTH_PASSWORD", hide_env_values = true)]
        auth_password: Option<String>,
        /// des or aes (aes128); needs --auth.
        #[arg(long = "priv")]
        privacy: Option<String>,
        #[arg(long, env = "OPSCONDUCTOR_SNMP_PRIV_PASSWORD", hide_env_values = true)]
        priv_password: Option<String>,
    },
    /// Lists users and their protocols (never keys).
    List,
    Remove {
        name: String,
    },
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
            let traps = match config.trap_listen {
                Some(addr) => Some(crate::inbound::trap::bind_socket(addr).with_context(|| {
                    format!(
                        "cannot bind the SNMP trap port {addr} (port 162 needs root or \
                         CAP_NET_BIND_SERVICE; set trap_listen or OPSCONDUCTOR_TRAP_LISTEN, \
                         `off` to run without traps)"
                    )
                })?),
                None => None,
            };
            let server = Server::start(&config, listener, traps).await?;
            println!("opsconductor listening on http://{}", server.addr());
            shutdown_signal().await;
            tracing::info!("shutting down");
            server.stop().await?;
            Ok(())
        }
        Command::Snmp(cmd) => snmp_command(cmd, &config).await,
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

async fn snmp_command(cmd: SnmpCommand, config: &Config) -> anyhow::Result<()> {
    use crate::inbound::trap::{credentials, engine};
    use crate::store::{Store, StoreError};

    let store = Store::connect(&config.database_url).await?;
    let not_found = |what: String| {
        move |e: StoreError| match e {
            StoreError::NotFound => anyhow::anyhow!("no {what}"),
            other => other.into(),
        }
    };
    match cmd {
        SnmpCommand::EngineId => {
            let id = engine::engine_id(&store, config.snmp_engine_id.as_deref()).await?;
            println!("0x{}", hex::encode(id));
        }
        SnmpCommand::Community(CommunityCommand::Add { label, community }) => {
            store.snmp_set_community(&label, &community).await?;
            println!("community `{label}` accepted");
        }
        SnmpCommand::Community(CommunityCommand::List) => {
            for c in store.snmp_communities().await? {
                println!("{}", c.label);
            }
        }
        SnmpCommand::Community(CommunityCommand::Remove { label }) => {
            store
                .snmp_remove_community(&label)
                .await
                .map_err(not_found(format!("community labelled `{label}`")))?;
            println!("community `{label}` removed");
        }
        SnmpCommand::User(UserCommand::Add {
            name,
            auth,
            auth_password,
            privacy,
            priv_password,
        }) => {
            let auth = match (auth, auth_password) {
                (Some(p), Some(pw)) => Some((p.parse()?, pw)),
                (None, None) => None,
                (Some(_), None) => anyhow::bail!("--auth needs --auth-password"),
                (None, Some(_)) => anyhow::bail!("--auth-password needs --auth"),
            };
            let privacy = match (privacy, priv_password) {
                (Some(p), Some(pw)) => Some((p.parse()?, pw)),
                (None, None) => None,
                (Some(_), None) => anyhow::bail!("--priv needs --priv-password"),
                (None, Some(_)) => anyhow::bail!("--priv-password needs --priv"),
            };
            let record = credentials::user_record(
                &name,
                auth.as_ref().map(|(p, pw): &(_, String)| (*p, pw.as_str())),
                privacy
                    .as_ref()
                    .map(|(p, pw): &(_, String)| (*p, pw.as_str())),
            )?;
            store.snmp_set_user(&record).await?;
            println!("user `{name}` saved");
        }
        SnmpCommand::User(UserCommand::List) => {
            for u in store.snmp_users().await? {
                println!(
                    "{:<32} auth={:<8} priv={}",
                    u.name,
                    u.auth_protocol.as_deref().unwrap_or("none"),
                    u.priv_protocol.as_deref().unwrap_or("none")
                );
            }
        }
        SnmpCommand::User(UserCommand::Remove { name }) => {
            store
                .snmp_remove_user(&name)
                .await
                .map_err(not_found(format!("SNMPv3 user `{name}`")))?;
            println!("user `{name}` removed");
        }
    }
    Ok(())
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
