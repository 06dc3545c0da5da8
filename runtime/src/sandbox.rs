//! The WebAssembly sandbox: one wasmtime `Engine`, one compiled component per addon, warm
//! instances reused across events, and the limits that keep a misbehaving addon from hurting
//! the host — a memory cap, a CPU deadline (epoch interruption) and a wall-clock timeout.
//!
//! **Architecture Invariant:** an addon gets no ambient authority. WASI is linked with no
//! preopened directories, no environment, no arguments, no network and discarded stdio; every
//! outside effect goes through the host imports in [`host`].

pub mod bindings;
pub mod host;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Semaphore;
use tracing::{debug, warn};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::alert::ReportedAlert;
use crate::event::{AddonTarget, RawEvent};
use crate::manifest::{Capabilities, Manifest, WORLD_V0_1, WORLD_V0_2};
use bindings::{rules_engine, v0_1, v0_2};
use host::HostContext;
pub use host::{GuestIo, HostServices, IoFuture};

/// How often the epoch advances. CPU deadlines are whole ticks, so this is their resolution;
/// 10 ms keeps the ticker thread's cost negligible while a runaway call stops within ~10 ms of
/// its budget.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The rules engine (`addons/rules-engine`), which runs rules addons: built by
/// `scripts/build-addons.sh` into `target/rules-engine/`, embedded by release builds and read
/// from there at run time by debug builds (rust-embed's default, as for the console).
#[derive(rust_embed::Embed)]
#[folder = "../target/rules-engine/"]
#[allow_missing = true]
struct RulesEngineWasm;

const RULES_ENGINE_FILE: &str = "rules_engine.wasm";

/// Instantiation runs guest initialisers; they get the same budget as one call.
const INSTANTIATE_TIMEOUT: Duration = Duration::from_secs(10);

/// What identifies the code an addon runs, stored and reported as its `wasm_sha256`: the
/// sha256 of its component, or for a rules addon (which has none) of its `parse` section, so
/// that a change of rules shows as a change of code.
pub fn code_sha256(manifest: &Manifest, wasm: &[u8]) -> String {
    use sha2::Digest as _;
    match &manifest.parse {
        Some(parse) if manifest.is_rules() => hex::encode(sha2::Sha256::digest(parse.to_string())),
        _ => hex::encode(sha2::Sha256::digest(wasm)),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("could not configure the WebAssembly engine: {0}")]
    Engine(String),
    #[error("addon `{addon}`: the wasm is not a valid component: {message}")]
    Compile { addon: String, message: String },
    #[error("addon `{addon}`: the component does not fit the host: {message}")]
    Link { addon: String, message: String },
    #[error("addon `{addon}`: WIT world `{world}` is not supported (supported: {supported})")]
    World {
        addon: String,
        world: String,
        supported: String,
    },
    #[error(
        "addon `{0}` is written as rules, but this build has no rules engine: build it with `just build-addons`"
    )]
    NoRulesEngine(String),
    #[error("compiled-component cache at {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why one call into an addon failed. Each variant is counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The addon ran and returned a structured error.
    #[error("addon error ({kind}): {message}")]
    Addon { kind: &'static str, message: String },
    /// The guest trapped: a panic, an `unreachable`, an out-of-bounds access.
    #[error("addon crashed: {0}")]
    Trap(String),
    #[error("addon exceeded its CPU budget of {0} ms")]
    CpuDeadline(u32),
    #[error("addon exceeded its memory limit of {0} MiB")]
    MemoryLimit(u32),
    #[error("addon did not answer within {0} ms")]
    Timeout(u32),
    #[error("addon could not be instantiated: {0}")]
    Instantiate(String),
    /// Not called: the addon faulted too often and is quarantined (`quarantine.rs`).
    #[error("addon is quarantined after repeated faults; retry in {retry_after_seconds} s")]
    Quarantined { retry_after_seconds: u64 },
}

