//! The SSH poller against a real OpenSSH server on a loopback port (see `opsconductor_tests::sshd`
//! for what the machine needs: `openssh-server` and the user `opsconductor-test`).

use std::time::Duration;

use opsconductor::event::SshOutput;
use opsconductor::poller::PollError;
use opsconductor::poller::ssh::{HostKey, MAX_OUTPUT, SshAuth, SshPoller};
use opsconductor_tests::sshd::{Sshd, TEST_PASSWORD, TEST_USER, free_port};

fn commands(list: &[&str]) -> Vec<String> {
    list.iter().map(|c| c.to_string()).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The sshd log lines that show an authentication attempt reaching the server.
fn auth_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains("userauth-request")
                || l.contains("Accepted ")
                || l.contains("Failed ")
                || l.contains("Invalid user")
        })
        .collect()
}

#[tokio::test]
async fn key_auth_runs_several_commands_in_one_session() {
    let sshd = Sshd::start();
    let ep = sshd.endpoint(sshd.ed25519.auth());
    let (host_key, outputs) = SshPoller::new(opsconductor_tests::loopback_egress())
        .exec(
            &ep,
            None,
            &commands(&[
                "echo \"$SSH_CONNECTION\"",
                "df -P",
                "cat /proc/loadavg",
                "echo \"$SSH_CONNECTION\"",
            ]),
        )
        .await
        .expect("commands run");
    assert_eq!(host_key, sshd.host_key());
    assert_eq!(outputs.len(), 4);
    for out in &outputs {
        assert_eq!(out.exit_status, 0, "{out:?}");
        assert!(
            out.stderr.is_empty(),
            "{}: {}",
            out.command,
            text(&out.stderr)
        );
    }

    // The same client port both times: one TCP connection carried every command.
    let first = text(&outputs[0].stdout);
    assert!(first.starts_with("127.0.0.1 "), "{first}");
    assert_eq!(first, text(&outputs[3].stdout));

    let df = text(&outputs[1].stdout);
    assert_eq!(outputs[1].command, "df -P");
    assert!(df.starts_with("Filesystem"), "{df}");
    assert!(
        df.lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(5) == Some("/")),
        "no root filesystem in:\n{df}"
    );

    let loadavg = text(&outputs[2].stdout);
    let fields: Vec<&str> = loadavg.split_whitespace().collect();
    assert_eq!(fields.len(), 5, "{loadavg}");
    for load in &fields[..3] {
        let load: f64 = load.parse().unwrap_or_else(|_| panic!("{loadavg}"));
        assert!(load >= 0.0, "{loadavg}");
    }
}

#[tokio::test]
async fn rsa_and_passphrase_protected_keys_log_in() {
    let sshd = Sshd::start();
    let poller = SshPoller::new(opsconductor_tests::loopback_egress());
    for key in [&sshd.rsa, &sshd.encrypted_key] {
        let (_, outputs) = poller
            .exec(&sshd.endpoint(key.auth()), None, &commands(&["id -un"]))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", key.public_key));
        assert_eq!(text(&outputs[0].stdout).trim(), TEST_USER);
    }

    let wrong_passphrase = SshAuth::PrivateKey {
        pem: sshd.encrypted_key.pem.clone(),
        passphrase: Some("not the passphrase".into()),
    };
    let err = poller
        .exec(&sshd.endpoint(wrong_passphrase), None, &commands(&["true"]))
        .await
        .expect_err("a wrong passphrase cannot decrypt the key");
    assert!(
        matches!(&err, PollError::Failed(m) if m.contains("passphrase")),
        "{err:?}"
    );

    let no_passphrase = SshAuth::PrivateKey {
        pem: sshd.encrypted_key.pem.clone(),
        passphrase: None,
    };
    let err = poller
        .exec(&sshd.endpoint(no_passphrase), None, &commands(&["true"]))
        .await
        .expect_err("an encrypted key needs its passphrase");
    assert!(
        matches!(&err, PollError::Failed(m) if m.contains("encrypted")),
        "{err:?}"
    );
}

#[tokio::test]
async fn password_auth() {
    let sshd = Sshd::start();
    let ep = sshd.endpoint(SshAuth::Password(TEST_PASSWORD.into()));
    let (_, outputs) = SshPoller::new(opsconductor_tests::loopback_egress())
        .exec(&ep, None, &commands(&["id -un"]))
        .await
        .expect("password accepted");
    assert_eq!(text(&outputs[0].stdout).trim(), TEST_USER);
    assert_eq!(outputs[0].exit_status, 0);
}

