//! Addon quarantine: an addon whose calls keep faulting (a trap, the CPU deadline, the memory
//! cap, the wall-clock timeout, an instance that cannot be made) stops being called for a
//! while, so that a poison message or a broken release costs its own events only — not the
//! CPU, the instances and the log of everyone else.
//!
//! ```text
//! healthy ──(`faults` in `window`)──► quarantined ──(its length passes)──► probation
//!    ▲                                   ▲                                    │
//!    │                                   └────────(any fault: twice as long)──┤
//!    └──────────(a `window` without a fault, or an operator's release)────────┘
//! ```
//!
//! While quarantined, the addon's events are refused without running it (webhooks 503 with
//! `Retry-After`, traps unacknowledged and counted, polls recorded as failed). Each node keeps
//! its own quarantine: faults are counted where the calls ran. The state machine takes the
//! time as an argument, so it is tested without waiting.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::sandbox::CallError;

/// The host's alert, on the node, while one of its addons is quarantined there.
pub const ADDON_QUARANTINED: &str = "addonQuarantined";

/// `[quarantine]` in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuarantineConfig {
    /// Faults within `window_seconds` that quarantine an addon; 0 never quarantines.
    pub faults: u32,
    /// The window faults are counted in, and how long a probation lasts.
    pub window_seconds: u64,
    /// The first quarantine's length. Each one that follows a failed probation lasts twice as
    /// long as the one before, up to `longest_seconds`.
    pub first_seconds: u64,
    pub longest_seconds: u64,
}

impl Default for QuarantineConfig {
    fn default() -> QuarantineConfig {
        QuarantineConfig {
            faults: 5,
            window_seconds: 60,
            first_seconds: 30,
            longest_seconds: 3_600,
        }
    }
}

impl QuarantineConfig {
    /// What `config check` and the server's start refuse.
    pub fn check(&self) -> Result<(), String> {
        if self.faults > 0 && (self.window_seconds == 0 || self.first_seconds == 0) {
            return Err(
                "[quarantine] window_seconds and first_seconds must be at least 1 (faults = 0 turns quarantine off)".into(),
            );
        }
        if self.longest_seconds < self.first_seconds {
            return Err("[quarantine] longest_seconds must be at least first_seconds".into());
        }
        Ok(())
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.window_seconds)
    }

    /// The length of the `strike`-th quarantine in a row (1 for the first).
    fn length(&self, strike: u32) -> Duration {
        let doubled = self
            .first_seconds
            .saturating_mul(1u64 << strike.saturating_sub(1).min(32));
        Duration::from_secs(doubled.min(self.longest_seconds))
    }
}

/// Where an addon stands, as the API, the `addon_status` event and the metrics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineState {
    Healthy,
    /// Not called: its events are refused.
    Quarantined,
    /// Called again after a quarantine; one fault quarantines it again, for twice as long.
    Probation,
}

/// One addon's quarantine as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct QuarantineStatus {
    pub state: QuarantineState,
    /// Faults counted in the current window.
    pub faults_in_window: u32,
    /// Quarantines in a row since the addon was last healthy.
    pub strikes: u32,
    /// When a quarantine ends (for `quarantined`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// The fault that last counted, as the sandbox reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_fault: Option<String>,
}

impl QuarantineStatus {
    pub fn healthy() -> QuarantineStatus {
        QuarantineStatus {
            state: QuarantineState::Healthy,
            faults_in_window: 0,
            strikes: 0,
            until: None,
            last_fault: None,
        }
    }
}

/// Why a call was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Healthy,
    Quarantined { until: Instant },
    Probation { since: Instant },
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// When the faults of the current window happened, oldest first.
    faults: VecDeque<Instant>,
    strikes: u32,
    last_fault: Option<String>,
}

/// One addon's quarantine on this node.
#[derive(Debug)]
pub struct Quarantine {
    config: QuarantineConfig,
    state: Mutex<State>,
    /// Whether the state is `Healthy`: the check every event makes reads this alone, so that a
    /// healthy addon's events never take the lock.
    healthy: AtomicBool,
    /// Woken on every change a fault or a release makes (time-driven ones, a quarantine ending,
    /// are seen by whoever asks next), so that the addon watcher reports them at once.
    changed: Arc<Notify>,
}

impl Quarantine {
    pub fn new(config: QuarantineConfig, changed: Arc<Notify>) -> Quarantine {
        Quarantine {
            config,
            state: Mutex::new(State {
                phase: Phase::Healthy,
                faults: VecDeque::new(),
                strikes: 0,
                last_fault: None,
            }),
            healthy: AtomicBool::new(true),
            changed,
        }
    }

