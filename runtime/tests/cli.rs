//! The real `opsconductor` binary: install the bundled addons, list, disable and enable them,
//! serve, and take a webhook — what `just run` and an operator do.

mod common;

use std::process::{Command, Output};

use common::{Serving, bundle, http, ok, opsconductor, opsconductor_with_env, test_bundle};

#[test]
fn install_list_toggle_and_serve() {
    let data = tempfile::tempdir().unwrap();
    let dirs: Vec<String> = ["alertmanager", "grafana", "prtg"]
        .iter()
        .map(|id| bundle(id).display().to_string())
        .collect();
    let mut args = vec!["addon", "install"];
    args.extend(dirs.iter().map(String::as_str));

    let out = ok(opsconductor(data.path(), &args));
    assert_eq!(out.matches("installed").count(), 3, "{out}");
    // Installing the same bundles again changes nothing.
    let out = ok(opsconductor(data.path(), &args));
    assert_eq!(out.matches("unchanged").count(), 3, "{out}");

    let out = ok(opsconductor(data.path(), &["addon", "disable", "grafana"]));
    assert!(out.contains("disabled grafana"), "{out}");
    let list = ok(opsconductor(data.path(), &["addon", "list"]));
    let line = |id: &str| {
        list.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} not listed: {list}"))
            .to_owned()
    };
    assert!(line("alertmanager").contains("enabled"), "{list}");
    assert!(line("grafana").contains("disabled"), "{list}");
    assert!(line("prtg").contains("webhook"), "{list}");

    let err = opsconductor(data.path(), &["addon", "enable", "nope"]);
    assert!(!err.status.success());
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("no addon `nope` is installed"),
        "{err:?}"
    );

    let key = ok(opsconductor(
        data.path(),
        &["auth", "api-key", "create", "cli-test", "--role", "viewer"],
    ));
    let key = key.trim().to_owned();
    assert!(key.starts_with("oc_"), "the key alone on stdout: {key}");

    let mut server = common::command(data.path());
    server
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("OPSCONDUCTOR_LOG", "warn")
        // Port 162 may be taken (or privileged); any free loopback port will do here.
        .env("OPSCONDUCTOR_TRAP_LISTEN", "127.0.0.1:0");
    let server = Serving::start(server, &data.path().join("serve.stderr"));
    let addr = server.addr;

    let payload = std::fs::read(bundle("alertmanager").join("fixtures/firing.input.json")).unwrap();
    let (status, body) = http(addr, None, "POST", "/webhooks/alertmanager", &payload);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"created\""), "{body}");
    let (status, body) = http(addr, None, "GET", "/api/v1/alerts?status=active", b"");
    assert_eq!(status, 401, "the API needs a credential: {body}");
    let (status, body) = http(addr, Some(&key), "GET", "/api/v1/alerts?status=active", b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"addon_id\":\"alertmanager\""), "{body}");
    // The disabled addon is not routed.
    let (status, _) = http(addr, None, "POST", "/webhooks/grafana", b"{}");
    assert_eq!(status, 404);
    let (status, body) = http(addr, None, "GET", "/health", b"");
    assert_eq!(
        (status, body.contains("\"addons_loaded\":2")),
        (200, true),
        "{body}"
    );

    // The first start created `admin`. Its standard error is a file here, not a terminal, so
    // the one-time password went to a file only this user may read, and stderr says where
    // (and where to sign in), once.
    let stderr = std::fs::read_to_string(data.path().join("serve.stderr")).unwrap();
    assert_eq!(stderr.matches("First start").count(), 1, "{stderr}");
    let file = data.path().join("initial-admin-password");
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(stderr.contains(&format!("Open http://{addr}/")), "{stderr}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let password = std::fs::read_to_string(&file).unwrap();
    let password = password.trim();
    assert!(
        !stderr.contains(password),
        "the password is on stderr: {stderr}"
    );
    let login = format!(r#"{{"username": "admin", "password": "{password}"}}"#);
    let (status, body) = http(addr, None, "POST", "/api/v1/auth/login", login.as_bytes());
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let access = token["access_token"].as_str().unwrap();
    let (status, body) = http(addr, Some(access), "GET", "/api/v1/auth/me", b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"role\":\"admin\""), "{body}");
}