impl CallError {
    /// A stable name for counters and API error codes.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::Addon { .. } => "addon_error",
            CallError::Trap(_) => "addon_trap",
            CallError::CpuDeadline(_) => "addon_cpu_deadline",
            CallError::MemoryLimit(_) => "addon_memory_limit",
            CallError::Timeout(_) => "addon_timeout",
            CallError::Instantiate(_) => "addon_instantiate",
            CallError::Quarantined { .. } => "addon_quarantined",
        }
    }

    /// Whether this counts toward quarantine: the addon misbehaved, as opposed to answering
    /// with an error (a refusal of bad input is its job) or not being called at all.
    pub fn is_fault(&self) -> bool {
        match self {
            CallError::Trap(_)
            | CallError::CpuDeadline(_)
            | CallError::MemoryLimit(_)
            | CallError::Timeout(_)
            | CallError::Instantiate(_) => true,
            CallError::Addon { .. } | CallError::Quarantined { .. } => false,
        }
    }
}

/// Counters of one addon's calls, cumulative since it was loaded.
#[derive(Debug, Default)]
pub struct CallCounters {
    calls: AtomicU64,
    ok: AtomicU64,
    addon_errors: AtomicU64,
    traps: AtomicU64,
    cpu_deadlines: AtomicU64,
    memory_limits: AtomicU64,
    timeouts: AtomicU64,
    instantiations: AtomicU64,
    instantiate_failures: AtomicU64,
    guest_micros: AtomicU64,
    /// Each call's wall time, from taking an instance to its answer (host imports included).
    call_time: crate::metrics::Seconds,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CallStats {
    pub calls: u64,
    pub ok: u64,
    pub addon_errors: u64,
    pub traps: u64,
    pub cpu_deadlines: u64,
    pub memory_limits: u64,
    pub timeouts: u64,
    /// Instances created. With warm reuse this stays at the pool size unless calls fail.
    pub instantiations: u64,
    pub instantiate_failures: u64,
    /// Time spent running guest code in all calls, in microseconds (time in host imports —
    /// the database, poll I/O — not included).
    pub guest_micros: u64,
}

impl CallCounters {
    pub fn snapshot(&self) -> CallStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CallStats {
            calls: g(&self.calls),
            ok: g(&self.ok),
            addon_errors: g(&self.addon_errors),
            traps: g(&self.traps),
            cpu_deadlines: g(&self.cpu_deadlines),
            memory_limits: g(&self.memory_limits),
            timeouts: g(&self.timeouts),
            instantiations: g(&self.instantiations),
            instantiate_failures: g(&self.instantiate_failures),
            guest_micros: g(&self.guest_micros),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The store data of one instance.
pub struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    host: HostContext,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps each linear memory and remembers whether the cap was hit, so that the resulting trap
/// (Rust aborts when an allocation fails) is reported as a memory limit, not a crash.
struct MemoryLimiter {
    /// `capabilities.memory_mb`, for all of the store's linear memories and tables together: a
    /// component of several core modules has several memories, and each of them may not have
    /// the whole budget.
    max_bytes: usize,
    exceeded: bool,
    /// What the store's memories and tables hold now, together.
    used_bytes: usize,
    /// The most they held at once (the instance's high-water mark: linear memory never
    /// shrinks).
    peak_bytes: usize,
}

/// What one table element is charged: a function reference is a pointer or two.
const TABLE_ELEMENT_BYTES: usize = 16;

/// Core instances, memories and tables one store may create. A component built for
/// wasm32-wasip2 has a handful of each; these leave room while bounding a hostile one.
const MAX_INSTANCES: usize = 100;
const MAX_MEMORIES: usize = 10;
const MAX_TABLES: usize = 100;

impl MemoryLimiter {
    fn grow(&mut self, current: usize, desired: usize) -> bool {
        let total = self
            .used_bytes
            .saturating_add(desired.saturating_sub(current));
        if total > self.max_bytes {
            self.exceeded = true;
            return false;
        }
        self.used_bytes = total;
        self.peak_bytes = self.peak_bytes.max(total);
        true
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(current, desired))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        ))
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

/// Stops the epoch ticker thread when the sandbox is dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The engine and linker every addon shares.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<GuestState>,
    cache_dir: Option<PathBuf>,
    services: HostServices,
    compile_counters: CompileCounters,
    _ticker: EpochTicker,
}

/// How components were obtained: compiled, or loaded precompiled from the cache.
#[derive(Debug, Default)]
struct CompileCounters {
    compiled: AtomicU64,
    loaded_from_cache: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CompileStats {
    pub compiled: u64,
    pub loaded_from_cache: u64,
}

impl Sandbox {
    /// Creates the engine. `cache_dir` holds precompiled components keyed by wasm sha256 and
    /// engine compatibility (wasmtime version and settings); `None` compiles in memory only.
    pub fn new(
        cache_dir: Option<PathBuf>,
        services: HostServices,
    ) -> Result<Sandbox, SandboxError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config).map_err(|e| SandboxError::Engine(e.to_string()))?;

