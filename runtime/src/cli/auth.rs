//! `opsconductor auth …`: the access-token signing key and API keys.

use clap::Subcommand;

use super::output::{print_secret_once, print_table, time_text};
use crate::auth::{Actor, Auth, Role};
use crate::config::Config;

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

/// The authentication service on the configured database, for `auth` and `user` commands.
pub(super) async fn auth_service(config: &Config) -> anyhow::Result<Auth> {
    let store = crate::server::connect_store(config).await?;
    Ok(Auth::new(store, config.auth()).await?)
}

pub(super) async fn auth_command(cmd: AuthCommand, config: &Config) -> anyhow::Result<()> {
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
