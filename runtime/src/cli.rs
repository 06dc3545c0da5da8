//! The `opsconductor` command line: `serve`, and commands for addons, SNMP trap credentials,
//! poll targets, poll credentials, users, and authentication (signing key, API keys).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::api::targets::CredentialInput;
use crate::auth::{Actor, Auth, Role, Secret};
use crate::config::Config;
use crate::registry::set_enabled;
use crate::server::{Core, Server};
use crate::target::{CREDENTIAL_KINDS, Schedule, TargetSpec};

mod bundles;

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
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Replaces the secrets key: generates a new key, re-seals every secret in the database
    /// with it and removes the old key from the key file. Stop every node first, and give
    /// them the new key file before starting them again.
    RotateKey,
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
    /// Installs (or upgrades) addons from bundle files (`addon pack`: hashes, signature, WIT
    /// world and fixtures are checked first) or bundle folders (manifest.json and addon.wasm).
    Install {
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
        /// Accepts an upgrade that widens the addon's capabilities (hosts, SSH commands,
        /// methods, memory, CPU or time budgets); without it such an upgrade is refused with the
        /// difference.
        #[arg(long)]
        accept_capabilities: bool,
    },
    /// Lists installed addons.
    List,
    /// Enables an addon; running servers pick it up within seconds.
    Enable { id: String },
    /// Disables an addon; running servers stop routing to it within seconds.
    Disable { id: String },
    /// Shows an addon's settings (a secret shows as "set").
    Settings { id: String },
    /// Sets how an addon's webhook authenticates senders and which networks may post; running
    /// servers apply it within seconds.
    WebhookAuth {
        id: String,
        /// none, token (X-OpsConductor-Token or Authorization: Bearer) or hmac
        /// (X-OpsConductor-Timestamp and X-OpsConductor-Signature: sha256=HMAC of "{timestamp}."
        /// and the body).
        #[arg(long, value_parser = ["none", "token", "hmac"])]
        mode: String,
        /// The environment variable holding the secret. Without it, token and hmac get a
        /// random secret, printed once.
        #[arg(long, value_name = "VAR")]
        secret_env: Option<String>,
        /// A network allowed to post, e.g. 10.0.0.0/8 (repeatable). None: any address.
        #[arg(long = "allow", value_name = "CIDR")]
        allow: Vec<String>,
        /// hmac: how far the timestamp may be from the server's clock (default 300).
        #[arg(long)]
        tolerance_seconds: Option<u32>,
    },
    // --- bundle files (runtime/src/cli/bundles.rs) ---
    /// Packs a bundle folder into one file, <id>-<version>.ocbundle: manifest, wasm, fixtures,
    /// SHA256SUMS and, with --key, an ed25519 signature.
    Pack {
        dir: PathBuf,
        /// The signing key (`addon keygen`).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Where to write the bundle file.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Generates a bundle signing key: writes <name>.key (readable by you only) and prints the
    /// public key for `[bundles] trusted_keys`.
    Keygen { name: String },
    /// Puts back the version the addon's last upgrade replaced (one step); running servers load
    /// it within seconds.
    Rollback { id: String },
    // --- authoring (runtime/src/authoring.rs); no database except `record` ---
    /// Scaffolds a new addon: a Cargo project against the SDK, manifest, a fixture, README.
    New {
        /// The addon id (a-z, 0-9, `-`, `_`); also its webhook path.
        id: String,
        #[arg(long, value_enum)]
        kind: crate::authoring::Kind,
        /// Where to create it (default ./<id>); must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The addon SDK to depend on (default: the addon-sdk of the tree this binary was
        /// built from).
        #[arg(long)]
        sdk_path: Option<PathBuf>,
    },
    /// Builds an addon's source directory for wasm32-wasip2 and lays out its bundle.
    Build {
        dir: PathBuf,
        /// The bundle directory (default <dir>/target/bundle), replaced.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Runs every fixture of a bundle or an addon's source directory (built first when
    /// needed) through the real sandbox; exits non-zero when any fails.
    Test {
        path: PathBuf,
        /// Rewrites the expected files of failing fixtures with what the addon produced.
        #[arg(long)]
        update: bool,
    },
    /// Polls a configured target once through the real poll path and records what the host's
    /// fetches returned as fixtures/<fixture>.input.poll.json (and the .expected.json).
    Record {
        /// The addon's bundle or source directory (the fixture goes to its fixtures/).
        dir: PathBuf,
        /// The target to poll (name or id), with its credential.
        #[arg(long)]
        target: String,
        /// The fixture's name.
        #[arg(long)]
        fixture: String,
    },
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
            println!(
                "opsconductor listening on http://{}; the console is at {}",
                server.addr(),
                crate::server::console_url(server.addr())
            );
            shutdown_signal().await;
            tracing::info!("shutting down");
            server.stop().await?;
            Ok(())
        }
        Command::Openapi => {
            print!(
                "{}",
                crate::api::openapi::pretty(&crate::api::openapi::build(&crate::api::routes()))
            );
            Ok(())
        }
        Command::Snmp(cmd) => snmp_command(cmd, &config).await,
        Command::Target(cmd) => target_command(cmd, &config).await,
        Command::Credential(cmd) => credential_command(cmd, &config).await,
        Command::User(cmd) => account_command(cmd, &config).await,
        Command::Auth(cmd) => auth_command(cmd, &config).await,
        Command::Secrets(SecretsCommand::RotateKey) => rotate_secrets_key(&config).await,
        Command::Addon(AddonCommand::Pack { dir, key, out }) => {
            bundles::pack_command(&dir, key.as_deref(), &out)
        }
        Command::Addon(AddonCommand::Keygen { name }) => bundles::keygen_command(&name),
        Command::Addon(cmd) if cmd.is_authoring() => authoring_command(cmd, &config).await,
        Command::Addon(cmd) => {
            let core = Core::open(&config).await?;
            match cmd {
                AddonCommand::Install {
                    bundles: paths,
                    accept_capabilities,
                } => {
                    bundles::install_command(&core, &config, paths, accept_capabilities).await?;
                }
                AddonCommand::Rollback { id } => bundles::rollback_command(&core, &id).await?,
                AddonCommand::Pack { .. } | AddonCommand::Keygen { .. } => {
                    unreachable!("run without the database, above")
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
                AddonCommand::Settings { id } => {
                    use crate::webhook_auth::AddonSettings;
                    if core.store.addon(&id).await?.is_none() {
                        anyhow::bail!("no addon `{id}` is installed");
                    }
                    let settings = match core.store.addon_settings(&id).await? {
                        None => AddonSettings::default(),
                        Some(stored) => AddonSettings::from_stored(&stored).map_err(|e| {
                            anyhow::anyhow!(
                                "addon `{id}` has stored settings that cannot be used (field \
                                 `{}`), so its webhooks are refused; set them again",
                                e.field
                            )
                        })?,
                    };
                    println!("{:#}", settings.public());
                }
                AddonCommand::New { .. }
                | AddonCommand::Build { .. }
                | AddonCommand::Test { .. }
                | AddonCommand::Record { .. } => unreachable!("authoring_command runs these"),
                AddonCommand::WebhookAuth {
                    id,
                    mode,
                    secret_env,
                    allow,
                    tolerance_seconds,
                } => {
                    webhook_auth_command(
                        &core.store,
                        &id,
                        &mode,
                        secret_env,
                        allow,
                        tolerance_seconds,
                    )
                    .await?;
                }
            }
            Ok(())
        }
    }
}

