//! Console benchmark: the dashboard in a real browser (Debian's chromium over chromedriver)
//! against a runtime in this process holding `--alerts` open alerts on SQLite (default
//! 100,000), posted as real Alertmanager notifications.
//!
//! It measures, and prints as a table:
//! - the first render: signing in, then reloading the page (token kept), until the console is
//!   live with rows on screen — the snapshot download and parse included;
//! - applying a facet filter (`severity=critical`) until the filtered total shows, and the
//!   page's own measure of the filter pass;
//! - scrolling the whole list: frame times while it scrolls a screen per frame;
//! - a burst of `--rate` alert events per second (default 1,000) for `--seconds` (default 30):
//!   new alerts, repeats and resolutions, through real webhooks; the longest main-thread task
//!   while it lasts (PerformanceObserver `longtask`), how far behind the page fell, and whether
//!   its counts by severity equal the store's at the end (they must, exactly).
//!
//! `just bench-console` runs it in release mode; flags: `--alerts N --rate R --seconds S`.
//! Screenshots of the loaded console go to target/browser-screenshots/bench-*.png.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opsconductor::auth::{Actor, Role, Secret};
use opsconductor_tests::browser::{Browser, Driver, testid};
use opsconductor_tests::{Db, TestRuntime, bundle, fixture};
use serde_json::{Value, json};

struct Args {
    alerts: u64,
    rate: u64,
    seconds: u64,
}

