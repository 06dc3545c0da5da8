//! The host imports: `opsconductor:addon/host` (log, now, a small per-addon key-value state),
//! for every WIT version, and, from 0.2.0, `opsconductor:addon/io` (SNMP, HTTP and SSH on the
//! target being polled). `host` performs no I/O on the addon's behalf beyond the runtime's own
//! database; `io` performs only what the poll's [`GuestIo`] allows, and answers `denied`
//! outside a scripted poll.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, error, info, trace, warn};

use super::bindings::{LogLevel, rules_engine, v0_1, v0_2, wit, wit_io};
use crate::event::{self, HttpCallSpec, HttpResponse, SshOutput, Varbind};
use crate::poller::PollError;
use crate::store::Store;

/// A guest log line longer than this is cut: logs are for people, not for payload dumps.
const MAX_LOG_LINE: usize = 4 * 1024;
/// Log lines accepted per call; the rest are counted and dropped so that a guest logging in a
/// loop cannot flood the runtime's log.
const MAX_LOG_LINES_PER_CALL: u32 = 100;

/// A future a [`GuestIo`] call returns.
pub type IoFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PollError>> + Send + 'a>>;

/// What a guest's `io` imports reach during a scripted poll: the polled target only, each call
/// checked against what the addon's manifest declares. The poll (`poll::TargetIo`) provides
/// it; the sandbox knows nothing of targets or credentials.
pub trait GuestIo: Send + Sync {
    fn snmp_get<'a>(&'a self, oids: &'a [String]) -> IoFuture<'a, Vec<Varbind>>;
    fn snmp_walk<'a>(&'a self, root: &'a str) -> IoFuture<'a, Vec<Varbind>>;
    fn http(&self, call: HttpCallSpec) -> IoFuture<'_, HttpResponse>;
    fn ssh_exec<'a>(&'a self, command: &'a str) -> IoFuture<'a, SshOutput>;
}

/// What the host imports need from the runtime, shared by every instance.
#[derive(Clone)]
pub struct HostServices {
    pub store: Store,
}

/// Per-instance state behind the host imports.
pub struct HostContext {
    addon_id: Arc<str>,
    services: HostServices,
    /// The last error-level log line of the current call. The SDK's panic hook logs the panic
    /// message at error level just before the guest traps, so this turns a bare `unreachable`
    /// trap into a readable error.
    pub(super) last_error: Option<String>,
    pub(super) log_lines: u32,
    pub(super) logs_dropped: u64,
    /// The I/O a scripted poll may do; `None` outside a poll call.
    pub(super) io: Option<Arc<dyn GuestIo>>,
    /// A rules addon's `parse` section (JSON), for the rules engine's one import.
    pub(super) rules: Option<Arc<str>>,
    /// When the current call started, and how much of it was spent waiting in host imports:
    /// the CPU deadline counts only the rest (see `Sandbox::new`).
    pub(super) call_started: Instant,
    pub(super) host_time: Duration,
    pub(super) cpu_budget: Duration,
    /// Time the call spent yielded to tokio at epoch ticks, waiting to be resumed: not guest
    /// time either.
    suspended: Duration,
    /// When the guest last yielded, and when it was resumed (set by the yield's future, which
    /// cannot reach the store).
    yielded_at: Option<Instant>,
    resumed_at: Arc<Mutex<Option<Instant>>>,
}

impl HostContext {
    pub fn new(addon_id: Arc<str>, services: HostServices) -> HostContext {
        HostContext {
            addon_id,
            services,
            last_error: None,
            log_lines: 0,
            logs_dropped: 0,
            io: None,
            rules: None,
            call_started: Instant::now(),
            host_time: Duration::ZERO,
            cpu_budget: Duration::from_secs(10),
            suspended: Duration::ZERO,
            yielded_at: None,
            resumed_at: Arc::default(),
        }
    }

    /// Forgets what the previous call left behind and starts the CPU clock for a new one.
    pub(super) fn begin_call(&mut self, cpu_budget: Duration, io: Option<Arc<dyn GuestIo>>) {
        self.last_error = None;
        self.log_lines = 0;
        self.io = io;
        self.call_started = Instant::now();
        self.host_time = Duration::ZERO;
        self.cpu_budget = cpu_budget;
        self.suspended = Duration::ZERO;
        self.yielded_at = None;
        *self.resumed_at.lock().expect("resume lock") = None;
    }

    /// Guest time of the current call so far: wall time minus time spent in host imports and
    /// waiting to be resumed after a yield.
    pub(super) fn guest_time(&self) -> Duration {
        self.call_started
            .elapsed()
            .saturating_sub(self.host_time)
            .saturating_sub(self.suspended)
    }

    /// The future the guest yields to at an epoch tick: tokio's `yield_now`, noting when the
    /// guest is resumed.
    pub(super) fn yield_now(&mut self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        self.yielded_at = Some(Instant::now());
        let resumed_at = Arc::clone(&self.resumed_at);
        Box::pin(async move {
            tokio::task::yield_now().await;
            *resumed_at.lock().expect("resume lock") = Some(Instant::now());
        })
    }

