//! The addon author's loop with the real binary, for every kind: `addon new` → `addon build` →
//! `addon test` (pass, a broken expectation fails with a diff, `--update` repairs it) →
//! `addon install` of the folder (and `addon record` for the poll kind) → `addon keygen` +
//! `addon pack --key` → upload to a running `serve` that requires signatures → a webhook post,
//! an SNMP trap (net-snmp's `snmptrap`) and a poll each raise the expected alert.
//!
//! Each kind builds one wasm component. The builds share `target/authoring-test` as their
//! cargo target directory, so the SDK and wit-bindgen compile once (a minute or two the first
//! time) and each addon in seconds after that.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Serving, http, http_typed, ok, text};

fn shared_target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/authoring-test")
}

/// Runs the binary in `cwd` with a database in `data`, building addons in the shared target
/// directory.
fn opsconductor(cwd: &Path, data: &Path, args: &[&str]) -> Output {
    common::command(data)
        .args(args)
        .env("CARGO_TARGET_DIR", shared_target_dir())
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .current_dir(cwd)
        .output()
        .expect("binary runs")
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

/// Every kind through the whole loop with one wasm build each: `new` → `build` → `test` →
/// `install` (the folder, in its own data directory); the poll kind also records a live target;
/// then all three are packed, signed, uploaded to one running `serve` that requires signatures,
/// and a webhook post, a real SNMP trap and a poll through them each raise the expected alert.
#[test]
fn every_kind_from_new_to_alerts_in_a_running_runtime() {
    let webhook = author_loop("webhook", "critical");
    let trap = author_loop("trap", "major");
    let poll = author_loop("poll", "major");
    record_a_live_target(&poll.0, &poll.1);
    serve_signed_bundles(&webhook.0, &trap.0, &poll.0);
}

/// A rules addon from `addon new --kind rules`: nothing to build; `addon test` runs its fixture
/// on the rules engine in the sandbox, fails with a diff on a wrong expectation, `--update`
/// repairs it; a rule mistake is named by its place; the folder installs and packs without an
/// `addon.wasm`.
#[test]
fn a_rules_addon_from_new_to_install() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let run = |args: &[&str]| opsconductor(work.path(), &data, args);

    let out = ok(run(&["addon", "new", "demo-rules", "--kind", "rules"]));
    assert!(out.contains("created rules addon `demo-rules`"), "{out}");
    let addon = work.path().join("demo-rules");
    for file in ["README.md", "manifest.json", "fixtures/example.input.json"] {
        assert!(addon.join(file).is_file(), "{file} scaffolded");
    }
    assert!(!addon.join("Cargo.toml").exists(), "no code to build");

    let out = ok(run(&["addon", "test", "demo-rules"]));
    assert!(out.contains("1 passed, 0 failed"), "{out}");

    let expected_path = addon.join("fixtures/example.expected.json");
    let expected = std::fs::read_to_string(&expected_path).unwrap();
    std::fs::write(&expected_path, expected.replace("\"critical\"", "\"info\"")).unwrap();
    let failed = run(&["addon", "test", "demo-rules"]);
    let (stdout, _) = text(&failed);
    assert!(
        !failed.status.success() && stdout.contains("FAIL"),
        "{stdout}"
    );
    let out = ok(run(&["addon", "test", "demo-rules", "--update"]));
    assert!(out.contains("1 updated"), "{out}");
    assert_eq!(std::fs::read_to_string(&expected_path).unwrap(), expected);

    // A mistake in a rule is refused by its place before any fixture runs.
    let manifest_path = addon.join("manifest.json");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    std::fs::write(
        &manifest_path,
        manifest.replace("map:severity", "map:nosuchmap"),
    )
    .unwrap();
    let refused = run(&["addon", "test", "demo-rules"]);
    let (stdout, stderr) = text(&refused);
    assert!(!refused.status.success(), "{stdout}");
    assert!(
        format!("{stdout}{stderr}").contains("parse.rules[0].alert.severity"),
        "{stdout}\n{stderr}"
    );
    std::fs::write(&manifest_path, manifest).unwrap();

    let out = ok(run(&["addon", "install", "demo-rules"]));
    assert!(out.contains("installed demo-rules 0.1.0"), "{out}");
    let out = ok(run(&["addon", "pack", "demo-rules"]));
    assert!(out.contains("demo-rules-0.1.0.ocbundle"), "{out}");
}