/// `opsconductor addon webhook-auth`: the same settings document and checks as
/// `PUT /api/v1/addons/{id}/settings`, built from flags.
async fn webhook_auth_command(
    store: &crate::store::Store,
    id: &str,
    mode: &str,
    secret_env: Option<String>,
    allow: Vec<String>,
    tolerance_seconds: Option<u32>,
) -> anyhow::Result<()> {
    use crate::webhook_auth::AddonSettings;
    if store.addon(id).await?.is_none() {
        anyhow::bail!("no addon `{id}` is installed");
    }
    let needs_secret = mode != "none";
    let (secret, generated) = match secret_env {
        Some(var) => {
            let value = std::env::var(&var)
                .with_context(|| format!("cannot read the secret from ${var}"))?;
            (Some(value), false)
        }
        None if needs_secret => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            (Some(hex::encode(bytes)), true)
        }
        None => (None, false),
    };
    let mut auth = serde_json::json!({ "mode": mode });
    if let Some(secret) = &secret {
        auth["secret"] = secret.as_str().into();
    }
    if let Some(t) = tolerance_seconds {
        auth["tolerance_seconds"] = t.into();
    }
    let document = serde_json::json!({ "webhook": { "auth": auth, "allow_cidrs": allow } });
    let settings =
        AddonSettings::from_stored(&document).map_err(|e| anyhow::anyhow!("addon settings {e}"))?;
    store
        .set_addon_settings(id, &settings.stored())
        .await
        .with_context(|| format!("cannot store the settings of addon `{id}`"))?;
    println!("{:#}", settings.public());
    if generated && let Some(secret) = secret {
        println!("secret (shown once; give it to the sender now): {secret}");
    }
    Ok(())
}

