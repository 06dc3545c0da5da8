//! The real `opsconductor` release binary as a child process, for the programs that measure it
//! from outside as an operator runs it (`bench-peers`, `soak`): preparing a fresh data
//! directory, database, configuration, addons, SNMP community and API key with the CLI, starting
//! `serve` and reading the addresses it prints, reading its counters, and stopping it — killed
//! when dropped, or gracefully with SIGTERM. Also the small pieces those programs share around
//! a child: a free port, waiting for an HTTP endpoint to answer, and a paced UDP trap sender.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opsconductor::testing::TestPostgres;
use serde_json::{Value, json};

use crate::{Db, procstat};

/// A started process, killed when dropped; its temporary directory goes with it.
pub struct Running {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Running {
    /// Owns `child`, and `dir`, which holds what the child works with.
    pub fn new(child: Child, dir: tempfile::TempDir) -> Running {
        Running { child, _dir: dir }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How the process ended, if it has.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits until `GET path` on `addr` answers 200.
pub fn wait_ready(addr: SocketAddr, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect(addr) {
            let _ = write!(
                stream,
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            );
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_ok() && line.contains(" 200 ") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{addr}{path} did not answer 200 within 30 s");
}

/// Sends `traps` round-robin at `rate` per second for `seconds`; returns how many were sent.
pub fn send_traps(to: SocketAddr, traps: &[Vec<u8>], rate: u64, seconds: u64) -> u64 {
    send_traps_until(
        to,
        traps,
        rate,
        Some(rate * seconds),
        &AtomicBool::new(false),
        &AtomicU64::new(0),
    )
}

/// Sends `traps` round-robin at `rate` per second until `limit` are sent (none: no limit) or
/// `stop` is set, adding each to `sent` as it goes (for a caller sampling the rate while it
/// runs); returns how many were sent.
pub fn send_traps_until(
    to: SocketAddr,
    traps: &[Vec<u8>],
    rate: u64,
    limit: Option<u64>,
    stop: &AtomicBool,
    sent: &AtomicU64,
) -> u64 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let total = limit.unwrap_or(u64::MAX);
    let started = Instant::now();
    // Paced in 1 ms slices: each slice sends what the rate owes by then.
    let mut count = 0u64;
    while count < total && !stop.load(Ordering::Relaxed) {
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while count < due {
            let _ = socket.send_to(&traps[(count % traps.len() as u64) as usize], to);
            count += 1;
            sent.fetch_add(1, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    count
}

/// How to prepare and start an `opsconductor serve`.
pub struct ServeOptions<'a> {
    pub db: Db,
    /// Listen for traps on a loopback port (else `OPSCONDUCTOR_TRAP_LISTEN=off`).
    pub traps: bool,
    /// The whole configuration file.
    pub config: String,
    /// Bundled addons to install (and enable) from `target/bundles/`.
    pub addons: &'a [&'a str],
    /// The role of the API key made for the caller ([`Opsconductor::key`]).
    pub key_role: &'a str,
    /// Environment for every command, set after (so overriding) the defaults: database, data
    /// directory, loopback listeners, `RUST_LOG=warn`.
    pub env: Vec<(&'static str, String)>,
    /// Where `serve`'s standard error (its log) goes; `None`: `log` in its temporary directory.
    pub log: Option<PathBuf>,
    /// Start `serve` in a process group of its own, so that a Ctrl-C at the terminal reaches
    /// only the caller, which then stops the server itself once it has read the final
    /// counters. Off, a Ctrl-C stops both at once, so nothing outlives a caller that dies of it.
    pub own_process_group: bool,
}

/// An `opsconductor serve` (release) on a fresh SQLite file or PostgreSQL database, with the
/// community `public` (which the generated traps use) and an API key.
pub struct Opsconductor {
    pub running: Running,
    pub http: SocketAddr,
    pub traps: Option<SocketAddr>,
    pub key: String,
    database: Option<TestPostgres>,
    log: PathBuf,
}

/// The release binary: `$OPSCONDUCTOR_BIN`, else `target/release/opsconductor`.
pub fn opsconductor_bin() -> PathBuf {
    let bin = std::env::var("OPSCONDUCTOR_BIN").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/opsconductor"),
        PathBuf::from,
    );
    std::fs::canonicalize(&bin)
        .unwrap_or_else(|e| panic!("{}: {e} (build it: cargo build --release)", bin.display()))
}

/// Prepares a data directory as `options` say with the CLI, then starts `serve` and waits for
/// it to print where it listens.
pub async fn start_opsconductor(options: ServeOptions<'_>) -> Opsconductor {
    let dir = tempfile::tempdir().unwrap();
    let database = match options.db {
        Db::Postgres => Some(TestPostgres::create().await.expect("a PostgreSQL database")),
        Db::Sqlite => None,
    };
    let url = database.as_ref().map_or_else(
        || format!("sqlite://{}", dir.path().join("oc.db").display()),
        |pg| pg.url.clone(),
    );
    let bin = opsconductor_bin();
    let config = dir.path().join("opsconductor.toml");
    std::fs::write(&config, &options.config).unwrap();
    let command = |args: &[&str]| {
        let mut c = Command::new(&bin);
        c.args(args)
            .env("DATABASE_URL", &url)
            .env("OPSCONDUCTOR_DATA_DIR", dir.path())
            .env(
                "OPSCONDUCTOR_SECRETS_KEY_FILE",
                dir.path().join("secrets.key"),
            )
            .env("OPSCONDUCTOR_LISTEN", "127.0.0.1:0")
            .env(
                "OPSCONDUCTOR_TRAP_LISTEN",
                if options.traps { "127.0.0.1:0" } else { "off" },
            )
            .env("RUST_LOG", "warn")
            .env("OPSCONDUCTOR_CONFIG", &config)
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir.path());
        c
    };
    let run = |args: &[&str]| {
        let out = command(args).output().expect("opsconductor runs");
        assert!(
            out.status.success(),
            "opsconductor {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let mut install = vec!["addon".to_owned(), "install".to_owned()];
    install.extend(
        options
            .addons
            .iter()
            .map(|id| crate::bundle(id).display().to_string()),
    );
    run(&install.iter().map(String::as_str).collect::<Vec<_>>());
    run(&["snmp", "community", "add", "bench", "--community", "public"]);
    let key = run(&[
        "auth",
        "api-key",
        "create",
        "bench",
        "--role",
        options.key_role,
    ]);
    let mut serve = command(&["serve"]);
    if options.own_process_group {
        serve.process_group(0);
    }
    let log = options.log.unwrap_or_else(|| dir.path().join("log"));
    let mut child = serve
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display())))
        .spawn()
        .expect("opsconductor serve starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut http = None;
    let mut trap_addr = None;
    while let Some(Ok(line)) = lines.next() {
        if let Some(rest) = line.strip_prefix("opsconductor listening on http://") {
            http = rest.split_once(';').and_then(|(a, _)| a.parse().ok());
            if !options.traps {
                break;
            }
        }
        if let Some(rest) = line.strip_prefix("opsconductor receives SNMP traps on udp://") {
            trap_addr = rest.trim().parse().ok();
            break;
        }
    }
    // Keep reading, so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let http = http.unwrap_or_else(|| {
        panic!(
            "serve printed no address; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    Opsconductor {
        running: Running::new(child, dir),
        http,
        traps: trap_addr,
        key,
        database,
        log,
    }
}

impl Opsconductor {
    /// `GET path` with the API key; panics unless it answers 2xx with JSON.
    pub async fn get(&self, path: &str) -> Value {
        reqwest::Client::new()
            .get(format!("http://{}{path}", self.http))
            .bearer_auth(&self.key)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("the API answers")
            .json()
            .await
            .expect("JSON")
    }

    /// The trap counters once they stop moving (every datagram received is accounted for).
    pub async fn settled_trap_stats(&self) -> Value {
        let mut last = json!(null);
        for _ in 0..120 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let traps = self.get("/api/v1/stats").await["traps"].clone();
            if traps == last {
                break;
            }
            last = traps;
        }
        last
    }

    /// Where the server writes its log (standard error).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Kills the server and drops its PostgreSQL database, if any.
    pub async fn stop(self) {
        drop(self.running);
        if let Some(pg) = self.database {
            pg.drop().await;
        }
    }

    /// Stops the server as a service manager does, with SIGTERM, and returns its exit status;
    /// `None` when it had not exited within `patience` (it is then killed).
    pub async fn stop_gracefully(mut self, patience: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.running.pid().to_string()])
            .status();
        let deadline = Instant::now() + patience;
        let status = loop {
            match self.running.exit_status() {
                Some(status) => break Some(status),
                None if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                None => break None,
            }
        };
        self.stop().await;
        status
    }
}

