//! `opsconductor credential …`: the credentials targets poll with, from flags, environment
//! variables or a key file; secrets are never printed.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::output::print_table;
use crate::config::Config;
use crate::target::CREDENTIAL_KINDS;
use crate::target::CredentialInput;

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

pub(super) async fn credential_command(
    cmd: CredentialCommand,
    config: &Config,
) -> anyhow::Result<()> {
    use crate::store::StoreError;

    let store = crate::server::connect_store(config).await?;
    match cmd {
        CredentialCommand::Set { name, kind, secret } => {
            let secret = secret
                .into_input(&kind)?
                .into_secret()
                .map_err(anyhow::Error::msg)?;
            let summary = store
                .set_credential(&name, &secret, chrono::Utc::now())
                .await?;
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