async fn snmp_command(cmd: SnmpCommand, config: &Config) -> anyhow::Result<()> {
    use crate::inbound::trap::{credentials, engine};
    use crate::store::StoreError;

    let store = crate::server::connect_store(config).await?;
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

#[derive(Debug, Subcommand)]
pub enum TargetCommand {
    /// Adds a target. Without --interval or --cron it polls at its addon's default interval.
    Add {
        #[arg(long)]
        name: String,
        /// host, host:port, [ipv6]:port, or an http(s) base URL.
        #[arg(long)]
        address: String,
        /// The addon that polls it (its manifest must have a `poll` section).
        #[arg(long)]
        addon: String,
        #[command(flatten)]
        schedule: ScheduleArgs,
        /// A JSON object handed to the addon (never secrets: those go in --credentials). Not
        /// `--config`, which names the runtime's configuration file for every command.
        #[arg(long, value_name = "JSON")]
        config_json: Option<String>,
        /// The name of the credential to poll with (see `credential set`).
        #[arg(long)]
        credentials: Option<String>,
        /// Adds it without polling it yet.
        #[arg(long)]
        disabled: bool,
    },
    /// Lists targets with their last poll.
    List {
        /// Only this addon's targets.
        #[arg(long)]
        addon: Option<String>,
    },
    /// Prints a target and its poll status as JSON.
    Show { name: String },
    /// Changes a target; what is not given stays as it is.
    Update {
        name: String,
        /// A new name.
        #[arg(long)]
        rename: Option<String>,
        #[arg(long)]
        address: Option<String>,
        #[arg(long)]
        addon: Option<String>,
        #[command(flatten)]
        schedule: ScheduleArgs,
        /// Replaces the whole config object.
        #[arg(long, value_name = "JSON")]
        config_json: Option<String>,
        #[arg(long, conflicts_with = "no_credentials")]
        credentials: Option<String>,
        /// Polls without credentials from now on.
        #[arg(long)]
        no_credentials: bool,
        #[arg(long, conflicts_with = "disabled")]
        enabled: bool,
        #[arg(long)]
        disabled: bool,
    },
    /// Starts polling a target (its first poll comes within a minute or at its next cron time).
    Enable { name: String },
    /// Stops polling a target; its poll history is kept.
    Disable { name: String },
    /// Deletes a target.
    Remove { name: String },
    /// Polls a target at the next scheduler tick of any running node, then on its schedule.
    Poll { name: String },
    /// Lists the SSH host keys pinned on first use (all targets).
    HostKeys,
    /// Forgets the SSH host key pinned for a target, after an intended key change: the next
    /// poll pins whatever the server presents.
    ForgetHostKey { name: String },
}

#[derive(Debug, clap::Args)]
pub struct ScheduleArgs {
    /// Polls every SECS seconds.
    #[arg(long, value_name = "SECS", conflicts_with = "cron")]
    interval: Option<u32>,
    /// Polls on a cron schedule in UTC: 5 fields (min hour dom month dow), or 6 with seconds.
    #[arg(long, value_name = "EXPR")]
    cron: Option<String>,
}

impl ScheduleArgs {
    fn schedule(self) -> Option<Schedule> {
        match (self.interval, self.cron) {
            (Some(s), _) => Some(Schedule::IntervalSeconds(s)),
            (None, Some(expr)) => Some(Schedule::Cron(expr)),
            (None, None) => None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// Creates or replaces a credential. Secrets come from flags or, to keep them out of shell
    /// history and `ps`, from the environment variables named in each flag's help; they are
    /// never printed.
    Set {
        name: String,
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(CREDENTIAL_KINDS))]
        kind: String,
        #[command(flatten)]
        // Boxed: thirteen optional fields would make every command value this large.
        secret: Box<CredentialFlags>,
    },
    /// Lists credentials: name, kind and what may be shown (user names, protocols), never
    /// secrets.
    List,
    /// Deletes a credential (refused while targets use it).
    Remove { name: String },
}

/// The fields of every kind; `credential set` checks that only the kind's own are given.
#[derive(Debug, clap::Args)]
pub struct CredentialFlags {
    /// snmp_community: the community string.
    #[arg(
        long,
        env = "OPSCONDUCTOR_CREDENTIAL_COMMUNITY",
        hide_env_values = true
    )]
    community: Option<String>,
    /// snmp_usm: the user name.
    #[arg(long)]
    user: Option<String>,
    /// snmp_usm: md5, sha (sha1), sha224, sha256, sha384 or sha512; omit for noAuthNoPriv.
    #[arg(long)]
    auth_protocol: Option<String>,
    /// snmp_usm: turned into a key (RFC 3414) and not stored.
    #[arg(
        long,
        env = "OPSCONDUCTOR_CREDENTIAL_AUTH_PASSWORD",
        hide_env_values = true
    )]
    auth_password: Option<String>,
    /// snmp_usm: des or aes (aes128); needs --auth-protocol.
    #[arg(long)]
    priv_protocol: Option<String>,
    /// snmp_usm: turned into a key (RFC 3414) and not stored.
    #[arg(
        long,
        env = "OPSCONDUCTOR_CREDENTIAL_PRIV_PASSWORD",
        hide_env_values = true
    )]
    priv_password: Option<String>,
    /// http_basic, ssh_password, ssh_key: the user to log in as.
    #[arg(long)]
    username: Option<String>,
    /// http_basic, ssh_password.
    #[arg(long, env = "OPSCONDUCTOR_CREDENTIAL_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// http_bearer: sent as `Authorization: Bearer TOKEN`.
    #[arg(long, env = "OPSCONDUCTOR_CREDENTIAL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// http_header: the header's name, e.g. X-Api-Key.
    #[arg(long)]
    header_name: Option<String>,
    /// http_header: the header's value.
    #[arg(
        long,
        env = "OPSCONDUCTOR_CREDENTIAL_HEADER_VALUE",
        hide_env_values = true
    )]
    header_value: Option<String>,
    /// ssh_key: an OpenSSH (or PEM) private key file.
    #[arg(long, value_name = "PATH")]
    private_key_file: Option<PathBuf>,
    /// ssh_key: the key's passphrase, if it is encrypted.
    #[arg(
        long,
        env = "OPSCONDUCTOR_CREDENTIAL_PASSPHRASE",
        hide_env_values = true
    )]
    passphrase: Option<String>,
}

