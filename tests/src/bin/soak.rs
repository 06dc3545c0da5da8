//! Soak test: runs the real release server (`target/release/opsconductor`, or
//! `$OPSCONDUCTOR_BIN`) as a child process for a while under steady mixed load, well below what
//! the box can take, and samples it every 10 s, so that an operator can see that memory and
//! descriptors stay flat, no error counter rises and latency holds.
//!
//! `just soak 30` builds the server and the addons and runs this for 30 minutes. Flags:
//! `--minutes M` (default 30, fractions allowed), `--out DIR` (`target/soak`), `--webhook-rate`
//! (Alertmanager webhooks per second, 100), `--trap-rate` (v2c traps per second, 100),
//! `--targets` (`http-json` targets polled every 10 s, 20), `--ws-clients` (WebSocket clients
//! following every alert event, 10; one API key may hold 32), `--db sqlite|postgres`.
//!
//! The load: webhooks firing and then resolving 500 distinct alerts in turn; linkDown then
//! linkUp traps for 200 interfaces; polls of an HTTP endpoint served here, whose answer
//! alternates between ok and degraded per target; WebSocket clients that reconnect when
//! dropped; the newest alerts and the counters read once a second. So every path raises and
//! clears alerts all along while the open alerts stay bounded.
//!
//! Out: `soak.csv`, a row per window, flushed at once so that a crashed run still leaves its
//! data: the server's RSS, descriptors, threads and CPU; the window's requests, latency, traps,
//! polls and WebSocket events; open alerts and queue depths; and cumulative error counters,
//! ours and the server's (`/api/v1/stats`), which should all stay 0. `server.log` (the server's
//! warnings, JSON). At the end, or on Ctrl-C: `summary.md` (printed too) and `soak.png`, drawn
//! by `scripts/soak-plot.py`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use futures_util::{SinkExt, StreamExt};
use opsconductor_tests::served::{self, Opsconductor, ServeOptions};
use opsconductor_tests::{Db, bench_args, fixture, procstat, traps};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

const WINDOW: Duration = Duration::from_secs(10);
const DISTINCT_ALERTS: u64 = 500;
const DISTINCT_INTERFACES: u32 = 200;
const POLL_INTERVAL_SECONDS: u64 = 10;
/// Webhooks awaiting an answer at most: past it the sender waits, and the window's request
/// count shows the server falling behind instead of this process piling up requests.
const MAX_WEBHOOKS_IN_FLIGHT: usize = 64;

struct Args {
    minutes: f64,
    out: PathBuf,
    webhook_rate: u64,
    trap_rate: u64,
    targets: usize,
    ws_clients: usize,
    db: Db,
}

