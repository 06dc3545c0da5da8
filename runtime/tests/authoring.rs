//! The addon author's loop with the real binary: `addon new` → `addon build` → `addon test`
//! (pass, a broken expectation fails with a diff, `--update` repairs it) → `addon install`, and
//! for the webhook kind `serve` and a post of the fixture's input.
//!
//! Each kind builds one wasm component. The builds share `target/authoring-test` as their
//! cargo target directory, so the SDK and wit-bindgen compile once (a minute or two the first
//! time) and each addon in seconds after that.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_opsconductor");

fn shared_target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/authoring-test")
}

/// Runs the binary in `cwd` with a database in `data`.
fn opsconductor(cwd: &Path, data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("OPSCONDUCTOR_DATA_DIR", data)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", data.join("oc.db").display()),
        )
        .env("CARGO_TARGET_DIR", shared_target_dir())
        .env_remove("OPSCONDUCTOR_CONFIG")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .current_dir(cwd)
        .output()
        .expect("binary runs")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ok(output: Output) -> String {
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    stdout
}

/// new → build → test → break the expectation → test fails with a diff → update → test
/// passes → install. Returns the work directory (the addon is in `demo-<kind>/`) and the data
/// directory it was installed into.
fn author_loop(kind: &str, severity: &str) -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let id = format!("demo-{kind}");
    let run = |args: &[&str]| opsconductor(work.path(), &data, args);

    let out = ok(run(&["addon", "new", &id, "--kind", kind]));
    assert!(
        out.contains(&format!("created {kind} addon `{id}`")),
        "{out}"
    );
    let addon = work.path().join(&id);
    for file in ["Cargo.toml", "README.md", "src/lib.rs", "manifest.json"] {
        assert!(addon.join(file).is_file(), "{file} scaffolded");
    }

    let build = run(&["addon", "build", &id]);
    let (stdout, stderr) = text(&build);
    assert!(
        build.status.success(),
        "addon build failed (a missing target says `rustup target add wasm32-wasip2`):\n\
         stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("building"), "progress on stderr: {stderr}");
    let bundle = addon.join("target/bundle");
    for file in [
        "manifest.json",
        "addon.wasm",
        "fixtures/example.expected.json",
    ] {
        assert!(bundle.join(file).is_file(), "bundle has {file}: {stdout}");
    }

    // The scaffold passes straight away, with time and memory per fixture.
    let out = ok(run(&["addon", "test", &id]));
    assert!(out.contains("1 passed, 0 failed"), "{out}");
    let line = out.lines().find(|l| l.starts_with("ok")).expect("ok line");
    assert!(
        line.contains("example") && line.contains("guest") && line.contains("MiB"),
        "{out}"
    );
    // The bundle alone passes too.
    let out = ok(run(&["addon", "test", &bundle.display().to_string()]));
    assert!(out.contains("1 passed"), "{out}");

    // A wrong expectation fails, exit code and a diff naming the field.
    let expected_path = addon.join("fixtures/example.expected.json");
    let expected = std::fs::read_to_string(&expected_path).unwrap();
    let want = format!("\"severity\": \"{severity}\"");
    assert!(expected.contains(&want), "{expected}");
    std::fs::write(
        &expected_path,
        expected.replace(&want, "\"severity\": \"info\""),
    )
    .unwrap();
    let failed = run(&["addon", "test", &id]);
    let (stdout, stderr) = text(&failed);
    assert!(!failed.status.success(), "{stdout}");
    assert!(stdout.contains("FAIL"), "{stdout}");
    let diff_line = |sign: char, value: &str| {
        stdout.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with(sign) && l.contains(&format!("\"severity\": \"{value}\""))
        })
    };
    assert!(
        diff_line('-', "info") && diff_line('+', severity),
        "a diff naming severity: {stdout}\n{stderr}"
    );
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");

    // --update rewrites it, and it passes again.
    let out = ok(run(&["addon", "test", &id, "--update"]));
    assert!(out.contains("1 updated"), "{out}");
    assert_eq!(std::fs::read_to_string(&expected_path).unwrap(), expected);
    let out = ok(run(&["addon", "test", &id]));
    assert!(out.contains("1 passed, 0 failed"), "{out}");

    let out = ok(run(&["addon", "install", &bundle.display().to_string()]));
    assert!(out.contains(&format!("installed {id} 0.1.0")), "{out}");
    let out = ok(run(&["addon", "list"]));
    assert!(out.contains(&id), "{out}");
    (work, data)
}