impl CredentialFlags {
    /// The credential of `kind` these flags describe. A flag of another kind is refused rather
    /// than ignored, so that a mistyped --kind does not store half of what was meant.
    fn into_input(self, kind: &str) -> anyhow::Result<CredentialInput> {
        let given = [
            ("--community", self.community.is_some()),
            ("--user", self.user.is_some()),
            ("--auth-protocol", self.auth_protocol.is_some()),
            ("--auth-password", self.auth_password.is_some()),
            ("--priv-protocol", self.priv_protocol.is_some()),
            ("--priv-password", self.priv_password.is_some()),
            ("--username", self.username.is_some()),
            ("--password", self.password.is_some()),
            ("--token", self.token.is_some()),
            ("--header-name", self.header_name.is_some()),
            ("--header-value", self.header_value.is_some()),
            ("--private-key-file", self.private_key_file.is_some()),
            ("--passphrase", self.passphrase.is_some()),
        ];
        let takes: &[&str] = match kind {
            "snmp_community" => &["--community"],
            "snmp_usm" => &[
                "--user",
                "--auth-protocol",
                "--auth-password",
                "--priv-protocol",
                "--priv-password",
            ],
            "http_basic" | "ssh_password" => &["--username", "--password"],
            "http_bearer" => &["--token"],
            "http_header" => &["--header-name", "--header-value"],
            "ssh_key" => &["--username", "--private-key-file", "--passphrase"],
            other => anyhow::bail!(
                "unknown credential kind `{other}` (expected one of {})",
                CREDENTIAL_KINDS.join(", ")
            ),
        };
        if let Some((flag, _)) = given
            .iter()
            .find(|(flag, present)| *present && !takes.contains(flag))
        {
            anyhow::bail!(
                "{flag} (or its environment variable) does not apply to --kind {kind}, which \
                 takes {}",
                takes.join(", ")
            );
        }
        let need = |value: Option<String>, flag: &str| {
            value.ok_or_else(|| anyhow::anyhow!("--kind {kind} needs {flag}"))
        };
        Ok(match kind {
            "snmp_community" => CredentialInput::SnmpCommunity {
                community: need(self.community, "--community")?,
            },
            "snmp_usm" => CredentialInput::SnmpUsm {
                user: need(self.user, "--user")?,
                auth_protocol: self.auth_protocol,
                auth_password: self.auth_password,
                priv_protocol: self.priv_protocol,
                priv_password: self.priv_password,
            },
            "http_basic" => CredentialInput::HttpBasic {
                username: need(self.username, "--username")?,
                password: need(self.password, "--password")?,
            },
            "ssh_password" => CredentialInput::SshPassword {
                username: need(self.username, "--username")?,
                password: need(self.password, "--password")?,
            },
            "http_bearer" => CredentialInput::HttpBearer {
                token: need(self.token, "--token")?,
            },
            "http_header" => CredentialInput::HttpHeader {
                name: need(self.header_name, "--header-name")?,
                value: need(self.header_value, "--header-value")?,
            },
            _ssh_key => {
                let username = need(self.username, "--username")?;
                let path = self
                    .private_key_file
                    .ok_or_else(|| anyhow::anyhow!("--kind ssh_key needs --private-key-file"))?;
                let private_key = std::fs::read_to_string(&path).with_context(|| {
                    format!("cannot read --private-key-file {}", path.display())
                })?;
                CredentialInput::SshKey {
                    username,
                    private_key,
                    passphrase: self.passphrase,
                }
            }
        })
    }
}