/// `log_format = "json"` (here through its variable): every log line is one JSON object with
/// the level, the message and the event's fields at the top level, for log shippers.
#[test]
fn json_logs_are_one_object_per_line() {
    let data = tempfile::tempdir().unwrap();
    let mut server = common::command(data.path());
    server
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("OPSCONDUCTOR_LOG", "info")
        .env("OPSCONDUCTOR_LOG_FORMAT", "json")
        .env("OPSCONDUCTOR_TRAP_LISTEN", "off");
    let server = Serving::start(server, &data.path().join("serve.stderr"));
    let log = server.log();
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let serving = events
        .iter()
        .find(|e| e["message"] == "opsconductor serving")
        .unwrap_or_else(|| panic!("no `opsconductor serving` event in:\n{log}"));
    assert_eq!(serving["level"], "INFO", "{serving}");
    assert_eq!(
        serving["addr"],
        server.addr.to_string(),
        "the event's fields are top-level: {serving}"
    );
    assert!(serving["timestamp"].is_string(), "{serving}");
    // What is not JSON is the first start's notice to the person at the terminal, not a log
    // line in the other format.
    for line in log
        .lines()
        .filter(|l| !l.starts_with('{') && !l.trim().is_empty())
    {
        assert!(
            !line.contains(" INFO ") && !line.contains(" WARN "),
            "a text log line among JSON ones: {line}"
        );
    }
}