/// `addon convert-legacy`: a legacy manifest (json parser, severity and category mappings) and
/// a fixture from the legacy system's traffic become a rules addon that passes the fixture as the
/// legacy system would have handled it; what has no place is listed by its key.
#[test]
fn a_legacy_manifest_converts_to_a_rules_addon_that_passes_its_fixture() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let run = |args: &[&str]| opsconductor(work.path(), &data, args);
    let legacy = serde_json::json!({
        "id": "acme", "name": "Acme checks", "version": "1.0", "method": "webhook",
        "webhook": {"path": "/webhooks/acme"},
        "parser": {
            "type": "json", "alerts_path": "alerts", "alert_type_field": "check",
            "device_ip_field": "host", "title": "{check} on {host}", "message_field": "detail",
            "clear_field": "state", "clear_values": ["ok"], "flatten": true
        },
        "severity_mappings": {"disk": "crit"},
        "category_mappings": {"disk": "Storage"}
    });
    std::fs::write(work.path().join("legacy.json"), legacy.to_string()).unwrap();
    let samples = work.path().join("samples");
    std::fs::create_dir_all(&samples).unwrap();
    std::fs::write(
        samples.join("checks.input.json"),
        r#"{"alerts": [{"host": "10.0.0.5", "check": "disk", "state": "down", "detail": "/var 98%"},
                       {"host": "10.0.0.6", "check": "cpu", "state": "OK"}]}"#,
    )
    .unwrap();
    std::fs::write(
        samples.join("checks.expected.json"),
        serde_json::json!([
            {"action": "raise", "alert_type": "disk", "category": "storage",
             "device_ip": "10.0.0.5", "device_name": null, "fields": {}, "message": "/var 98%",
             "occurred_at": null, "severity": "critical", "title": "disk on 10.0.0.5"},
            {"action": "clear", "alert_type": "cpu", "cleared_by": "cpu"}
        ])
        .to_string(),
    )
    .unwrap();

    let out = ok(run(&[
        "addon",
        "convert-legacy",
        "legacy.json",
        "--fixtures",
        "samples",
    ]));
    assert!(out.contains("converted `acme`"), "{out}");
    assert!(
        out.contains("parser.flatten"),
        "what was left out is listed: {out}"
    );
    assert!(out.contains("version: `1.0` is written `1.0.0`"), "{out}");
    let readme = std::fs::read_to_string(work.path().join("acme/README.md")).unwrap();
    assert!(readme.contains("parser.flatten"), "{readme}");

    let out = ok(run(&["addon", "test", "acme"]));
    assert!(out.contains("1 passed, 0 failed"), "{out}");

    // A legacy manifest that cannot be converted says why, and writes nothing.
    std::fs::write(
        work.path().join("bad.json"),
        r#"{"id": "bad", "method": "carrier-pigeon"}"#,
    )
    .unwrap();
    let refused = run(&["addon", "convert-legacy", "bad.json"]);
    let (stdout, stderr) = text(&refused);
    assert!(!refused.status.success(), "{stdout}");
    assert!(stderr.contains("carrier-pigeon"), "{stderr}");
    assert!(!work.path().join("bad").exists());
}

/// A JSON API on a local port that answers every request 503 with `{"status": "down", "echo":
/// <the request's Authorization header>}` and a session cookie.
fn status_503_server() -> u16 {
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
    port
}

