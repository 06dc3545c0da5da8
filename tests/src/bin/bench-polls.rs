//! Polling benchmark: starts a runtime in this process (SQLite or PostgreSQL) with the real
//! `http-json` addon and N targets whose endpoint is an HTTP server in this process, lets the
//! scheduler poll them for a while, and reports what the endpoint saw: polls per second, how
//! evenly each target was polled (the gap between two polls of one target against its
//! interval), and the process's CPU time per poll.
//!
//! `just bench-polls` runs it in release mode; flags: `--targets N --interval SECONDS
//! --seconds S --concurrency C --db sqlite|postgres`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use opsconductor::config::Config;
use opsconductor::target::{Schedule, TargetSpec};
use opsconductor_tests::{Db, TestRuntime, bundle};

struct Args {
    targets: usize,
    interval: u32,
    seconds: u64,
    concurrency: usize,
    db: Db,
}

fn parse_args() -> Args {
    let mut args = Args {
        targets: 2_000,
        interval: 10,
        seconds: 60,
        concurrency: 64,
        db: Db::Sqlite,
    };
    for (flag, value) in opsconductor_tests::bench_args::pairs() {
        let number = || {
            value
                .parse::<u64>()
                .unwrap_or_else(|e| panic!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--targets" => args.targets = number().max(1) as usize,
            "--interval" => args.interval = number().max(1) as u32,
            "--seconds" => args.seconds = number().max(1),
            "--concurrency" => args.concurrency = number().max(1) as usize,
            "--db" => args.db = opsconductor_tests::bench_args::db(&value),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

type Polls = Arc<Mutex<HashMap<String, Vec<Instant>>>>;

async fn record(
    State(polls): State<Polls>,
    Path(name): Path<String>,
) -> axum::Json<serde_json::Value> {
    polls
        .lock()
        .unwrap()
        .entry(name)
        .or_default()
        .push(Instant::now());
    axum::Json(serde_json::json!({ "status": "ok", "queue": { "depth": 3 } }))
}

/// User plus system CPU time of this process so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let polls: Polls = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/t/{name}", axum::routing::get(record))
        .with_state(polls.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (targets, interval) = (args.targets, args.interval);
    let rt = TestRuntime::start_configured(
        args.db,
        &[bundle("http-json")],
        |config: &mut Config| {
            config.poll_concurrency = args.concurrency;
            config.scheduler_tick_ms = 100;
            config.log = "warn".into();
        },
        async move |store| {
            for i in 0..targets {
                let name = format!("t{i:05}");
                let spec = TargetSpec {
                    name: name.clone(),
                    address: peer.to_string(),
                    addon_id: "http-json".into(),
                    schedule: Some(Schedule::IntervalSeconds(interval)),
                    enabled: true,
                    config: serde_json::json!({
                        "path": format!("t/{name}"),
                        "thresholds": [{ "name": "queueDepth", "pointer": "/queue/depth", "max": 100 }],
                    })
                    .as_object()
                    .cloned()
                    .unwrap(),
                    credentials: None,
                };
                store.create_target(&spec, 60, chrono::Utc::now()).await.expect("target created");
            }
        },
    )
    .await;

    // The first polls spread over the first period (min(interval, 60 s)); measure after it.
    let warmup = Duration::from_secs(u64::from(interval).min(60));
    tokio::time::sleep(warmup).await;
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let before: usize = polls.lock().unwrap().values().map(Vec::len).sum();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let (cpu1, t1) = (cpu_time(), Instant::now());
    let polls = polls.lock().unwrap().clone();
    let after: usize = polls.values().map(Vec::len).sum();

    let measured = (after - before) as f64;
    let elapsed = (t1 - t0).as_secs_f64();
    let expected = targets as f64 * elapsed / f64::from(interval);
    let mut gaps: Vec<f64> = polls
        .values()
        .flat_map(|times| {
            times
                .windows(2)
                .filter(|w| w[0] >= t0 && w[1] <= t1)
                .map(|w| (w[1] - w[0]).as_secs_f64())
                .collect::<Vec<_>>()
        })
        .collect();
    gaps.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let late = gaps
        .iter()
        .filter(|g| **g > f64::from(interval) * 1.5)
        .count();
    let cpu = (cpu1 - cpu0).as_secs_f64();

    println!(
        "db: {:?}, targets: {targets}, interval: {interval} s, concurrency: {}",
        args.db, args.concurrency
    );
    println!(
        "polls: {measured:.0} in {elapsed:.1} s = {:.0} polls/s (schedule asks for {:.0}/s, {:.1}% done)",
        measured / elapsed,
        expected / elapsed,
        100.0 * measured / expected
    );
    println!(
        "gap between polls of one target: p50 {:.2} s, p99 {:.2} s, max {:.2} s; {late} of {} gaps over 1.5 intervals",
        percentile(&gaps, 0.5),
        percentile(&gaps, 0.99),
        gaps.last().copied().unwrap_or(0.0),
        gaps.len()
    );
    println!(
        "process CPU: {cpu:.1} s over {elapsed:.1} s ({:.0}% of one core), {:.2} ms per poll (runtime, addon and HTTP peer together)",
        100.0 * cpu / elapsed,
        1000.0 * cpu / measured.max(1.0)
    );
    let stats = rt.get_json("/api/v1/stats").await.1;
    println!("writer: {}", stats["writer"]);
    rt.stop().await;
}