/// Parses `--config-json`: a JSON object.
fn target_config(json: &str) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(json).context("--config-json must be a JSON object")
}

/// A target's schedule as the listing shows it.
fn schedule_text(schedule: &Schedule) -> String {
    match schedule {
        Schedule::IntervalSeconds(s) => format!("every {s}s"),
        Schedule::Cron(expr) => format!("cron {expr}"),
    }
}

/// Prints rows as left-aligned columns sized to their widest cell.
fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header);
    for row in rows {
        line(std::array::from_fn(|i| row[i].as_str()));
    }
}

/// A credential's public fields as `key=value` pairs (absent ones left out).
fn public_text(public: &serde_json::Value) -> String {
    public
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| match v.as_str() {
                    Some(s) => format!("{k}={s}"),
                    None => format!("{k}={v}"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

async fn target_command(cmd: TargetCommand, config: &Config) -> anyhow::Result<()> {
    use crate::store::TargetFilter;

    let store = crate::server::connect_store(config).await?;
    let find = async |name: &str| {
        store
            .target_by_name(name)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no target named `{name}`"))
    };
    // Field errors first, then the addon (whose manifest gives the default interval).
    let default_interval = async |spec: &TargetSpec| -> anyhow::Result<u32> {
        spec.validate()?;
        Ok(store
            .addon_poll_spec(&spec.addon_id)
            .await?
            .default_interval_seconds)
    };
    match cmd {
        TargetCommand::Add {
            name,
            address,
            addon,
            schedule,
            config_json,
            credentials,
            disabled,
        } => {
            let spec = TargetSpec {
                name,
                address,
                addon_id: addon,
                schedule: schedule.schedule(),
                enabled: !disabled,
                config: config_json
                    .as_deref()
                    .map(target_config)
                    .transpose()?
                    .unwrap_or_default(),
                credentials,
            };
            let interval = default_interval(&spec).await?;
            let target = store.create_target(&spec, interval).await?;
            println!(
                "target `{}` added (id {}, {}, {})",
                target.name,
                target.id,
                schedule_text(&target.schedule),
                if target.enabled {
                    "enabled"
                } else {
                    "disabled"
                }
            );
        }
        TargetCommand::List { addon } => {
            let filter = TargetFilter {
                addon_id: addon,
                enabled: None,
            };
            let rows: Vec<[String; 7]> = store
                .targets(&filter)
                .await?
                .into_iter()
                .map(|t| {
                    [
                        t.name,
                        t.addon_id,
                        t.address,
                        schedule_text(&t.schedule),
                        if t.enabled { "yes" } else { "no" }.to_owned(),
                        t.status.last_poll_status.unwrap_or_else(|| "-".to_owned()),
                        t.status.last_poll_at.map_or_else(
                            || "never".to_owned(),
                            |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                        ),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("no targets");
            } else {
                print_table(
                    [
                        "NAME",
                        "ADDON",
                        "ADDRESS",
                        "SCHEDULE",
                        "ENABLED",
                        "LAST STATUS",
                        "LAST POLL",
                    ],
                    &rows,
                );
            }
        }
        TargetCommand::Show { name } => {
            let target = find(&name).await?;
            println!("{}", serde_json::to_string_pretty(&target)?);
        }
        TargetCommand::Update {
            name,
            rename,
            address,
            addon,
            schedule,
            config_json,
            credentials,
            no_credentials,
            enabled,
            disabled,
        } => {
            let current = find(&name).await?;
            let spec = TargetSpec {
                name: rename.unwrap_or(current.name),
                address: address.unwrap_or(current.address),
                addon_id: addon.unwrap_or(current.addon_id),
                // The current schedule, not the addon default: "unspecified stays".
                schedule: Some(schedule.schedule().unwrap_or(current.schedule)),
                enabled: if enabled || disabled {
                    enabled
                } else {
                    current.enabled
                },
                config: match config_json {
                    Some(json) => target_config(&json)?,
                    None => current.config,
                },
                credentials: if no_credentials {
                    None
                } else {
                    credentials.or(current.credentials)
                },
            };
            let interval = default_interval(&spec).await?;
            let target = store.update_target(current.id, &spec, interval).await?;
            println!("target `{}` updated", target.name);
        }
        TargetCommand::Enable { name } => {
            let target = find(&name).await?;
            store.set_target_enabled(target.id, true).await?;
            println!("target `{name}` enabled");
        }
        TargetCommand::Disable { name } => {
            let target = find(&name).await?;
            store.set_target_enabled(target.id, false).await?;
            println!("target `{name}` disabled");
        }
        TargetCommand::Remove { name } => {
            let target = find(&name).await?;
            store.delete_target(target.id).await?;
            println!("target `{name}` removed");
        }
        TargetCommand::Poll { name } => {
            let target = find(&name).await?;
            store.poll_target_now(target.id).await?;
            println!("target `{name}` will be polled at the next scheduler tick");
        }
        TargetCommand::HostKeys => {
            for key in store.ssh_host_keys().await? {
                println!(
                    "{}\t{}\t{}\tpinned {}\tlast seen {}",
                    key.endpoint,
                    key.key_type,
                    key.fingerprint,
                    key.first_seen_at.to_rfc3339(),
                    key.last_seen_at.to_rfc3339()
                );
            }
        }
        TargetCommand::ForgetHostKey { name } => {
            let target = find(&name).await?;
            let (host, port) = crate::poll::target_host_port(&target.address)
                .map_err(|m| anyhow::anyhow!("target `{name}`: {m}"))?;
            let endpoint = crate::poll::ssh_endpoint_name(&host, port.unwrap_or(22));
            if store.forget_ssh_host_key(&endpoint).await? {
                println!("forgot the SSH host key of {endpoint}; the next poll pins the new one");
            } else {
                anyhow::bail!("no SSH host key is pinned for {endpoint}");
            }
        }
    }
    Ok(())
}

async fn credential_command(cmd: CredentialCommand, config: &Config) -> anyhow::Result<()> {
    use crate::store::StoreError;

    let store = crate::server::connect_store(config).await?;
    match cmd {
        CredentialCommand::Set { name, kind, secret } => {
            let secret = secret
                .into_input(&kind)?
                .into_secret()
                .map_err(anyhow::Error::msg)?;
            let summary = store.set_credential(&name, &secret).await?;
            println!(
                "credential `{}` saved ({} {})",
                summary.name,
                summary.kind,
                public_text(&summary.public)
            );
        }
        CredentialCommand::List => {
            let rows: Vec<[String; 4]> = store
                .credentials()
                .await?
                .into_iter()
                .map(|c| {
                    [
                        c.name,
                        c.kind,
                        public_text(&c.public),
                        c.updated_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("no credentials");
            } else {
                print_table(["NAME", "KIND", "DETAILS", "UPDATED"], &rows);
            }
        }
        CredentialCommand::Remove { name } => {
            store.delete_credential(&name).await.map_err(|e| match e {
                StoreError::NotFound => anyhow::anyhow!("no credential named `{name}`"),
                other => other.into(),
            })?;
            println!("credential `{name}` removed");
        }
    }
    Ok(())
}

/// `user` commands. (Not `UserCommand`: that is `snmp user`.)
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Adds a user who signs in with a password. Without --password-env, a password is
    /// generated and printed: the password alone on stdout, once (it is not stored).
    Add {
        /// Lowercased; letters, digits, `.`, `_`, `@`, `-`.
        name: String,
        /// admin, operator, viewer or service.
        #[arg(long)]
        role: Role,
        /// The name of an environment variable holding the password (at least 12 characters),
        /// which keeps it out of shell history and `ps`.
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
    },
    /// Lists users: role, status, last login (never passwords).
    List,
    /// Disables a user and ends all their sessions.
    Disable { name: String },
    /// Enables a disabled user.
    Enable { name: String },
    /// Sets a user's password and ends all their sessions. Without --password-env, a password
    /// is generated and printed alone on stdout, once.
    SetPassword {
        name: String,
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
    },
    /// Changes a user's role (effective at their next request).
    SetRole {
        name: String,
        /// admin, operator, viewer or service.
        #[arg(long)]
        role: Role,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Replaces the access-token signing key. Tokens signed by the old key stay valid until
    /// they expire; running servers sign with the new key within a minute.
    RotateKey,
    /// Manages API keys for integrations.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Creates an API key and prints it alone on stdout, once: only its hash is stored.
    Create {
        name: String,
        /// admin, operator, viewer or service.
        #[arg(long)]
        role: Role,
        /// Expires after this many days (default: never).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_days: Option<u32>,
    },
    /// Lists API keys: name, role, the key's first characters, status, last use.
    List,
    /// Revokes an API key: requests with it are refused from now on.
    Revoke { name: String },
}

impl AddonCommand {
    /// The commands for addon authors, which `authoring_command` runs (most need no database).
    pub fn is_authoring(&self) -> bool {
        matches!(
            self,
            AddonCommand::New { .. }
                | AddonCommand::Build { .. }
                | AddonCommand::Test { .. }
                | AddonCommand::Record { .. }
        )
    }
}

/// Runs one of the authoring commands ([`AddonCommand::is_authoring`]) with `authoring`'s
/// functions: the arguments are the CLI's, the work is the library's.
async fn authoring_command(cmd: AddonCommand, config: &Config) -> anyhow::Result<()> {
    use crate::authoring::{DEFAULT_SDK_PATH, build, record, scaffold, test};
    match cmd {
        AddonCommand::New {
            id,
            kind,
            dir,
            sdk_path,
        } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&id));
            let sdk = sdk_path.unwrap_or_else(|| PathBuf::from(DEFAULT_SDK_PATH));
            let files = scaffold(&id, kind, &dir, &sdk)?;
            println!("created {} addon `{id}` in {}:", kind.name(), dir.display());
            for file in files {
                println!("  {file}");
            }
            println!(
                "next: opsconductor addon build {0} && opsconductor addon test {0}",
                dir.display()
            );
            Ok(())
        }
        AddonCommand::Build { dir, out } => build(&dir, out.as_deref()).map(|_| ()),
        AddonCommand::Test { path, update } => {
            // The report is above; the error gives CI its exit code.
            if !test(&path, update).await? {
                anyhow::bail!("fixtures failed");
            }
            Ok(())
        }
        AddonCommand::Record {
            dir,
            target,
            fixture,
        } => record(config, &dir, &target, &fixture).await,
        other => anyhow::bail!("not an authoring command: {other:?}"),
    }
}

/// `secrets rotate-key`. The key file holds the new key and the old one while the store
/// re-seals (connecting re-seals whatever another key sealed), and the new one alone after:
/// a crash at any step leaves a key file that opens every secret in the database.
async fn rotate_secrets_key(config: &Config) -> anyhow::Result<()> {
    use crate::secrets::{KeySource, SecretKeys, write_key_file};
    let path = match config.secrets_key_source() {
        KeySource::File(path) => path,
        KeySource::Env(_) => anyhow::bail!(
            "the secrets key comes from {}: rotate it by setting the new key there (the old one \
             can then no longer open the database), or unset it to use a key file",
            crate::secrets::KEY_ENV
        ),
    };
    if !path.exists() {
        anyhow::bail!(
            "no secrets key file at {}: nothing to rotate",
            path.display()
        );
    }
    let old = KeySource::File(path.clone()).load()?;
    let old_ids = old.ids().join(", ");
    let both = old.rotated_to(SecretKeys::generate());
    write_key_file(&path, &both)?;
    let new_id = both.current_id().to_owned();
    let new_only = both.clone().current_only();
    let store = crate::store::Store::connect(&config.database_url, std::sync::Arc::new(both))
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", crate::server::redact_url(&config.database_url)))?;
    store.close().await;
    write_key_file(&path, &new_only)?;
    println!(
        "secrets key rotated: every secret is sealed with key {new_id}; key {old_ids} is gone \
         from {}. Give every node this file before starting it.",
        path.display()
    );
    Ok(())
}

/// The password in the environment variable `var` (named by `--password-env`).
fn password_from_env(var: &str) -> anyhow::Result<Secret> {
    match std::env::var(var) {
        Ok(password) => Ok(Secret::new(password)),
        Err(std::env::VarError::NotPresent) => {
            anyhow::bail!("environment variable {var} (named by --password-env) is not set")
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("environment variable {var} (named by --password-env) is not UTF-8")
        }
    }
}

/// Prints a secret generated for someone alone on stdout (so that `$(…)` captures exactly
/// it), with `note` on stderr for whoever reads the terminal; `what` names the secret.
fn print_secret_once(note: &str, what: &str, secret: &Secret) {
    eprintln!("{note}; {what} is printed below, once: it cannot be shown again");
    println!("{}", secret.expose());
}

fn time_text(at: Option<chrono::DateTime<chrono::Utc>>, none: &str) -> String {
    at.map_or_else(
        || none.to_owned(),
        |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

async fn auth_service(config: &Config) -> anyhow::Result<Auth> {
    let store = crate::server::connect_store(config).await?;
    Ok(Auth::new(store, config.auth()).await?)
}

async fn account_command(cmd: AccountCommand, config: &Config) -> anyhow::Result<()> {
    let auth = auth_service(config).await?;
    let by = Actor::cli();
    match cmd {
        AccountCommand::Add {
            name,
            role,
            password_env,
        } => {
            let password = password_env.as_deref().map(password_from_env).transpose()?;
            let (user, generated) = auth
                .create_user(&name, role, password.as_ref(), &by)
                .await?;
            let note = format!("user `{}` added with role {}", user.username, user.role);
            match generated {
                Some(password) => print_secret_once(&note, "its password", &password),
                None => println!("{note}"),
            }
        }
        AccountCommand::List => {
            let rows: Vec<[String; 5]> = auth
                .users()
                .await?
                .into_iter()
                .map(|u| {
                    [
                        u.username,
                        u.role.to_string(),
                        if u.disabled { "disabled" } else { "enabled" }.to_owned(),
                        u.source,
                        time_text(u.last_login_at, "never"),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("no users");
            } else {
                print_table(
                    ["USERNAME", "ROLE", "STATUS", "SOURCE", "LAST LOGIN"],
                    &rows,
                );
            }
        }
        AccountCommand::Disable { name } => {
            let user = auth.set_user_disabled(&name, true, &by).await?;
            println!("user `{}` disabled; its sessions are ended", user.username);
        }
        AccountCommand::Enable { name } => {
            let user = auth.set_user_disabled(&name, false, &by).await?;
            println!("user `{}` enabled", user.username);
        }
        AccountCommand::SetPassword { name, password_env } => {
            let password = password_env.as_deref().map(password_from_env).transpose()?;
            let note = format!(
                "password of `{}` set; its sessions are ended",
                name.to_lowercase()
            );
            match auth.set_password(&name, password.as_ref(), &by).await? {
                Some(generated) => print_secret_once(&note, "the new password", &generated),
                None => println!("{note}"),
            }
        }
        AccountCommand::SetRole { name, role } => {
            let user = auth.set_user_role(&name, role, &by).await?;
            println!("user `{}` now has role {}", user.username, user.role);
        }
    }
    Ok(())
}

async fn auth_command(cmd: AuthCommand, config: &Config) -> anyhow::Result<()> {
    let auth = auth_service(config).await?;
    let by = Actor::cli();
    match cmd {
        AuthCommand::RotateKey => {
            let kid = auth.rotate_signing_key(&by).await?;
            println!(
                "signing key rotated: new key {kid}; tokens signed by the previous key stay valid \
                 until they expire ({} minutes at most)",
                auth.access_token_ttl().num_minutes()
            );
        }
        AuthCommand::ApiKey(ApiKeyCommand::Create {
            name,
            role,
            expires_days,
        }) => {
            let expires_at = expires_days
                .map(|days| chrono::Utc::now() + chrono::Duration::days(i64::from(days)));
            let (info, key) = auth.create_api_key(&name, role, expires_at, &by).await?;
            let note = format!(
                "API key `{}` created with role {}, {}",
                info.name,
                info.role,
                match info.expires_at {
                    Some(at) => format!("expiring {}", time_text(Some(at), "")),
                    None => "never expiring".to_owned(),
                }
            );
            print_secret_once(&note, "the key", &key);
        }
        AuthCommand::ApiKey(ApiKeyCommand::List) => {
            let now = chrono::Utc::now();
            let rows: Vec<[String; 7]> = auth
                .api_keys()
                .await?
                .into_iter()
                .map(|k| {
                    let status = if k.revoked_at.is_some() {
                        "revoked"
                    } else if k.expires_at.is_some_and(|at| at <= now) {
                        "expired"
                    } else {
                        "active"
                    };
                    [
                        k.name,
                        k.role.to_string(),
                        format!("{}…", k.prefix),
                        status.to_owned(),
                        k.created_by,
                        time_text(k.expires_at, "never"),
                        time_text(k.last_used_at, "never"),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("no API keys");
            } else {
                print_table(
                    [
                        "NAME",
                        "ROLE",
                        "KEY",
                        "STATUS",
                        "CREATED BY",
                        "EXPIRES",
                        "LAST USED",
                    ],
                    &rows,
                );
            }
        }
        AuthCommand::ApiKey(ApiKeyCommand::Revoke { name }) => {
            let info = auth.revoke_api_key_named(&name, &by).await?;
            println!("API key `{}` ({}…) revoked", info.name, info.prefix);
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