/// `addon record` of a live target whose credential is a bearer token that the peer echoes
/// back: the recorded fixture has the answer but not the token, and passes.
fn record_a_live_target(work: &tempfile::TempDir, data: &Path) {
    let run = |args: &[&str]| ok(opsconductor(work.path(), data, args));
    let port = status_503_server();
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
        data,
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

/// `addon keygen` → `addon pack --key` of each kind's bundle → one `serve` (fresh database,
/// `[bundles] require_signatures = true` trusting only that key) → `POST /api/v1/addons` of each
/// file with an admin API key (an unsigned file is refused) → a webhook post, a trap sent with
/// net-snmp's `snmptrap`, and a poll of a local HTTP server each raise the expected alert.
fn serve_signed_bundles(
    webhook: &tempfile::TempDir,
    trap: &tempfile::TempDir,
    poll: &tempfile::TempDir,
) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let run = |args: &[&str]| ok(opsconductor(root.path(), &data, args));

    let out = run(&["addon", "keygen", "release"]);
    let public = out
        .lines()
        .find_map(|l| l.strip_prefix("public key:"))
        .unwrap_or_else(|| panic!("keygen prints the public key: {out}"))
        .trim()
        .to_owned();
    let config = root.path().join("trust.toml");
    std::fs::write(
        &config,
        format!("[bundles]\ntrusted_keys = [\"{public}\"]\nrequire_signatures = true\n"),
    )
    .unwrap();

    let bundle_dir = |work: &tempfile::TempDir, kind: &str| {
        work.path()
            .join(format!("demo-{kind}/target/bundle"))
            .display()
            .to_string()
    };
    let packed = |out: String| -> PathBuf {
        let path = out
            .trim()
            .strip_prefix("packed ")
            .and_then(|rest| rest.rsplit_once(" ("))
            .map(|(path, _)| PathBuf::from(path))
            .unwrap_or_else(|| panic!("pack names the file: {out}"));
        assert!(path.is_file(), "{out}");
        path
    };
    let signed_dir = root.path().join("signed");
    let unsigned_dir = root.path().join("unsigned");
    std::fs::create_dir_all(&signed_dir).unwrap();
    std::fs::create_dir_all(&unsigned_dir).unwrap();
    let mut files = Vec::new();
    for (work, kind) in [(webhook, "webhook"), (trap, "trap"), (poll, "poll")] {
        let out = run(&[
            "addon",
            "pack",
            &bundle_dir(work, kind),
            "--key",
            "release.key",
            "--out",
            &signed_dir.display().to_string(),
        ]);
        assert!(out.contains("signed by key"), "{out}");
        files.push((kind, packed(out)));
    }
    let unsigned = packed(run(&[
        "addon",
        "pack",
        &bundle_dir(webhook, "webhook"),
        "--out",
        &unsigned_dir.display().to_string(),
    ]));

    let admin = run(&[
        "auth",
        "api-key",
        "create",
        "authoring-admin",
        "--role",
        "admin",
    ]);
    let admin = admin.trim().to_owned();
    let community = "authoring-c0mmunity";
    run(&["snmp", "community", "add", "lab", "--community", community]);

    let mut server = common::command(&data);
    server
        .args(["--config", &config.display().to_string()])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("OPSCONDUCTOR_LOG", "warn")
        .env("OPSCONDUCTOR_TRAP_LISTEN", "127.0.0.1:0")
        .env("OPSCONDUCTOR_SCHEDULER_TICK_MS", "200");
    let mut server = Serving::start(server, &root.path().join("serve.log"));
    let (addr, trap_addr) = (server.addr, server.trap_addr());
    let server_log = || server.log();

    // Signatures are required: the unsigned file is refused, the signed ones are installed
    // (their fixtures pass in the sandbox) and active before the answer.
    let upload = |file: &Path| {
        http_typed(
            addr,
            Some(&admin),
            "POST",
            "/api/v1/addons",
            "application/octet-stream",
            &std::fs::read(file).unwrap(),
        )
    };
    let (status, body) = upload(&unsigned);
    assert_eq!(status, 422, "an unsigned bundle is refused: {body}");
    assert!(body.contains("bundle_rejected"), "{body}");
    for (kind, file) in &files {
        let (status, body) = upload(file);
        assert_eq!(status, 201, "{kind}: {body}");
        let done: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(done["id"], format!("demo-{kind}"), "{body}");
        // The poll bundle carries the fixture `addon record` added too.
        let fixtures = if *kind == "poll" { 2 } else { 1 };
        assert_eq!(done["fixtures_passed"], fixtures, "{body}");
        assert_eq!(done["signer"]["status"], "trusted", "{body}");
        assert_eq!(done["enabled"], true, "{body}");
    }

    // Webhook: the fixture's input, posted to the addon's path.
    let input = std::fs::read(
        webhook
            .path()
            .join("demo-webhook/fixtures/example.input.json"),
    )
    .unwrap();
    let (status, body) = http(addr, None, "POST", "/webhooks/demo-webhook", &input);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"created\""), "{body}");
    let alert = wait_for_alert(addr, &admin, "demo-webhook", || {}, &server_log);
    assert_eq!(alert["alert_type"], "checkFailed", "{alert}");
    assert_eq!(alert["severity"], "critical", "{alert}");
    assert_eq!(alert["device_ip"], "10.0.0.5", "{alert}");
    assert_eq!(alert["title"], "disk is down", "{alert}");

    // Trap: fanFailed for fan 2, a real SNMPv2c trap under the scaffold's OID prefix. UDP may
    // reach the listener before it is bound, so it is sent again until the alert is there.
    let send_trap = || {
        let out = Command::new("snmptrap")
            .args(["-v", "2c", "-c", community, "-m", ""])
            .arg(trap_addr.to_string())
            .args(["", "1.3.6.1.4.1.99999.0.1"])
            .args(["1.3.6.1.4.1.99999.1.2.1.3.2", "i", "2"])
            .args(["1.3.6.1.4.1.99999.1.2.1.2.2", "s", "PSU fan 2"])
            .output()
            .expect("net-snmp's snmptrap is installed");
        assert!(out.status.success(), "snmptrap: {:?}", text(&out));
    };
    send_trap();
    let alert = wait_for_alert(addr, &admin, "demo-trap", send_trap, &server_log);
    assert_eq!(alert["alert_type"], "fanFailed", "{alert}");
    assert_eq!(alert["severity"], "major", "{alert}");
    assert_eq!(alert["device_ip"], "127.0.0.1", "{alert}");
    assert_eq!(alert["title"], "Fan 2 failed", "{alert}");
    assert_eq!(alert["fields"]["fanName"], "PSU fan 2", "{alert}");

    // Poll: a target on a local server answering 503, polled at the next scheduler tick.
    let peer = status_503_server();
    run(&[
        "target",
        "add",
        "--name",
        "web-served",
        "--address",
        &format!("http://127.0.0.1:{peer}"),
        "--addon",
        "demo-poll",
        "--config-json",
        r#"{"path": "health"}"#,
    ]);
    run(&["target", "poll", "web-served"]);
    let alert = wait_for_alert(addr, &admin, "demo-poll", || {}, &server_log);
    assert_eq!(alert["alert_type"], "httpStatus", "{alert}");
    assert_eq!(alert["severity"], "major", "{alert}");
    assert_eq!(alert["device_name"], "web-served", "{alert}");
    assert_eq!(
        alert["title"], "web-served: HTTP 503 from /health",
        "{alert}"
    );
    assert_eq!(alert["fields"]["status"], "503", "{alert}");
}

/// The one active alert of `addon`, waiting up to 30 s for it and calling `nudge` every 2 s.
fn wait_for_alert(
    addr: std::net::SocketAddr,
    key: &str,
    addon: &str,
    nudge: impl Fn(),
    server_log: &dyn Fn() -> String,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut nudged = Instant::now();
    loop {
        let (status, body) = http(
            addr,
            Some(key),
            "GET",
            &format!("/api/v1/alerts?status=active&addon={addon}"),
            b"",
        );
        assert_eq!(status, 200, "{body}");
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        let items = page["items"].as_array().expect("items");
        if let [alert] = items.as_slice() {
            return alert.clone();
        }
        assert!(items.is_empty(), "one alert of {addon}: {body}");
        assert!(
            Instant::now() < deadline,
            "no alert of {addon} within 30 s; server log:\n{}",
            server_log()
        );
        if nudged.elapsed() > Duration::from_secs(2) {
            nudge();
            nudged = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
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