        let mut linker: Linker<GuestState> = Linker::new(&engine);
        // The full WASI 0.2 surface is linked so that any component built for wasm32-wasip2
        // instantiates, but the context built per instance grants none of it (see `instantiate`).
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| SandboxError::Engine(e.to_string()))?;
        // Every supported WIT version side by side: each registers its interfaces under its own
        // versioned name, and a component links against the one it was built for.
        v0_1::Addon::add_to_linker::<GuestState, HasSelf<HostContext>>(&mut linker, |s| {
            &mut s.host
        })
        .map_err(|e| SandboxError::Engine(e.to_string()))?;
        v0_2::Addon::add_to_linker::<GuestState, HasSelf<HostContext>>(&mut linker, |s| {
            &mut s.host
        })
        .map_err(|e| SandboxError::Engine(e.to_string()))?;
        // The rules engine imports 0.2.0's `host` (linked above) and its own `rules`.
        rules_engine::opsconductor::rules::rules::add_to_linker::<GuestState, HasSelf<HostContext>>(
            &mut linker,
            |s| &mut s.host,
        )
        .map_err(|e| SandboxError::Engine(e.to_string()))?;

        let stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let ticker_stop = stop.clone();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| SandboxError::Engine(e.to_string()))?;

        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir).map_err(|source| SandboxError::Cache {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(Sandbox {
            engine,
            linker,
            cache_dir,
            services,
            compile_counters: CompileCounters::default(),
            _ticker: EpochTicker { stop },
        })
    }

    pub fn compile_stats(&self) -> CompileStats {
        CompileStats {
            compiled: self.compile_counters.compiled.load(Ordering::Relaxed),
            loaded_from_cache: self
                .compile_counters
                .loaded_from_cache
                .load(Ordering::Relaxed),
        }
    }

    /// Compiles (or loads from the cache) and links one addon's component. CPU-heavy on a cache
    /// miss: call it from a blocking thread or at start-up, never per event.
    pub fn load(
        &self,
        addon_id: &str,
        world: &str,
        wasm: &[u8],
        wasm_sha256: &str,
        capabilities: &Capabilities,
    ) -> Result<AddonComponent, SandboxError> {
        if world != WORLD_V0_1 && world != WORLD_V0_2 {
            return Err(SandboxError::World {
                addon: addon_id.to_owned(),
                world: world.to_owned(),
                supported: crate::manifest::SUPPORTED_WORLDS.join(", "),
            });
        }
        let component = self.compile(addon_id, wasm, wasm_sha256)?;
        let link_err = |e: wasmtime::Error| SandboxError::Link {
            addon: addon_id.to_owned(),
            message: format!(
                "{e:#} (the manifest says world `{world}`; was the addon built for it?)"
            ),
        };
        let instance_pre = self.linker.instantiate_pre(&component).map_err(link_err)?;
        let pre = if world == WORLD_V0_1 {
            Pre::V01(v0_1::AddonPre::new(instance_pre).map_err(link_err)?)
        } else {
            Pre::V02(v0_2::AddonPre::new(instance_pre).map_err(link_err)?)
        };
        Ok(self.component(addon_id, pre, capabilities, None))
    }

    /// Loads the component that runs `manifest`'s addon: its own `wasm` (whose sha256 keys the
    /// compiled-component cache), or for a rules addon the rules engine, given the manifest's
    /// `parse` section (`wasm` is then empty). CPU-heavy on a cache miss, as [`Sandbox::load`].
    pub fn load_addon(
        &self,
        manifest: &Manifest,
        wasm: &[u8],
        wasm_sha256: &str,
    ) -> Result<AddonComponent, SandboxError> {
        match &manifest.parse {
            Some(parse) if manifest.is_rules() => {
                self.load_rules(&manifest.id, parse, &manifest.capabilities)
            }
            _ => self.load(
                &manifest.id,
                &manifest.world,
                wasm,
                wasm_sha256,
                &manifest.capabilities,
            ),
        }
    }

    /// Loads a rules addon: the rules engine, given `parse` (the manifest's `parse` section,
    /// which the manifest's validation has already compiled once) as its rules.
    fn load_rules(
        &self,
        addon_id: &str,
        parse: &serde_json::Value,
        capabilities: &Capabilities,
    ) -> Result<AddonComponent, SandboxError> {
        let engine = RulesEngineWasm::get(RULES_ENGINE_FILE)
            .ok_or_else(|| SandboxError::NoRulesEngine(addon_id.to_owned()))?;
        let sha256 = hex::encode(engine.metadata.sha256_hash());
        let component = self.compile(addon_id, &engine.data, &sha256)?;
        let link_err = |e: wasmtime::Error| SandboxError::Link {
            addon: addon_id.to_owned(),
            message: format!("the rules engine: {e:#}"),
        };
        let instance_pre = self.linker.instantiate_pre(&component).map_err(link_err)?;
        let pre = Pre::Rules(rules_engine::EnginePre::new(instance_pre).map_err(link_err)?);
        Ok(self.component(addon_id, pre, capabilities, Some(parse.to_string().into())))
    }

    fn component(
        &self,
        addon_id: &str,
        pre: Pre,
        capabilities: &Capabilities,
        rules: Option<Arc<str>>,
    ) -> AddonComponent {
        AddonComponent {
            addon_id: addon_id.into(),
            pre,
            rules,
            limits: CallLimits::from(capabilities),
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(capabilities.instances as usize),
            counters: Arc::new(CallCounters::default()),
            services: self.services.clone(),
            engine: self.engine.clone(),
        }
    }

    fn compile(
        &self,
        addon_id: &str,
        wasm: &[u8],
        wasm_sha256: &str,
    ) -> Result<Component, SandboxError> {
        let compile_err = |e: wasmtime::Error| SandboxError::Compile {
            addon: addon_id.to_owned(),
            message: format!("{e:#}"),
        };
        let Some(dir) = &self.cache_dir else {
            bump(&self.compile_counters.compiled);
            return Component::new(&self.engine, wasm).map_err(compile_err);
        };
        // The cache is keyed by the digest of the bytes themselves, computed here: a digest from
        // the database that does not match them (a tampered row) must neither pick another
        // addon's machine code nor name a path.
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(wasm));
        if !wasm_sha256.eq_ignore_ascii_case(&digest) {
            return Err(SandboxError::Compile {
                addon: addon_id.to_owned(),
                message: format!(
                    "the recorded sha256 `{}` is not the component's ({digest}); reinstall the addon",
                    wasm_sha256.chars().take(64).collect::<String>()
                ),
            });
        }
        let path = self.cache_path(dir, &digest);
        if path.exists() {
            // SAFETY: the file was written by `precompile_component` of an engine with the same
            // compatibility hash (it is in the file name) into the runtime's own data directory;
            // `deserialize_file` additionally checks the header and refuses a mismatch.
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(component) => {
                    bump(&self.compile_counters.loaded_from_cache);
                    debug!(addon = addon_id, path = %path.display(), "loaded precompiled component");
                    return Ok(component);
                }
                Err(error) => {
                    warn!(addon = addon_id, path = %path.display(), %error, "discarding unusable precompiled component");
                }
            }
        }
        bump(&self.compile_counters.compiled);
        let compiled = self
            .engine
            .precompile_component(wasm)
            .map_err(compile_err)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &compiled)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| SandboxError::Cache {
                path: path.clone(),
                source,
            })?;
        // SAFETY: these bytes were produced just now by this engine's `precompile_component`.
        unsafe { Component::deserialize(&self.engine, &compiled) }.map_err(compile_err)
    }

    /// `digest` is 64 hex digits, computed from the bytes ([`Sandbox::compile`]).
    fn cache_path(&self, dir: &Path, digest: &str) -> PathBuf {
        assert!(
            digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
            "a cache key is a sha256 in hex"
        );
        let mut hasher = DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        dir.join(format!(
            "{digest}-wasmtime{}-{:016x}.cwasm",
            wasmtime_version(),
            hasher.finish()
        ))
    }
}

