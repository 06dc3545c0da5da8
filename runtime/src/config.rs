//! Runtime configuration: defaults, an optional TOML file, then environment overrides.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::writer::WriterConfig;

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "opsconductor.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the HTTP server (API, webhooks, health) listens.
    pub listen: SocketAddr,
    /// Where the SNMP trap listener binds (UDP); absent to run without one. Port 162 needs root
    /// or CAP_NET_BIND_SERVICE.
    pub trap_listen: Option<SocketAddr>,
    /// Traps decoded but not yet ingested before new ones are dropped (and counted).
    pub trap_queue: usize,
    /// What the queued traps may hold together, in MiB; beyond it new traps are dropped (and
    /// counted) like on a full queue.
    pub trap_queue_megabytes: usize,
    /// Traps ingested concurrently.
    pub trap_workers: usize,
    /// This runtime's SNMPv3 engine ID as hex; generated and stored on first start when absent.
    /// Give each node its own when several share a database.
    pub snmp_engine_id: Option<String>,
    /// `sqlite://path/to/file.db` (created on first run) or `postgres://user@host/db`.
    pub database_url: String,
    /// Runtime-owned files: the SQLite database by default and the compiled-addon cache.
    pub data_dir: PathBuf,
    /// How often a running server checks the database for addon changes made elsewhere (the
    /// CLI, another node) and reloads.
    pub registry_poll_ms: u64,
    pub writer_max_batch: usize,
    pub writer_queue: usize,
    /// A `tracing` filter, e.g. `info` or `opsconductor=debug,tower_http=info`.
    pub log: String,
    /// `text` for people, `json` (one object per line) for log shippers.
    pub log_format: LogFormat,
    /// Runs polls and maintenance jobs. Every node of a cluster may: they share the work
    /// through leases in the database.
    pub scheduler: bool,
    /// This node's name in poll leases; defaults to `<hostname>-<pid>`.
    pub node_id: Option<String>,
    /// Polls running at once on this node.
    pub poll_concurrency: usize,
    /// How long a claimed poll stays leased to this node without renewal; renewed every third
    /// of it while the poll runs. A crashed node's polls are taken over after at most this long.
    pub poll_lease_seconds: u64,
    /// On SIGTERM, how long polls still running may take to finish and record their outcome;
    /// the rest are cut short and their leases given back, so that another node polls those
    /// targets at once rather than after the lease.
    pub poll_stop_grace_seconds: u64,
    /// How often the scheduler looks for due polls.
    pub scheduler_tick_ms: u64,
    /// Resolved alerts older than this are deleted by the retention job (0 keeps them forever).
    pub retention_days: u32,
    /// The real-time event WebSocket (`[websocket]`).
    pub websocket: crate::api::ws::WebSocketConfig,
    /// The key that signs access tokens: standard base64 of at least 32 bytes (e.g. `openssl
    /// rand -base64 32`), the same on every node. When absent, a key is generated and stored in
    /// the database on first start, and `opsconductor auth rotate-key` replaces it.
    pub jwt_signing_key: Option<crate::auth::Secret>,
    /// How long an access token is valid (1 to 1440).
    pub access_token_minutes: u32,
    /// How long a refresh token is valid; each refresh issues a new one (1 to 365).
    pub refresh_token_days: u32,
    /// How long a session lasts from sign-in, however often it is refreshed (1 to 365): after
    /// it, the user signs in again.
    pub session_lifetime_days: u32,
    /// Login and API rate limits and the API's IP allowlist (`[limits]`).
    pub limits: crate::api::limits::LimitsConfig,
    /// Optional directory login (`[ldap]`).
    pub ldap: Option<crate::directory::LdapConfig>,
    /// Optional OpenID Connect sign-in (`[oidc]`).
    pub oidc: Option<crate::oidc::OidcConfig>,
    /// Which signatures addon bundle files need (`[bundles]`).
    pub bundles: crate::bundle::BundleConfig,
    /// Where polls may connect beyond the default egress policy (`[poll] allow`): loopback,
    /// link-local (the cloud metadata service), unspecified and multicast addresses are refused
    /// unless a network here allows them.
    pub poll: crate::egress::EgressPolicy,
    /// The HTTP server's timeouts and connection caps (`[http]`).
    pub http: crate::http_server::HttpConfig,
    /// When an addon that keeps faulting is quarantined, and for how long (`[quarantine]`).
    pub quarantine: crate::quarantine::QuarantineConfig,
    /// The file holding the key that seals the database's secrets; generated (mode 0600) when
    /// absent. Default: beside the data directory, `data.key` for `data/`. Keep it out of the
    /// database's backups, and give every node of a cluster the same one.
    pub secrets_key_file: Option<PathBuf>,
    /// The secrets key itself (standard base64 of 32 bytes), instead of the file: only from
    /// `OPSCONDUCTOR_SECRETS_KEY`.
    #[serde(skip)]
    pub secrets_key: Option<crate::auth::Secret>,
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message` and the event's
    /// fields at the top level.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        let writer = WriterConfig::default();
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            trap_listen: Some(SocketAddr::from(([0, 0, 0, 0], 162))),
            trap_queue: crate::inbound::trap::TrapConfig::default().queue,
            trap_queue_megabytes: crate::inbound::trap::TrapConfig::default().queue_bytes
                / (1024 * 1024),
            trap_workers: crate::inbound::trap::TrapConfig::default().workers,
            snmp_engine_id: None,
            database_url: "sqlite://data/opsconductor.db".into(),
            data_dir: PathBuf::from("data"),
            registry_poll_ms: 2_000,
            writer_max_batch: writer.max_batch_actions,
            writer_queue: writer.queue_capacity,
            log: "info".into(),
            log_format: LogFormat::Text,
            scheduler: true,
            node_id: None,
            poll_concurrency: 64,
            poll_lease_seconds: 30,
            poll_stop_grace_seconds: 10,
            scheduler_tick_ms: 1_000,
            retention_days: 30,
            websocket: crate::api::ws::WebSocketConfig::default(),
            jwt_signing_key: None,
            access_token_minutes: 15,
            refresh_token_days: 30,
            session_lifetime_days: 90,
            limits: crate::api::limits::LimitsConfig::default(),
            ldap: None,
            oidc: None,
            bundles: crate::bundle::BundleConfig::default(),
            poll: crate::egress::EgressPolicy::default(),
            http: crate::http_server::HttpConfig::default(),
            quarantine: crate::quarantine::QuarantineConfig::default(),
            secrets_key_file: None,
            secrets_key: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: &'static str, message: String },
}

impl Config {
    /// Defaults, then `path` (or `opsconductor.toml` in the working directory when it exists),
    /// then the environment: `OPSCONDUCTOR_LISTEN`, `OPSCONDUCTOR_TRAP_LISTEN` (`off` disables),
    /// `DATABASE_URL`, `OPSCONDUCTOR_DATA_DIR`, `OPSCONDUCTOR_LOG`,
    /// `OPSCONDUCTOR_JWT_SIGNING_KEY`, `OPSCONDUCTOR_POLL_ALLOW` (networks, comma-separated),
    /// `OPSCONDUCTOR_SECRETS_KEY`, `OPSCONDUCTOR_SECRETS_KEY_FILE`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let file = match path {
            Some(p) => Some(p.to_owned()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
        };
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path,
                    message: e.to_string(),
                })?
            }
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = var("OPSCONDUCTOR_LISTEN") {
            self.listen = v.parse().map_err(|e| ConfigError::Env {
                name: "OPSCONDUCTOR_LISTEN",
                message: format!("`{v}` is not an address like 127.0.0.1:8080: {e}"),
            })?;
        }
        if let Some(v) = var("OPSCONDUCTOR_TRAP_LISTEN") {
            self.trap_listen = match v.as_str() {
                "" | "off" => None,
                _ => Some(v.parse().map_err(|e| ConfigError::Env {
                    name: "OPSCONDUCTOR_TRAP_LISTEN",
                    message: format!("`{v}` is not an address like 0.0.0.0:162 (or `off`): {e}"),
                })?),
            };
        }
        if let Some(v) = var("DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = var("OPSCONDUCTOR_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = var("OPSCONDUCTOR_LOG") {
            self.log = v;
        }
        if let Some(v) = var("OPSCONDUCTOR_LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::Env {
                        name: "OPSCONDUCTOR_LOG_FORMAT",
                        message: format!("`{v}` is not `text` or `json`"),
                    });
                }
            };
        }
        if let Some(v) = var(crate::secrets::KEY_ENV) {
            self.secrets_key = Some(crate::auth::Secret::new(v));
        }
        if let Some(v) = var("OPSCONDUCTOR_SECRETS_KEY_FILE") {
            self.secrets_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = var("OPSCONDUCTOR_JWT_SIGNING_KEY") {
            self.jwt_signing_key = Some(crate::auth::Secret::new(v));
        }
        if let Some(v) = var("OPSCONDUCTOR_POLL_ALLOW") {
            self.poll.allow = v
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| {
                    n.parse().map_err(|e| ConfigError::Env {
                        name: "OPSCONDUCTOR_POLL_ALLOW",
                        message: format!("`{n}` is not a network like 127.0.0.0/8: {e}"),
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = var("OPSCONDUCTOR_NODE_ID") {
            self.node_id = Some(v);
        }
        if let Some(v) = var("OPSCONDUCTOR_SCHEDULER") {
            self.scheduler = match v.as_str() {
                "on" | "true" | "1" => true,
                "off" | "false" | "0" => false,
                _ => {
                    return Err(ConfigError::Env {
                        name: "OPSCONDUCTOR_SCHEDULER",
                        message: format!("`{v}` is not `on` or `off`"),
                    });
                }
            };
        }
        let number = |name: &'static str, v: String| {
            v.parse::<u64>().map_err(|e| ConfigError::Env {
                name,
                message: format!("`{v}` is not a whole number: {e}"),
            })
        };
        if let Some(v) = var("OPSCONDUCTOR_POLL_LEASE_SECONDS") {
            self.poll_lease_seconds = number("OPSCONDUCTOR_POLL_LEASE_SECONDS", v)?;
        }
        if let Some(v) = var("OPSCONDUCTOR_POLL_STOP_GRACE_SECONDS") {
            self.poll_stop_grace_seconds = number("OPSCONDUCTOR_POLL_STOP_GRACE_SECONDS", v)?;
        }
        if let Some(v) = var("OPSCONDUCTOR_SCHEDULER_TICK_MS") {
            self.scheduler_tick_ms = number("OPSCONDUCTOR_SCHEDULER_TICK_MS", v)?;
        }
        if let Some(v) = var("OPSCONDUCTOR_POLL_CONCURRENCY") {
            self.poll_concurrency = number("OPSCONDUCTOR_POLL_CONCURRENCY", v)? as usize;
        }
        Ok(())
    }

    pub fn traps(&self) -> crate::inbound::trap::TrapConfig {
        crate::inbound::trap::TrapConfig {
            queue: self.trap_queue.max(1),
            queue_bytes: self.trap_queue_megabytes.max(1) * 1024 * 1024,
            workers: self.trap_workers.max(1),
        }
    }

    pub fn writer(&self) -> WriterConfig {
        WriterConfig {
            max_batch_actions: self.writer_max_batch.max(1),
            queue_capacity: self.writer_queue.max(1),
        }
    }

    /// Where precompiled addon components are cached.
    pub fn scheduler_config(&self) -> crate::scheduler::SchedulerConfig {
        let node_id = self.node_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "node".into());
            format!("{host}-{}", std::process::id())
        });
        crate::scheduler::SchedulerConfig {
            node_id,
            concurrency: self.poll_concurrency.max(1),
            lease: std::time::Duration::from_secs(self.poll_lease_seconds.max(3)),
            tick: std::time::Duration::from_millis(self.scheduler_tick_ms.clamp(50, 60_000)),
            retention_days: self.retention_days,
            egress: self.poll.clone(),
            stop_grace: std::time::Duration::from_secs(self.poll_stop_grace_seconds),
        }
    }

    /// Token lifetimes and the signing key, for [`crate::auth::Auth::new`] (which checks them).
    pub fn auth(&self) -> crate::auth::AuthConfig {
        crate::auth::AuthConfig {
            signing_key: self.jwt_signing_key.clone(),
            access_token_ttl: chrono::Duration::minutes(i64::from(self.access_token_minutes)),
            refresh_token_ttl: chrono::Duration::days(i64::from(self.refresh_token_days)),
            session_lifetime: chrono::Duration::days(i64::from(self.session_lifetime_days)),
        }
    }

    /// Where the key that seals the database's secrets comes from.
    pub fn secrets_key_source(&self) -> crate::secrets::KeySource {
        match &self.secrets_key {
            Some(key) => crate::secrets::KeySource::Env(key.expose().to_owned()),
            None => crate::secrets::KeySource::File(
                self.secrets_key_file
                    .clone()
                    .unwrap_or_else(|| crate::secrets::KeySource::default_file(&self.data_dir)),
            ),
        }
    }

    pub fn compiled_cache_dir(&self) -> PathBuf {
        self.data_dir.join("compiled")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_values() {
        let mut c: Config = toml::from_str("listen = \"0.0.0.0:9000\"\nlog = \"debug\"").unwrap();
        c.apply_env(|name| match name {
            "OPSCONDUCTOR_LISTEN" => Some("127.0.0.1:7000".into()),
            "DATABASE_URL" => Some("postgres://x@127.0.0.1/y".into()),
            "OPSCONDUCTOR_TRAP_LISTEN" => Some("off".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.database_url, "postgres://x@127.0.0.1/y");
        assert_eq!(c.log, "debug");
        assert_eq!(c.trap_listen, None);
    }

    #[test]
    fn auth_settings_and_a_signing_key_that_never_shows() {
        let c: Config = toml::from_str(
            "jwt_signing_key = \"c2VjcmV0LWZyb20tdGhlLWZpbGU=\"\naccess_token_minutes = 5",
        )
        .unwrap();
        let auth = c.auth();
        assert_eq!(auth.access_token_ttl, chrono::Duration::minutes(5));
        assert_eq!(auth.refresh_token_ttl, chrono::Duration::days(30));
        assert_eq!(
            auth.signing_key.as_ref().map(|k| k.expose()),
            Some("c2VjcmV0LWZyb20tdGhlLWZpbGU=")
        );
        assert!(!format!("{c:?}").contains("c2VjcmV0"), "{c:?}");
        let mut c = Config::default();
        assert!(c.auth().signing_key.is_none());
        c.apply_env(|n| (n == "OPSCONDUCTOR_JWT_SIGNING_KEY").then(|| "from-env".into()))
            .unwrap();
        assert_eq!(c.auth().signing_key.unwrap().expose(), "from-env");
    }

    #[test]
    fn bundle_signatures_are_configured_in_their_own_section() {
        let c: Config = toml::from_str(
            "[bundles]\ntrusted_keys = [\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"]\nrequire_signatures = true",
        )
        .unwrap();
        assert!(c.bundles.require_signatures);
        assert_eq!(c.bundles.trusted_keys.len(), 1);
        assert!(!Config::default().bundles.require_signatures);
        let err = toml::from_str::<Config>("[bundles]\nrequire = true")
            .unwrap_err()
            .to_string();
        assert!(err.contains("require"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let err = toml::from_str::<Config>("listne = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listne"), "{err}");
        let mut c = Config::default();
        let err = c
            .apply_env(|n| (n == "OPSCONDUCTOR_LISTEN").then(|| "nope".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("OPSCONDUCTOR_LISTEN"), "{err}");
    }

    /// The TOML blocks of docs/operations.md's configuration reference, in order.
    fn documented_reference() -> Vec<&'static str> {
        include_str!("../../docs/operations.md")
            .split("<!-- configuration reference:")
            .skip(1)
            .map(|part| {
                let start =
                    part.find("```toml\n").expect("a toml block follows") + "```toml\n".len();
                let end = part[start..].find("```").expect("the block ends");
                &part[start..start + end]
            })
            .collect()
    }

    #[test]
    fn the_documented_configuration_reference_is_true() {
        let [defaults, optional] = documented_reference()[..] else {
            panic!("docs/operations.md has two reference blocks");
        };
        let parsed: Config = toml::from_str(defaults).unwrap();
        assert_eq!(
            format!("{parsed:#?}"),
            format!("{:#?}", Config::default()),
            "the reference's values are not the defaults"
        );
        // Every field the Debug form names (at any depth) is documented, set or commented out:
        // the optional sections' fields in their own block. `secrets_key` is read only from the
        // environment.
        let debug = format!("{:#?}", Config::default());
        let keys = debug.lines().filter_map(|line| {
            let (name, _) = line.trim_start().split_once(": ")?;
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_')
                .then_some(name)
        });
        let documented = format!("\n{defaults}{optional}");
        for key in keys.filter(|&key| key != "secrets_key") {
            assert!(
                documented.contains(&format!("\n{key} ="))
                    || documented.contains(&format!("\n# {key} ="))
                    || documented.contains(&format!("\n[{key}]")),
                "`{key}` is missing from the configuration reference"
            );
        }
        let optional: Config = toml::from_str(optional).unwrap();
        assert!(optional.ldap.is_some() && optional.oidc.is_some());
    }
}
