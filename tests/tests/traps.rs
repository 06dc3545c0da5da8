//! End to end against real net-snmp senders (`snmptrap`, `snmpinform`): v1, v2c and v3 traps
//! and informs reach the listener, are authenticated, routed to the trap addons and stored;
//! bad input is counted and never stops the listener.

use std::process::Command;
use std::time::Duration;

use opsconductor::inbound::trap::credentials::user_record;
use opsconductor_tests::{Db, TestRuntime, bundle};
use serde_json::Value;

const LINK_DOWN: &str = "1.3.6.1.6.3.1.1.5.3";
const LINK_UP: &str = "1.3.6.1.6.3.1.1.5.4";
const AUTH_PASSWORD: &str = "auth-secret-1";
const PRIV_PASSWORD: &str = "priv-secret-1";

/// ifIndex, ifAdminStatus and ifOperStatus varbinds of interface `index`, as snmptrap args.
fn if_varbinds(index: u32, admin: u32, oper: u32) -> Vec<String> {
    [
        (format!("1.3.6.1.2.1.2.2.1.1.{index}"), index),
        (format!("1.3.6.1.2.1.2.2.1.7.{index}"), admin),
        (format!("1.3.6.1.2.1.2.2.1.8.{index}"), oper),
    ]
    .into_iter()
    .flat_map(|(oid, v)| [oid, "i".into(), v.to_string()])
    .collect()
}

/// Runs a net-snmp tool and returns (success, stderr). Fails the test with install advice when
/// the tool is missing.
fn net_snmp(tool: &str, args: &[String]) -> (bool, String) {
    let output = Command::new(tool)
        .args(args)
        // No MIB files are needed: every OID here is numeric.
        .env("MIBS", "")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {tool} ({e}): install net-snmp's tools with `apt-get install snmp`")
        });
    // net-snmp announces, once per machine, the state directory it creates on first use:
    // not a complaint about the trap.
    let stderr: String = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| !line.starts_with("Created directory:"))
        .map(|line| format!("{line}\n"))
        .collect();
    (output.status.success(), stderr)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

async fn start() -> TestRuntime {
    TestRuntime::start_with(Db::Sqlite, &[bundle("if-mib")], async |store| {
        store
            .snmp_set_community("test", "public", chrono::Utc::now())
            .await
            .unwrap();
        for (name, auth, privacy) in [
            ("authonly", Some("sha"), None),
            ("shaaes", Some("sha"), Some("aes")),
            ("md5des", Some("md5"), Some("des")),
            ("sha256aes", Some("sha256"), Some("aes")),
        ] {
            let record = user_record(
                name,
                auth.map(|a| (a.parse().unwrap(), AUTH_PASSWORD)),
                privacy.map(|p| (p.parse().unwrap(), PRIV_PASSWORD)),
            )
            .unwrap();
            store
                .snmp_set_user(&record, chrono::Utc::now())
                .await
                .unwrap();
        }
    })
    .await
}

async fn trap_stats(rt: &TestRuntime) -> Value {
    rt.get_json("/api/v1/stats").await.1["traps"].clone()
}

