//! `opsconductor addon …`: installed addons (list, enable, disable, settings, webhook
//! authentication), bundle files ([`bundles`]: pack, keygen, install, rollback) and the
//! authoring commands, whose work is [`crate::authoring`]'s.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::config::Config;
use crate::registry::set_enabled;
use crate::server::Core;

mod bundles;

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
    // --- bundle files (runtime/src/cli/addon/bundles.rs) ---
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
    // --- authoring (runtime/src/authoring.rs and authoring/); no database except `record` ---
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
    /// Converts a legacy system's addon manifest (`method`, `parser.type` json/snmp/regex/grok,
    /// `severity_mappings`, ...) into a rules addon folder; prints what it could not carry over.
    ConvertLegacy {
        manifest: PathBuf,
        /// The folder to write (default ./<id>); must not exist or be empty.
        #[arg(long)]
        out: Option<PathBuf>,
        /// A folder of fixture files to copy into the addon's fixtures/.
        #[arg(long)]
        fixtures: Option<PathBuf>,
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

impl AddonCommand {
    /// The commands for addon authors, which `authoring_command` runs (most need no database).
    pub fn is_authoring(&self) -> bool {
        matches!(
            self,
            AddonCommand::New { .. }
                | AddonCommand::ConvertLegacy { .. }
                | AddonCommand::Build { .. }
                | AddonCommand::Test { .. }
                | AddonCommand::Record { .. }
        )
    }
}

/// Runs an `addon` command: bundle files and authoring need no database (except `record`),
/// the rest works on the installed addons.
pub(super) async fn addon_command(cmd: AddonCommand, config: &Config) -> anyhow::Result<()> {
    match cmd {
        AddonCommand::Pack { dir, key, out } => bundles::pack_command(&dir, key.as_deref(), &out),
        AddonCommand::Keygen { name } => bundles::keygen_command(&name),
        cmd if cmd.is_authoring() => authoring_command(cmd, config).await,
        cmd => {
            let core = Core::open(config).await?;
            match cmd {
                AddonCommand::Install {
                    bundles: paths,
                    accept_capabilities,
                } => {
                    bundles::install_command(&core, config, paths, accept_capabilities).await?;
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
                | AddonCommand::ConvertLegacy { .. }
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
        .set_addon_settings(id, &settings.stored(), chrono::Utc::now())
        .await
        .with_context(|| format!("cannot store the settings of addon `{id}`"))?;
    println!("{:#}", settings.public());
    if generated && let Some(secret) = secret {
        println!("secret (shown once; give it to the sender now): {secret}");
    }
    Ok(())
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
            if kind == crate::authoring::Kind::Rules {
                println!("next: opsconductor addon test {}", dir.display());
            } else {
                println!(
                    "next: opsconductor addon build {0} && opsconductor addon test {0}",
                    dir.display()
                );
            }
            Ok(())
        }
        AddonCommand::ConvertLegacy {
            manifest,
            out,
            fixtures,
        } => {
            let done =
                crate::authoring::convert_legacy(&manifest, out.as_deref(), fixtures.as_deref())?;
            println!(
                "converted `{}` into the rules addon {} ({} fixture files)",
                done.id,
                done.dir.display(),
                done.fixtures
            );
            if done.left_out.is_empty() {
                println!("everything was carried over");
            } else {
                println!("not carried over:");
                for line in &done.left_out {
                    println!("  {line}");
                }
            }
            println!("next: opsconductor addon test {}", done.dir.display());
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