    /// Runs `call` unless the addon is quarantined, and counts its fault if it has one.
    pub async fn guard<T>(
        &self,
        call: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        self.check()?;
        let result = call.await;
        if let Err(error) = &result
            && error.is_fault()
        {
            self.fault(Instant::now(), error);
        }
        result
    }

    /// Whether a call may be made now, as the error a refused call gets.
    pub fn check(&self) -> Result<(), CallError> {
        self.admit(Instant::now())
            .map_err(|refused| CallError::Quarantined {
                retry_after_seconds: (refused.retry_after.as_millis().div_ceil(1000) as u64).max(1),
            })
    }

    /// Whether a call may be made at `now`.
    pub fn admit(&self, now: Instant) -> Result<(), Refused> {
        if self.healthy.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut state = self.lock();
        self.advance(&mut state, now);
        match state.phase {
            Phase::Quarantined { until } => Err(Refused {
                retry_after: until - now,
            }),
            Phase::Healthy | Phase::Probation { .. } => Ok(()),
        }
    }

    /// Counts a fault at `now`; returns whether it quarantined the addon.
    pub fn fault(&self, now: Instant, error: &CallError) -> bool {
        if self.config.faults == 0 {
            return false;
        }
        let mut state = self.lock();
        self.advance(&mut state, now);
        state.last_fault = Some(error.to_string());
        state.faults.push_back(now);
        self.forget_old_faults(&mut state, now);
        let quarantine = match state.phase {
            Phase::Probation { .. } => true,
            Phase::Healthy => state.faults.len() >= self.config.faults as usize,
            // A call admitted before the quarantine began: already counted for.
            Phase::Quarantined { .. } => false,
        };
        if quarantine {
            state.strikes += 1;
            state.phase = Phase::Quarantined {
                until: now + self.config.length(state.strikes),
            };
            self.healthy.store(false, Ordering::Release);
            drop(state);
            self.changed.notify_one();
        }
        quarantine
    }

    /// An operator's release: healthy again, its faults and strikes forgotten. Returns whether
    /// it was quarantined or on probation.
    pub fn release(&self) -> bool {
        let mut state = self.lock();
        let was = state.phase != Phase::Healthy;
        state.phase = Phase::Healthy;
        state.faults.clear();
        state.strikes = 0;
        self.healthy.store(true, Ordering::Release);
        drop(state);
        self.changed.notify_one();
        was
    }

    pub fn status(&self, now: Instant) -> QuarantineStatus {
        let mut state = self.lock();
        self.advance(&mut state, now);
        self.forget_old_faults(&mut state, now);
        let (kind, until) = match state.phase {
            Phase::Healthy => (QuarantineState::Healthy, None),
            Phase::Probation { .. } => (QuarantineState::Probation, None),
            Phase::Quarantined { until } => (
                QuarantineState::Quarantined,
                chrono::Duration::from_std(until - now)
                    .ok()
                    .map(|left| Utc::now() + left),
            ),
        };
        QuarantineStatus {
            state: kind,
            faults_in_window: state.faults.len() as u32,
            strikes: state.strikes,
            until,
            last_fault: state.last_fault.clone(),
        }
    }

    /// The changes that time alone makes: a quarantine ends in probation, a probation without a
    /// fault ends healthy.
    fn advance(&self, state: &mut State, now: Instant) {
        if let Phase::Quarantined { until } = state.phase
            && now >= until
        {
            state.phase = Phase::Probation { since: until };
            state.faults.clear();
        }
        if let Phase::Probation { since } = state.phase
            && now.duration_since(since) >= self.config.window()
        {
            state.phase = Phase::Healthy;
            state.strikes = 0;
            self.healthy.store(true, Ordering::Release);
        }
    }

