//! `opsconductor target …`: poll targets, their schedules and the SSH host keys pinned for
//! them.

use anyhow::Context;
use clap::Subcommand;

use super::output::print_table;
use crate::config::Config;
use crate::target::{Schedule, TargetSpec};

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

pub(super) async fn target_command(cmd: TargetCommand, config: &Config) -> anyhow::Result<()> {
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
            let target = store
                .create_target(&spec, interval, chrono::Utc::now())
                .await?;
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
            let target = store
                .update_target(current.id, &spec, interval, chrono::Utc::now())
                .await?;
            println!("target `{}` updated", target.name);
        }
        TargetCommand::Enable { name } => {
            let target = find(&name).await?;
            store
                .set_target_enabled(target.id, true, chrono::Utc::now())
                .await?;
            println!("target `{name}` enabled");
        }
        TargetCommand::Disable { name } => {
            let target = find(&name).await?;
            store
                .set_target_enabled(target.id, false, chrono::Utc::now())
                .await?;
            println!("target `{name}` disabled");
        }
        TargetCommand::Remove { name } => {
            let target = find(&name).await?;
            store.delete_target(target.id).await?;
            println!("target `{name}` removed");
        }
        TargetCommand::Poll { name } => {
            let target = find(&name).await?;
            store.poll_target_now(target.id, chrono::Utc::now()).await?;
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
