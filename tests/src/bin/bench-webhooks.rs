//! Webhook ingest benchmark: starts a runtime in this process (SQLite or PostgreSQL) with the
//! real `alertmanager` addon, then posts Alertmanager notifications over loopback HTTP from
//! concurrent clients and reports throughput and how well the writer batched.
//!
//! `just bench-webhooks` runs it in release mode; flags: `--requests N --concurrency C
//! --distinct D --alerts-per-request A --db sqlite|postgres`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use opsconductor_tests::{Db, TestRuntime, bundle, fixture};
use serde_json::Value;

struct Args {
    requests: u64,
    concurrency: u64,
    distinct: u64,
    alerts_per_request: u64,
    db: Db,
}

fn parse_args() -> Args {
    let mut args = Args {
        requests: 20_000,
        concurrency: 32,
        distinct: 1_000,
        alerts_per_request: 1,
        db: Db::Sqlite,
    };
    for (flag, value) in opsconductor_tests::bench_args::pairs() {
        let number = || {
            value
                .parse::<u64>()
                .unwrap_or_else(|e| panic!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--requests" => args.requests = number(),
            "--concurrency" => args.concurrency = number().max(1),
            "--distinct" => args.distinct = number().max(1),
            "--alerts-per-request" => args.alerts_per_request = number().max(1),
            "--db" => args.db = opsconductor_tests::bench_args::db(&value),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

/// One Alertmanager notification whose alerts have identities `first..first+count`.
fn payload(template: &Value, first: u64, count: u64, distinct: u64) -> Vec<u8> {
    let mut body = template.clone();
    let alert = template["alerts"][0].clone();
    body["alerts"] = (0..count)
        .map(|i| {
            let mut a = alert.clone();
            a["labels"]["bench_id"] = ((first + i) % distinct).to_string().into();
            a
        })
        .collect();
    serde_json::to_vec(&body).unwrap()
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let rt = Arc::new(TestRuntime::start(args.db, &[bundle("alertmanager")]).await);
    let template: Value = serde_json::from_slice(&fixture("alertmanager", "firing")).unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));

    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..args.concurrency {
        let (rt, next, failed, template) =
            (rt.clone(), next.clone(), failed.clone(), template.clone());
        let (requests, per, distinct) = (args.requests, args.alerts_per_request, args.distinct);
        clients.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests {
                    break;
                }
                let (status, _) = rt
                    .post_webhook("alertmanager", payload(&template, n * per, per, distinct))
                    .await;
                if status != 200 {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();

    let (_, stats) = rt.get_json("/api/v1/stats").await;
    let alerts = args.requests * args.alerts_per_request;
    println!(
        "db={:?} requests={} concurrency={} alerts/request={} distinct={}",
        args.db, args.requests, args.concurrency, args.alerts_per_request, args.distinct
    );
    println!(
        "elapsed {elapsed:.2}s: {:.0} requests/s, {:.0} alerts/s, {} failed",
        args.requests as f64 / elapsed,
        alerts as f64 / elapsed,
        failed.load(Ordering::Relaxed)
    );
    let w = &stats["writer"];
    let jobs = w["jobs"].as_f64().unwrap_or(0.0);
    let tx = w["transactions"].as_f64().unwrap_or(1.0).max(1.0);
    println!(
        "writer: {} jobs in {} transactions ({:.1} events per transaction); alerts by status {}",
        w["jobs"],
        w["transactions"],
        jobs / tx,
        stats["alerts_by_status"]
    );
    Arc::into_inner(rt).expect("clients done").stop().await;
}