    fn forget_old_faults(&self, state: &mut State, now: Instant) {
        while let Some(oldest) = state.faults.front()
            && now.duration_since(*oldest) >= self.config.window()
        {
            state.faults.pop_front();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Held for a few comparisons, never across an await; a panic while held cannot leave
        // the state half-changed in a way that matters more than refusing to serve.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> QuarantineConfig {
        QuarantineConfig {
            faults: 3,
            window_seconds: 60,
            first_seconds: 30,
            longest_seconds: 100,
        }
    }

    fn trap() -> CallError {
        CallError::Trap("boom".into())
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn faults_in_a_window_quarantine_and_time_brings_probation_then_health() {
        let q = Quarantine::new(config(), Arc::default());
        let t0 = Instant::now();
        assert!(!q.fault(t0, &trap()));
        assert!(!q.fault(t0 + secs(10), &trap()));
        assert!(q.admit(t0 + secs(11)).is_ok());
        assert!(q.fault(t0 + secs(20), &trap()), "the third fault in 60 s");
        let refused = q.admit(t0 + secs(25)).unwrap_err();
        assert_eq!(refused.retry_after, secs(25));
        let status = q.status(t0 + secs(25));
        assert_eq!(status.state, QuarantineState::Quarantined);
        assert_eq!((status.strikes, status.faults_in_window), (1, 3));
        assert_eq!(
            status.last_fault.as_deref(),
            Some(trap().to_string().as_str())
        );

        assert!(q.admit(t0 + secs(50)).is_ok(), "30 s later: probation");
        assert_eq!(q.status(t0 + secs(50)).state, QuarantineState::Probation);
        assert_eq!(q.status(t0 + secs(109)).state, QuarantineState::Probation);
        let healthy = q.status(t0 + secs(110));
        assert_eq!(healthy.state, QuarantineState::Healthy);
        assert_eq!(healthy.strikes, 0);
    }

    #[test]
    fn faults_spread_wider_than_the_window_do_not_quarantine() {
        let q = Quarantine::new(config(), Arc::default());
        let t0 = Instant::now();
        for minute in 0..10 {
            assert!(!q.fault(t0 + secs(minute * 31), &trap()));
        }
        assert_eq!(q.status(t0 + secs(310)).state, QuarantineState::Healthy);
    }

    #[test]
    fn a_fault_on_probation_quarantines_again_for_twice_as_long_up_to_the_longest() {
        let q = Quarantine::new(config(), Arc::default());
        let t0 = Instant::now();
        for _ in 0..3 {
            q.fault(t0, &trap());
        }
        // First: 30 s. On probation at 30 s, one fault: 60 s, then 100 (the longest), then 100.
        let mut now = t0 + secs(30);
        for expected in [60, 100, 100] {
            assert!(q.admit(now).is_ok());
            assert!(q.fault(now, &trap()), "one fault on probation is enough");
            assert_eq!(q.admit(now).unwrap_err().retry_after, secs(expected));
            now += secs(expected);
        }
        assert_eq!(q.status(now).strikes, 4);
    }

    #[test]
    fn release_forgets_faults_and_strikes() {
        let q = Quarantine::new(config(), Arc::default());
        let t0 = Instant::now();
        for _ in 0..3 {
            q.fault(t0, &trap());
        }
        assert!(q.release());
        assert!(q.admit(t0).is_ok());
        let status = q.status(t0);
        assert_eq!(
            (status.state, status.strikes, status.faults_in_window),
            (QuarantineState::Healthy, 0, 0)
        );
        assert!(!q.fault(t0, &trap()), "counting starts again from nothing");
        assert!(!q.release(), "it was healthy");
    }

    #[test]
    fn zero_faults_turns_it_off() {
        let q = Quarantine::new(
            QuarantineConfig {
                faults: 0,
                ..config()
            },
            Arc::default(),
        );
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(!q.fault(t0, &trap()));
        }
        assert!(q.admit(t0).is_ok());
    }

    #[tokio::test]
    async fn guard_counts_faults_not_addon_errors_and_refuses_without_calling() {
        let q = Quarantine::new(
            QuarantineConfig {
                faults: 2,
                ..config()
            },
            Arc::default(),
        );
        let refusal = CallError::Addon {
            kind: "invalid-input",
            message: "no".into(),
        };
        for _ in 0..5 {
            let r: Result<(), _> = q.guard(async { Err(refusal.clone()) }).await;
            assert!(matches!(r, Err(CallError::Addon { .. })));
        }
        assert_eq!(q.status(Instant::now()).state, QuarantineState::Healthy);
        for _ in 0..2 {
            let _ = q
                .guard(async { Err::<(), _>(CallError::CpuDeadline(10)) })
                .await;
        }
        let mut called = false;
        let r = q
            .guard(async {
                called = true;
                Ok(())
            })
            .await;
        assert!(!called, "a quarantined addon is not called");
        assert!(matches!(
            r,
            Err(CallError::Quarantined {
                retry_after_seconds: 30
            })
        ));
    }
}