fn wasmtime_version() -> &'static str {
    // Keep in step with the pinned `wasmtime` in the workspace Cargo.toml.
    "48.0.8"
}

#[derive(Debug, Clone, Copy)]
struct CallLimits {
    memory_mb: u32,
    cpu_ms: u32,
    timeout_ms: u32,
}

impl From<&Capabilities> for CallLimits {
    fn from(c: &Capabilities) -> Self {
        CallLimits {
            memory_mb: c.memory_mb,
            cpu_ms: c.cpu_ms,
            timeout_ms: c.timeout_ms,
        }
    }
}

/// The pre-linked component, typed by the WIT version it was built for.
enum Pre {
    V01(v0_1::AddonPre<GuestState>),
    V02(v0_2::AddonPre<GuestState>),
    Rules(rules_engine::EnginePre<GuestState>),
}

enum Bound {
    V01(v0_1::Addon),
    V02(v0_2::Addon),
    Rules(rules_engine::Engine),
}

struct WarmInstance {
    store: Store<GuestState>,
    addon: Bound,
}

/// What one measured call cost the guest (see [`AddonComponent::parse_measured`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallMeasure {
    /// Guest time: the call's wall time minus the time spent in host imports, which is what
    /// the CPU deadline charges. Not instructions: fuel metering is not enabled.
    pub guest_time: Duration,
    /// The instance's peak linear memory, instantiation included.
    pub peak_memory_bytes: u64,
}

