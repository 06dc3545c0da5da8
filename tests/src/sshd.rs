//! A real OpenSSH server for the SSH poller's tests: `/usr/sbin/sshd -D -e` on a free loopback
//! port with a configuration, host key, client keys and log of its own in a temp dir, killed on
//! drop. The system's sshd service is neither needed nor touched.
//!
//! Tests log in as the dedicated local user [`TEST_USER`] (password [`TEST_PASSWORD`]), which
//! must exist: [`Sshd::start`] checks and says how to create it. sshd itself must run as root
//! (privilege separation, reading `/etc/shadow` for password logins).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opsconductor::poller::ssh::{HostKey, SshAuth, SshEndpoint};

/// The local account the tests log in as.
pub const TEST_USER: &str = "opsconductor-test";
/// Its password.
pub const TEST_PASSWORD: &str = "opsconductor-test-password";
/// The passphrase of [`Sshd::encrypted_key`].
pub const KEY_PASSPHRASE: &str = "correct horse battery staple";

const SSHD: &str = "/usr/sbin/sshd";
/// sshd's privilege-separation directory, which it refuses to start without.
const PRIVSEP_DIR: &str = "/run/sshd";
/// How long sshd may take to start listening, or to log an expected line, before a test fails
/// instead of hanging. Generous: only a broken setup comes near it.
const WAIT: Duration = Duration::from_secs(30);

/// A client key pair whose public half is in the server's `authorized_keys`.
#[derive(Debug, Clone)]
pub struct ClientKey {
    /// The private key in OpenSSH PEM format.
    pub pem: String,
    pub passphrase: Option<String>,
    /// The public key, OpenSSH one-line form.
    pub public_key: String,
}

impl ClientKey {
    pub fn auth(&self) -> SshAuth {
        SshAuth::PrivateKey {
            pem: self.pem.clone(),
            passphrase: self.passphrase.clone(),
        }
    }
}

/// A running sshd, killed on drop.
pub struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
    /// Each start logs to a file of its own, so [`Sshd::log`] shows only the current server.
    generation: u32,
    /// An unencrypted ed25519 key.
    pub ed25519: ClientKey,
    /// An unencrypted 2048-bit RSA key.
    pub rsa: ClientKey,
    /// An ed25519 key encrypted with [`KEY_PASSPHRASE`].
    pub encrypted_key: ClientKey,
}

impl Sshd {
    /// Starts sshd on a free port of 127.0.0.1 and waits until it listens. Panics, saying what
    /// to do, when sshd or the test user is missing.
    pub fn start() -> Sshd {
        preflight();
        let dir = tempfile::Builder::new()
            .prefix("opsconductor-sshd-")
            .tempdir()
            .expect("temp dir");
        // sshd reads `authorized_keys` as the user logging in, not as root: the directory must
        // be traversable and the file readable by that user.
        set_mode(dir.path(), 0o755);

        let ed25519 = generate_client_key(dir.path(), "client_ed25519", "ed25519", None);
        let rsa = generate_client_key(dir.path(), "client_rsa", "rsa", None);
        let encrypted_key = generate_client_key(
            dir.path(),
            "client_ed25519_encrypted",
            "ed25519",
            Some(KEY_PASSPHRASE),
        );
        let authorized_keys = dir.path().join("authorized_keys");
        let lines: String = [&ed25519, &rsa, &encrypted_key]
            .iter()
            .map(|k| format!("{}\n", k.public_key))
            .collect();
        fs::write(&authorized_keys, lines).expect("write authorized_keys");
        set_mode(&authorized_keys, 0o644);
        generate_host_key(dir.path());

        // A port that was free a moment ago may be taken by the time sshd binds it (other
        // tests pick ports too): then try another.
        for _ in 0..5 {
            let port = free_port();
            write_config(dir.path(), port);
            let mut child = spawn(dir.path(), 1);
            match wait_listening(&mut child, dir.path(), 1, port) {
                Ok(()) => {
                    return Sshd {
                        dir,
                        port,
                        child,
                        generation: 1,
                        ed25519,
                        rsa,
                        encrypted_key,
                    };
                }
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("sshd did not start: {log}"),
            }
        }
        panic!("sshd found no free port in five attempts");
    }