fn parse_args() -> Args {
    let mut args = Args {
        minutes: 30.0,
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/soak"),
        webhook_rate: 100,
        trap_rate: 100,
        targets: 20,
        ws_clients: 10,
        db: Db::Sqlite,
    };
    for (flag, value) in bench_args::pairs() {
        let number = || {
            value
                .parse::<u64>()
                .unwrap_or_else(|e| panic!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--minutes" => args.minutes = value.parse().unwrap_or_else(|e| panic!("{flag}: {e}")),
            "--out" => args.out = PathBuf::from(value),
            "--webhook-rate" => args.webhook_rate = number(),
            "--trap-rate" => args.trap_rate = number(),
            "--targets" => args.targets = number() as usize,
            "--ws-clients" => args.ws_clients = number() as usize,
            "--db" => args.db = bench_args::db(&value),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(args.minutes > 0.0, "--minutes must be above 0");
    args
}

/// What the load did: cumulative counters, and the latencies of the current window, which the
/// sampler takes.
#[derive(Default)]
struct Load {
    webhooks: AtomicU64,
    webhook_ms: Mutex<Vec<f64>>,
    webhook_non2xx: AtomicU64,
    api_reads: AtomicU64,
    api_ms: Mutex<Vec<f64>>,
    /// Requests that got no answer, API reads not answered 2xx, WebSocket connections refused.
    request_errors: AtomicU64,
    traps_sent: AtomicU64,
    polls_seen: AtomicU64,
    /// Polls of each target so far, whose parity picks the answer.
    polls_by_target: Mutex<std::collections::HashMap<String, u64>>,
    ws_events: AtomicU64,
    ws_reconnects: AtomicU64,
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn total(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Adds the time since `started`, in ms, to a window's latencies.
fn record(latencies: &Mutex<Vec<f64>>, started: Instant) {
    latencies
        .lock()
        .unwrap()
        .push(started.elapsed().as_secs_f64() * 1e3);
}

/// Keep-alive connections are dropped after 5 s idle: the server closes them at 10 s, and a
/// request racing that close would fail through no fault of the server.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Request `n` fires alert `n % DISTINCT_ALERTS` (told apart by its `instance` label), or
/// resolves it on every other round through them.
fn webhook_body(templates: &[Value; 2], n: u64) -> Vec<u8> {
    let id = n % DISTINCT_ALERTS;
    let mut body = templates[((n / DISTINCT_ALERTS) % 2) as usize].clone();
    let instance = Value::from(format!("10.99.{}.{}:9100", id / 256, id % 256));
    body["commonLabels"]["instance"] = instance.clone();
    body["alerts"][0]["labels"]["instance"] = instance;
    body["alerts"][0]["fingerprint"] = format!("{id:016x}").into();
    serde_json::to_vec(&body).unwrap()
}

/// Open loop at `rate`: a slow answer does not slow the sending (up to
/// [`MAX_WEBHOOKS_IN_FLIGHT`]), so a stall shows in the latency.
async fn send_webhooks(url: String, rate: u64, load: Arc<Load>, mut stop: watch::Receiver<bool>) {
    let templates = ["firing", "resolved"]
        .map(|name| serde_json::from_slice(&fixture("alertmanager", name)).unwrap());
    let (client, in_flight) = (
        http_client(),
        Arc::new(Semaphore::new(MAX_WEBHOOKS_IN_FLIGHT)),
    );
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    pace.set_missed_tick_behavior(MissedTickBehavior::Skip);
    for n in 0.. {
        let permit = tokio::select! {
            _ = stopped(&mut stop) => break,
            permit = async {
                pace.tick().await;
                in_flight.clone().acquire_owned().await.unwrap()
            }, if rate > 0 => permit,
        };
        let (client, url, load) = (client.clone(), url.clone(), load.clone());
        let request = client
            .post(url)
            .header("content-type", "application/json")
            .body(webhook_body(&templates, n));
        tokio::spawn(async move {
            let started = Instant::now();
            match request.send().await {
                Ok(answer) => {
                    let ok = answer.status().is_success() && answer.bytes().await.is_ok();
                    record(&load.webhook_ms, started);
                    count(&load.webhooks);
                    if !ok {
                        count(&load.webhook_non2xx);
                    }
                }
                Err(_) => count(&load.request_errors),
            }
            drop(permit);
        });
    }
    // Every answer is in before the final counters are read.
    let _ = in_flight.acquire_many(MAX_WEBHOOKS_IN_FLIGHT as u32).await;
}

/// linkDown for interfaces `1..=distinct`, then linkUp for the same: sent round-robin, each
/// interface goes down and a round later up again.
fn link_down_then_up_traps(distinct: u32) -> Vec<Vec<u8>> {
    use opsconductor::event::{SnmpValue, Varbind};
    const LINK_UP: &str = "1.3.6.1.6.3.1.1.5.4";
    let ups = (1..=distinct).map(|index| {
        // ifIndex, ifAdminStatus up, ifOperStatus up.
        let varbinds = [(1, index as i32), (7, 1), (8, 1)].map(|(column, value)| Varbind {
            oid: format!("1.3.6.1.2.1.2.2.1.{column}.{index}"),
            value: SnmpValue::Integer(value),
        });
        opsconductor::snmp::encode_v2c_trap("public", index as i32, 4242, LINK_UP, &varbinds)
            .expect("trap encodes")
    });
    let mut traps = opsconductor::testing::link_down_traps(distinct);
    traps.extend(ups);
    traps
}

/// The endpoint the `http-json` targets poll: `{"status": "ok"}` and `"degraded"` in turn per
/// target, so that polls raise and clear an alert all along.
async fn serve_poll_peer(load: Arc<Load>) -> SocketAddr {
    async fn answer(
        State(load): State<Arc<Load>>,
        UrlPath(target): UrlPath<String>,
    ) -> axum::Json<Value> {
        count(&load.polls_seen);
        let mut polls = load.polls_by_target.lock().unwrap();
        let n = polls.entry(target).or_default();
        *n += 1;
        axum::Json(json!({ "status": if *n % 2 == 0 { "degraded" } else { "ok" } }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/t/{target}", axum::routing::get(answer))
        .with_state(load);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn create_targets(oc: &Opsconductor, peer: SocketAddr, targets: usize) {
    for i in 0..targets {
        let name = format!("soak-{i:03}");
        let answer = http_client()
            .post(format!("http://{}/api/v1/targets", oc.http))
            .bearer_auth(&oc.key)
            .json(&json!({
                "name": name,
                "address": peer.to_string(),
                "addon_id": "http-json",
                "schedule": { "interval_seconds": POLL_INTERVAL_SECONDS },
                "config": { "path": format!("t/{name}") },
            }))
            .send()
            .await
            .expect("the API answers");
        let status = answer.status();
        assert!(
            status.is_success(),
            "creating {name}: {status} {}",
            answer.text().await.unwrap_or_default()
        );
    }
}

/// A WebSocket client following every alert event until `stop`; when dropped it reconnects
/// after a second (well within the server's per-address connection rate).
/// Resolves once `stop` says so; the watch's guard is dropped at once, so that a task awaiting
/// this stays `Send`.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn follow_events(url: String, key: String, load: Arc<Load>, mut stop: watch::Receiver<bool>) {
    for attempt in 0u64.. {
        if attempt > 0 {
            count(&load.ws_reconnects);
            tokio::select! {
                _ = stopped(&mut stop) => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        let mut request = url.as_str().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(request).await else {
            count(&load.request_errors);
            continue;
        };
        let events = ["alert_created", "alert_updated", "alert_resolved"];
        let subscribe = json!({ "type": "subscribe", "events": events, "filter": {} });
        if ws.send(Message::text(subscribe.to_string())).await.is_err() {
            continue;
        }
        loop {
            let frame = tokio::select! {
                _ = stopped(&mut stop) => {
                    let _ = ws.close(None).await;
                    return;
                }
                frame = ws.next() => frame,
            };
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let message: Value = serde_json::from_str(&text).unwrap_or_default();
                    if message["type"]
                        .as_str()
                        .is_some_and(|t| events.contains(&t))
                    {
                        count(&load.ws_events);
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            }
        }
    }
}

/// What an open console asks on its own: the newest alerts and the counters, once a second.
async fn read_api(http: SocketAddr, key: String, load: Arc<Load>, mut stop: watch::Receiver<bool>) {
    let client = http_client();
    let mut pace = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => return,
            _ = pace.tick() => {}
        }
        for path in ["/api/v1/alerts?limit=100", "/api/v1/stats"] {
            let (started, url) = (Instant::now(), format!("http://{http}{path}"));
            match client.get(url).bearer_auth(&key).send().await {
                Ok(answer) if answer.status().is_success() => match answer.bytes().await {
                    Ok(_) => {
                        record(&load.api_ms, started);
                        count(&load.api_reads);
                    }
                    Err(_) => count(&load.request_errors),
                },
                _ => count(&load.request_errors),
            }
        }
    }
}

/// One window: the server at its end, the load within it, our error counters since the start.
struct Row {
    elapsed_s: f64,
    server: served::Sample,
    /// Webhook requests answered, API reads, traps sent, polls seen, WebSocket events.
    window: [u64; 5],
    webhook_p50_ms: Option<f64>,
    webhook_p99_ms: Option<f64>,
    api_p99_ms: Option<f64>,
    ws_reconnects: u64,
    /// Ours, then the server's ([`served::error_counters`]).
    errors: Vec<(&'static str, u64)>,
}

impl Row {
    fn new(
        elapsed_s: f64,
        server: served::Sample,
        load: &Load,
        last_totals: &mut [u64; 5],
        trap_port: u16,
    ) -> Row {
        let totals = [
            &load.webhooks,
            &load.api_reads,
            &load.traps_sent,
            &load.polls_seen,
            &load.ws_events,
        ]
        .map(total);
        let mut window = totals;
        window
            .iter_mut()
            .zip(*last_totals)
            .for_each(|(n, last)| *n -= last);
        *last_totals = totals;
        let mut webhook_ms = std::mem::take(&mut *load.webhook_ms.lock().unwrap());
        let mut api_ms = std::mem::take(&mut *load.api_ms.lock().unwrap());
        let mut errors = vec![
            ("webhook_non2xx", total(&load.webhook_non2xx)),
            ("request_errors", total(&load.request_errors)),
            // Traps the socket's buffer had no room for: the server never saw them.
            ("traps_kernel_dropped", traps::kernel_drops(trap_port)),
        ];
        errors.extend(server.errors);
        Row {
            elapsed_s,
            window,
            webhook_p50_ms: percentile(&mut webhook_ms, 0.50),
            webhook_p99_ms: percentile(&mut webhook_ms, 0.99),
            api_p99_ms: percentile(&mut api_ms, 0.99),
            ws_reconnects: total(&load.ws_reconnects),
            errors,
            server,
        }
    }

    /// `soak.csv`'s columns: name and value.
    fn columns(&self) -> Vec<(&'static str, String)> {
        let ms = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.2}"));
        let [webhooks, api_reads, traps, polls, ws_events] = self.window.map(|n| n.to_string());
        let s = &self.server;
        let mut columns = vec![
            ("elapsed_s", format!("{:.1}", self.elapsed_s)),
            ("rss_kib", s.rss_kib.to_string()),
            ("open_fds", s.open_fds.to_string()),
            ("threads", s.threads.to_string()),
            ("cpu_percent", format!("{:.1}", s.cpu_percent)),
            ("webhook_requests", webhooks),
            ("webhook_p50_ms", ms(self.webhook_p50_ms)),
            ("webhook_p99_ms", ms(self.webhook_p99_ms)),
            ("api_reads", api_reads),
            ("api_p99_ms", ms(self.api_p99_ms)),
            ("traps_sent", traps),
            ("polls_seen", polls),
            ("ws_events", ws_events),
            ("ws_reconnects", self.ws_reconnects.to_string()),
            ("open_alerts", s.open_alerts.to_string()),
            ("trap_queue", s.trap_queue.to_string()),
            ("writer_queue", s.writer_queue.to_string()),
        ];
        columns.extend(self.errors.iter().map(|(name, n)| (*name, n.to_string())));
        columns
    }
}

/// Nearest-rank percentile of `values` (sorted here).
fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 * p).ceil() as usize).max(1);
    values.get(rank - 1).copied()
}

// ---- the summary ----

/// Least-squares slope of `y` over `x`; `None` without two distinct `x`.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let (mean_x, mean_y) = points
        .iter()
        .fold((0.0, 0.0), |(x, y), p| (x + p.0 / n, y + p.1 / n));
    let sxy: f64 = points
        .iter()
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    let sxx: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// `| name | first | last | slope per hour after the warm-up |`.
fn trend(
    name: &str,
    unit: &str,
    rows: &[Row],
    warm_up_s: f64,
    value: impl Fn(&Row) -> u64,
) -> String {
    let fitted: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.elapsed_s >= warm_up_s)
        .map(|r| (r.elapsed_s / 3600.0, value(r) as f64))
        .collect();
    let slope = slope(&fitted).map_or("n/a (too short)".into(), |s| format!("{s:+.1} {unit}/h"));
    let (first, last) = (
        rows.first().map_or(0, &value),
        rows.last().map_or(0, &value),
    );
    format!("| {name} | {first} {unit} | {last} {unit} | {slope} |\n")
}

/// `| name | min | median | max |` of a latency over the windows.
fn spread(name: &str, rows: &[Row], value: impl Fn(&Row) -> Option<f64>) -> String {
    let mut values: Vec<f64> = rows.iter().filter_map(value).collect();
    values.sort_by(f64::total_cmp);
    match (values.first(), values.get(values.len() / 2), values.last()) {
        (Some(min), Some(median), Some(max)) => {
            format!("| {name} | {min:.1} | {median:.1} | {max:.1} |\n")
        }
        _ => format!("| {name} | — | — | — |\n"),
    }
}

/// What the run came to: `summary.md`.
fn summary(args: &Args, rows: &[Row], load: &Load, ended_by: &str, end: &End) -> String {
    let elapsed_s = rows.last().map_or(0.0, |r| r.elapsed_s);
    let warm_up_s = (0.2 * elapsed_s).min(120.0);
    let mut out = format!(
        "# Soak: {:.1} of {} minutes on {:?}, ended by {ended_by}\n\n{} cores, {}. Load: {} webhooks/s \
         ({DISTINCT_ALERTS} alerts firing and resolving), {} traps/s ({DISTINCT_INTERFACES} interfaces down \
         and up), {} targets polled every {POLL_INTERVAL_SECONDS} s, {} WebSocket clients, 2 API reads/s.\n\n",
        elapsed_s / 60.0,
        args.minutes,
        args.db,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        args.webhook_rate,
        args.trap_rate,
        args.targets,
        args.ws_clients,
    );
    let polls_due = (args.targets as f64 * elapsed_s / POLL_INTERVAL_SECONDS as f64).round();
    let cpu = rows.iter().map(|r| r.server.cpu_percent).sum::<f64>() / rows.len().max(1) as f64;
    out.push_str("## Load\n\n| | total |\n|---|---|\n");
    for (what, n) in [
        (
            "webhook requests answered",
            total(&load.webhooks).to_string(),
        ),
        ("traps sent", total(&load.traps_sent).to_string()),
        (
            "polls seen by the peer",
            format!("{} (about {polls_due} due)", total(&load.polls_seen)),
        ),
        (
            "WebSocket alert events received",
            total(&load.ws_events).to_string(),
        ),
        (
            "WebSocket reconnects",
            total(&load.ws_reconnects).to_string(),
        ),
        ("API reads", total(&load.api_reads).to_string()),
        ("server CPU, mean", format!("{cpu:.0}% of one core")),
    ] {
        let _ = writeln!(out, "| {what} | {n} |");
    }
    let _ = write!(
        out,
        "\n## Resources (slopes fitted after a {warm_up_s:.0} s warm-up; RSS before the load {} KiB)\n\n\
         | | first window | last window | slope |\n|---|---|---|---|\n{}{}{}\n",
        end.rss_before_load,
        trend("RSS", "KiB", rows, warm_up_s, |r| r.server.rss_kib),
        trend("open descriptors", "fds", rows, warm_up_s, |r| r
            .server
            .open_fds),
        trend("threads", "threads", rows, warm_up_s, |r| r.server.threads),
    );
    let _ = write!(
        out,
        "## Latency per {} s window (ms)\n\n| | min | median | max |\n|---|---|---|---|\n{}{}{}\n",
        WINDOW.as_secs(),
        spread("webhook p50", rows, |r| r.webhook_p50_ms),
        spread("webhook p99", rows, |r| r.webhook_p99_ms),
        spread("API read p99", rows, |r| r.api_p99_ms),
    );
    let errors = rows.last().map(|r| r.errors.clone()).unwrap_or_default();
    let verdict = if errors.iter().all(|(_, n)| *n == 0) {
        "all 0"
    } else {
        "**NOT all 0**"
    };
    let _ = write!(
        out,
        "## Error counters: {verdict}\n\n| counter | total |\n|---|---|\n"
    );
    for (name, n) in errors {
        let _ = writeln!(out, "| {name} | {n} |");
    }
    let n = |key: &str| end.trap_stats[key].as_u64().unwrap_or(0);
    let _ = write!(
        out,
        "\n## Trap accounting\n\nsent {}, dropped by the kernel {}",
        total(&load.traps_sent),
        end.kernel_drops
    );
    for key in [
        "received",
        "decoded",
        "queued",
        "dropped_queue_full",
        "ingested",
        "unhandled",
    ] {
        let _ = write!(out, ", {key} {}", n(key));
    }
    for key in ["addon_failed", "quarantined", "store_failed"] {
        let _ = write!(out, ", {key} {}", n(key));
    }
    let unstored = n("decoded") as i64 - n("ingested") as i64;
    let _ = writeln!(out, ": decoded − ingested = **{unstored}**.\n");
    let log = std::fs::read_to_string(&end.server_log).unwrap_or_default();
    let level = |l: &str| {
        log.lines()
            .filter(|line| line.contains(&format!("\"level\":\"{l}\"")))
            .count()
    };
    let exit = end
        .exit
        .map_or("had not exited after 60 s, killed".into(), |s| {
            format!("{s}")
        });
    let _ = writeln!(
        out,
        "## Server\n\nStopped with SIGTERM after the load: {exit}, in {:.1} s. Its log, {}: {} warnings, {} errors.",
        end.stop_time.as_secs_f64(),
        end.server_log.display(),
        level("WARN"),
        level("ERROR"),
    );
    out
}

/// How the server ended, for [`summary`].
struct End {
    rss_before_load: u64,
    trap_stats: Value,
    kernel_drops: u64,
    exit: Option<std::process::ExitStatus>,
    stop_time: Duration,
    server_log: PathBuf,
}

/// Draws `png` from `csv` with `scripts/soak-plot.py`. A plot that fails is reported, not
/// fatal: the numbers are in the CSV and the summary.
fn plot(csv: &Path, png: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/soak-plot.py");
    let script = std::fs::canonicalize(&script).unwrap_or(script);
    match std::process::Command::new("python3")
        .arg(&script)
        .arg(csv)
        .arg(png)
        .status()
    {
        Ok(status) if status.success() => println!("plot: {}", png.display()),
        Ok(status) => println!(
            "plot: {} failed ({status}); the data is in {}",
            script.display(),
            csv.display()
        ),
        Err(e) => println!(
            "plot: cannot run python3 ({e}); the data is in {}",
            csv.display()
        ),
    }
}

#[tokio::main]
async fn main() {
    let mut args = parse_args();
    std::fs::create_dir_all(&args.out).unwrap_or_else(|e| panic!("{}: {e}", args.out.display()));
    // Named plainly in what is printed, not as `tests/../target/soak`.
    args.out = std::fs::canonicalize(&args.out).unwrap();
    let server_log = args.out.join("server.log");
    let load = Arc::new(Load::default());
    let peer = serve_poll_peer(load.clone()).await;
    let mut oc = served::start_opsconductor(ServeOptions {
        db: args.db,
        traps: true,
        // The defaults: a soak checks the server as it ships.
        config: String::new(),
        addons: &["alertmanager", "if-mib", "http-json"],
        key_role: "operator",
        env: vec![
            ("OPSCONDUCTOR_POLL_ALLOW", "127.0.0.0/8".into()),
            ("OPSCONDUCTOR_LOG_FORMAT", "json".into()),
        ],
        // Beside the CSV rather than in the temporary directory, so that it outlives a crash.
        log: Some(server_log.clone()),
        own_process_group: true,
    })
    .await;
    let trap_addr = oc.traps.expect("serve printed its trap address");
    create_targets(&oc, peer, args.targets).await;
    let pid = oc.running.pid();
    let (_, rss_before_load) = procstat::sample(pid);

    let (stop, stopped) = watch::channel(false);
    let stop_traps = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    let webhook_url = format!("http://{}/webhooks/alertmanager", oc.http);
    tasks.spawn(send_webhooks(
        webhook_url,
        args.webhook_rate,
        load.clone(),
        stopped.clone(),
    ));
    tasks.spawn(read_api(
        oc.http,
        oc.key.clone(),
        load.clone(),
        stopped.clone(),
    ));
    for _ in 0..args.ws_clients {
        let url = format!("ws://{}/ws", oc.http);
        tasks.spawn(follow_events(
            url,
            oc.key.clone(),
            load.clone(),
            stopped.clone(),
        ));
    }
    let trap_sender = {
        let (load, stop, rate) = (load.clone(), stop_traps.clone(), args.trap_rate);
        let traps = link_down_then_up_traps(DISTINCT_INTERFACES);
        tokio::task::spawn_blocking(move || {
            if rate > 0 {
                served::send_traps_until(trap_addr, &traps, rate, None, &stop, &load.traps_sent);
            }
        })
    };

    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    let started = Instant::now();
    let mut sampler = served::Sampler::new(&oc);
    let mut last_totals = [0; 5];
    let csv_path = args.out.join("soak.csv");
    let mut csv = std::fs::File::create(&csv_path).unwrap();
    eprintln!(
        "soak: {} minutes on {:?}, server pid {pid} at http://{}",
        args.minutes, args.db, oc.http
    );
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut rows: Vec<Row> = Vec::new();
    let mut ended_by = None;
    while ended_by.is_none() {
        let next = (started + WINDOW * (rows.len() as u32 + 1)).min(started + duration);
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = &mut ctrl_c => ended_by = Some("Ctrl-C"),
        }
        let server = sampler.sample().await;
        let elapsed_s = started.elapsed().as_secs_f64();
        let row = Row::new(elapsed_s, server, &load, &mut last_totals, trap_addr.port());
        let columns = row.columns();
        if rows.is_empty() {
            let header: Vec<&str> = columns.iter().map(|c| c.0).collect();
            writeln!(csv, "{}", header.join(",")).unwrap();
        }
        let values: Vec<&str> = columns.iter().map(|c| c.1.as_str()).collect();
        writeln!(csv, "{}", values.join(","))
            .and_then(|()| csv.flush())
            .unwrap();
        let progress = [
            "elapsed_s",
            "rss_kib",
            "open_fds",
            "threads",
            "cpu_percent",
            "webhook_p99_ms",
            "open_alerts",
        ];
        let shown = columns.iter().filter(|(name, _)| progress.contains(name));
        let errors: u64 = row.errors.iter().map(|(_, n)| n).sum();
        eprintln!(
            "{} errors={errors}",
            shown
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        rows.push(row);
        if let Some(status) = oc.running.exit_status() {
            eprintln!(
                "soak: the server exited ({status}); its log is {}",
                server_log.display()
            );
            ended_by = Some("the server exiting");
        } else if started.elapsed() >= duration {
            ended_by = Some("the set duration");
        }
    }
    let ended_by = ended_by.unwrap_or_default();

    eprintln!("soak: stopping the load ({ended_by}), then the server");
    let _ = stop.send(true);
    stop_traps.store(true, Ordering::Relaxed);
    let _ = trap_sender.await;
    while tasks.join_next().await.is_some() {}
    let trap_stats = match oc.running.exit_status() {
        None => oc.settled_trap_stats().await,
        Some(_) => rows
            .last()
            .map_or(Value::Null, |r| r.server.stats["traps"].clone()),
    };
    let kernel_drops = traps::kernel_drops(trap_addr.port());
    let stopping = Instant::now();
    let exit = oc.stop_gracefully(Duration::from_secs(60)).await;
    let end = End {
        rss_before_load,
        trap_stats,
        kernel_drops,
        exit,
        stop_time: stopping.elapsed(),
        server_log,
    };
    let text = summary(&args, &rows, &load, ended_by, &end);
    std::fs::write(args.out.join("summary.md"), &text).unwrap();
    println!("{text}");
    plot(&csv_path, &args.out.join("soak.png"));
}