/// What one call asks of the addon.
enum Call {
    Parse(bindings::wit::RawEvent),
    Poll(bindings::wit::Target),
}

/// One addon's compiled component and its pool of warm instances.
///
/// A wasmtime `Store` serves one call at a time, so concurrency per addon is the number of
/// instances (`capabilities.instances`), enforced by a semaphore; idle instances wait in a
/// plain mutex-guarded stack (held for a push or pop only, never across an await).
pub struct AddonComponent {
    addon_id: Arc<str>,
    pre: Pre,
    /// A rules addon's `parse` section, handed to the rules engine; `None` for compiled addons.
    rules: Option<Arc<str>>,
    limits: CallLimits,
    idle: Mutex<Vec<WarmInstance>>,
    permits: Semaphore,
    counters: Arc<CallCounters>,
    services: HostServices,
    engine: Engine,
}

impl AddonComponent {
    pub fn stats(&self) -> CallStats {
        self.counters.snapshot()
    }

    /// Each call's wall time, from taking an instance to its answer.
    pub fn call_times(&self) -> &crate::metrics::Seconds {
        &self.counters.call_time
    }

    /// Whether the component exports `poller` (WIT 0.2.0 and later).
    pub fn can_poll(&self) -> bool {
        matches!(self.pre, Pre::V02(_))
    }