#[tokio::test]
async fn wrong_password_fails_authentication() {
    let sshd = Sshd::start();
    let ep = sshd.endpoint(SshAuth::Password("not-the-password".into()));
    let err = SshPoller::new(opsconductor_tests::loopback_egress())
        .exec(&ep, None, &commands(&["true"]))
        .await
        .expect_err("wrong password");
    match &err {
        PollError::Failed(message) => {
            assert!(message.contains("authentication"), "{message}");
            assert!(message.contains(TEST_USER), "{message}");
            assert!(!message.contains("not-the-password"), "{message}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(!err.is_unreachable());
}

#[tokio::test]
async fn exit_statuses_signals_and_stdin() {
    let sshd = Sshd::start();
    let ep = sshd.endpoint(sshd.ed25519.auth());
    let (_, outputs) = SshPoller::new(opsconductor_tests::loopback_egress())
        .exec(
            &ep,
            None,
            &commands(&[
                "echo out; echo oops >&2; exit 3",
                "false",
                "kill -TERM $$",
                // stdin is closed at once, so this ends instead of waiting for input.
                "cat",
                "no-such-command-anywhere",
            ]),
        )
        .await
        .expect("a failing command is still an answer");

    let [exit3, false_, killed, cat, missing] = &outputs[..] else {
        panic!("{outputs:?}")
    };
    assert_eq!(
        exit3,
        &SshOutput {
            command: "echo out; echo oops >&2; exit 3".into(),
            exit_status: 3,
            stdout: b"out\n".to_vec(),
            stderr: b"oops\n".to_vec(),
        }
    );
    assert_eq!(false_.exit_status, 1);
    assert_eq!(killed.exit_status, -1, "{killed:?}");
    assert!(text(&killed.stderr).contains("signal TERM"), "{killed:?}");
    assert_eq!(cat.exit_status, 0, "{cat:?}");
    assert!(cat.stdout.is_empty());
    assert_eq!(missing.exit_status, 127, "{missing:?}");
    assert!(text(&missing.stderr).contains("not found"), "{missing:?}");
}

#[tokio::test]
async fn host_key_first_use_then_pinned() {
    let sshd = Sshd::start();
    let poller = SshPoller::new(opsconductor_tests::loopback_egress());
    let ep = sshd.endpoint(sshd.ed25519.auth());

    let (first, _) = poller
        .exec(&ep, None, &commands(&["true"]))
        .await
        .expect("first use accepts the key");
    let expected = sshd.host_key();
    assert_eq!(first, expected);
    assert_eq!(first.key_type, "ssh-ed25519");
    assert!(first.fingerprint.starts_with("SHA256:"), "{first:?}");

    let (second, outputs) = poller
        .exec(&ep, Some(&first), &commands(&["echo pinned"]))
        .await
        .expect("the pinned key matches");
    assert_eq!(second, first);
    assert_eq!(text(&outputs[0].stdout), "pinned\n");

    // A pin made from nothing but the fingerprint an operator read off the server works too.
    let fingerprint_only = HostKey {
        key_type: String::new(),
        public_key: String::new(),
        fingerprint: expected.fingerprint.clone(),
    };
    poller
        .exec(&ep, Some(&fingerprint_only), &commands(&["true"]))
        .await
        .expect("the fingerprint alone pins");
}

#[tokio::test]
async fn changed_host_key_is_refused_before_authentication() {
    let mut sshd = Sshd::start();
    let poller = SshPoller::new(opsconductor_tests::loopback_egress());
    let ep = sshd.endpoint(SshAuth::Password(TEST_PASSWORD.into()));

    let (old_key, _) = poller
        .exec(&ep, None, &commands(&["true"]))
        .await
        .expect("first use");
    // Control: at this log level an authentication attempt does show in the log.
    sshd.wait_for_log("the first login", |log| {
        auth_lines(log)
            .iter()
            .any(|l| l.contains("userauth-request") && l.contains(TEST_USER))
    });

    sshd.restart_with_new_host_key();
    let new_key = sshd.host_key();
    assert_ne!(new_key.fingerprint, old_key.fingerprint);

    let err = poller
        .exec(&ep, Some(&old_key), &commands(&["true"]))
        .await
        .expect_err("a changed host key is refused");
    assert_eq!(
        err,
        PollError::HostKeyMismatch {
            endpoint: format!("127.0.0.1:{}", sshd.port()),
            pinned: old_key.fingerprint.clone(),
            presented: new_key.fingerprint.clone(),
        }
    );

    // Wait for sshd to be done with that connection, then check that no credential reached it.
    let log = sshd.wait_for_log("the end of the refused connection", |log| {
        log.lines().any(|l| {
            l.contains("[preauth]")
                && (l.contains("Connection closed by")
                    || l.contains("Connection reset by")
                    || l.contains("Disconnected from"))
        })
    });
    assert!(
        auth_lines(&log).is_empty(),
        "an authentication attempt reached the server:\n{log}"
    );

    // Re-pinned to the new key, the poller gets in again.
    let (key, _) = poller
        .exec(&ep, Some(&new_key), &commands(&["true"]))
        .await
        .expect("the new pin matches");
    assert_eq!(key, new_key);
}

#[tokio::test]
async fn closed_port_is_unreachable() {
    let port = free_port();
    let ep = opsconductor::poller::ssh::SshEndpoint {
        host: "127.0.0.1".into(),
        port,
        username: TEST_USER.into(),
        auth: SshAuth::Password(TEST_PASSWORD.into()),
        timeout: Duration::from_secs(10),
    };
    let err = SshPoller::new(opsconductor_tests::loopback_egress())
        .exec(&ep, None, &commands(&["true"]))
        .await
        .expect_err("nothing listens there");
    assert!(err.is_unreachable(), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn silent_peer_is_unreachable_after_the_timeout() {
    // Accepts TCP connections and never says a word, like a wedged daemon.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let ep = opsconductor::poller::ssh::SshEndpoint {
        host: "127.0.0.1".into(),
        port,
        username: TEST_USER.into(),
        auth: SshAuth::Password(TEST_PASSWORD.into()),
        timeout: Duration::from_millis(500),
    };
    let err = SshPoller::new(opsconductor_tests::loopback_egress())
        .exec(&ep, None, &commands(&["true"]))
        .await
        .expect_err("no SSH server there");
    assert!(err.is_unreachable(), "{err:?}");
    assert!(err.to_string().contains("handshake"), "{err}");
    hold.abort();
}

#[tokio::test]
async fn command_outliving_the_session_budget_fails() {
    let sshd = Sshd::start();
    let mut ep = sshd.endpoint(sshd.ed25519.auth());
    ep.timeout = Duration::from_secs(3);
    let err = SshPoller::new(opsconductor_tests::loopback_egress())
        .exec(&ep, None, &commands(&["true", "sleep 10"]))
        .await
        .expect_err("the command outlives the budget");
    // The server answered: this is not an unreachable target.
    match &err {
        PollError::Failed(message) => {
            assert!(message.contains("sleep 10"), "{message}");
            assert!(message.contains("did not finish"), "{message}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn big_output_is_capped() {
    let sshd = Sshd::start();
    let ep = sshd.endpoint(sshd.ed25519.auth());
    let command = "head -c 3000000 /dev/zero; head -c 1500000 /dev/zero >&2; echo done";
    let (_, outputs) = SshPoller::new(opsconductor_tests::loopback_egress())
        .exec(&ep, None, &commands(&[command, "echo after"]))
        .await
        .expect("runs");
    let big = &outputs[0];
    // Read to the end, not cut off: the command's own status.
    assert_eq!(big.exit_status, 0);
    assert_eq!(big.stdout.len(), MAX_OUTPUT);
    assert!(big.stdout.iter().all(|&b| b == 0));
    let (kept, note) = big.stderr.split_at(MAX_OUTPUT);
    assert!(kept.iter().all(|&b| b == 0));
    let note = text(note);
    assert!(
        note.contains(&format!("stdout truncated to {MAX_OUTPUT} bytes")),
        "{note}"
    );
    assert!(
        note.contains(&format!("stderr truncated to {MAX_OUTPUT} bytes")),
        "{note}"
    );
    // The session is fine for the next command.
    assert_eq!(text(&outputs[1].stdout), "after\n");
}
