//! Wiring: opens the store, the sandbox and the registry, starts the event bus, the writer,
//! the registry watcher and the event sources, and serves HTTP on an already-bound listener
//! until told to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::api::webhook::WebhookCounters;
use crate::api::{AppState, app};
use crate::bus::{BusConfig, EventBus};
use crate::config::Config;
use crate::inbound::trap::{self, TrapListenerView};
use crate::registry::{Registry, RegistryError};
use crate::sandbox::{HostServices, Sandbox, SandboxError};
use crate::store::{Store, StoreError};
use crate::writer::AlertWriter;
use sources::StatusSources;

pub mod sources;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database {url}: {source}")]
    Store { url: String, source: StoreError },
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("http server: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    EngineId(#[from] trap::local_engine::EngineIdError),
    #[error(transparent)]
    Credentials(#[from] trap::credentials::CredentialError),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    #[error("[bundles]: {0}")]
    Bundles(#[from] crate::bundle::BundleError),
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error("{0}")]
    Config(String),
    #[error("{path}: {source}")]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Committed batches waiting for the event publisher before further ones are dropped (and
/// reported to clients as missed events). The publisher renders a batch with one store read, so
/// it only falls this far behind when the store is much slower than the writer's commits.
const EVENT_PUBLISHER_QUEUE: usize = 4_096;

/// The store and sandbox, as both the server and the CLI's addon commands need them.
pub struct Core {
    pub store: Store,
    pub sandbox: Arc<Sandbox>,
}

impl Core {
    pub async fn open(config: &Config) -> Result<Core, StartError> {
        // The data directory holds the database, the compiled addons and, on a first start,
        // the administrator's password: the runtime's user alone may enter it.
        crate::store::private_dir(&config.data_dir).map_err(|source| StartError::File {
            path: config.data_dir.clone(),
            source,
        })?;
        let store = connect_store(config).await?;
        let sandbox = Arc::new(Sandbox::new(
            Some(config.compiled_cache_dir()),
            HostServices {
                store: store.clone(),
            },
        )?);
        Ok(Core { store, sandbox })
    }
}

/// Connects to the configured database with the configured secrets key (generating the key
/// file on first start), as every command that reads or writes the database does.
pub async fn connect_store(config: &Config) -> Result<Store, StartError> {
    let keys = config.secrets_key_source().load()?;
    Store::connect(&config.database_url, Arc::new(keys))
        .await
        .map_err(|source| StartError::Store {
            url: redact_url(&config.database_url),
            source,
        })
}

/// A running server. Dropping it does not stop it; call [`Server::stop`].
pub struct Server {
    addr: SocketAddr,
    trap_addr: Option<SocketAddr>,
    state: AppState,
    shutdown: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    writer_task: JoinHandle<()>,
    watchers: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts serving HTTP on `listener` and, when given, SNMP traps on `traps` (bind both
    /// first: tests bind port 0).
    pub async fn start(
        config: &Config,
        listener: TcpListener,
        traps: Option<UdpSocket>,
    ) -> Result<Server, StartError> {
        config.quarantine.check().map_err(StartError::Config)?;
        let core = Core::open(config).await?;
        let registry = Arc::new(Registry::new(
            core.store.clone(),
            core.sandbox.clone(),
            config.quarantine,
        ));
        registry.reload().await?;
        let auth = crate::auth::Auth::new(core.store.clone(), config.auth()).await?;
        if let Some(ldap) = &config.ldap {
            ldap.validate()
                .map_err(|e| crate::auth::AuthError::Config(format!("[ldap]: {e}")))?;
        }
        let oidc = match config.oidc.clone() {
            Some(oidc) => {
                Some(Arc::new(crate::oidc::Oidc::new(oidc).map_err(|e| {
                    crate::auth::AuthError::Config(format!("[oidc]: {e}"))
                })?))
            }
            None => None,
        };
        let bundles = Arc::new(config.bundles.policy()?);
        bootstrap_admin(
            &auth,
            &console_url(listener.local_addr()?),
            &config.data_dir,
        )
        .await?;
        let limits = Arc::new(crate::api::limits::Limits::new(&config.limits));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let store_err = |source| StartError::Store {
            url: redact_url(&config.database_url),
            source,
        };
        // The bus before the writer, which reports every committed batch to it.
        let (events, event_tasks) = EventBus::start(
            core.store.clone(),
            BusConfig {
                node: config.scheduler_config().node_id,
                client_queue: config.websocket.client_queue,
                publisher_queue: EVENT_PUBLISHER_QUEUE,
                heartbeat: config.websocket.heartbeat(),
                resume_events: config.websocket.resume_events,
                resume_bytes: config.websocket.resume_megabytes.saturating_mul(1 << 20),
                resume_grace: Duration::from_secs(config.websocket.resume_grace_seconds),
            },
            shutdown_rx.clone(),
        )
        .await
        .map_err(store_err)?;
        let (writer, writer_task) =
            AlertWriter::spawn_publishing(core.store.clone(), config.writer(), events.clone());
        let poll = Duration::from_millis(config.registry_poll_ms.max(50));
        let mut watchers = vec![tokio::spawn(
            registry.clone().watch(poll, shutdown_rx.clone()),
        )];
        watchers.extend(event_tasks);

        let trap_view = TrapListenerView::default();
        let trap_addr = traps.as_ref().map(UdpSocket::local_addr).transpose()?;
        if let Some(socket) = traps {
            let engine = crate::snmp::LocalEngine::new(
                trap::local_engine::engine_id(&core.store, config.snmp_engine_id.as_deref())
                    .await?,
                trap::local_engine::next_boots(&core.store)
                    .await
                    .map_err(store_err)?,
            );
            let generation = core
                .store
                .snmp_credentials_generation()
                .await
                .map_err(store_err)?;
            let receiver = Arc::new(crate::snmp::Receiver::new(
                engine,
                trap::credentials::load(&core.store).await?,
            ));
            // Before the first datagram: what was accepted before a restart or on other nodes.
            let replay_cursor =
                trap::replay::import(&core.store, &receiver, trap::replay::Cursor::default())
                    .await
                    .map_err(store_err)?;
            info!(addr = %socket.local_addr()?, "snmp trap listener bound");
            watchers.push(trap::spawn(
                socket,
                receiver.clone(),
                core.store.clone(),
                replay_cursor,
                registry.clone(),
                writer.clone(),
                config.traps(),
                trap_view.clone(),
                shutdown_rx.clone(),
            ));
            watchers.push(tokio::spawn(trap::credentials::watch_credentials(
                core.store.clone(),
                receiver,
                poll,
                generation,
                shutdown_rx.clone(),
            )));
        }

        if config.scheduler {
            let scheduler = crate::scheduler::Scheduler::new(
                config.scheduler_config(),
                core.store.clone(),
                registry.clone(),
                writer.clone(),
            );
            watchers.push(tokio::spawn(scheduler.run(shutdown_rx.clone())));
        }

        let webhook_counters = Arc::new(WebhookCounters::default());
        watchers.push(sources::spawn_status(
            events.clone(),
            StatusSources {
                writer: writer.clone(),
                webhooks: webhook_counters.clone(),
                traps: trap_view.clone(),
                registry: registry.clone(),
            },
            config.websocket.status_interval(),
            shutdown_rx.clone(),
        ));
        watchers.push(sources::spawn_addon_watch(
            sources::AddonWatch {
                bus: events.clone(),
                registry: registry.clone(),
                store: core.store.clone(),
                writer: writer.clone(),
            },
            poll,
            shutdown_rx.clone(),
        ));

        let state = AppState {
            store: core.store,
            registry,
            writer,
            webhook_counters,
            traps: trap_view,
            events,
            auth,
            limits: limits.clone(),
            ldap: config.ldap.clone().map(Arc::new),
            oidc,
            bundles,
            http: Arc::new(crate::http_server::HttpCounters::default()),
            webhooks_need_settings: !listener.local_addr()?.ip().is_loopback(),
            sockets: Arc::default(),
        };
        watchers.push(tokio::spawn(forget_idle_limits(
            limits,
            shutdown_rx.clone(),
        )));
        let addr = listener.local_addr()?;
        let router = app(state.clone()).layer(axum::Extension(config.websocket));
        let http = tokio::spawn(crate::http_server::serve(
            listener,
            router,
            config.http,
            Arc::clone(&state.http),
            shutdown_rx,
        ));
        info!(%addr, "opsconductor serving");
        Ok(Server {
            addr,
            trap_addr,
            state,
            shutdown,
            http,
            writer_task,
            watchers,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the SNMP trap listener is bound, if it runs.
    pub fn trap_addr(&self) -> Option<SocketAddr> {
        self.trap_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops accepting requests, lets in-flight ones finish, then drains the writer.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        let served = self.http.await.unwrap_or(Ok(()));
        // The trap listener drains its queue into the writer before it ends.
        for task in self.watchers {
            let _ = task.await;
        }
        drop(self.state);
        // The writer ends when its last handle (held by the state and the trap workers) is gone
        // and its queue is empty, so every accepted event is committed before we return.
        let _ = self.writer_task.await;
        served
    }
}

/// Where the first start leaves the administrator's password when standard error is not a
/// terminal (a service manager's journal, a CI log, a pipe): beside the database, readable by
/// the runtime's user alone.
pub const BOOTSTRAP_PASSWORD_FILE: &str = "initial-admin-password";

/// On the first start (no user at all), creates the administrator `admin` with a generated
/// password and shows it once — never through the log, which may be shipped elsewhere: on the
/// terminal when standard error is one, else in a 0600 file in the data directory whose path
/// (not content) is logged. Set a password of your own with `opsconductor user set-password
/// admin`.
async fn bootstrap_admin(
    auth: &crate::auth::Auth,
    console: &str,
    data_dir: &std::path::Path,
) -> Result<(), StartError> {
    use std::io::IsTerminal;
    let Some(password) = auth.bootstrap_admin().await? else {
        return Ok(());
    };
    let user = crate::auth::BOOTSTRAP_ADMIN;
    info!(user, "first start: administrator created");
    if std::io::stderr().is_terminal() {
        // Together, so that a newcomer has all they need in one place: where to go, and how
        // to sign in there.
        eprintln!(
            "\n  First start: created the administrator `{user}` with the one-time password\n\n      {password}\n\n  Open {console} and sign in as `{user}` with it. It is shown only this once:\n  change it after signing in (opsconductor user set-password {user}).\n",
            password = password.expose(),
        );
        return Ok(());
    }
    let path = data_dir.join(BOOTSTRAP_PASSWORD_FILE);
    write_private(&path, format!("{}\n", password.expose()).as_bytes()).map_err(|source| {
        StartError::File {
            path: path.clone(),
            source,
        }
    })?;
    info!(
        user,
        path = %path.display(),
        console,
        "the administrator's one-time password is in this file (readable by this user only); sign in, change it, delete the file"
    );
    eprintln!(
        "\n  First start: created the administrator `{user}`; its one-time password is in\n  {} (readable by this user only). Open {console} and sign in with it.\n",
        path.display()
    );
    Ok(())
}

/// Writes `bytes` to a new file only its owner may read, replacing any file there.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The console's address for people: a wildcard listen address is reached on loopback.
pub fn console_url(addr: SocketAddr) -> String {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}/")
}

/// Every minute, lets the rate limiters forget callers that have been quiet long enough.
async fn forget_idle_limits(
    limits: Arc<crate::api::limits::Limits>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = every.tick() => limits.forget_idle(),
            _ = shutdown.changed() => return,
        }
    }
}

/// A database URL fit for logs: the password, if any, replaced — in the user info
/// (`postgres://u:secret@h/db`) and in query parameters (`?password=`, `?sslpassword=`), which
/// PostgreSQL's URL syntax also accepts.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut shown = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &base[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    format!("{}{user}:***{}", &base[..scheme_end + 3], &base[at..])
                }
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if key.to_ascii_lowercase().contains("pass") => format!("{key}=***"),
                _ => param.to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&params.join("&"));
    }
    shown
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_console_url_names_a_reachable_address() {
        use super::console_url;
        assert_eq!(
            console_url("127.0.0.1:8080".parse().unwrap()),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            console_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(console_url("[::]:80".parse().unwrap()), "http://[::1]:80/");
    }

    use super::redact_url;

    #[test]
    fn passwords_never_reach_logs() {
        let cases = [
            ("postgres://u:secret@h/db", "postgres://u:***@h/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("sqlite://data/x.db", "sqlite://data/x.db"),
            (
                "postgres://u@h/db?password=secret&sslmode=require",
                "postgres://u@h/db?password=***&sslmode=require",
            ),
            (
                "postgres://u:a@h/db?sslpassword=k&application_name=x",
                "postgres://u:***@h/db?sslpassword=***&application_name=x",
            ),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown);
        }
    }
}
