//! Helpers shared by the runtime's integration tests, which drive the real `opsconductor`
//! binary: commands against a data directory of their own, `serve` started on a port it picks
//! (the tests read the address it prints rather than racing for a free port), and plain
//! HTTP/1.1 exchanges with it.
//!
//! `tests/common/mod.rs` rather than `tests/common.rs`, which cargo would build as a test of its
//! own. Each test binary compiles this module and uses part of it, hence `dead_code` allowed.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_opsconductor");

/// The tests' peers listen on loopback, which the egress policy refuses by default.
pub const LOOPBACK_PEERS: &str = "127.0.0.0/8,::1/128";

/// How long `serve` may take to bind and print its address.
const SERVE_START: Duration = Duration::from_secs(60);

/// A bundled addon as `just build-addons` lays it out in `target/bundles/`.
pub fn bundle(id: &str) -> PathBuf {
    built_bundle("bundles", id)
}

/// A test guest (`tests/guests/`) as `just build-addons` lays it out in `target/test-bundles/`.
pub fn test_bundle(id: &str) -> PathBuf {
    built_bundle("test-bundles", id)
}

fn built_bundle(folder: &str, id: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(folder)
        .join(id);
    assert!(
        dir.join("addon.wasm").exists(),
        "{} is missing: run `just build-addons` (or `just test`)",
        dir.display()
    );
    dir
}

/// The binary, run in `data` with everything it keeps there: the SQLite database, the data
/// directory and the secrets key. Loopback peers are allowed, and no configuration file comes
/// from the caller's environment.
pub fn command(data: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .env("OPSCONDUCTOR_POLL_ALLOW", LOOPBACK_PEERS)
        .env("OPSCONDUCTOR_DATA_DIR", data)
        .env("OPSCONDUCTOR_SECRETS_KEY_FILE", data.join("secrets.key"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", data.join("oc.db").display()),
        )
        .env_remove("OPSCONDUCTOR_CONFIG")
        .current_dir(data);
    command
}

/// Runs `opsconductor <args>` on the database in `data` (see [`command`]).
pub fn opsconductor(data: &Path, args: &[&str]) -> Output {
    opsconductor_with_env(data, args, &[])
}

/// Like [`opsconductor`], with extra environment variables (secrets passed the way operators
/// are told to, out of the command line).
pub fn opsconductor_with_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(data)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("binary runs")
}

/// A command's standard output and standard error, as text.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The standard output of a command that must succeed.
pub fn ok(output: Output) -> String {
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    stdout
}

/// A running `opsconductor serve`, killed when dropped (so also when an assertion fails).
pub struct Serving {
    child: Child,
    /// The HTTP address it bound, as it printed it.
    pub addr: SocketAddr,
    /// The addresses it printed after the HTTP one.
    printed: Receiver<Printed>,
    trap_addr: Option<SocketAddr>,
    log: PathBuf,
}

impl Serving {
    /// Spawns `command`, an `opsconductor serve` told to listen on port 0 (`--listen
    /// 127.0.0.1:0`, or `OPSCONDUCTOR_LISTEN`), with its standard error going to `log`, and
    /// waits for the line on standard output that names the address it bound. That line comes
    /// once the server is started, so it accepts connections from then on.
    pub fn start(mut command: Command, log: &Path) -> Serving {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("the server's log file"))
            .spawn()
            .expect("the opsconductor binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, printed) = std::sync::mpsc::channel();
        // Reads to the end, so that the server never blocks on (or fails writing to) a full
        // or closed pipe; the lines that name addresses go to the test.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(addr) = printed_addr(&line) {
                    let _ = sender.send(addr);
                }
            }
        });
        let Ok(Printed::Http(addr)) = printed.recv_timeout(SERVE_START) else {
            let status = child.try_wait();
            let _ = child.kill();
            panic!(
                "serve printed no listening address within {SERVE_START:?} (exit {status:?}):\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        };
        Serving {
            child,
            addr,
            printed,
            trap_addr: None,
            log: log.to_owned(),
        }
    }

    /// Where the server receives SNMP traps (started with a trap address of port 0), from the
    /// line it prints right after the HTTP address.
    pub fn trap_addr(&mut self) -> SocketAddr {
        if self.trap_addr.is_none() {
            match self.printed.recv_timeout(Duration::from_secs(10)) {
                Ok(Printed::Traps(addr)) => self.trap_addr = Some(addr),
                _ => panic!("serve printed no trap address:\n{}", self.log()),
            }
        }
        self.trap_addr.expect("set above")
    }

    /// The server's standard error so far: its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM (a service manager's stop) and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM sent");
        self.child.wait().expect("the server exits")
    }

    /// Kills the server now (a crash, not a shutdown).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An address `serve` prints on start.
enum Printed {
    Http(SocketAddr),
    Traps(SocketAddr),
}

/// The address in one of the lines `serve` prints on start: `opsconductor listening on
/// http://<addr>; the console is at …` and `opsconductor receives SNMP traps on udp://<addr>`.
fn printed_addr(line: &str) -> Option<Printed> {
    if let Some(rest) = line.strip_prefix("opsconductor listening on http://") {
        let (addr, _) = rest.split_once(';')?;
        return addr.parse().ok().map(Printed::Http);
    }
    let addr = line.strip_prefix("opsconductor receives SNMP traps on udp://")?;
    addr.trim().parse().ok().map(Printed::Traps)
}

/// A minimal HTTP/1.1 exchange with a JSON body over a plain socket, with `Authorization:
/// Bearer {bearer}` when given; returns status and body.
pub fn http(
    addr: SocketAddr,
    bearer: Option<&str>,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String) {
    http_typed(addr, bearer, method, path, "application/json", body)
}

/// [`http`] with a body of `content_type`.
pub fn http_typed(
    addr: SocketAddr,
    bearer: Option<&str>,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n{}\r\n",
        addr.ip(),
        body.len(),
        bearer.map_or_else(String::new, |b| format!("authorization: Bearer {b}\r\n"))
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