/// `config check` reads a file as `serve` would and says what is wrong and where: a misspelt
/// key by line and column with the keys it could be, and every setting `serve` would refuse,
/// all at once; a good file is `ok`. It touches no database.
#[test]
fn config_check_says_what_is_wrong_and_where() {
    let data = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = data.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let typo = write("typo.toml", "log = \"info\"\nlisen = \"127.0.0.1:8080\"\n");
    let out = opsconductor(data.path(), &["config", "check", &typo]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2, column 1"), "{stderr}");
    assert!(stderr.contains("unknown field `lisen`"), "{stderr}");
    assert!(
        stderr.contains("`listen`"),
        "the keys it could be: {stderr}"
    );

    let wrong = write(
        "wrong.toml",
        "access_token_minutes = 0\n\n[bundles]\ntrusted_keys = [\"not-a-key\"]\n\n\
         [ldap]\nurl = \"http://directory\"\nuser_base = \"ou=people,dc=example,dc=org\"\ngroup_roles = {}\n",
    );
    let out = opsconductor_with_env(
        data.path(),
        &["config", "check", &wrong],
        &[("DATABASE_URL", "mysql://db/alerts")],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for problem in [
        "database_url: unsupported database url",
        "access_token_minutes is 0; it must be between 1 and 1440",
        "bundles.trusted_keys[0]",
        "[ldap] directory configuration: url `http://directory` must start with ldap://",
        "4 problem(s)",
    ] {
        assert!(stderr.contains(problem), "no `{problem}` in: {stderr}");
    }

    let good = write(
        "good.toml",
        "listen = \"127.0.0.1:8080\"\ntrap_listen = \"127.0.0.1:1162\"\nlog_format = \"json\"\n",
    );
    let out = ok(opsconductor(data.path(), &["config", "check", &good]));
    assert_eq!(out.trim(), format!("{good}: ok"), "{out}");
    assert!(
        !data.path().join("oc.db").exists(),
        "checking opened the database"
    );
}

/// `backup` copies a SQLite database that a running server keeps writing to: the copy is a
/// whole database at one instant (the addon, every alert answered before the copy began and
/// none past its end, secrets sealed under the same key), private to its owner, and an
/// existing file is never overwritten.
#[test]
fn backup_copies_a_database_in_use() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let data = tempfile::tempdir().unwrap();
    let alertmanager = bundle("alertmanager").display().to_string();
    ok(opsconductor(
        data.path(),
        &["addon", "install", &alertmanager],
    ));
    let mut server = common::command(data.path());
    server
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("OPSCONDUCTOR_LOG", "warn")
        .env("OPSCONDUCTOR_TRAP_LISTEN", "off");
    let server = Serving::start(server, &data.path().join("serve.stderr"));
    let addr = server.addr;

    // A sender posting new alerts, one per request, for as long as the backup runs.
    let template: serde_json::Value = serde_json::from_slice(
        &std::fs::read(bundle("alertmanager").join("fixtures/firing.input.json")).unwrap(),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let sender = {
        let (stop, answered) = (Arc::clone(&stop), Arc::clone(&answered));
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut body = template.clone();
                body["alerts"][0]["labels"]["instance"] =
                    format!("10.9.{}.{}:9100", n / 256 % 256, n % 256).into();
                let (status, answer) = http(
                    addr,
                    None,
                    "POST",
                    "/webhooks/alertmanager",
                    &serde_json::to_vec(&body).unwrap(),
                );
                assert_eq!(status, 200, "{answer}");
                answered.fetch_add(1, Ordering::SeqCst);
                n += 1;
            }
        })
    };
    while answered.load(Ordering::SeqCst) < 50 {
        std::thread::yield_now();
    }
    let before = answered.load(Ordering::SeqCst);
    let copy = data.path().join("backup.db");
    let out = ok(opsconductor(
        data.path(),
        &["backup", &copy.display().to_string()],
    ));
    let after = answered.load(Ordering::SeqCst);
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    assert!(out.contains("backed up to"), "{out}");

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "the copy holds sealed secrets and password hashes"
    );

    let keys = opsconductor::secrets::KeySource::File(data.path().join("secrets.key"))
        .load()
        .unwrap();
    let url = format!("sqlite://{}", copy.display());
    let (addons, alerts) = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = opsconductor::store::Store::connect(&url, Arc::new(keys))
            .await
            .unwrap();
        let addons = store.list_addons().await.unwrap();
        let alerts: i64 = store
            .count_alerts_by_status()
            .await
            .unwrap()
            .iter()
            .map(|(_, n)| n)
            .sum();
        (addons, alerts)
    });
    assert_eq!(addons.len(), 1, "the installed addon is in the copy");
    let alerts = alerts as u64;
    // One request is in flight at a time: its alert may be committed (and copied) before its
    // answer arrives, so the copy may hold one more than were answered by the end.
    assert!(
        (before..=after + 1).contains(&alerts),
        "the copy holds {alerts} alerts; {before} were answered before it began and {after} by its end"
    );

    let again = opsconductor(data.path(), &["backup", &copy.display().to_string()]);
    assert!(
        !again.status.success(),
        "an existing file is not overwritten"
    );
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists; choose a new file"),
        "{again:?}"
    );
}

