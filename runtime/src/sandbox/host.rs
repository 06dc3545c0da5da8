//! The host imports every addon may call (`opsconductor:addon/host`): log, now, and a small
//! per-addon key-value state. None of them performs I/O on the addon's behalf beyond the
//! runtime's own database.

use std::sync::Arc;

use tracing::{debug, error, info, trace, warn};

use super::bindings::{Host, LogLevel, wit};
use crate::store::Store;

/// A guest log line longer than this is cut: logs are for people, not for payload dumps.
const MAX_LOG_LINE: usize = 4 * 1024;
/// Log lines accepted per call; the rest are counted and dropped so that a guest logging in a
/// loop cannot flood the runtime's log.
const MAX_LOG_LINES_PER_CALL: u32 = 100;

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
}

impl HostContext {
    pub fn new(addon_id: Arc<str>, services: HostServices) -> HostContext {
        HostContext {
            addon_id,
            services,
            last_error: None,
            log_lines: 0,
            logs_dropped: 0,
        }
    }

    /// Forgets what the previous call left behind.
    pub(super) fn begin_call(&mut self) {
        self.last_error = None;
        self.log_lines = 0;
    }
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

impl wit::Host for HostContext {}

impl Host for HostContext {
    async fn log(&mut self, level: LogLevel, message: String) {
        if self.log_lines >= MAX_LOG_LINES_PER_CALL {
            self.logs_dropped += 1;
            return;
        }
        self.log_lines += 1;
        let message = cut(message, MAX_LOG_LINE);
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

    async fn now(&mut self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    async fn state_get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.services.store.state_get(&self.addon_id, &key).await?)
    }

    async fn state_set(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        match self
            .services
            .store
            .state_set(&self.addon_id, &key, &value)
            .await
        {
            Ok(()) => Ok(Ok(())),
            // Quota errors are the addon's to handle; anything else is the host's failure.
            Err(crate::store::StoreError::Quota(msg)) => Ok(Err(msg)),
            Err(e) => Err(e.into()),
        }
    }

    async fn state_delete(&mut self, key: String) -> wasmtime::Result<()> {
        Ok(self
            .services
            .store
            .state_delete(&self.addon_id, &key)
            .await?)
    }
}
