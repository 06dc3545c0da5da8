//! A real net-snmp agent for the poller tests: `/usr/sbin/snmpd` as a child process on a free
//! loopback port, with a generated configuration (a read-only community, SNMPv3 users at
//! several protocols and levels, and whatever extra lines a test adds, such as `override`).
//!
//! Everything the agent writes stays in its temporary directory: the configuration is read
//! with `-C -c` (no system files), and the persistent state (engine boots, localised users)
//! goes to a `persist/` directory set both in the configuration and in `SNMP_PERSISTENT_DIR`,
//! so nothing touches `/var/lib/snmp`. `-C` also stops snmpd from reading its persistent file
//! back, so `-c` names it beside the configuration. With a fixed `engineID`, a restart is a
//! device reboot: same engine id, one more engine boot.

use std::fmt::Write as _;
use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opsconductor::event::SnmpValue;
use opsconductor::poller::snmp::{SnmpAuth, SnmpEndpoint, SnmpPoller};
use opsconductor::snmp::{AuthProtocol, PrivProtocol, UsmUser};

pub const SNMPD: &str = "/usr/sbin/snmpd";

/// The read-only community of every agent.
pub const COMMUNITY: &str = "oc-test-ro";

/// sysLocation.0: each agent's is unique (its directory's name), so that the readiness probe
/// knows it talks to its own agent and not to another test's that took the port first.
const SYS_LOCATION_0: &str = "1.3.6.1.2.1.1.6.0";