#[test]
fn webhook_addon_from_new_to_serving() {
    let (work, data) = author_loop("webhook", "critical");
    let key = ok(opsconductor(
        work.path(),
        &data,
        &[
            "auth",
            "api-key",
            "create",
            "authoring-test",
            "--role",
            "viewer",
        ],
    ));
    let key = key.trim().to_owned();

    let port = free_port();
    let server = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("OPSCONDUCTOR_DATA_DIR", &data)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", data.join("oc.db").display()),
        )
        .env("OPSCONDUCTOR_LOG", "warn")
        .env("OPSCONDUCTOR_TRAP_LISTEN", "127.0.0.1:0")
        .env_remove("OPSCONDUCTOR_CONFIG")
        .current_dir(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Serving(server);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start listening");
        std::thread::sleep(Duration::from_millis(100));
    }

    let input =
        std::fs::read(work.path().join("demo-webhook/fixtures/example.input.json")).unwrap();
    let (status, body) = http(port, None, "POST", "/webhooks/demo-webhook", &input);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"created\""), "{body}");
    let (status, body) = http(
        port,
        Some(&key),
        "GET",
        "/api/v1/alerts?status=active&addon=demo-webhook",
        b"",
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"alert_type\":\"checkFailed\"") && body.contains("disk is down"),
        "{body}"
    );
}

#[test]
fn trap_addon_from_new_to_installed() {
    author_loop("trap", "major");
}

/// The poll kind, and `addon record` of a live target whose credential is a bearer token that
/// the peer echoes back: the recorded fixture has the answer but not the token, and passes.
#[test]
fn poll_addon_from_new_to_installed_and_recorded() {
    let (work, data) = author_loop("poll", "major");
    let run = |args: &[&str]| ok(opsconductor(work.path(), &data, args));

    // A JSON API that answers 503 and echoes the request's Authorization header.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut auth = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("authorization:") {
                    auth = line[line.len() - v.len()..].trim().to_owned();
                }
            }
            let body = format!(r#"{{"status": "down", "echo": "{auth}"}}"#);
            let _ = write!(
                stream,
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                 set-cookie: session=abc123\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });

    run(&[
        "credential",
        "set",
        "live-api",
        "--kind",
        "http_bearer",
        "--token",
        "s3cret-bearer-token",
    ]);
    run(&[
        "target",
        "add",
        "--name",
        "web-live",
        "--address",
        &format!("http://127.0.0.1:{port}"),
        "--addon",
        "demo-poll",
        "--config-json",
        r#"{"path": "health"}"#,
        "--credentials",
        "live-api",
        "--disabled",
    ]);
    let out = run(&[
        "addon",
        "record",
        "demo-poll",
        "--target",
        "web-live",
        "--fixture",
        "live",
    ]);
    assert!(out.contains("recorded"), "{out}");

    let fixtures = work.path().join("demo-poll/fixtures");
    let input = std::fs::read_to_string(fixtures.join("live.input.poll.json")).unwrap();
    assert!(
        input.contains("503") && input.contains("web-live"),
        "{input}"
    );
    assert!(
        input.contains("Bearer <redacted>") && !input.contains("s3cret-bearer-token"),
        "the echoed token is redacted: {input}"
    );
    assert!(!input.contains("abc123"), "set-cookie is redacted: {input}");
    let expected = std::fs::read_to_string(fixtures.join("live.expected.json")).unwrap();
    assert!(
        expected.contains("\"httpStatus\"") && expected.contains("\"503\""),
        "{expected}"
    );
    // Replayed offline: both fixtures pass.
    let out = run(&["addon", "test", "demo-poll"]);
    assert!(out.contains("2 passed, 0 failed"), "{out}");
    // A second recording under the same name is refused rather than overwriting.
    let again = opsconductor(
        work.path(),
        &data,
        &[
            "addon",
            "record",
            "demo-poll",
            "--target",
            "web-live",
            "--fixture",
            "live",
        ],
    );
    assert!(!again.status.success());
}

#[test]
fn new_refuses_a_bad_id_and_a_non_empty_dir() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path();
    let out = opsconductor(
        work.path(),
        data,
        &["addon", "new", "Bad Id", "--kind", "trap"],
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("must be 1-64 characters"), "{stderr}");

    std::fs::create_dir_all(work.path().join("taken")).unwrap();
    std::fs::write(work.path().join("taken/x"), "").unwrap();
    let out = opsconductor(
        work.path(),
        data,
        &["addon", "new", "ok", "--kind", "webhook", "--dir", "taken"],
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("is not empty"), "{stderr}");

    let out = opsconductor(work.path(), data, &["addon", "test", "taken"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("neither a bundle"), "{stderr}");
}

/// Kills the server even when an assertion fails.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.1 exchange; returns status and body.
fn http(port: u16, bearer: Option<&str>, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{}\r\n",
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