fn parse_args() -> Args {
    let mut args = Args {
        alerts: 100_000,
        rate: 1_000,
        seconds: 30,
    };
    for (flag, value) in opsconductor_tests::bench_args::pairs() {
        let number = || {
            value
                .parse::<u64>()
                .unwrap_or_else(|e| panic!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--alerts" => args.alerts = number().max(1),
            "--rate" => args.rate = number().max(10),
            "--seconds" => args.seconds = number().max(1),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

const SEVERITIES: [&str; 5] = ["critical", "major", "minor", "warning", "info"];
const TYPES: [&str; 12] = [
    "NodeDown",
    "DiskFull",
    "CpuHigh",
    "MemoryHigh",
    "LinkDown",
    "HighLatency",
    "CertExpiring",
    "BackupFailed",
    "PodCrashLooping",
    "QueueBacklog",
    "ErrorRate",
    "TempHigh",
];
/// Alerts per notification: what one Alertmanager group flush carries at most by default.
const PER_REQUEST: u64 = 100;

/// Alert number `n`'s entry: spread over 2,000 devices, the types and severities (critical the
/// rarest), with the labels a real rule carries.
fn alert(n: u64, status: &str) -> Value {
    let severity = SEVERITIES[match n % 20 {
        0 => 0,
        1..=3 => 1,
        4..=8 => 2,
        9..=15 => 3,
        _ => 4,
    }];
    let kind = TYPES[(n / 7 % TYPES.len() as u64) as usize];
    let device = n % 2_000;
    let job = ["node", "blackbox", "kube-state", "postgres"][(n % 4) as usize];
    let site = ["paris", "london", "frankfurt"][(device % 3) as usize];
    let team = ["core", "edge", "platform", "data"][(n / 3 % 4) as usize];
    json!({
        "status": status,
        "labels": {
            "alertname": kind,
            "severity": severity,
            "instance": format!("10.{}.{}.{}:9100", 20 + device / 500, device / 250 % 2, device % 250),
            "job": job,
            "site": site,
            "team": team,
            "bench_id": n.to_string(),
        },
        "annotations": {
            "summary": format!("{kind} on device {device}"),
            "description": format!("{kind} has been firing on device {device} (bench alert {n})"),
        },
        "startsAt": "2026-12-01T09:12:45.123Z",
        "endsAt": "0001-01-01T00:00:00Z",
    })
}

fn notification(template: &Value, alerts: Vec<Value>) -> Vec<u8> {
    let mut body = template.clone();
    body["alerts"] = Value::Array(alerts);
    serde_json::to_vec(&body).unwrap()
}

async fn post(rt: &TestRuntime, body: Vec<u8>) {
    let (status, answer) = rt.post_webhook("alertmanager", body).await;
    assert_eq!(status, 200, "{answer}");
}

/// Open alerts by severity, as the store counts them.
async fn store_counts(rt: &TestRuntime) -> Value {
    let (status, facets) = rt.get_json("/api/v1/alerts/facets").await;
    assert_eq!(status, 200, "{facets}");
    facets["facets"]["severity"]["values"].clone()
}

/// The page's counts by severity, as its header shows them.
async fn page_counts(browser: &Browser) -> Value {
    browser
        .eval(
            "const out = {}; for (const s of arguments[0]) { \
               const e = document.querySelector('[data-testid=\"count-' + s + '\"]'); \
               const n = e ? parseInt(e.textContent.replace(/[^0-9]/g, ''), 10) : 0; \
               if (n > 0) out[s] = n; } return out;",
            vec![json!(SEVERITIES)],
        )
        .await
}

/// Waits until the console is live with rows on screen; the time it took.
async fn until_live(browser: &Browser, started: Instant) -> Duration {
    browser
        .until(
            "the console to be live with rows",
            "const l = document.querySelector(arguments[0]); \
             return l !== null && l.dataset.state === 'live' \
               && document.querySelector(arguments[1]) !== null;",
            vec![json!(testid("live-indicator")), json!(testid("alert-row"))],
        )
        .await;
    started.elapsed()
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let rt = Arc::new(
        TestRuntime::start_configured(
            Db::Sqlite,
            &[bundle("alertmanager")],
            |config| {
                config.log = "warn".into();
                // The console reconnects and re-reads rather than hold a burst in memory: give
                // clients the room a busy console needs.
                config.websocket.client_queue = 65_536;
            },
            async |_| {},
        )
        .await,
    );
    let password = "bench-console-password";
    rt.server
        .state()
        .auth
        .create_user(
            "bench",
            Role::Admin,
            Some(&Secret::new(password)),
            &Actor::system(),
        )
        .await
        .unwrap();
    let template: Value = serde_json::from_slice(&fixture("alertmanager", "firing")).unwrap();

    // ---- load ----
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut loaders = Vec::new();
    for _ in 0..8 {
        let (rt, next, template, total) = (rt.clone(), next.clone(), template.clone(), args.alerts);
        loaders.push(tokio::spawn(async move {
            loop {
                let first = next.fetch_add(PER_REQUEST, Ordering::Relaxed);
                if first >= total {
                    return;
                }
                let alerts = (first..(first + PER_REQUEST).min(total))
                    .map(|n| alert(n, "firing"))
                    .collect();
                post(&rt, notification(&template, alerts)).await;
            }
        }));
    }
    for l in loaders {
        l.await.unwrap();
    }
    let counts = store_counts(&rt).await;
    println!(
        "loaded {} open alerts in {:.1} s: {counts}",
        args.alerts,
        started.elapsed().as_secs_f64()
    );

    // ---- what the snapshot costs the server and the wire ----
    let t = Instant::now();
    let open = rt.server.state().store.open_alerts().await.unwrap();
    let read = t.elapsed();
    let t = Instant::now();
    let json = serde_json::to_vec(&open).unwrap();
    let mut snapshot = vec![format!(
        "store read {}, JSON {} ({:.1} MB)",
        ms(read),
        ms(t.elapsed()),
        json.len() as f64 / 1e6
    )];
    drop((open, json));
    for encoding in ["identity", "gzip"] {
        let t = Instant::now();
        let response = rt
            .http
            .get(rt.url("/api/v1/alerts/open"))
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        let bytes = response.bytes().await.unwrap().len();
        snapshot.push(format!(
            "{encoding}: {:.1} MB in {}",
            bytes as f64 / 1e6,
            ms(t.elapsed())
        ));
    }

    // ---- first render ----
    let driver = Driver::start().await;
    let browser = driver.browser(&rt.url(""), 1600, 1000).await;
    let t = Instant::now();
    browser.open("/login").await;
    browser.fill("login-username", "bench").await;
    browser.fill("login-password", password).await;
    browser.click("sign-in").await;
    let sign_in = until_live(&browser, t).await;
    let mut reloads = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        browser.client.refresh().await.unwrap();
        reloads.push(until_live(&browser, t).await);
    }
    let perf = browser
        .eval("return window.__ocPerf || null;", vec![])
        .await;
    browser.screenshot("bench-console-loaded").await;
    assert_eq!(
        page_counts(&browser).await,
        counts,
        "the page shows the store's counts"
    );

    // ---- a facet filter ----
    let critical = counts["critical"].as_u64().unwrap_or(0);
    let t = Instant::now();
    browser.click("facet-severity-critical").await;
    browser
        .until_text("alert-total", &critical.to_string())
        .await;
    let facet = t.elapsed();
    let filter_perf = browser
        .eval(
            "return (window.__ocPerf || {}).lastFilterMs ?? null;",
            vec![],
        )
        .await;
    browser.screenshot("bench-console-filtered").await;
    // And back to everything.
    let t = Instant::now();
    browser.click("facet-severity-critical").await;
    browser
        .until_text("alert-total", &args.alerts.to_string())
        .await;
    let unfilter = t.elapsed();

    // ---- scrolling the whole list ----
    let scroll = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             const list = document.querySelector('[data-testid=\"alert-list\"]'); \
             if (!list) { done(null); return; } \
             const frames = []; let last = performance.now(); let n = 0; \
             function step(now) { frames.push(now - last); last = now; \
               list.scrollTop += list.clientHeight; \
               if (++n < 240 && list.scrollTop + list.clientHeight < list.scrollHeight) requestAnimationFrame(step); \
               else { frames.sort((a, b) => a - b); \
                 done({frames: frames.length, p50: frames[Math.floor(frames.length * 0.5)], \
                       p95: frames[Math.floor(frames.length * 0.95)], max: frames[frames.length - 1]}); } } \
             requestAnimationFrame(step);",
            vec![],
        )
        .await
        .unwrap();
    browser
        .eval(
            "const l = document.querySelector('[data-testid=\"alert-list\"]'); if (l) l.scrollTop = 0;",
            vec![],
        )
        .await;

    // ---- the burst ----
    let burst_start = browser.eval("return performance.now();", vec![]).await;
    let per_tick = (args.rate / 10).max(1);
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut fresh = args.alerts;
    let mut sent = 0u64;
    let mut max_behind_s = 0f64;
    let t = Instant::now();
    let mut posts = tokio::task::JoinSet::new();
    for tick in 0..args.seconds * 10 {
        ticker.tick().await;
        // 70% repeats of open alerts, 20% new ones, 10% resolutions of old ones.
        let alerts: Vec<Value> = (0..per_tick)
            .map(|i| {
                let k = tick * per_tick + i;
                match k % 10 {
                    0..=6 => alert((k * 7_919) % args.alerts, "firing"),
                    7 | 8 => {
                        fresh += 1;
                        alert(fresh, "firing")
                    }
                    _ => alert(k % args.alerts, "resolved"),
                }
            })
            .collect();
        sent += alerts.len() as u64;
        for chunk in alerts.chunks(PER_REQUEST as usize) {
            let (rt, body) = (rt.clone(), notification(&template, chunk.to_vec()));
            posts.spawn(async move { post(&rt, body).await });
        }
        if tick % 10 == 0 {
            let behind = browser
                .eval(
                    "const l = document.querySelector(arguments[0]); \
                     const m = l ? l.textContent.match(/([0-9.]+) s behind/) : null; \
                     return m ? parseFloat(m[1]) : 0;",
                    vec![json!(testid("live-indicator"))],
                )
                .await;
            max_behind_s = max_behind_s.max(behind.as_f64().unwrap_or(0.0));
        }
    }
    while let Some(done) = posts.join_next().await {
        done.unwrap();
    }
    let burst = t.elapsed();
    let counts = store_counts(&rt).await;
    let t = Instant::now();
    let converged = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if page_counts(&browser).await == counts {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .is_ok();
    let settle = t.elapsed();
    let long_tasks = browser
        .eval(
            "const p = window.__ocPerf || {}; \
             const tasks = (p.longTasks || []).filter(t => t.start >= arguments[0]); \
             return {count: tasks.length, longest: tasks.reduce((m, t) => Math.max(m, t.duration), 0), \
                     eventsApplied: p.eventsApplied ?? null};",
            vec![burst_start],
        )
        .await;
    browser.screenshot("bench-console-after-burst").await;
    let bus = rt.server.state().events.stats();

    println!();
    println!("| measure | result |");
    println!("|---|---|");
    println!("| open alerts | {} |", args.alerts);
    println!("| sign-in to live console | {} |", ms(sign_in));
    println!(
        "| reload to live console (3 runs) | median {}, min {}, max {} |",
        ms(median(reloads.clone())),
        ms(*reloads.iter().min().unwrap()),
        ms(*reloads.iter().max().unwrap())
    );
    println!(
        "| GET /api/v1/alerts/open (bench client) | {} |",
        snapshot.join("; ")
    );
    println!("| page's own measures after load | {perf} |");
    println!(
        "| facet filter `severity=critical` to total shown | {} (filter pass {filter_perf} ms); clearing it {} |",
        ms(facet),
        ms(unfilter)
    );
    println!("| scrolling a screen per frame (frame ms) | {scroll} |");
    println!(
        "| burst | {sent} alert events in {:.1} s ({:.0}/s), through {} webhooks |",
        burst.as_secs_f64(),
        sent as f64 / burst.as_secs_f64(),
        sent.div_ceil(PER_REQUEST)
    );
    println!("| main-thread long tasks during the burst | {long_tasks} |");
    println!("| most behind the indicator showed | {max_behind_s:.1} s |");
    println!(
        "| counts equal to the store's after the burst | {} (settled {} after the last post): {counts} |",
        if converged { "yes" } else { "NO" },
        ms(settle)
    );
    println!(
        "| event bus | published {}, dropped {}, gaps {}, clients lagged {} |",
        bus.published, bus.dropped, bus.gaps, bus.clients_lagged
    );
    browser.close().await;
    drop(driver);
    if !converged {
        eprintln!("the page's counts never equalled the store's after the burst");
        std::process::exit(1);
    }
}