/// How long an agent may take to start answering. Generous: a loaded CI machine runs many
/// test binaries at once. Only a broken agent ever waits this long.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// An SNMPv3 user configured on every agent.
#[derive(Debug, Clone, Copy)]
pub struct V3User {
    pub name: &'static str,
    /// `None`: the user is noAuthNoPriv.
    pub auth: Option<(AuthProtocol, &'static str)>,
    /// `None`: the user is authNoPriv (or noAuthNoPriv).
    pub privacy: Option<(PrivProtocol, &'static str)>,
}

/// authPriv with SHA-1 and AES-128, the usual choice.
pub const SHA_AES: V3User = V3User {
    name: "oc-sha-aes",
    auth: Some((AuthProtocol::Sha1, "sha-auth-pass")),
    privacy: Some((PrivProtocol::Aes128, "aes-priv-pass")),
};

/// authPriv with MD5 and DES, as old devices have it.
pub const MD5_DES: V3User = V3User {
    name: "oc-md5-des",
    auth: Some((AuthProtocol::Md5, "md5-auth-pass")),
    privacy: Some((PrivProtocol::Des, "des-priv-pass")),
};

/// authPriv with HMAC-SHA-256 (RFC 7860) and AES-128.
pub const SHA256_AES: V3User = V3User {
    name: "oc-sha256-aes",
    auth: Some((AuthProtocol::Sha256, "sha256-auth-pass")),
    privacy: Some((PrivProtocol::Aes128, "aes256-priv-pass")),
};

/// authPriv with HMAC-SHA-512 (RFC 7860) and AES-128.
pub const SHA512_AES: V3User = V3User {
    name: "oc-sha512-aes",
    auth: Some((AuthProtocol::Sha512, "sha512-auth-pass")),
    privacy: Some((PrivProtocol::Aes128, "aes512-priv-pass")),
};

/// authNoPriv with SHA-1.
pub const SHA_AUTH_ONLY: V3User = V3User {
    name: "oc-sha-auth",
    auth: Some((AuthProtocol::Sha1, "sha-auth-only")),
    privacy: None,
};

/// noAuthNoPriv: a user name and nothing else.
pub const NO_AUTH: V3User = V3User {
    name: "oc-noauth",
    auth: None,
    privacy: None,
};

pub const USERS: [V3User; 6] = [
    SHA_AES,
    MD5_DES,
    SHA256_AES,
    SHA512_AES,
    SHA_AUTH_ONLY,
    NO_AUTH,
];

impl V3User {
    /// The user as the poller takes it (password expansion: a few milliseconds).
    pub fn usm(&self) -> UsmUser {
        UsmUser::from_passwords(self.name, self.auth, self.privacy)
            .expect("test users have valid passwords")
    }

    /// The `createUser` and `rouser` lines of snmpd.conf.
    fn config_lines(&self) -> String {
        let mut line = format!("createUser {}", self.name);
        let mut level = "noauth";
        if let Some((protocol, password)) = self.auth {
            let protocol = match protocol {
                AuthProtocol::Md5 => "MD5",
                AuthProtocol::Sha1 => "SHA",
                AuthProtocol::Sha224 => "SHA-224",
                AuthProtocol::Sha256 => "SHA-256",
                AuthProtocol::Sha384 => "SHA-384",
                AuthProtocol::Sha512 => "SHA-512",
            };
            write!(line, " {protocol} \"{password}\"").unwrap();
            level = "auth";
        }
        if let Some((protocol, password)) = self.privacy {
            let protocol = match protocol {
                PrivProtocol::Des => "DES",
                PrivProtocol::Aes128 => "AES",
            };
            write!(line, " {protocol} \"{password}\"").unwrap();
            level = "priv";
        }
        format!("{line}\nrouser {} {level}\n", self.name)
    }
}

/// A running snmpd, killed on drop.
pub struct Snmpd {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Child,
}

impl Snmpd {
    /// Starts an agent with the standard configuration and waits until it answers.
    pub async fn start() -> Snmpd {
        Self::start_with(&[]).await
    }

    /// Starts an agent with `extra_lines` appended to its snmpd.conf (e.g.
    /// `override .1.3.6.1.2.1.2.2.1.8.1 integer 2`, or `engineID other` to replace the
    /// standard engine id).
    pub async fn start_with(extra_lines: &[&str]) -> Snmpd {
        assert!(
            Path::new(SNMPD).exists(),
            "snmpd is missing: apt-get install snmpd (.ci/run installs it)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        // A port found free can be taken before snmpd binds it (by another test's agent);
        // snmpd then exits at once, and another port is tried.
        for _ in 0..5 {
            let addr = free_port();
            let mut child = spawn(dir.path(), addr, extra_lines);
            if wait_ready(&mut child, addr, dir.path()).await {
                return Snmpd { addr, dir, child };
            }
        }
        panic!(
            "snmpd exited at start on five ports in a row; last log:\n{}",
            read_log(dir.path())
        );
    }

    /// Shuts the agent down and starts it again on the same port with the standard
    /// configuration plus `extra_lines` (which replace the previous extra lines). The
    /// persistent state is kept: same engine id, one more engine boot, as when a device
    /// reboots.
    pub async fn restart_with(&mut self, extra_lines: &[&str]) {
        shut_down(&mut self.child).await;
        self.start_again(extra_lines).await;
    }

    /// Replaces the agent by a new device at the same address: shut down, its persistent
    /// state deleted, started again with `extra_lines` (pass `engineID <name>` to give the new
    /// device an engine id of its own). net-snmp keeps answering for an old engine id as long
    /// as its persistent file holds users localised to it, so a plain restart with a new
    /// `engineID` is not a replacement.
    pub async fn replace_with(&mut self, extra_lines: &[&str]) {
        shut_down(&mut self.child).await;
        std::fs::remove_dir_all(self.dir.path().join("persist"))
            .expect("delete the persistent state");
        self.start_again(extra_lines).await;
    }

    async fn start_again(&mut self, extra_lines: &[&str]) {
        self.child = spawn(self.dir.path(), self.addr, extra_lines);
        if !wait_ready(&mut self.child, self.addr, self.dir.path()).await {
            panic!(
                "snmpd exited when started again on {}; log:\n{}",
                self.addr,
                read_log(self.dir.path())
            );
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the agent logged so far (`-Lo`), for assertion messages.
    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }

    /// An SNMPv2c endpoint with the agent's community.
    pub fn v2c(&self) -> SnmpEndpoint {
        self.endpoint(SnmpAuth::Community(COMMUNITY.to_owned()))
    }

    /// An SNMPv3 endpoint as `user`, in the default context.
    pub fn v3(&self, user: UsmUser) -> SnmpEndpoint {
        self.endpoint(SnmpAuth::Usm {
            user,
            context: String::new(),
        })
    }

    /// An endpoint with a timeout long enough for a loaded machine and a few retries: a
    /// loopback agent that is up answers in milliseconds, so these only bound a failure.
    pub fn endpoint(&self, auth: SnmpAuth) -> SnmpEndpoint {
        SnmpEndpoint {
            addr: self.addr,
            auth,
            timeout: Duration::from_secs(5),
            retries: 2,
        }
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Kills the agent at once: for the end of a test, when its state goes with its directory.
fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Stops the agent the way a device shuts down: SIGTERM, upon which snmpd saves its
/// persistent state (engine boots, which the next start increments). Killed after
/// [`START_TIMEOUT`] if it does not exit.
async fn shut_down(child: &mut Child) {
    // `kill` through the shell: the tests crate has no signal API of its own.
    let sent = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -TERM {}", child.id()))
        .status();
    if sent.is_ok_and(|status| status.success()) {
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    stop(child);
}

fn free_port() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
    socket.local_addr().expect("local address")
}

/// The sysLocation of the agent in `dir`.
fn location(dir: &Path) -> String {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    format!("opsconductor-test-{name}")
}

/// The engine id of the agent in `dir` (net-snmp's text form: at most 27 characters). Fixed,
/// as on a real device, rather than generated anew at every start.
fn engine_id(dir: &Path) -> String {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    format!("oc{name}")
}

fn config(dir: &Path, persist: &Path, extra_lines: &[&str]) -> String {
    let mut config = format!(
        "# Generated by opsconductor-tests.\n\
         [snmp] persistentDir {}\n\
         rocommunity {COMMUNITY} 127.0.0.1\n\
         syslocation {}\n\
         engineID {}\n",
        persist.display(),
        location(dir),
        engine_id(dir)
    );
    for user in USERS {
        config.push_str(&user.config_lines());
    }
    for line in extra_lines {
        config.push_str(line);
        config.push('\n');
    }
    config
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("snmpd.log")
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(log_path(dir)).unwrap_or_else(|e| format!("(no log: {e})"))
}

fn spawn(dir: &Path, addr: SocketAddr, extra_lines: &[&str]) -> Child {
    let conf_dir = dir.join("conf");
    let persist = dir.join("persist");
    for d in [&conf_dir, &persist] {
        std::fs::create_dir_all(d).expect("snmpd directories");
    }
    // The configuration and the persistent file are both called snmpd.conf: they live in
    // different directories, or snmpd would overwrite its configuration with its state.
    let conf = conf_dir.join("snmpd.conf");
    std::fs::write(&conf, config(dir, &persist, extra_lines)).expect("write snmpd.conf");
    let state = persist.join("snmpd.conf");
    if !state.exists() {
        std::fs::write(&state, "").expect("create the persistent file");
    }
    let log = File::options()
        .create(true)
        .append(true)
        .open(log_path(dir))
        .expect("snmpd log");
    Command::new(SNMPD)
        .arg("-f") // stay in the foreground: this process is the agent
        .arg("-Lo") // log to stdout, which goes to the log file
        .arg("-C") // read no configuration file but ours
        .arg("-c")
        .arg(format!("{},{}", conf.display(), state.display()))
        .arg("-p")
        .arg(dir.join("snmpd.pid"))
        .arg(format!("udp:{addr}"))
        .env("SNMP_PERSISTENT_DIR", &persist)
        // Client-side snmp.conf files (and MIB loading) from the system stay out of it.
        .env("SNMPCONFPATH", &conf_dir)
        .env("MIBS", "")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {SNMPD}: {e}"))
}

/// Waits until the agent answers an SNMPv2c GET of its sysLocation. `false` if it exited (its
/// port was taken); panics with its log if it neither answers nor exits within
/// [`START_TIMEOUT`].
async fn wait_ready(child: &mut Child, addr: SocketAddr, dir: &Path) -> bool {
    let poller = SnmpPoller::new(crate::loopback_egress());
    let probe = SnmpEndpoint {
        addr,
        auth: SnmpAuth::Community(COMMUNITY.to_owned()),
        timeout: Duration::from_millis(200),
        retries: 0,
    };
    let ours = location(dir).into_bytes();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("snmpd status") {
            eprintln!(
                "snmpd on {addr} exited with {status}; log:\n{}",
                read_log(dir)
            );
            return false;
        }
        let last = match poller.get(&probe, &[SYS_LOCATION_0.to_owned()]).await {
            Ok(varbinds) if varbinds[0].value == SnmpValue::OctetString(ours.clone()) => {
                return true;
            }
            // Another agent on this port: ours exits, and the next round sees it.
            Ok(varbinds) => format!("another agent answers: {varbinds:?}"),
            // Not listening yet (connection refused comes back at once).
            Err(e) => e.to_string(),
        };
        if started.elapsed() > START_TIMEOUT {
            stop(child);
            panic!(
                "snmpd on {addr} did not answer within {START_TIMEOUT:?} (last: {last}); log:\n{}",
                read_log(dir)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
