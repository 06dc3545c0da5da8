//! Side by side with the peers operators compare us with, in one run on one box: Prometheus
//! Alertmanager for webhooks, net-snmp's snmptrapd for traps. Every system runs as its own
//! process on loopback and is driven by the same generator — `wrk` with one Lua script for
//! HTTP (the body shaped for each system's API, the same alerts), and one UDP sender for traps
//! — while this program samples the system's CPU time and RSS from `/proc`.
//!
//! Reported per workload: alerts (or traps) per second, p50/p99 latency, CPU% (of one core)
//! and peak RSS, and OpsConductor's ratio to the peer; then single-alert webhooks paced (wrk's
//! `delay`) at half the rate each database reached, for the latency of a busy node. Traps: the highest rate each system
//! takes for `--trap-seconds` with nothing lost (every datagram logged by snmptrapd, or
//! counted by OpsConductor as stored or deduplicated, and no kernel drop).
//!
//! `just bench-peers` installs the peers (apt) and `wrk`, builds the release binary and runs
//! this. Flags: `--seconds S` (per HTTP run, default 20), `--connections C` (16),
//! `--trap-seconds S` (60), `--trap-rates R,R,...` (rates tried in order until one loses),
//! `--db sqlite,postgres`, `--only webhooks|memory|traps`, `--server-config "key = value; ..."`
//! (top-level settings for OpsConductor, `;` between lines). `memory` fills OpsConductor with
//! 1,000,000 open alerts and reports its RSS at rest, under load and while the API pages.
//!
//! `--perf DIR` profiles instead of comparing: OpsConductor alone, each workload once under
//! `perf record --call-graph dwarf`, and `scripts/stage-costs.py` turns each recording into the
//! CPU cost per alert (or trap) of every stage. Profiled runs are slower than measured ones
//! (perf copies stacks), so their rates are not comparable with the peer tables.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opsconductor_tests::served::{
    self, Opsconductor, Running, ServeOptions, free_port, send_traps, wait_ready,
};
use opsconductor_tests::{Db, procstat};
use serde_json::Value;

#[derive(Clone)]
struct Args {
    seconds: u64,
    connections: u64,
    trap_seconds: u64,
    trap_rates: Vec<u64>,
    dbs: Vec<String>,
    only: Option<String>,
    /// Profile OpsConductor instead of comparing: perf data and stage tables go here.
    perf: Option<PathBuf>,
    /// Top-level settings added to OpsConductor's configuration (`--server-config
    /// "writer_max_batch = 500"`), to compare settings in one run.
    server_config: String,
}