    /// Charges the time between the last yield and its resumption to `suspended`.
    pub(super) fn account_resume(&mut self) {
        let resumed = self.resumed_at.lock().expect("resume lock").take();
        if let (Some(yielded), Some(resumed)) = (self.yielded_at.take(), resumed) {
            self.suspended += resumed.saturating_duration_since(yielded);
        }
    }

    fn log_line(&mut self, level: LogLevel, message: String) {
        if self.log_lines >= MAX_LOG_LINES_PER_CALL {
            self.logs_dropped += 1;
            return;
        }
        self.log_lines += 1;
        let message = crate::text::cut_to_bytes(&message, MAX_LOG_LINE);
        let addon = &*self.addon_id;
        match level {
            LogLevel::Trace => trace!(addon, "{message}"),
            LogLevel::Debug => debug!(addon, "{message}"),
            LogLevel::Info => info!(addon, "{message}"),
            LogLevel::Warn => warn!(addon, "{message}"),
            LogLevel::Error => {
                error!(addon, "{message}");
                self.last_error = Some(message);
            }
        }
    }

    async fn timed<T>(&mut self, f: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = f.await;
        self.host_time += started.elapsed();
        out
    }

    async fn get_state(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        let store = self.services.store.clone();
        let addon = self.addon_id.clone();
        Ok(self.timed(store.state_get(&addon, &key)).await?)
    }

    async fn set_state(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        let store = self.services.store.clone();
        let addon = self.addon_id.clone();
        match self
            .timed(store.state_set(&addon, &key, &value, chrono::Utc::now()))
            .await
        {
            Ok(()) => Ok(Ok(())),
            // Quota errors are the addon's to handle; anything else is the host's failure.
            Err(crate::store::StoreError::Quota(msg)) => Ok(Err(msg)),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_state(&mut self, key: String) -> wasmtime::Result<()> {
        let store = self.services.store.clone();
        let addon = self.addon_id.clone();
        Ok(self.timed(store.state_delete(&addon, &key)).await?)
    }

    /// The poll's I/O, or `denied` outside a scripted poll.
    fn io(&self) -> Result<Arc<dyn GuestIo>, wit_io::IoError> {
        self.io.clone().ok_or_else(|| {
            wit_io::IoError::Denied("I/O is only available while the addon polls a target".into())
        })
    }
}

fn io_error(e: PollError) -> wit_io::IoError {
    match e {
        PollError::Denied(m) => wit_io::IoError::Denied(m),
        // To the addon, the runtime's egress policy is one more thing it may not do.
        PollError::Refused(m) => wit_io::IoError::Denied(m),
        PollError::Unreachable(m) => wit_io::IoError::Unreachable(m),
        other => wit_io::IoError::Failed(other.to_string()),
    }
}

impl wit::Host for HostContext {}

impl v0_1::opsconductor::addon::host::Host for HostContext {
    async fn log(&mut self, level: LogLevel, message: String) {
        self.log_line(level, message);
    }

    async fn now(&mut self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    async fn state_get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        self.get_state(key).await
    }

    async fn state_set(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        self.set_state(key, value).await
    }

    async fn state_delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.delete_state(key).await
    }
}

impl v0_2::opsconductor::addon::host::Host for HostContext {
    async fn log(&mut self, level: v0_2::opsconductor::addon::host::LogLevel, message: String) {
        self.log_line(level.into(), message);
    }

    async fn now(&mut self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    async fn state_get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        self.get_state(key).await
    }

    async fn state_set(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        self.set_state(key, value).await
    }

    async fn state_delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.delete_state(key).await
    }
}

impl rules_engine::opsconductor::rules::rules::Host for HostContext {
    async fn parse_section(&mut self) -> String {
        // Only the engine imports it, and only rules addons run the engine.
        self.rules.as_deref().unwrap_or("{}").to_owned()
    }
}

impl wit_io::Host for HostContext {
    async fn snmp_get(&mut self, oids: Vec<String>) -> Result<Vec<wit::Varbind>, wit_io::IoError> {
        let io = self.io()?;
        let result = self.timed(io.snmp_get(&oids)).await;
        result.map(super::bindings::varbinds).map_err(io_error)
    }

    async fn snmp_walk(&mut self, root: String) -> Result<Vec<wit::Varbind>, wit_io::IoError> {
        let io = self.io()?;
        let result = self.timed(io.snmp_walk(&root)).await;
        result.map(super::bindings::varbinds).map_err(io_error)
    }

    async fn http_request(
        &mut self,
        request: wit_io::HttpCall,
    ) -> Result<wit::HttpResponse, wit_io::IoError> {
        let io = self.io()?;
        let call = event::HttpCallSpec {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        };
        let result = self.timed(io.http(call)).await;
        result.map(Into::into).map_err(io_error)
    }

    async fn ssh_exec(&mut self, command: String) -> Result<wit::SshOutput, wit_io::IoError> {
        let io = self.io()?;
        let result = self.timed(io.ssh_exec(&command)).await;
        result.map(Into::into).map_err(io_error)
    }
}
