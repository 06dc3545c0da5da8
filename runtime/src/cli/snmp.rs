//! `opsconductor snmp …`: the SNMP trap receiver's engine ID, the v1/v2c communities and the
//! SNMPv3 (USM) users it accepts.

use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum SnmpCommand {
    /// Prints this runtime's SNMPv3 engine ID (generated and stored on first use); senders of
    /// SNMPv3 INFORMs discover it, senders of SNMPv3 traps do not need it.
    EngineId,
    /// Manages v1/v2c communities accepted for traps.
    #[command(subcommand)]
    Community(CommunityCommand),
    /// Manages SNMPv3 (USM) users accepted for traps and informs.
    // A USM user is an SNMP sender's credentials, not a person (`opsconductor user`): the
    // command stays `snmp user`, the code says which user it means.
    #[command(subcommand, name = "user")]
    UsmUser(UsmUserCommand),
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
pub enum UsmUserCommand {
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

pub(super) async fn snmp_command(cmd: SnmpCommand, config: &Config) -> anyhow::Result<()> {
    use crate::inbound::trap::{credentials, local_engine};
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
            let id = local_engine::engine_id(&store, config.snmp_engine_id.as_deref()).await?;
            println!("0x{}", hex::encode(id));
        }
        SnmpCommand::Community(CommunityCommand::Add { label, community }) => {
            store
                .snmp_set_community(&label, &community, chrono::Utc::now())
                .await?;
            println!("community `{label}` accepted");
        }
        SnmpCommand::Community(CommunityCommand::List) => {
            for c in store.snmp_communities().await? {
                println!("{}", c.label);
            }
        }
        SnmpCommand::Community(CommunityCommand::Remove { label }) => {
            store
                .snmp_remove_community(&label, chrono::Utc::now())
                .await
                .map_err(not_found(format!("community labelled `{label}`")))?;
            println!("community `{label}` removed");
        }
        SnmpCommand::UsmUser(UsmUserCommand::Add {
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
            store.snmp_set_user(&record, chrono::Utc::now()).await?;
            println!("user `{name}` saved");
        }
        SnmpCommand::UsmUser(UsmUserCommand::List) => {
            for u in store.snmp_users().await? {
                println!(
                    "{:<32} auth={:<8} priv={}",
                    u.name,
                    u.auth_protocol.as_deref().unwrap_or("none"),
                    u.priv_protocol.as_deref().unwrap_or("none")
                );
            }
        }
        SnmpCommand::UsmUser(UsmUserCommand::Remove { name }) => {
            store
                .snmp_remove_user(&name, chrono::Utc::now())
                .await
                .map_err(not_found(format!("SNMPv3 user `{name}`")))?;
            println!("user `{name}` removed");
        }
    }
    Ok(())
}
