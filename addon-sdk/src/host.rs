//! Host functions: log, clock and small persistent state, with native stand-ins.
//!
//! On `wasm32` these call the `opsconductor:addon/host` imports. Everywhere else (a plain
//! `cargo test` of an addon) the imports do not exist, so the same functions fall back to
//! stand-ins that behave like the host: logs go to stderr and are kept for
//! [`crate::testing::take_logs`], the clock is the system clock, and state lives in a
//! thread-local map with the host's limits. Addon parse logic is therefore testable natively
//! without a wasm runtime.

/// Log levels, as the host interface defines them.
pub use crate::bindings::opsconductor::addon::host::LogLevel;

/// Largest state key the host accepts, in bytes.
pub const MAX_STATE_KEY_BYTES: usize = 256;
/// Largest state value the host accepts, in bytes.
pub const MAX_STATE_VALUE_BYTES: usize = 64 * 1024;
/// Most keys one addon may keep.
pub const MAX_STATE_KEYS: usize = 1024;

/// Writes a line to the runtime's log, tagged by the host with the addon id.
pub fn log(level: LogLevel, message: &str) {
    imp::log(level, message);
}

pub fn trace(message: &str) {
    log(LogLevel::Trace, message);
}

pub fn debug(message: &str) {
    log(LogLevel::Debug, message);
}

pub fn info(message: &str) {
    log(LogLevel::Info, message);
}

pub fn warn(message: &str) {
    log(LogLevel::Warn, message);
}

/// Logs at error level. The host reports the last error logged during a call that trapped,
/// which is how panic messages reach the author (see [`crate::register_addon!`]).
pub fn error(message: &str) {
    log(LogLevel::Error, message);
}

/// The current time, in milliseconds since the Unix epoch.
pub fn now() -> i64 {
    imp::now()
}

/// Reads a value the addon stored earlier, if any.
pub fn state_get(key: &str) -> Option<Vec<u8>> {
    imp::state_get(key)
}

/// Stores a value under `key`. Fails when a limit is exceeded (key over
/// [`MAX_STATE_KEY_BYTES`], value over [`MAX_STATE_VALUE_BYTES`], more than [`MAX_STATE_KEYS`]
/// keys) or the host cannot persist it; the message says which.
pub fn state_set(key: &str, value: &[u8]) -> Result<(), String> {
    imp::state_set(key, value)
}

/// Removes `key`; removing a missing key is not an error.
pub fn state_delete(key: &str) {
    imp::state_delete(key);
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::LogLevel;
    use crate::bindings::opsconductor::addon::host;

    pub fn log(level: LogLevel, message: &str) {
        host::log(level, message);
    }

    pub fn now() -> i64 {
        host::now()
    }

    pub fn state_get(key: &str) -> Option<Vec<u8>> {
        host::state_get(key)
    }

    pub fn state_set(key: &str, value: &[u8]) -> Result<(), String> {
        host::state_set(key, value)
    }

    pub fn state_delete(key: &str) {
        host::state_delete(key);
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod imp {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::{LogLevel, MAX_STATE_KEY_BYTES, MAX_STATE_KEYS, MAX_STATE_VALUE_BYTES};

    // Thread-local so that parallel tests (one thread each) never see each other's state.
    thread_local! {
        pub(crate) static LOGS: RefCell<Vec<(LogLevel, String)>> = const { RefCell::new(Vec::new()) };
        pub(crate) static STATE: RefCell<BTreeMap<String, Vec<u8>>> = const { RefCell::new(BTreeMap::new()) };
    }

    pub fn log(level: LogLevel, message: &str) {
        eprintln!("[addon {level:?}] {message}");
        LOGS.with(|logs| logs.borrow_mut().push((level, message.to_owned())));
    }

    pub fn now() -> i64 {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    }

    pub fn state_get(key: &str) -> Option<Vec<u8>> {
        STATE.with(|s| s.borrow().get(key).cloned())
    }

    pub fn state_set(key: &str, value: &[u8]) -> Result<(), String> {
        if key.is_empty() || key.len() > MAX_STATE_KEY_BYTES {
            return Err(format!(
                "state key must be 1 to {MAX_STATE_KEY_BYTES} bytes"
            ));
        }
        if value.len() > MAX_STATE_VALUE_BYTES {
            return Err(format!(
                "state value is larger than {MAX_STATE_VALUE_BYTES} bytes"
            ));
        }
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            if !s.contains_key(key) && s.len() >= MAX_STATE_KEYS {
                return Err(format!("addon already keeps {MAX_STATE_KEYS} state keys"));
            }
            s.insert(key.to_owned(), value.to_vec());
            Ok(())
        })
    }

    pub fn state_delete(key: &str) {
        STATE.with(|s| s.borrow_mut().remove(key));
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn native_state_round_trips_and_enforces_limits() {
        testing::reset();
        assert_eq!(state_get("k"), None);
        state_set("k", b"1").unwrap();
        assert_eq!(state_get("k").as_deref(), Some(&b"1"[..]));
        state_delete("k");
        assert_eq!(state_get("k"), None);

        assert!(state_set(&"x".repeat(MAX_STATE_KEY_BYTES + 1), b"").is_err());
        assert!(state_set("big", &vec![0; MAX_STATE_VALUE_BYTES + 1]).is_err());
        for i in 0..MAX_STATE_KEYS {
            state_set(&i.to_string(), b"").unwrap();
        }
        assert!(state_set("one-too-many", b"").is_err());
        // Overwriting an existing key is still allowed at the limit.
        state_set("0", b"again").unwrap();
    }

    #[test]
    fn native_logs_are_kept_for_tests() {
        testing::reset();
        warn("disk nearly full");
        error("boom");
        assert_eq!(
            testing::take_logs(),
            vec![
                (LogLevel::Warn, "disk nearly full".to_owned()),
                (LogLevel::Error, "boom".to_owned())
            ]
        );
        assert!(testing::take_logs().is_empty());
    }

    #[test]
    fn native_clock_is_plausible() {
        // 2020-01-01 in milliseconds: a clock before that is certainly broken.
        assert!(now() > 1_577_836_800_000);
    }
}