    /// Stops the server, gives it a new host key and starts it again on the same port: the
    /// situation a pinned host key exists to catch.
    pub fn restart_with_new_host_key(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for name in ["host_ed25519", "host_ed25519.pub"] {
            fs::remove_file(self.dir.path().join(name)).expect("remove the old host key");
        }
        generate_host_key(self.dir.path());
        self.generation += 1;
        self.child = spawn(self.dir.path(), self.generation);
        // sshd sets SO_REUSEADDR, so connections of the old server in TIME_WAIT do not keep
        // the new one off the port.
        if let Err(log) =
            wait_listening(&mut self.child, self.dir.path(), self.generation, self.port)
        {
            panic!("sshd did not start again on port {}: {log}", self.port);
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host key the server presents, as `ssh-keygen` describes it.
    pub fn host_key(&self) -> HostKey {
        let pub_path = self.dir.path().join("host_ed25519.pub");
        let line = fs::read_to_string(&pub_path).expect("read the host public key");
        let mut fields = line.split_whitespace();
        let key_type = fields.next().expect("key type").to_owned();
        let blob = fields.next().expect("key blob");
        let out = run(Command::new("ssh-keygen")
            .arg("-l")
            .arg("-f")
            .arg(&pub_path));
        // `256 SHA256:… comment (ED25519)`
        let fingerprint = out
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("unexpected `ssh-keygen -l` output: {out}"))
            .to_owned();
        HostKey {
            public_key: format!("{key_type} {blob}"),
            key_type,
            fingerprint,
        }
    }

    /// An endpoint for [`TEST_USER`] on this server, with a 30 s session budget.
    pub fn endpoint(&self, auth: SshAuth) -> SshEndpoint {
        SshEndpoint {
            host: "127.0.0.1".into(),
            port: self.port,
            username: TEST_USER.into(),
            auth,
            timeout: Duration::from_secs(30),
        }
    }

    /// What the current server process logged so far. The level is `DEBUG1`, so that every
    /// authentication request shows, as a `userauth-request` line.
    pub fn log(&self) -> String {
        read_log(self.dir.path(), self.generation)
    }

    /// Waits until the current server's log satisfies `done` and returns it; panics with the
    /// log if that takes longer than 30 s. sshd logs from several processes, so the lines
    /// about a connection may land after the client is done with it.
    pub fn wait_for_log(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if done(&log) {
                return log;
            }
            assert!(
                start.elapsed() < WAIT,
                "sshd did not log {what} within {WAIT:?}; its log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks what the tests need from the machine, with the fix in the panic message.
fn preflight() {
    assert!(
        Path::new(SSHD).exists(),
        "{SSHD} is missing: the SSH tests start their own OpenSSH server (the system service \
         need not run). Install it with `apt-get install openssh-server`."
    );
    let user = Command::new("id")
        .arg(TEST_USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run `id`");
    assert!(
        user.success(),
        "the SSH tests log in as the local user `{TEST_USER}`, which does not exist. Create it \
         (as root) with: useradd -m -s /bin/sh {TEST_USER} && echo \
         '{TEST_USER}:{TEST_PASSWORD}' | chpasswd"
    );
    let uid = run(Command::new("id").arg("-u"));
    assert_eq!(
        uid.trim(),
        "0",
        "the SSH tests must run as root: sshd needs it for privilege separation and to check \
         passwords"
    );
    if !Path::new(PRIVSEP_DIR).exists() {
        // Several tests may get here at once; losing that race is fine.
        if let Err(e) = fs::create_dir_all(PRIVSEP_DIR) {
            panic!("create sshd's privilege-separation directory {PRIVSEP_DIR}: {e}");
        }
        set_mode(Path::new(PRIVSEP_DIR), 0o755);
    }
}

fn write_config(dir: &Path, port: u16) {
    let d = dir.display();
    let mut config = format!(
        "ListenAddress 127.0.0.1\n\
         Port {port}\n\
         HostKey {d}/host_ed25519\n\
         AuthorizedKeysFile {d}/authorized_keys\n\
         StrictModes no\n\
         UsePAM no\n\
         PidFile none\n\
         PasswordAuthentication yes\n\
         PubkeyAuthentication yes\n\
         KbdInteractiveAuthentication no\n\
         PermitRootLogin no\n\
         X11Forwarding no\n\
         PrintMotd no\n\
         LogLevel DEBUG1\n"
    );
    // OpenSSH 9.8 and later hold back addresses that fail authentication or drop connections,
    // which is what some tests do on purpose, from 127.0.0.1, over and over.
    if sshd_version() >= (9, 8) {
        config.push_str("PerSourcePenalties no\n");
    }
    fs::write(dir.join("sshd_config"), config).expect("write sshd_config");
}

/// OpenSSH's (major, minor) version, from `sshd -V` (`OpenSSH_9.2p1 Debian…, OpenSSL …`).
fn sshd_version() -> (u32, u32) {
    let out = Command::new(SSHD).arg("-V").output().expect("run sshd -V");
    let text = String::from_utf8_lossy(&out.stderr);
    let version = text
        .split_once("OpenSSH_")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("unexpected `sshd -V` output: {text}"));
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor)
}

fn spawn(dir: &Path, generation: u32) -> Child {
    let log = fs::File::create(log_path(dir, generation)).expect("create the sshd log");
    Command::new(SSHD)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(dir.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {SSHD}: {e}"))
}

/// Waits for sshd's "Server listening" line; the log as the error if sshd exits first.
fn wait_listening(child: &mut Child, dir: &Path, generation: u32, port: u16) -> Result<(), String> {
    let needle = format!("Server listening on 127.0.0.1 port {port}");
    let start = Instant::now();
    loop {
        if read_log(dir, generation).contains(&needle) {
            return Ok(());
        }
        if let Some(status) = child.try_wait().expect("poll sshd") {
            return Err(format!(
                "sshd exited with {status}; its log:\n{}",
                read_log(dir, generation)
            ));
        }
        if start.elapsed() > WAIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "sshd did not listen within {WAIT:?}; its log:\n{}",
                read_log(dir, generation)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn log_path(dir: &Path, generation: u32) -> PathBuf {
    dir.join(format!("sshd-{generation}.log"))
}

fn read_log(dir: &Path, generation: u32) -> String {
    fs::read(log_path(dir, generation))
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

fn generate_host_key(dir: &Path) {
    run(Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "opsconductor-test-host",
            "-f",
        ])
        .arg(dir.join("host_ed25519")));
}

fn generate_client_key(
    dir: &Path,
    name: &str,
    key_type: &str,
    passphrase: Option<&str>,
) -> ClientKey {
    let path = dir.join(name);
    let mut command = Command::new("ssh-keygen");
    command
        .args([
            "-q",
            "-t",
            key_type,
            "-C",
            name,
            "-N",
            passphrase.unwrap_or(""),
        ])
        .arg("-f")
        .arg(&path);
    if key_type == "rsa" {
        command.args(["-b", "2048"]);
    }
    run(&mut command);
    ClientKey {
        pem: fs::read_to_string(&path).expect("read the private key"),
        passphrase: passphrase.map(str::to_owned),
        public_key: fs::read_to_string(path.with_extension("pub"))
            .expect("read the public key")
            .trim()
            .to_owned(),
    }
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// Runs a helper command to success and returns its stdout.
fn run(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