fn parse_args() -> Args {
    let mut args = Args {
        seconds: 20,
        connections: 16,
        trap_seconds: 60,
        trap_rates: vec![
            5_000, 10_000, 15_000, 20_000, 25_000, 30_000, 40_000, 60_000,
        ],
        dbs: vec!["sqlite".into(), "postgres".into()],
        only: None,
        perf: None,
        server_config: String::new(),
    };
    for (flag, value) in opsconductor_tests::bench_args::pairs() {
        let number = || {
            value
                .parse::<u64>()
                .unwrap_or_else(|e| panic!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--seconds" => args.seconds = number().max(1),
            "--connections" => args.connections = number().max(2),
            "--trap-seconds" => args.trap_seconds = number().max(1),
            "--trap-rates" => {
                args.trap_rates = value
                    .split(',')
                    .map(|r| r.trim().parse().expect("--trap-rates: numbers"))
                    .collect()
            }
            "--db" => args.dbs = value.split(',').map(str::to_owned).collect(),
            "--only" => args.only = Some(value),
            "--perf" => args.perf = Some(PathBuf::from(value)),
            "--server-config" => args.server_config = value.replace(';', "\n"),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

/// The first of `names` found on `PATH` or in the sbin directories.
fn find_program(names: &[&str]) -> PathBuf {
    for name in names {
        for dir in std::env::var("PATH").unwrap_or_default().split(':').chain([
            "/usr/sbin",
            "/sbin",
            "/usr/bin",
        ]) {
            let path = Path::new(dir).join(name);
            if path.is_file() {
                return path;
            }
        }
    }
    panic!("none of {names:?} is installed: run `just bench-peers`, which installs them")
}

// ---- sampling a process (opsconductor_tests::procstat) ----

/// Samples a process while a workload runs: CPU% of one core over the whole window, and the
/// highest RSS seen (every 200 ms).
struct Sampler {
    pid: u32,
    started: Instant,
    cpu_start: u64,
    peak_rss: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Usage {
    cpu_percent: f64,
    peak_rss_mb: f64,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let (cpu_start, rss) = procstat::sample(pid);
        let peak_rss = Arc::new(AtomicU64::new(rss));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak_rss, stop) = (peak_rss.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (_, rss) = procstat::sample(pid);
                    peak_rss.fetch_max(rss, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        };
        Sampler {
            pid,
            started: Instant::now(),
            cpu_start,
            peak_rss,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Usage {
        let (cpu_end, rss) = procstat::sample(self.pid);
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let seconds = self.started.elapsed().as_secs_f64();
        let ticks = cpu_end.saturating_sub(self.cpu_start) as f64;
        Usage {
            cpu_percent: 100.0 * ticks / procstat::clock_ticks_per_second() as f64 / seconds,
            peak_rss_mb: self.peak_rss.load(Ordering::Relaxed).max(rss) as f64 / 1024.0,
        }
    }
}

// ---- a system under test (opsconductor_tests::served) ----

fn start_alertmanager() -> (Running, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let child = Command::new(find_program(&["prometheus-alertmanager", "alertmanager"]))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.path().display()))
        .arg(format!("--web.listen-address={addr}"))
        // No cluster: one instance, as OpsConductor on one node.
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
        .spawn()
        .expect("alertmanager starts");
    wait_ready(addr, "/-/ready");
    (Running::new(child, dir), addr)
}

/// snmptrapd logging every trap, one line each with its variables, to a file; no DNS.
fn start_snmptrapd() -> (Running, SocketAddr, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("snmptrapd.conf");
    std::fs::write(&config, "authCommunity log public\n").unwrap();
    let log = dir.path().join("traps.log");
    let port = {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let child = Command::new(find_program(&["snmptrapd"]))
        .args(["-f", "-n", "-C", "-c"])
        .arg(&config)
        .arg("-Lf")
        .arg(&log)
        .args(["-F", "%B [%b]: %N %w %q %v\n"])
        .arg(format!("udp:{addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("snmptrapd starts");
    // Ready once it logs its start line.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("NET-SNMP version")) {
        assert!(Instant::now() < deadline, "snmptrapd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Running::new(child, dir), addr, log)
}

/// An `opsconductor serve` (release) on a fresh SQLite file or PostgreSQL database, with the
/// bundled `alertmanager` and `if-mib` addons, the community `public`, and an API key to read
/// its counters.
async fn start_opsconductor(db: &str, traps: bool, server_config: &str) -> Opsconductor {
    served::start_opsconductor(ServeOptions {
        db: match db {
            "postgres" => Db::Postgres,
            _ => Db::Sqlite,
        },
        traps,
        // The defaults but for the per-addon webhook rate (2,000/s): Alertmanager has none, and
        // a throughput benchmark must not measure 429s.
        config: format!("{server_config}\n[limits]\nwebhook_per_addon_per_second = 0\n"),
        addons: &["alertmanager", "if-mib"],
        key_role: "viewer",
        env: Vec::new(),
        log: None,
        own_process_group: false,
    })
    .await
}

// ---- profiling ----

/// `perf record` of a process while a workload runs; [`Perf::report`] prints the stage table.
struct Perf {
    child: Child,
    data: PathBuf,
}

const PERF_HZ: u32 = 299;

impl Perf {
    fn start(pid: u32, dir: &Path, name: &str) -> Perf {
        std::fs::create_dir_all(dir).unwrap();
        let data = dir.join(format!("{}.data", name.replace([' ', ',', '/'], "_")));
        let child = Command::new("perf")
            .args([
                "record",
                "-q",
                "-F",
                &PERF_HZ.to_string(),
                "--call-graph",
                "dwarf,16384",
            ])
            .arg("-p")
            .arg(pid.to_string())
            .arg("-o")
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("perf runs (apt-get install linux-perf)");
        // perf attaches within a moment; a few samples more or less do not matter.
        std::thread::sleep(Duration::from_millis(500));
        Perf { child, data }
    }

    fn report(mut self, units: u64, label: &str) {
        // SIGINT: perf writes its file and exits.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/stage-costs.py");
        let status = Command::new("python3")
            .arg(script)
            .arg(&self.data)
            .arg(PERF_HZ.to_string())
            .arg(units.to_string())
            .arg(label)
            .status()
            .expect("python3 runs");
        assert!(status.success(), "stage-costs.py failed");
    }
}

// ---- webhooks ----

/// One webhook workload: alerts per request, and how many distinct label sets (0: every
/// alert new).
#[derive(Clone, Copy)]
struct Workload {
    per_request: u64,
    distinct: u64,
    /// Where `bench_id` starts counting, so that a later run of all-unique alerts opens new
    /// alerts rather than repeating an earlier run's.
    first: u64,
    /// Each connection waits this long before its next request (0: none): paces the load to
    /// about `connections × 1000 / delay_ms` requests per second, for latency at a given rate.
    delay_ms: u64,
}

impl Workload {
    fn name(&self) -> String {
        let kind = if self.distinct == 0 {
            "all unique".to_owned()
        } else {
            format!("{} distinct", self.distinct)
        };
        format!("{}/request, {kind}", self.per_request)
    }
}

/// The wrk script: each request carries `per_request` alerts whose `bench_id` label counts up
/// per thread (interleaved, so threads never repeat each other) modulo `distinct`. Only the
/// envelope differs between systems: Alertmanager's API takes a list of alerts, its webhook
/// notification (what OpsConductor's addon reads) wraps them.
fn wrk_script(workload: Workload, threads: u64, for_alertmanager: bool) -> String {
    let (prefix, suffix, status) = if for_alertmanager {
        ("[", "]", "")
    } else {
        (
            r#"{"version":"4","groupKey":"{}:{alertname=\"BenchAlert\"}","truncatedAlerts":0,"status":"firing","receiver":"opsconductor","groupLabels":{"alertname":"BenchAlert"},"commonLabels":{"alertname":"BenchAlert"},"commonAnnotations":{},"externalURL":"http://alertmanager.example.net:9093","alerts":["#,
            "]}",
            r#""status":"firing","#,
        )
    };
    let alert = format!(
        r#"{{{status}"labels":{{"alertname":"BenchAlert","job":"node","severity":"warning","instance":"10.%d.%d.%d:9100","bench_id":"%d"}},"annotations":{{"summary":"bench alert %d","description":"generated by bench-peers"}},"startsAt":"2026-12-04T00:00:00Z","generatorURL":"http://prometheus.example.net:9090/graph"}}"#
    );
    format!(
        r#"
local threads = {{}}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
local counter = 0
local per = {per}
local distinct = {distinct}
local first = {first}
local nthreads = {threads}
local prefix = [==[{prefix}]==]
local suffix = [==[{suffix}]==]
local alert = [==[{alert}]==]
request = function()
  local parts = {{}}
  for i = 1, per do
    local n = (counter * per + i - 1) * nthreads + tid
    if distinct > 0 then n = n % distinct end
    n = n + first
    parts[i] = string.format(alert, math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256, n, n)
  end
  counter = counter + 1
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json"}}, prefix .. table.concat(parts, ",") .. suffix)
end
{pacing}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH {{\"requests\":%d,\"duration_us\":%d,\"non2xx\":%d,\"socket_errors\":%d,\"p50_us\":%d,\"p99_us\":%d}}\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"#,
        per = workload.per_request,
        distinct = workload.distinct,
        first = workload.first,
        pacing = match workload.delay_ms {
            0 => String::new(),
            ms => format!("delay = function() return {ms} end"),
        },
    )
}

struct HttpResult {
    alerts_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    failed: u64,
    usage: Usage,
}

/// Runs wrk against `url` while sampling `pid`.
fn drive_http(url: &str, script: &str, pid: u32, args: &Args, workload: Workload) -> HttpResult {
    const THREADS: u64 = 2;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.lua");
    std::fs::write(&path, script).unwrap();
    let sampler = Sampler::start(pid);
    let out = Command::new(find_program(&["wrk"]))
        .arg(format!("-t{THREADS}"))
        .arg(format!("-c{}", args.connections))
        .arg(format!("-d{}s", args.seconds))
        .arg("--timeout")
        .arg("10s")
        .arg("-s")
        .arg(&path)
        .arg(url)
        .output()
        .expect("wrk runs");
    let usage = sampler.finish();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH "))
        .unwrap_or_else(|| {
            panic!(
                "wrk printed no summary:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let summary: Value = serde_json::from_str(line).expect("the summary is JSON");
    let n = |k: &str| summary[k].as_u64().unwrap_or(0);
    let failed = n("non2xx") + n("socket_errors");
    let ok_requests = n("requests").saturating_sub(n("non2xx"));
    HttpResult {
        alerts_per_second: (ok_requests * workload.per_request) as f64
            / (n("duration_us") as f64 / 1e6),
        p50_ms: n("p50_us") as f64 / 1e3,
        p99_ms: n("p99_us") as f64 / 1e3,
        failed,
        usage,
    }
}

fn row(system: &str, workload: &str, r: &HttpResult, peer: Option<f64>) {
    let ratio = peer.map_or_else(
        || "—".to_owned(),
        |p| format!("{:.2}×", r.alerts_per_second / p),
    );
    println!(
        "| {workload} | {system} | {:.0} | {ratio} | {:.1} | {:.1} | {:.0}% | {:.0} MB | {} |",
        r.alerts_per_second, r.p50_ms, r.p99_ms, r.usage.cpu_percent, r.usage.peak_rss_mb, r.failed
    );
}

/// One run of `workload` against a fresh OpsConductor on `db`; with `--perf`, recorded and its
/// stage table printed.
async fn opsconductor_webhooks(db: &str, workload: Workload, args: &Args) -> HttpResult {
    let oc = start_opsconductor(db, false, &args.server_config).await;
    let label = format!("webhooks {}, {db}", workload.name());
    let perf = args
        .perf
        .as_ref()
        .map(|dir| Perf::start(oc.running.pid(), dir, &label));
    let result = drive_http(
        &format!("http://{}/webhooks/alertmanager", oc.http),
        &wrk_script(workload, 2, false),
        oc.running.pid(),
        args,
        workload,
    );
    // What the server says it took: every 2xx wrk counted must be an accepted request.
    let stats = oc.get("/api/v1/stats").await;
    eprintln!(
        "opsconductor {label}: webhooks {} alerts {}",
        stats["webhooks"], stats["alerts_by_status"]
    );
    if let Some(perf) = perf {
        let alerts = stats["webhooks"]["accepted"].as_u64().unwrap_or(0) * workload.per_request;
        let rate = result.alerts_per_second;
        perf.report(alerts, &format!("{label} ({rate:.0} alerts/s under perf)"));
    }
    oc.stop().await;
    result
}

async fn webhooks(args: &Args) {
    let workloads = [
        Workload {
            per_request: 1,
            distinct: 0,
            first: 0,
            delay_ms: 0,
        },
        Workload {
            per_request: 1,
            distinct: 3_000,
            first: 0,
            delay_ms: 0,
        },
        Workload {
            per_request: 50,
            distinct: 0,
            first: 0,
            delay_ms: 0,
        },
        Workload {
            per_request: 50,
            distinct: 8_600,
            first: 0,
            delay_ms: 0,
        },
    ];
    println!(
        "\n## Webhooks: {} s per run, {} connections, wrk -t2\n",
        args.seconds, args.connections
    );
    println!(
        "| workload | system | alerts/s | ratio to Alertmanager | p50 ms | p99 ms | CPU | peak RSS | failed |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    if args.perf.is_some() {
        for workload in workloads {
            for db in &args.dbs {
                opsconductor_webhooks(db, workload, args).await;
            }
        }
        return;
    }
    // The rate each database reached on single alerts, 3,000 distinct, for the latency run.
    let mut single_alert_rates = Vec::new();
    for workload in workloads {
        let (am, am_addr) = start_alertmanager();
        let peer = drive_http(
            &format!("http://{am_addr}/api/v2/alerts"),
            &wrk_script(workload, 2, true),
            am.pid(),
            args,
            workload,
        );
        drop(am);
        row("Alertmanager", &workload.name(), &peer, None);
        for db in &args.dbs {
            let result = opsconductor_webhooks(db, workload, args).await;
            row(
                &format!("OpsConductor, {db}"),
                &workload.name(),
                &result,
                Some(peer.alerts_per_second),
            );
            if workload.per_request == 1 && workload.distinct > 0 {
                single_alert_rates.push((db.clone(), result.alerts_per_second, result.p50_ms));
            }
        }
    }
    latency_at_half_rate(args, &single_alert_rates).await;
}

/// p50 and p99 of single-alert webhooks (3,000 distinct) paced at about half the rate each
/// database reached unpaced: the latency a sender sees when the node is busy but not saturated.
///
/// wrk paces a connection by waiting between its requests, in whole milliseconds, so the wait
/// is its share of the half rate less the unpaced p50 (the time a request itself takes), and
/// the run uses [`PACED_CONNECTIONS`] connections so that a millisecond is a small step of the
/// rate. The rate reached is printed, not assumed.
async fn latency_at_half_rate(args: &Args, max_rates: &[(String, f64, f64)]) {
    const PACED_CONNECTIONS: u64 = 64;
    println!(
        "\n## Latency at half the maximum rate: 1/request, 3,000 distinct, {PACED_CONNECTIONS} connections paced\n"
    );
    println!("| system | maximum alerts/s | paced at alerts/s | p50 ms | p99 ms | CPU | failed |");
    println!("|---|---|---|---|---|---|---|");
    let paced_args = Args {
        connections: PACED_CONNECTIONS,
        ..args.clone()
    };
    for (db, max_rate, p50_ms) in max_rates {
        let half = (max_rate / 2.0).max(1.0);
        let interval_ms = PACED_CONNECTIONS as f64 * 1000.0 / half;
        let workload = Workload {
            per_request: 1,
            distinct: 3_000,
            first: 0,
            delay_ms: ((interval_ms - p50_ms).round() as u64).max(1),
        };
        let r = opsconductor_webhooks(db, workload, &paced_args).await;
        println!(
            "| OpsConductor, {db} | {max_rate:.0} | {:.0} | {:.1} | {:.1} | {:.0}% | {} |",
            r.alerts_per_second, r.p50_ms, r.p99_ms, r.usage.cpu_percent, r.failed
        );
    }
}

// ---- traps ----

// ---- memory with many open alerts ----

/// Open alerts the memory run fills the store with before it measures.
const MEMORY_OPEN_ALERTS: u64 = 1_000_000;

/// RSS with [`MEMORY_OPEN_ALERTS`] open alerts: OpsConductor is filled with unique alerts (50
/// per request) until that many are open, measured at rest, then under `--seconds` of
/// sustained single-alert webhooks (3,000 distinct) and while the API pages through the open
/// alerts. Alertmanager is not compared here: it holds alerts in memory by design.
async fn memory(args: &Args) {
    println!(
        "\n## Memory with {MEMORY_OPEN_ALERTS} open alerts\n\n\
         | database | filled at | RSS at rest | peak RSS under load | load alerts/s, p99 ms | \
         peak RSS while paging the API |\n|---|---|---|---|---|---|"
    );
    for db in &args.dbs {
        let oc = start_opsconductor(db, false, &args.server_config).await;
        let url = format!("http://{}/webhooks/alertmanager", oc.http);
        let pid = oc.running.pid();
        let open = async || {
            oc.get("/api/v1/stats").await["alerts_by_status"]["active"]
                .as_u64()
                .unwrap_or(0)
        };
        let started = Instant::now();
        let mut filled = 0;
        while filled < MEMORY_OPEN_ALERTS {
            let fill = Workload {
                per_request: 50,
                distinct: 0,
                first: filled,
                delay_ms: 0,
            };
            let chunk = Args {
                seconds: 15,
                ..args.clone()
            };
            drive_http(&url, &wrk_script(fill, 2, false), pid, &chunk, fill);
            filled = open().await;
            eprintln!("memory, {db}: {filled} open alerts");
        }
        let fill_rate = filled as f64 / started.elapsed().as_secs_f64();
        let (_, at_rest) = procstat::sample(pid);
        let load = Workload {
            per_request: 1,
            distinct: 3_000,
            first: 0,
            delay_ms: 0,
        };
        let loaded = drive_http(&url, &wrk_script(load, 2, false), pid, args, load);
        let paging = Sampler::start(pid);
        let mut before = String::new();
        for _ in 0..50 {
            let page = oc
                .get(&format!("/api/v1/alerts?status=active&limit=1000{before}"))
                .await;
            before = page["next_before"]
                .as_i64()
                .map_or(String::new(), |id| format!("&before={id}"));
        }
        let paged = paging.finish();
        println!(
            "| {db} | {fill_rate:.0} alerts/s | {:.0} MB | {:.0} MB | {:.0}, {:.1} | {:.0} MB |",
            at_rest as f64 / 1024.0,
            loaded.usage.peak_rss_mb,
            loaded.alerts_per_second,
            loaded.p99_ms,
            paged.peak_rss_mb,
        );
        oc.stop().await;
    }
}

fn count_lines(path: &Path) -> u64 {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
        .unwrap_or(0)
}

struct TrapResult {
    rate: u64,
    received: u64,
    usage: Usage,
}

/// snmptrapd: the highest rate whose every trap reaches the log.
fn snmptrapd_run(traps: &[Vec<u8>], rate: u64, seconds: u64) -> TrapResult {
    let (running, addr, log) = start_snmptrapd();
    let before = count_lines(&log);
    let sampler = Sampler::start(running.pid());
    let sent = send_traps(addr, traps, rate, seconds);
    // Settled when the log stops growing for a second.
    let mut last = count_lines(&log);
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = count_lines(&log);
        if now == last {
            break;
        }
        last = now;
    }
    let usage = sampler.finish();
    TrapResult {
        rate,
        received: (last - before).min(sent),
        usage,
    }
}

/// One trap run at `rate` for `--trap-seconds` against a fresh OpsConductor on `db`; with
/// `--perf`, recorded and its stage table printed.
async fn opsconductor_trap_run(db: &str, traps: &[Vec<u8>], rate: u64, args: &Args) -> TrapResult {
    let seconds = args.trap_seconds;
    let oc = start_opsconductor(db, true, &args.server_config).await;
    let addr = oc.traps.expect("serve printed its trap address");
    let label = format!("traps at {rate}/s, {db}");
    let perf = args
        .perf
        .as_ref()
        .map(|dir| Perf::start(oc.running.pid(), dir, &label));
    let sampler = Sampler::start(oc.running.pid());
    let traps_owned = traps.to_vec();
    let sent = tokio::task::spawn_blocking(move || send_traps(addr, &traps_owned, rate, seconds))
        .await
        .unwrap();
    let last = oc.settled_trap_stats().await;
    // Stored, deduplicated or cleared: handed to the addon and written.
    let stored = last["ingested"].as_u64().unwrap_or(0);
    let usage = sampler.finish();
    eprintln!("opsconductor {db} at {rate}/s: sent {sent}, counters {last}");
    if let Some(perf) = perf {
        perf.report(stored, &label);
    }
    oc.stop().await;
    TrapResult {
        rate,
        received: stored.min(sent),
        usage,
    }
}

async fn trap_runs(args: &Args) {
    let traps = opsconductor_tests::traps::encoded_traps(1_000);
    if args.perf.is_some() {
        // One rate (the first given), under perf: the cost per trap at a rate all take.
        for db in &args.dbs {
            opsconductor_trap_run(db, &traps, args.trap_rates[0], args).await;
        }
        return;
    }
    println!(
        "\n## Traps: v2c linkDown, 1,000 distinct, {} s per rate; the highest rate with nothing lost\n",
        args.trap_seconds
    );
    println!(
        "| system | highest lossless rate (traps/s) | ratio to snmptrapd | CPU at that rate | peak RSS | first lossy rate (received/sent) |"
    );
    println!("|---|---|---|---|---|---|");
    let mut peer_best = None;
    let mut systems: Vec<String> = vec!["snmptrapd".into()];
    systems.extend(args.dbs.iter().map(|d| format!("OpsConductor, {d}")));
    for system in systems {
        let mut best: Option<TrapResult> = None;
        let mut lossy = None;
        for &rate in &args.trap_rates {
            let result = if system == "snmptrapd" {
                snmptrapd_run(&traps, rate, args.trap_seconds)
            } else {
                let db = system.trim_start_matches("OpsConductor, ");
                opsconductor_trap_run(db, &traps, rate, args).await
            };
            let sent = rate * args.trap_seconds;
            eprintln!(
                "{system} at {rate}/s: {} of {sent} received",
                result.received
            );
            if result.received < sent {
                lossy = Some(format!("{rate} ({}/{sent})", result.received));
                break;
            }
            best = Some(result);
        }
        let best_rate = best.as_ref().map_or(0, |b| b.rate);
        if system == "snmptrapd" {
            peer_best = Some(best_rate);
        }
        let ratio = match peer_best {
            Some(p) if p > 0 && system != "snmptrapd" => {
                format!("{:.2}×", best_rate as f64 / p as f64)
            }
            _ => "—".to_owned(),
        };
        let (cpu, rss) = best
            .as_ref()
            .map_or((0.0, 0.0), |b| (b.usage.cpu_percent, b.usage.peak_rss_mb));
        println!(
            "| {system} | {best_rate} | {ratio} | {cpu:.0}% | {rss:.0} MB | {} |",
            lossy.unwrap_or_else(|| "none up to the last rate tried".into())
        );
    }
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    println!(
        "# bench-peers on {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    let run = |section: &str| args.only.as_deref().is_none_or(|only| only == section);
    if run("webhooks") {
        webhooks(&args).await;
    }
    if run("memory") {
        memory(&args).await;
    }
    if run("traps") {
        trap_runs(&args).await;
    }
}