/// Waits until `done(stats)` holds, or fails with the last stats seen.
async fn wait_for(rt: &TestRuntime, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let stats = trap_stats(rt).await;
        if done(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn n(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {key} in {v}"))
}

/// v3 user arguments for snmptrap/snmpinform.
fn v3(user: &str, level: &str, auth: &str, privacy: Option<&str>) -> Vec<String> {
    let mut a = args(&[
        "-v3",
        "-u",
        user,
        "-l",
        level,
        "-a",
        auth,
        "-A",
        AUTH_PASSWORD,
    ]);
    if let Some(p) = privacy {
        a.extend(args(&["-x", p, "-X", PRIV_PASSWORD]));
    }
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_and_security_level_is_received_and_stored() {
    let rt = start().await;
    let target = rt.trap_addr().to_string();
    // A v3 trap names its sender's (authoritative) engine; net-snmp needs it given.
    let sender_engine = "0x80001f8880c0ffee0001";

    // (what, tool, arguments before the target, interface index)
    let mut cases: Vec<(&str, &str, Vec<String>, u32)> = vec![
        (
            "v2c trap",
            "snmptrap",
            args(&["-v", "2c", "-c", "public"]),
            1,
        ),
        (
            "v2c inform",
            "snmpinform",
            args(&["-v", "2c", "-c", "public"]),
            2,
        ),
    ];
    let mut v3_trap = |what, user, level, auth, privacy, index| {
        let mut a = v3(user, level, auth, privacy);
        a.extend(args(&["-e", sender_engine]));
        cases.push((what, "snmptrap", a, index));
    };
    v3_trap(
        "v3 authNoPriv SHA",
        "authonly",
        "authNoPriv",
        "SHA",
        None,
        3,
    );
    v3_trap(
        "v3 authPriv SHA/AES",
        "shaaes",
        "authPriv",
        "SHA",
        Some("AES"),
        4,
    );
    v3_trap(
        "v3 authPriv MD5/DES",
        "md5des",
        "authPriv",
        "MD5",
        Some("DES"),
        5,
    );
    v3_trap(
        "v3 authPriv SHA-256/AES",
        "sha256aes",
        "authPriv",
        "SHA-256",
        Some("AES"),
        6,
    );
    cases.push((
        "v3 inform (engine discovery)",
        "snmpinform",
        v3("shaaes", "authPriv", "SHA", Some("AES")),
        7,
    ));

    for (what, tool, mut a, index) in cases {
        // One try, five seconds: an inform that is not acknowledged makes snmpinform fail.
        a.extend(args(&["-r", "0", "-t", "5", &target, "", LINK_DOWN]));
        a.extend(if_varbinds(index, 1, 2));
        let (ok, stderr) = net_snmp(tool, &a);
        assert!(ok, "{what}: {tool} failed: {stderr}");
        assert!(
            stderr.trim().is_empty(),
            "{what}: {tool} complained: {stderr}"
        );
    }

    let stats = wait_for(&rt, "7 ingested traps", |s| n(s, "ingested") >= 7).await;
    assert_eq!(n(&stats, "ingested"), 7, "{stats}");
    assert_eq!(n(&stats, "informs_acked"), 2, "{stats}");
    assert!(
        n(&stats, "reports_sent") >= 1,
        "v3 inform discovery: {stats}"
    );
    assert_eq!(n(&stats, "auth_failures"), 0, "{stats}");

    let alerts = rt.alerts("?addon=if-mib&status=active").await;
    let mut indexes: Vec<String> = alerts
        .iter()
        .map(|a| a["fields"]["ifIndex"].as_str().unwrap().to_owned())
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["1", "2", "3", "4", "5", "6", "7"], "{alerts:?}");
    for a in &alerts {
        assert_eq!(a["alert_type"], "linkDown", "{a}");
        assert_eq!(a["device_ip"], "127.0.0.1", "{a}");
    }
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_link_down_then_v2c_link_up_resolves_it() {
    let rt = start().await;
    let target = rt.trap_addr().to_string();
    // SNMPv1 generic trap 2 (linkDown) maps to 1.3.6.1.6.3.1.1.5.3 (RFC 3584).
    let mut a = args(&[
        "-v",
        "1",
        "-c",
        "public",
        &target,
        "1.3.6.1.4.1.8072.3.2.10",
        "127.0.0.1",
        "2",
        "0",
        "",
    ]);
    a.extend(if_varbinds(9, 1, 2));
    let (ok, stderr) = net_snmp("snmptrap", &a);
    assert!(ok, "{stderr}");
    wait_for(&rt, "the linkDown", |s| n(s, "ingested") == 1).await;
    let open = rt.alerts("?addon=if-mib&status=active").await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["alert_type"], "linkDown");

    // The same interface's linkDown again only counts; linkUp resolves it.
    for trap in [LINK_DOWN, LINK_UP] {
        let mut a = args(&["-v", "2c", "-c", "public", &target, "", trap]);
        a.extend(if_varbinds(9, 1, if trap == LINK_UP { 1 } else { 2 }));
        let (ok, stderr) = net_snmp("snmptrap", &a);
        assert!(ok, "{stderr}");
    }
    wait_for(&rt, "all three traps", |s| n(s, "ingested") == 3).await;
    assert!(rt.alerts("?addon=if-mib&status=active").await.is_empty());
    let resolved = rt.alerts("?addon=if-mib&status=resolved").await;
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!(resolved[0]["occurrence_count"], 2);
    assert_eq!(resolved[0]["resolved_by"], "clear:linkUp");
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_and_bad_packets_are_counted_not_processed() {
    let rt = start().await;
    let target = rt.trap_addr().to_string();
    let mut sent = 0;

    // A wrong v3 password, an unknown v3 user and an unknown community.
    let mut wrong = args(&[
        "-v3",
        "-u",
        "shaaes",
        "-l",
        "authPriv",
        "-a",
        "SHA",
        "-A",
        "not-the-password",
    ]);
    wrong.extend(args(&[
        "-x",
        "AES",
        "-X",
        PRIV_PASSWORD,
        "-e",
        "0x80001f8880c0ffee0002",
    ]));
    let mut unknown_user = v3("nobody", "authNoPriv", "SHA", None);
    unknown_user.extend(args(&["-e", "0x80001f8880c0ffee0002"]));
    for mut a in [wrong, unknown_user, args(&["-v", "2c", "-c", "guess"])] {
        a.extend(args(&[&target, "", LINK_DOWN]));
        a.extend(if_varbinds(1, 1, 2));
        let (ok, stderr) = net_snmp("snmptrap", &a);
        assert!(ok, "{stderr}");
        sent += 1;
    }

    // Garbage, a truncated trap, and a sequence claiming an absurd length.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let valid = opsconductor::snmp::encode_v2c_trap("public", 1, 100, LINK_DOWN, &[]).unwrap();
    let mut huge_count = vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff];
    huge_count.extend_from_slice(&valid[2..]);
    let bad: Vec<Vec<u8>> = vec![
        b"definitely not snmp".to_vec(),
        valid[..valid.len() / 2].to_vec(),
        huge_count,
        Vec::new(),
    ];
    for packet in &bad {
        socket.send_to(packet, &target).unwrap();
        sent += 1;
    }

    let stats = wait_for(&rt, "every datagram", |s| n(s, "received") >= sent).await;
    assert_eq!(n(&stats, "received"), sent, "{stats}");
    assert_eq!(n(&stats, "auth_failures"), 2, "{stats}");
    assert_eq!(n(&stats, "unknown_community"), 1, "{stats}");
    assert_eq!(n(&stats, "malformed"), 4, "{stats}");
    assert_eq!(n(&stats, "decoded"), 0, "{stats}");

    // The listener still works.
    socket.send_to(&valid, &target).unwrap();
    wait_for(&rt, "the valid trap after the bad ones", |s| {
        n(s, "decoded") == 1
    })
    .await;
    assert!(
        rt.alerts("?addon=if-mib").await.is_empty(),
        "the valid trap has no ifIndex"
    );
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unclaimed_traps_are_counted_and_listed() {
    let rt = start().await;
    let target = rt.trap_addr().to_string();
    let mut a = args(&[
        "-v",
        "2c",
        "-c",
        "public",
        &target,
        "",
        "1.3.6.1.4.1.99999.0.7",
    ]);
    a.extend(args(&["1.3.6.1.4.1.99999.1", "s", "hello"]));
    let (ok, stderr) = net_snmp("snmptrap", &a);
    assert!(ok, "{stderr}");
    wait_for(&rt, "the unhandled trap", |s| n(s, "unhandled") == 1).await;
    let (_, listed) = rt.get_json("/api/v1/traps/unhandled").await;
    assert_eq!(listed[0]["trap_oid"], "1.3.6.1.4.1.99999.0.7", "{listed}");
    assert_eq!(listed[0]["varbinds"], 1, "{listed}");
    rt.stop().await;
}

/// A burst from the load generator's encoder: every datagram is accounted for, and the
/// counters add up exactly (the benchmark `just bench-traps` does the same at 100k).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_fully_accounted_for() {
    let rt = start().await;
    let report = opsconductor_tests::traps::burst(&rt, 20_000, 500, None).await;
    report.assert_accounted();
    assert_eq!(report.sent, 20_000);
    rt.stop().await;
}

/// A captured SNMPv3 trap (net-snmp's, caught on a socket of the test's) sent again: at once,
/// after a restart, and — on PostgreSQL — to another node. Each replay is counted as such and
/// stores nothing; the alert counts the one original.
async fn replayed_v3_traps_are_counted_and_dropped(db: Db) {
    let rt = TestRuntime::start_with(db, &[bundle("if-mib")], async |store| {
        let record = user_record(
            "authonly",
            Some(("sha".parse().unwrap(), AUTH_PASSWORD)),
            None,
        )
        .unwrap();
        store
            .snmp_set_user(&record, chrono::Utc::now())
            .await
            .unwrap();
    })
    .await;
    let capture = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut a = v3("authonly", "authNoPriv", "SHA", None);
    a.extend(args(&["-e", "0x80001f8880c0ffee0042"]));
    a.push(capture.local_addr().unwrap().to_string());
    a.extend(args(&["", LINK_DOWN]));
    a.extend(if_varbinds(42, 1, 2));
    let (sent, stderr) = net_snmp("snmptrap", &a);
    assert!(sent, "snmptrap: {stderr}");
    let mut datagram = vec![0u8; 65_535];
    let len = capture.recv(&mut datagram).unwrap();
    datagram.truncate(len);

    let send = |to: std::net::SocketAddr| {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.send_to(&datagram, to).unwrap();
    };
    send(rt.trap_addr());
    wait_for(&rt, "the original", |s| n(s, "ingested") == 1).await;
    send(rt.trap_addr());
    let stats = wait_for(&rt, "the replay", |s| n(s, "replayed") == 1).await;
    assert_eq!(n(&stats, "ingested"), 1, "{stats}");

    let rt = rt.restart().await;
    send(rt.trap_addr());
    let stats = wait_for(&rt, "the replay after a restart", |s| n(s, "replayed") == 1).await;
    assert_eq!(n(&stats, "ingested"), 0, "{stats}");
    assert_eq!(n(&stats, "auth_failures"), 0, "{stats}");

    if db == Db::Postgres {
        let other = rt.start_peer(|_| {}).await;
        send(other.trap_addr());
        let stats = wait_for(&other, "the replay to another node", |s| {
            n(s, "replayed") == 1
        })
        .await;
        assert_eq!(n(&stats, "ingested"), 0, "{stats}");
        other.stop().await;
    }

    let alerts = rt.alerts("").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["occurrence_count"], 1, "{alerts:?}");
    rt.stop().await;
}
opsconductor_tests::both_databases!(
    replayed_v3_traps_e2e,
    replayed_v3_traps_are_counted_and_dropped
);
