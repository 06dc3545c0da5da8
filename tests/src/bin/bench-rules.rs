//! What a rules addon costs per event next to the compiled addon it replaces: the same fixture
//! input, parsed over and over through the real sandbox, by the compiled component and by the
//! rules engine running the converted rules. Sequential calls on a warm instance, as events run
//! (the `instances` column says none was created while timing), so the figures are the cost of
//! the call itself (event in, alerts out), not of HTTP or the store; `fresh call` is one call on
//! a new instance, as `addon test` runs a fixture.
//!
//! `cargo run --release -p opsconductor-tests --bin bench-rules -- [--calls N]` (5000), after
//! `just build-addons`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opsconductor::manifest::Manifest;
use opsconductor::sandbox::{AddonComponent, HostServices, Sandbox, code_sha256};
use opsconductor::store::Store;
use opsconductor_model::fixture::{self, InputKind};
use opsconductor_tests::bundle;

/// (compiled addon, its rules version, fixture input file).
const PAIRS: [(&str, &str, &str); 3] = [
    ("alertmanager", "alertmanager-rules", "firing.input.json"),
    ("grafana", "grafana-rules", "firing.input.json"),
    ("if-mib", "if-mib-rules", "link-down.input.trap.json"),
];

fn load(sandbox: &Sandbox, id: &str) -> (Manifest, AddonComponent) {
    let dir = bundle(id);
    let manifest = Manifest::from_json(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let wasm = std::fs::read(dir.join("addon.wasm")).unwrap_or_default();
    let component = sandbox
        .load_addon(&manifest, &wasm, &code_sha256(&manifest, &wasm))
        .unwrap_or_else(|e| panic!("{id}: {e}"));
    (manifest, component)
}

struct Figures {
    median: Duration,
    p99: Duration,
    /// Mean guest time of a warm call (the sandbox's own counter over the timed calls).
    guest_mean: Duration,
    per_second: f64,
    /// Instances created by the timed calls: 0 when every call ran warm.
    instances: u64,
    /// A call on a fresh instance, as `addon test` runs each fixture: wall time (instantiation
    /// included) and peak linear memory.
    fresh: Duration,
    peak_memory: u64,
}

async fn measure(
    component: &AddonComponent,
    event: &opsconductor::event::RawEvent,
    calls: usize,
) -> Figures {
    // Warm the instance first: the first call instantiates (and the rules engine compiles the
    // addon's rules, once per instance).
    for _ in 0..50 {
        component
            .parse(event.clone())
            .await
            .expect("the fixture parses");
    }
    let before = component.stats();
    let mut wall = Vec::with_capacity(calls);
    let started = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        component
            .parse(event.clone())
            .await
            .expect("the fixture parses");
        wall.push(t.elapsed());
    }
    let total = started.elapsed();
    let after = component.stats();
    wall.sort();
    let t = Instant::now();
    let (result, m) = component.parse_measured(event.clone()).await;
    let fresh = t.elapsed();
    result.expect("the fixture parses");
    Figures {
        median: wall[calls / 2],
        p99: wall[calls * 99 / 100],
        guest_mean: Duration::from_micros(
            (after.guest_micros - before.guest_micros) / calls as u64,
        ),
        per_second: calls as f64 / total.as_secs_f64(),
        instances: after.instantiations - before.instantiations,
        fresh,
        peak_memory: m.peak_memory_bytes,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut calls = 5000usize;
    for (flag, value) in opsconductor_tests::bench_args::pairs() {
        match flag.as_str() {
            "--calls" => calls = value.parse().expect("--calls"),
            other => panic!("unknown flag {other}"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(
        &format!("sqlite://{}", dir.path().join("bench.db").display()),
        opsconductor::testing::secret_keys(),
    )
    .await
    .unwrap();
    let sandbox = Arc::new(Sandbox::new(None, HostServices { store }).unwrap());

    println!(
        "{:<20} {:<6} {:>10} {:>10} {:>11} {:>9} {:>10} {:>11} {:>9}",
        "fixture",
        "addon",
        "median",
        "p99",
        "guest mean",
        "calls/s",
        "instances",
        "fresh call",
        "peak MiB"
    );
    for (compiled, rules, input) in PAIRS {
        let (name, kind) = InputKind::of(input).unwrap();
        for (label, id) in [("code", compiled), ("rules", rules)] {
            let (manifest, component) = load(&sandbox, id);
            let bytes = std::fs::read(bundle(id).join("fixtures").join(input)).unwrap();
            let event = fixture::read_input(&manifest, kind, bytes).unwrap();
            let f = measure(&component, &event, calls).await;
            println!(
                "{:<20} {:<6} {:>8.1}µs {:>8.1}µs {:>9.1}µs {:>9.0} {:>10} {:>9.0}µs {:>9.1}",
                format!("{compiled}/{name}"),
                label,
                f.median.as_secs_f64() * 1e6,
                f.p99.as_secs_f64() * 1e6,
                f.guest_mean.as_secs_f64() * 1e6,
                f.per_second,
                f.instances,
                f.fresh.as_secs_f64() * 1e6,
                f.peak_memory as f64 / (1024.0 * 1024.0),
            );
        }
    }
}
