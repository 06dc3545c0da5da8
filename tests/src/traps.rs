//! The trap load generator: pre-encoded SNMPv2c linkDown traps with N distinct interfaces,
//! sent over loopback UDP at a set rate (or as fast as possible), then a full account of what
//! became of every datagram. Used by the burst test and by `just bench-traps`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::TestRuntime;

/// What a burst did.
#[derive(Debug)]
pub struct BurstReport {
    pub sent: u64,
    /// Time to send every datagram.
    pub send_time: Duration,
    /// Time until every datagram was accounted for (received and, if queued, finished).
    pub settle_time: Duration,
    /// Datagrams the kernel dropped because the socket's receive buffer was full
    /// (`/proc/net/udp`), which the runtime cannot see.
    pub kernel_drops: u64,
    /// The listener's counters after the burst, minus those before it.
    pub stats: Value,
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

impl BurstReport {
    /// Every datagram sent is in exactly one counter.
    pub fn assert_accounted(&self) {
        let s = &self.stats;
        assert_eq!(
            self.sent,
            n(s, "received") + self.kernel_drops,
            "sent = received + kernel drops: {s}"
        );
        let refused = [
            "malformed",
            "unknown_community",
            "auth_failures",
            "replayed",
            "unsupported_pdu",
            "reports_sent",
            "reports_rate_limited",
        ]
        .iter()
        .map(|k| n(s, k))
        .sum::<u64>();
        assert_eq!(
            n(s, "received"),
            refused + n(s, "decoded"),
            "received = refused + decoded: {s}"
        );
        assert_eq!(
            n(s, "decoded"),
            n(s, "queued") + n(s, "dropped_queue_full"),
            "decoded = queued + dropped: {s}"
        );
        let finished = FINISHED.iter().map(|k| n(s, k)).sum::<u64>();
        assert_eq!(
            n(s, "queued"),
            finished,
            "queued = ingested + unhandled + failed: {s}"
        );
    }

    /// Traps per second, from the first send until everything was accounted for.
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.settle_time.as_secs_f64()
    }
}

/// The trap counters in which a queued trap ends, exactly one each: their sum reaches `queued`
/// once the queue is drained.
pub const FINISHED: [&str; 5] = [
    "ingested",
    "unhandled",
    "addon_failed",
    "quarantined",
    "store_failed",
];

/// One linkDown trap per interface index `1..=distinct`, encoded once up front.
pub fn encoded_traps(distinct: u32) -> Vec<Vec<u8>> {
    opsconductor::testing::link_down_traps(distinct)
}

/// The kernel's drop count for the UDP socket bound to `port` on loopback.
pub fn kernel_drops(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    let wanted = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (cols.get(1)?.ends_with(&wanted)).then(|| cols.last()?.parse::<u64>().ok())?
        })
        .sum()
}

/// The counters in `after` less those in `before`.
fn diff(after: &Value, before: &Value) -> Value {
    let map = after
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let delta = v.as_u64().unwrap_or(0).saturating_sub(n(before, k));
                    (k.clone(), Value::from(delta))
                })
                .collect()
        })
        .unwrap_or_default();
    Value::Object(map)
}

/// Sends `count` traps (cycling through `distinct` interfaces) to the runtime's trap port, at
/// `rate` per second or as fast as the socket takes them, and waits until every one is
/// accounted for.
pub async fn burst(rt: &TestRuntime, count: u64, distinct: u32, rate: Option<u64>) -> BurstReport {
    let target = rt.trap_addr();
    let traps = encoded_traps(distinct.max(1));
    let stats = async || rt.get_json("/api/v1/stats").await.1["traps"].clone();
    let before = stats().await;
    let drops_before = kernel_drops(target.port());

    let started = Instant::now();
    tokio::task::spawn_blocking(move || {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("sender socket");
        for i in 0..count {
            if let Some(rate) = rate
                && rate > 0
            {
                // Pace by the clock, not by sleeping per packet, so that the rate holds
                // whatever a sleep really costs.
                let due = Duration::from_secs_f64(i as f64 / rate as f64);
                let elapsed = started.elapsed();
                if due > elapsed {
                    std::thread::sleep(due - elapsed);
                }
            }
            let packet = &traps[(i % traps.len() as u64) as usize];
            socket.send_to(packet, target).expect("send");
        }
    })
    .await
    .expect("sender thread");
    let send_time = started.elapsed();

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = diff(&stats().await, &before);
        let drops = kernel_drops(target.port()) - drops_before;
        let finished = FINISHED.iter().map(|k| n(&now, k)).sum::<u64>();
        if n(&now, "received") + drops >= count && finished >= n(&now, "queued") {
            return BurstReport {
                sent: count,
                send_time,
                settle_time: started.elapsed(),
                kernel_drops: drops,
                stats: now,
            };
        }
        assert!(
            Instant::now() < deadline,
            "burst not accounted for after 120 s: {now}, kernel drops {drops}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