#[test]
fn snmp_credentials_and_engine_id() {
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| ok(opsconductor(data.path(), args));

    let first = run(&["snmp", "engine-id"]);
    assert!(first.trim().starts_with("0x80"), "{first}");
    assert_eq!(
        run(&["snmp", "engine-id"]),
        first,
        "the engine id is persisted"
    );

    run(&[
        "snmp",
        "community",
        "add",
        "lab",
        "--community",
        "s3cret-community",
    ]);
    let listed = run(&["snmp", "community", "list"]);
    assert_eq!(listed.trim(), "lab");

    run(&[
        "snmp",
        "user",
        "add",
        "ops",
        "--auth",
        "sha256",
        "--auth-password",
        "auth-pass-123",
        "--priv",
        "aes",
        "--priv-password",
        "priv-pass-123",
    ]);
    let users = run(&["snmp", "user", "list"]);
    assert!(
        users.contains("ops") && users.contains("sha256") && users.contains("aes"),
        "{users}"
    );

    // Refusals say why.
    let short = opsconductor(
        data.path(),
        &[
            "snmp",
            "user",
            "add",
            "weak",
            "--auth",
            "sha",
            "--auth-password",
            "short",
        ],
    );
    assert!(!short.status.success());
    let half = opsconductor(
        data.path(),
        &[
            "snmp",
            "user",
            "add",
            "half",
            "--priv",
            "aes",
            "--priv-password",
            "priv-pass-123",
        ],
    );
    assert!(!half.status.success());

    // Nothing printed anywhere contains a secret.
    for out in [&listed, &users] {
        for secret in ["s3cret-community", "auth-pass-123", "priv-pass-123"] {
            assert!(!out.contains(secret), "{out}");
        }
    }
    run(&["snmp", "user", "remove", "ops"]);
    run(&["snmp", "community", "remove", "lab"]);
    assert!(run(&["snmp", "user", "list"]).trim().is_empty());
    let gone = opsconductor(data.path(), &["snmp", "user", "remove", "ops"]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no SNMPv3 user `ops`"));
}

#[test]
fn targets_and_credentials() {
    let data = tempfile::tempdir().unwrap();
    // Everything the commands print, checked for secrets at the end.
    let printed = std::cell::RefCell::new(String::new());
    let run = |args: &[&str]| {
        let out = ok(opsconductor(data.path(), args));
        printed.borrow_mut().push_str(&out);
        out
    };
    let prober = test_bundle("prober").display().to_string();
    let alertmanager = bundle("alertmanager").display().to_string();
    run(&["addon", "install", &prober, &alertmanager]);

    // Credentials: flags, environment variables, a key file.
    let out = run(&[
        "credential",
        "set",
        "lab",
        "--kind",
        "snmp_usm",
        "--user",
        "poller",
        "--auth-protocol",
        "sha256",
        "--auth-password",
        "s3cret-auth-1",
        "--priv-protocol",
        "aes",
        "--priv-password",
        "s3cret-priv-2",
    ]);
    assert!(out.contains("credential `lab` saved"), "{out}");
    let token = ok(opsconductor_with_env(
        data.path(),
        &["credential", "set", "api", "--kind", "http_bearer"],
        &[("OPSCONDUCTOR_CREDENTIAL_TOKEN", "s3cret-token-3")],
    ));
    printed.borrow_mut().push_str(&token);
    let key_path = data.path().join("id_ed25519");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(&key_path)
        .output()
        .expect("ssh-keygen runs (install openssh-client)");
    assert!(keygen.status.success(), "{keygen:?}");
    let key = std::fs::read_to_string(&key_path).unwrap();
    run(&[
        "credential",
        "set",
        "shell",
        "--kind",
        "ssh_key",
        "--username",
        "ops",
        "--private-key-file",
        &key_path.display().to_string(),
    ]);
    let creds = run(&["credential", "list"]);
    let line = |list: &str, name: &str| {
        list.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not listed: {list}"))
            .to_owned()
    };
    assert!(line(&creds, "lab").contains("snmp_usm"), "{creds}");
    assert!(line(&creds, "lab").contains("user=poller"), "{creds}");
    assert!(
        line(&creds, "lab").contains("auth_protocol=sha256"),
        "{creds}"
    );
    assert!(line(&creds, "api").contains("http_bearer"), "{creds}");
    assert!(line(&creds, "shell").contains("username=ops"), "{creds}");

    // A flag of another kind is refused, not ignored.
    let wrong = opsconductor(
        data.path(),
        &[
            "credential",
            "set",
            "x",
            "--kind",
            "http_bearer",
            "--token",
            "t",
            "--password",
            "p",
        ],
    );
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("--password"),
        "{wrong:?}"
    );

    // Targets.
    let out = run(&[
        "target",
        "add",
        "--name",
        "sw1",
        "--address",
        "192.0.2.1",
        "--addon",
        "prober",
        "--credentials",
        "lab",
        "--config-json",
        r#"{"community_index": 3}"#,
    ]);
    assert!(out.contains("target `sw1` added"), "{out}");
    assert!(
        out.contains("every 60s"),
        "the addon's default interval: {out}"
    );
    run(&[
        "target",
        "add",
        "--name",
        "sw2",
        "--address",
        "[2001:db8::2]:1161",
        "--addon",
        "prober",
        "--cron",
        "*/5 * * * *",
        "--disabled",
    ]);
    let refused = opsconductor(
        data.path(),
        &[
            "target",
            "add",
            "--name",
            "hook",
            "--address",
            "192.0.2.3",
            "--addon",
            "alertmanager",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("target field `addon_id`: addon `alertmanager` does not poll"),
        "{refused:?}"
    );
    let duplicate = opsconductor(
        data.path(),
        &[
            "target",
            "add",
            "--name",
            "sw1",
            "--address",
            "h",
            "--addon",
            "prober",
        ],
    );
    assert!(
        String::from_utf8_lossy(&duplicate.stderr).contains("a target named `sw1` already exists"),
        "{duplicate:?}"
    );

    let list = run(&["target", "list"]);
    assert!(list.starts_with("NAME"), "{list}");
    let sw1 = line(&list, "sw1");
    for cell in ["prober", "192.0.2.1", "every 60s", "yes", "never"] {
        assert!(sw1.contains(cell), "{cell}: {list}");
    }
    let sw2 = line(&list, "sw2");
    for cell in ["[2001:db8::2]:1161", "cron */5 * * * *", "no"] {
        assert!(sw2.contains(cell), "{cell}: {list}");
    }

    let show = |name: &str| -> serde_json::Value {
        serde_json::from_str(&run(&["target", "show", name])).unwrap()
    };
    let shown = show("sw1");
    assert_eq!(shown["credentials"], "lab", "{shown}");
    assert_eq!(shown["config"]["community_index"], 3, "{shown}");
    assert_eq!(shown["schedule"]["interval_seconds"], 60, "{shown}");

    // Update: what is not given stays.
    run(&[
        "target",
        "update",
        "sw1",
        "--interval",
        "30",
        "--rename",
        "core-1",
    ]);
    let shown = show("core-1");
    assert_eq!(shown["schedule"]["interval_seconds"], 30, "{shown}");
    assert_eq!(shown["credentials"], "lab", "{shown}");
    assert_eq!(shown["config"]["community_index"], 3, "{shown}");
    assert_eq!(shown["address"], "192.0.2.1", "{shown}");
    assert_eq!(shown["enabled"], true, "{shown}");

    run(&["target", "disable", "core-1"]);
    assert_eq!(show("core-1")["enabled"], false);
    run(&["target", "enable", "core-1"]);
    assert_eq!(show("core-1")["enabled"], true);

    // Poll now: due at once, whatever its schedule says.
    let before = show("core-1")["status"]["next_due_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(run(&["target", "poll", "core-1"]).contains("next scheduler tick"));
    let after = show("core-1")["status"]["next_due_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        after <= before,
        "poll now moves the due time to now: {before} -> {after}"
    );
    // No host key is pinned for a target never polled over SSH.
    assert_eq!(run(&["target", "host-keys"]), "");
    let none = opsconductor(data.path(), &["target", "forget-host-key", "core-1"]);
    assert!(!none.status.success());
    assert!(
        String::from_utf8_lossy(&none.stderr)
            .contains("no SSH host key is pinned for 192.0.2.1:22"),
        "{none:?}"
    );

    // A credential in use stays until its targets go.
    let in_use = opsconductor(data.path(), &["credential", "remove", "lab"]);
    assert!(!in_use.status.success());
    assert!(
        String::from_utf8_lossy(&in_use.stderr)
            .contains("credential `lab` is used by target `core-1`"),
        "{in_use:?}"
    );
    run(&["target", "remove", "core-1"]);
    run(&["credential", "remove", "lab"]);
    let gone = opsconductor(data.path(), &["target", "show", "core-1"]);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("no target named `core-1`"),
        "{gone:?}"
    );
    let list = run(&["target", "list"]);
    assert!(!list.contains("core-1") && list.contains("sw2"), "{list}");

    // Nothing printed, by any command, holds a secret.
    let key_body: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();
    for secret in ["s3cret-auth-1", "s3cret-priv-2", "s3cret-token-3"]
        .iter()
        .chain(&key_body)
    {
        let printed = printed.borrow();
        assert!(!printed.contains(secret), "`{secret}` printed: {printed}");
    }
}

/// Runs the binary and returns (stdout, stderr) of a command that must succeed.
fn ok_both(output: Output) -> (String, String) {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (ok(output), stderr)
}

fn fails_with(output: Output, message: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{output:?}");
    assert!(
        stderr.contains(message),
        "expected `{message}` in: {stderr}"
    );
}

#[test]
fn users_api_keys_and_signing_keys() {
    use opsconductor::auth::{Auth, AuthConfig, AuthError, ClientInfo, Role, TokenRejection};
    use opsconductor::store::{AuditFilter, Store};

    let data = tempfile::tempdir().unwrap();
    let printed = std::cell::RefCell::new(String::new());
    let run = |args: &[&str]| {
        let out = ok(opsconductor(data.path(), args));
        printed.borrow_mut().push_str(&out);
        out
    };

    // Without --password-env, the generated password is all that stdout holds.
    let (password, note) = ok_both(opsconductor(
        data.path(),
        &["user", "add", "Alice", "--role", "operator"],
    ));
    let alice_password = password.trim().to_owned();
    assert_eq!(alice_password.len(), 27, "{password:?}");
    assert!(
        note.contains("user `alice` added with role operator; its password is printed below"),
        "{note}"
    );
    let chosen = "bob's long passphrase";
    let out = ok(opsconductor_with_env(
        data.path(),
        &[
            "user",
            "add",
            "bob",
            "--role",
            "viewer",
            "--password-env",
            "BOB_PW",
        ],
        &[("BOB_PW", chosen)],
    ));
    assert_eq!(out.trim(), "user `bob` added with role viewer");
    printed.borrow_mut().push_str(&out);

    fails_with(
        opsconductor(
            data.path(),
            &[
                "user",
                "add",
                "carol",
                "--role",
                "viewer",
                "--password-env",
                "UNSET_PW",
            ],
        ),
        "environment variable UNSET_PW (named by --password-env) is not set",
    );
    fails_with(
        opsconductor_with_env(
            data.path(),
            &[
                "user",
                "add",
                "carol",
                "--role",
                "viewer",
                "--password-env",
                "PW",
            ],
            &[("PW", "short")],
        ),
        "password must be at least 12 characters long",
    );
    fails_with(
        opsconductor(data.path(), &["user", "add", "carol", "--role", "root"]),
        "unknown role `root`",
    );
    fails_with(
        opsconductor(data.path(), &["user", "add", "alice", "--role", "viewer"]),
        "a user named `alice` already exists",
    );

    let list = run(&["user", "list"]);
    assert!(list.starts_with("USERNAME"), "{list}");
    let line = |list: &str, name: &str| {
        list.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not listed: {list}"))
            .to_owned()
    };
    for cell in ["operator", "enabled", "local", "never"] {
        assert!(line(&list, "alice").contains(cell), "{cell}: {list}");
    }
    run(&["user", "disable", "bob"]);
    assert!(line(&run(&["user", "list"]), "bob").contains("disabled"));
    run(&["user", "enable", "bob"]);
    assert!(run(&["user", "set-role", "bob", "--role", "admin"]).contains("now has role admin"));
    fails_with(
        opsconductor(data.path(), &["user", "disable", "nobody"]),
        "no user named `nobody`",
    );
    // A new password, generated; the old one stops working.
    let (new_password, _) = ok_both(opsconductor(
        data.path(),
        &["user", "set-password", "alice"],
    ));
    let new_password = new_password.trim().to_owned();
    assert_ne!(new_password, alice_password);

    // API keys: the key alone on stdout, once; listings show its first characters only.
    let (key, note) = ok_both(opsconductor(
        data.path(),
        &[
            "auth",
            "api-key",
            "create",
            "ci-bot",
            "--role",
            "service",
            "--expires-days",
            "30",
        ],
    ));
    let key = key.trim().to_owned();
    assert!(key.starts_with("oc_") && key.len() == 46, "{key}");
    assert!(
        note.contains("API key `ci-bot` created with role service, expiring"),
        "{note}"
    );
    let keys = run(&["auth", "api-key", "list"]);
    let ci = line(&keys, "ci-bot");
    for cell in [
        "service",
        &format!("{}…", &key[..11]),
        "active",
        "cli",
        "never",
    ] {
        assert!(ci.contains(cell), "{cell}: {keys}");
    }
    fails_with(
        opsconductor(
            data.path(),
            &["auth", "api-key", "create", "ci-bot", "--role", "viewer"],
        ),
        "an API key named `ci-bot` already exists",
    );

    let rotated = run(&["auth", "rotate-key"]);
    assert!(
        rotated.starts_with("signing key rotated: new key "),
        "{rotated}"
    );

    // The secrets key: generated beside the data on first use, 0600, and rotated by re-sealing
    // every secret (the signing keys just made among them) under a new one.
    let key_file = data.path().join("secrets.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let before = std::fs::read_to_string(&key_file).unwrap();
    let resealed = run(&["secrets", "rotate-key"]);
    assert!(resealed.starts_with("secrets key rotated"), "{resealed}");
    let after = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(before, after);
    assert_eq!(
        after.lines().filter(|l| !l.starts_with('#')).count(),
        1,
        "the old key is gone: {after}"
    );

    // What the commands stored works through the library, as a server will use it.
    let url = format!("sqlite://{}", data.path().join("oc.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let keys = opsconductor::secrets::KeySource::File(data.path().join("secrets.key"))
            .load()
            .unwrap();
        let store = Store::connect(&url, std::sync::Arc::new(keys))
            .await
            .unwrap();
        let auth = Auth::new(store.clone(), AuthConfig::default())
            .await
            .unwrap();
        let client = ClientInfo::default();
        let pair = auth
            .login_password("alice", &new_password, &client)
            .await
            .unwrap();
        assert_eq!(pair.principal.role, Role::Operator);
        assert!(matches!(
            auth.login_password("alice", &alice_password, &client).await,
            Err(AuthError::InvalidCredentials)
        ));
        let bob = auth.login_password("bob", chosen, &client).await.unwrap();
        assert_eq!(bob.principal.role, Role::Admin);
        let principal = auth.verify(&key).await.unwrap();
        assert_eq!(
            (principal.actor.as_str(), principal.role),
            ("key:ci-bot", Role::Service)
        );

        // Revoked from the command line, refused at once.
        let out = ok(opsconductor(
            data.path(),
            &["auth", "api-key", "revoke", "ci-bot"],
        ));
        assert!(out.contains("API key `ci-bot`"), "{out}");
        assert!(matches!(
            auth.verify(&key).await,
            Err(AuthError::Rejected(TokenRejection::ApiKeyRevoked))
        ));

        // Every change is in the audit log, done by the command line.
        let actions: Vec<(String, String)> = store
            .audit_log(&AuditFilter::default())
            .await
            .unwrap()
            .into_iter()
            .rev()
            .filter(|e| e.actor.starts_with("cli"))
            .map(|e| (e.action, e.target.unwrap_or_default()))
            .collect();
        let expected = [
            ("user.create", "user:alice"),
            ("user.create", "user:bob"),
            ("user.disable", "user:bob"),
            ("user.enable", "user:bob"),
            ("user.set_role", "user:bob"),
            ("user.set_password", "user:alice"),
            ("api_key.create", "key:ci-bot"),
        ];
        for (i, (action, target)) in expected.iter().enumerate() {
            assert_eq!(
                (actions[i].0.as_str(), actions[i].1.as_str()),
                (*action, *target),
                "{actions:?}"
            );
        }
        assert!(actions[7].0 == "signing_key.rotate", "{actions:?}");
        assert_eq!(
            actions[8],
            ("api_key.revoke".to_owned(), "key:ci-bot".to_owned())
        );
        store.close().await;
    });
    let keys = run(&["auth", "api-key", "list"]);
    assert!(line(&keys, "ci-bot").contains("revoked"), "{keys}");
    fails_with(
        opsconductor(data.path(), &["auth", "api-key", "revoke", "ci-bot"]),
        "no API key named `ci-bot` to revoke",
    );

    // Nothing printed on stdout, other than the one-time secrets, holds a secret.
    let printed = printed.borrow();
    for secret in [chosen, &alice_password, &new_password, &key] {
        assert!(!printed.contains(secret), "`{secret}` printed: {printed}");
    }
}

/// SIGTERM during a trap burst: the process stops reading, drains its queue into the database
/// and exits cleanly, and every trap it decoded before the signal is stored — its final log line
/// accounts for each one, and the alerts' occurrence counts, read after a restart, agree.
#[test]
fn sigterm_during_a_trap_burst_stores_every_decoded_trap() {
    let data = tempfile::tempdir().unwrap();
    let if_mib = bundle("if-mib").display().to_string();
    ok(opsconductor(data.path(), &["addon", "install", &if_mib]));
    ok(opsconductor_with_env(
        data.path(),
        &["snmp", "community", "add", "test"],
        &[("OPSCONDUCTOR_SNMP_COMMUNITY", "public")],
    ));
    let key = ok(opsconductor(
        data.path(),
        &["auth", "api-key", "create", "reader", "--role", "viewer"],
    ));
    let key = key.trim().to_owned();

    let serve = |log: &str| {
        let mut server = common::command(data.path());
        server
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("OPSCONDUCTOR_LOG", "info")
            .env("OPSCONDUCTOR_LOG_FORMAT", "json")
            .env("OPSCONDUCTOR_TRAP_LISTEN", "127.0.0.1:0");
        Serving::start(server, &data.path().join(log))
    };
    let mut server = serve("first.stderr");
    let traps_at = server.trap_addr();

    // A sender keeps going until told to stop, so the signal lands mid-burst.
    let datagrams = opsconductor::testing::link_down_traps(20);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut sent = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let datagram = &datagrams[sent as usize % datagrams.len()];
                if socket.send_to(datagram, traps_at).is_ok() {
                    sent += 1;
                }
            }
            sent
        })
    };
    // The signal comes once the server is well into the burst.
    let started = std::time::Instant::now();
    loop {
        let (status, body) = http(server.addr, Some(&key), "GET", "/api/v1/stats", b"");
        assert_eq!(status, 200, "{body}");
        let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
        if stats["traps"]["decoded"].as_u64().unwrap() >= 2_000 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the burst never reached 2,000 decoded traps: {stats}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = server.terminate();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = sender.join().unwrap();
    assert!(status.success(), "exit {status:?}:\n{}", server.log());

    let log = server.log();
    let last: serde_json::Value = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["message"] == "stopped; traps accounted")
        .unwrap_or_else(|| panic!("no final accounting in the log:\n{log}"));
    let n = |field: &str| {
        last[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{field}: {last}"))
    };
    assert!(
        n("decoded") > 0 && n("decoded") <= sent,
        "{last}, {sent} sent"
    );
    assert_eq!(
        n("decoded"),
        n("queued") + n("dropped_queue_full"),
        "{last}"
    );
    assert_eq!(
        n("queued"),
        n("ingested") + n("unhandled") + n("addon_failed") + n("quarantined") + n("store_failed"),
        "every queued trap finished before the exit: {last}"
    );
    assert_eq!(
        (n("store_failed"), n("addon_failed"), n("unhandled")),
        (0, 0, 0),
        "{last}"
    );

    // What the database holds says the same.
    let server = serve("second.stderr");
    let (status, body) = http(
        server.addr,
        Some(&key),
        "GET",
        "/api/v1/alerts?addon=if-mib&limit=1000",
        b"",
    );
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let stored: u64 = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| alert["occurrence_count"].as_u64().unwrap())
        .sum();
    assert_eq!(stored, n("ingested"), "{last}");
}