    /// Calls the addon's `parse`. A trap, deadline or timeout discards the instance (its state
    /// may be corrupt); the next call gets a fresh one. An addon error keeps it.
    pub async fn parse(&self, event: RawEvent) -> Result<Vec<ReportedAlert>, CallError> {
        let call = Call::Parse(bindings::wit::RawEvent::from(event));
        let (result, _) = self.call(call, None, self.limits.timeout_ms, false).await;
        result
    }

    /// [`AddonComponent::parse`] in a fresh instance that is discarded afterwards, so that the
    /// measure (guest time, peak memory) belongs to this call alone. For fixture runs, not
    /// for ingest.
    pub async fn parse_measured(
        &self,
        event: RawEvent,
    ) -> (Result<Vec<ReportedAlert>, CallError>, CallMeasure) {
        let call = Call::Parse(bindings::wit::RawEvent::from(event));
        self.call(call, None, self.limits.timeout_ms, true).await
    }

    /// Calls the addon's `poll` export with `io` as the only way out, bounded by `timeout_ms`
    /// of wall-clock time (I/O included) and the usual CPU budget (I/O excluded).
    pub async fn poll(
        &self,
        target: AddonTarget,
        io: Arc<dyn GuestIo>,
        timeout_ms: u32,
    ) -> Result<Vec<ReportedAlert>, CallError> {
        if !self.can_poll() {
            return Err(CallError::Addon {
                kind: "not-implemented",
                message: "the addon's WIT world has no poll export".into(),
            });
        }
        let call = Call::Poll(target.into());
        let (result, _) = self.call(call, Some(io), timeout_ms, false).await;
        result
    }

    /// One call; `isolated` takes a fresh instance and discards it afterwards.
    async fn call(
        &self,
        call: Call,
        io: Option<Arc<dyn GuestIo>>,
        timeout_ms: u32,
        isolated: bool,
    ) -> (Result<Vec<ReportedAlert>, CallError>, CallMeasure) {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore is never closed");
        bump(&self.counters.calls);
        let started = std::time::Instant::now();
        let idle = match isolated {
            true => None,
            false => self.idle.lock().expect("idle pool lock").pop(),
        };
        let mut warm = match idle {
            Some(warm) => warm,
            None => match self.instantiate().await {
                Ok(warm) => warm,
                Err(e) => return (Err(e), CallMeasure::default()),
            },
        };

        let cpu_budget = Duration::from_millis(u64::from(self.limits.cpu_ms));
        warm.store.set_epoch_deadline(1);
        warm.store.data_mut().host.begin_call(cpu_budget, io);
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        let WarmInstance { store, addon } = &mut warm;
        let outcome = tokio::time::timeout(timeout, async {
            match (addon, call) {
                (Bound::V01(a), Call::Parse(event)) => {
                    a.opsconductor_addon_handler()
                        .call_parse(&mut *store, &event)
                        .await
                }
                (Bound::V02(a), Call::Parse(event)) => {
                    a.opsconductor_addon_handler()
                        .call_parse(&mut *store, &event)
                        .await
                }
                (Bound::Rules(a), Call::Parse(event)) => {
                    a.opsconductor_addon_handler()
                        .call_parse(&mut *store, &event)
                        .await
                }
                (Bound::V02(a), Call::Poll(target)) => {
                    a.opsconductor_addon_poller()
                        .call_poll(&mut *store, &target)
                        .await
                }
                (Bound::V01(_) | Bound::Rules(_), Call::Poll(_)) => {
                    unreachable!("poll() refuses components without the poller export")
                }
            }
        })
        .await;
        // The poll's I/O handle must not outlive the call.
        warm.store.data_mut().host.io = None;
        let measure = CallMeasure {
            guest_time: warm.store.data().host.guest_time(),
            peak_memory_bytes: warm.store.data().limiter.peak_bytes as u64,
        };
        self.counters
            .guest_micros
            .fetch_add(measure.guest_time.as_micros() as u64, Ordering::Relaxed);
        let keep = |warm: WarmInstance| {
            if !isolated {
                self.idle.lock().expect("idle pool lock").push(warm);
            }
        };

        let result = match outcome {
            Ok(Ok(Ok(alerts))) => {
                bump(&self.counters.ok);
                keep(warm);
                Ok(alerts.into_iter().map(ReportedAlert::from).collect())
            }
            Ok(Ok(Err(e))) => {
                bump(&self.counters.addon_errors);
                keep(warm);
                Err(CallError::Addon {
                    kind: bindings::error_kind_name(e.kind),
                    message: e.message,
                })
            }
            Ok(Err(trap)) => {
                let error = self.classify_trap(&trap, warm.store.data());
                warn!(addon = %self.addon_id, %error, "addon call failed; instance discarded");
                Err(error)
            }
            Err(_elapsed) => {
                bump(&self.counters.timeouts);
                let error = CallError::Timeout(timeout_ms);
                warn!(addon = %self.addon_id, %error, "addon call timed out; instance discarded");
                Err(error)
            }
        };
        self.counters.call_time.observe(started.elapsed());
        (result, measure)
    }