/// The server at one moment as an operator watching it sees it: the process's resources from
/// `/proc`, and from its API the open alerts, queue depths and error counters.
pub struct Sample {
    pub rss_kib: u64,
    pub open_fds: u64,
    pub threads: u64,
    /// CPU time (all threads) since the previous sample, in % of one core.
    pub cpu_percent: f64,
    /// Alerts not resolved.
    pub open_alerts: u64,
    pub trap_queue: u64,
    pub writer_queue: u64,
    /// [`error_counters`], cumulative.
    pub errors: [(&'static str, u64); 7],
    /// `GET /api/v1/stats`.
    pub stats: Value,
}

/// Takes [`Sample`]s of one server, keeping what the next is measured against. A read of the
/// API that fails (the server busy or gone) repeats the last counters read, so that the
/// process's resources are still sampled.
pub struct Sampler {
    pid: u32,
    base: String,
    key: String,
    client: reqwest::Client,
    last_at: Instant,
    last_cpu_ticks: u64,
    ticks_per_second: f64,
    stats: Value,
}

impl Sampler {
    /// Starts measuring CPU time from now.
    pub fn new(oc: &Opsconductor) -> Sampler {
        let pid = oc.running.pid();
        Sampler {
            pid,
            base: format!("http://{}", oc.http),
            key: oc.key.clone(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            last_at: Instant::now(),
            last_cpu_ticks: procstat::sample(pid).0,
            ticks_per_second: procstat::clock_ticks_per_second() as f64,
            stats: Value::Null,
        }
    }

    async fn read(&self, path: &str) -> Option<String> {
        let request = self.client.get(format!("{}{path}", self.base));
        let answer = request.bearer_auth(&self.key).send().await;
        answer
            .and_then(|a| a.error_for_status())
            .ok()?
            .text()
            .await
            .ok()
    }

    pub async fn sample(&mut self) -> Sample {
        if let Some(stats) = self
            .read("/api/v1/stats")
            .await
            .and_then(|s| serde_json::from_str(&s).ok())
        {
            self.stats = stats;
        }
        let metrics = self.read("/metrics").await.unwrap_or_default();
        let queue = |name: &str| {
            series(
                &metrics,
                &format!("opsconductor_queue_depth{{queue=\"{name}\"}}"),
            )
            .map_or(0, |depth| depth as u64)
        };
        let (now, (cpu_ticks, rss_kib)) = (Instant::now(), procstat::sample(self.pid));
        let cpu_seconds =
            cpu_ticks.saturating_sub(self.last_cpu_ticks) as f64 / self.ticks_per_second;
        let cpu_percent = 100.0 * cpu_seconds / (now - self.last_at).as_secs_f64();
        (self.last_at, self.last_cpu_ticks) = (now, cpu_ticks);
        let by_status = self.stats["alerts_by_status"].as_object();
        Sample {
            rss_kib,
            open_fds: procstat::open_descriptors(self.pid),
            threads: procstat::threads(self.pid),
            cpu_percent,
            open_alerts: by_status.map_or(0, |by_status| {
                let open = by_status.iter().filter(|(status, _)| *status != "resolved");
                open.filter_map(|(_, n)| n.as_u64()).sum()
            }),
            trap_queue: queue("traps"),
            writer_queue: queue("writer"),
            errors: error_counters(&self.stats),
            stats: self.stats.clone(),
        }
    }
}

/// The value of one series, `name{labels}` exactly as exposed, in `GET /metrics`' text.
pub fn series(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        line.strip_prefix(name)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// The counters of `/api/v1/stats` that count something refused, lost or failed, summed by
/// kind: under valid load that the node has room for, each stays 0.
pub fn error_counters(stats: &Value) -> [(&'static str, u64); 7] {
    let sum = |section: &str, keys: &[&str]| -> u64 {
        keys.iter()
            .map(|k| stats[section][k].as_u64().unwrap_or(0))
            .sum()
    };
    let webhooks_rejected = sum(
        "webhooks",
        &[
            "unknown_path",
            "unauthorized",
            "forbidden",
            "misconfigured",
            "rate_limited",
            "too_large",
            "bad_body",
        ],
    );
    let traps_failed = sum(
        "traps",
        &[
            "malformed",
            "unknown_community",
            "auth_failures",
            "unsupported_pdu",
            "unhandled",
            "addon_failed",
            "quarantined",
        ],
    );
    [
        ("webhooks_rejected", webhooks_rejected),
        (
            "webhooks_failed",
            sum("webhooks", &["addon_failed", "quarantined"]),
        ),
        ("traps_dropped", sum("traps", &["dropped_queue_full"])),
        ("traps_failed", traps_failed),
        // Webhooks and traps not stored, and the writer's failed jobs (polls' among them).
        (
            "store_failed",
            sum("webhooks", &["store_failed"])
                + sum("traps", &["store_failed"])
                + sum("writer", &["failed_jobs"]),
        ),
        (
            "events_lost",
            sum(
                "events",
                &["dropped", "gaps", "clients_lagged", "clients_timed_out"],
            ),
        ),
        (
            "http_refused",
            sum(
                "http",
                &["refused_server_full", "refused_per_ip", "request_timeouts"],
            ),
        ),
    ]
}
