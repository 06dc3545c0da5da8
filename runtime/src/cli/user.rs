//! `opsconductor user …`: the people who sign in to the API (not SNMPv3 users: those are
//! `snmp user`, in [`super::snmp`]).

use clap::Subcommand;

use super::auth::auth_service;
use super::output::{print_secret_once, print_table, time_text};
use crate::auth::{Actor, Role, Secret};
use crate::config::Config;

/// `user` commands. (`UsmUserCommand` is `snmp user`.)
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

pub(super) async fn account_command(cmd: AccountCommand, config: &Config) -> anyhow::Result<()> {
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
