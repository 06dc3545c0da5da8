//! Trap ingest benchmark: starts a runtime in this process with the `if-mib` addon, sends a
//! burst of pre-encoded SNMPv2c traps over loopback UDP, and reports the rate and the full
//! account of every datagram (which must add up exactly).
//!
//! `just bench-traps` runs it in release mode; flags: `--count N --distinct D --rate R`
//! (traps per second; 0 = as fast as possible) `--db sqlite|postgres`.

use opsconductor_tests::{Db, TestRuntime, bundle};

#[tokio::main]
async fn main() {
    let (mut count, mut distinct, mut rate, mut db) = (100_000u64, 1_000u32, 0u64, Db::Sqlite);
    for (flag, value) in opsconductor_tests::bench_args::pairs() {
        match flag.as_str() {
            "--count" => count = value.parse().expect("--count"),
            "--distinct" => distinct = value.parse().expect("--distinct"),
            "--rate" => rate = value.parse().expect("--rate"),
            "--db" => db = opsconductor_tests::bench_args::db(&value),
            other => panic!("unknown flag {other}"),
        }
    }
    let rt = TestRuntime::start_with(db, &[bundle("if-mib")], async |store| {
        store
            .snmp_set_community("bench", "public", chrono::Utc::now())
            .await
            .unwrap();
    })
    .await;
    let report =
        opsconductor_tests::traps::burst(&rt, count, distinct, (rate > 0).then_some(rate)).await;
    println!(
        "db={db:?} count={count} distinct={distinct} rate={}",
        if rate == 0 {
            "max".into()
        } else {
            rate.to_string()
        }
    );
    println!(
        "sent in {:.2}s ({:.0}/s); all accounted for after {:.2}s: {:.0} traps/s end to end",
        report.send_time.as_secs_f64(),
        count as f64 / report.send_time.as_secs_f64(),
        report.settle_time.as_secs_f64(),
        report.rate()
    );
    println!(
        "kernel drops (receive buffer full): {}",
        report.kernel_drops
    );
    println!("listener: {}", report.stats);
    let (_, stats) = rt.get_json("/api/v1/stats").await;
    println!(
        "writer: {} ; alerts by status {}",
        stats["writer"], stats["alerts_by_status"]
    );
    report.assert_accounted();
    println!("every trap accounted for");
    rt.stop().await;
}