    fn classify_trap(&self, trap: &wasmtime::Error, state: &GuestState) -> CallError {
        if trap.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            bump(&self.counters.cpu_deadlines);
            return CallError::CpuDeadline(self.limits.cpu_ms);
        }
        if state.limiter.exceeded {
            bump(&self.counters.memory_limits);
            return CallError::MemoryLimit(self.limits.memory_mb);
        }
        bump(&self.counters.traps);
        match &state.host.last_error {
            Some(logged) => CallError::Trap(logged.clone()),
            None => CallError::Trap(trap.to_string()),
        }
    }

    async fn instantiate(&self) -> Result<WarmInstance, CallError> {
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut state = GuestState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                max_bytes: self.limits.memory_mb as usize * 1024 * 1024,
                exceeded: false,
                used_bytes: 0,
                peak_bytes: 0,
            },
            host: HostContext::new(self.addon_id.clone(), self.services.clone()),
        };
        state.host.rules = self.rules.clone();
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Every epoch tick the guest runs, it yields to tokio, so a guest at its CPU limit holds
        // a worker for a tick at a time, never for its whole budget: the HTTP server, the trap
        // receiver and heartbeats keep running beside it, and the call's wall-clock timeout
        // can fire. The epoch advances with wall time, but neither waiting in a host import (a
        // database read, a scripted poll's SNMP walk) nor waiting to be resumed after a yield is
        // the guest's CPU: the budget is charged guest time only (`HostContext::guest_time`).
        store.epoch_deadline_callback(|mut ctx| {
            let host = &mut ctx.data_mut().host;
            host.account_resume();
            if host.guest_time() >= host.cpu_budget {
                return Err(Trap::Interrupt.into());
            }
            Ok(UpdateDeadline::YieldCustom(1, host.yield_now()))
        });
        store.data_mut().host.begin_call(INSTANTIATE_TIMEOUT, None);
        store.set_epoch_deadline(1);
        bump(&self.counters.instantiations);
        let instantiate = async {
            match &self.pre {
                Pre::V01(pre) => pre.instantiate_async(&mut store).await.map(Bound::V01),
                Pre::V02(pre) => pre.instantiate_async(&mut store).await.map(Bound::V02),
                Pre::Rules(pre) => pre.instantiate_async(&mut store).await.map(Bound::Rules),
            }
        };
        let result = tokio::time::timeout(INSTANTIATE_TIMEOUT, instantiate).await;
        match result {
            Ok(Ok(addon)) => Ok(WarmInstance { store, addon }),
            Ok(Err(e)) => {
                bump(&self.counters.instantiate_failures);
                Err(CallError::Instantiate(format!("{e:#}")))
            }
            Err(_) => {
                bump(&self.counters.instantiate_failures);
                Err(CallError::Instantiate("timed out".into()))
            }
        }
    }
}
