//! The write path alone: the batching writer and the store, without HTTP, the sandbox or the
//! engine. Concurrent tasks each write one job (an event's raises) at a time and wait for its
//! commit, as webhook handlers and trap workers do; the figures say what the writer chain
//! costs per alert and per commit, which bounds every ingest path above it.
//!
//! `cargo run --release -p opsconductor-tests --bin bench-store -- [flags]`:
//! `--seconds S` (10), `--tasks C` (16 concurrent writers), `--per-job K` (1 raise per job),
//! `--distinct D` (0: every alert new; D: fingerprints cycle modulo D), `--db sqlite|postgres`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opsconductor::alert::{AlertAction, NewAlert, Severity};
use opsconductor::store::Store;
use opsconductor::testing::{Db, TestPostgres, record_bare_addon, secret_keys, sqlite_url};
use opsconductor::writer::{AlertWriter, WriterConfig};
use opsconductor_tests::procstat;

#[tokio::main]
async fn main() {
    let (mut seconds, mut tasks, mut per_job, mut distinct, mut db) =
        (10u64, 16usize, 1usize, 0u64, Db::Sqlite);
    for (flag, value) in opsconductor_tests::bench_args::pairs() {
        match flag.as_str() {
            "--seconds" => seconds = value.parse().expect("--seconds"),
            "--tasks" => tasks = value.parse().expect("--tasks"),
            "--per-job" => per_job = value.parse().expect("--per-job"),
            "--distinct" => distinct = value.parse().expect("--distinct"),
            "--db" => db = opsconductor_tests::bench_args::db(&value),
            other => panic!("unknown flag {other}"),
        }
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let postgres = match db {
        Db::Sqlite => None,
        Db::Postgres => Some(TestPostgres::create().await.expect("test database")),
    };
    let url = match &postgres {
        Some(pg) => pg.url.clone(),
        None => sqlite_url(dir.path()).await,
    };
    let store = Store::connect(&url, secret_keys()).await.expect("store");
    record_bare_addon(&store, "bench").await;
    let (writer, writer_task) = AlertWriter::spawn(store.clone(), WriterConfig::default());

    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = procstat::sample(std::process::id()).0;
    let started = Instant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let (writer, next, stop) = (writer.clone(), next.clone(), stop.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let actions = (0..per_job)
                        .map(|_| {
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            raise(if distinct == 0 { n } else { n % distinct })
                        })
                        .collect();
                    let sent = Instant::now();
                    writer.write(actions).await.expect("write");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("writer task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_ticks = procstat::sample(std::process::id()).0 - cpu_before;
    let cpu = cpu_ticks as f64 / procstat::clock_ticks_per_second() as f64 / elapsed * 100.0;
    latencies.sort();
    let stats = writer.stats();
    let alerts = stats.actions as f64;
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    println!(
        "db={db:?} tasks={tasks} per_job={per_job} distinct={distinct} seconds={seconds}\n\
         {:.0} alerts/s, {:.0} jobs/s; job latency p50 {:.2} ms, p99 {:.2} ms\n\
         {} transactions: {:.1} alerts and {:.1} µs each ({:.1} µs per alert); CPU {cpu:.0}% of one core",
        alerts / elapsed,
        stats.jobs as f64 / elapsed,
        pct(0.5),
        pct(0.99),
        stats.transactions,
        alerts / stats.transactions as f64,
        elapsed * 1e6 / stats.transactions as f64,
        elapsed * 1e6 / alerts,
    );
    drop(writer);
    writer_task.await.expect("writer");
    store.close().await;
    if let Some(pg) = postgres {
        pg.drop().await;
    }
}

fn raise(n: u64) -> AlertAction {
    let now = chrono::Utc::now();
    AlertAction::Raise(NewAlert {
        addon_id: "bench".into(),
        fingerprint: format!("bench-{n}"),
        alert_type: "bench".into(),
        device_ip: Some("192.0.2.1".into()),
        device_name: Some(format!("device-{}", n % 100)),
        severity: Severity::Minor,
        category: "bench".into(),
        title: format!("bench alert {n}"),
        message: "a benchmark alert".into(),
        fields: [("bench_id".to_owned(), n.to_string())].into(),
        occurred_at: now,
        received_at: now,
    })
}
