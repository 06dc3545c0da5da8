//! The SNMP poller against a real net-snmp agent (`snmpd`) on loopback: SNMPv2c and SNMPv3
//! (every auth/priv combination the agent supports) GET, GETNEXT and GETBULK walks, the
//! failures a misconfigured target produces, and an agent restarted with a different state.

use std::time::Duration;

use opsconductor::event::{SnmpValue, Varbind};
use opsconductor::poller::PollError;
use opsconductor::poller::snmp::{SnmpAuth, SnmpEndpoint, SnmpPoller};
use opsconductor::snmp::{AuthProtocol, PrivProtocol, UsmUser};
use opsconductor_tests::snmpd::{self, Snmpd, V3User};

const SYS_DESCR_0: &str = "1.3.6.1.2.1.1.1.0";
const SYS_OBJECT_ID_0: &str = "1.3.6.1.2.1.1.2.0";
const SYS_UPTIME_0: &str = "1.3.6.1.2.1.1.3.0";
const SYSTEM: &str = "1.3.6.1.2.1.1";
const IF_DESCR: &str = "1.3.6.1.2.1.2.2.1.2";
const IF_OPER_STATUS: &str = "1.3.6.1.2.1.2.2.1.8";
/// snmpEngineBoots.0 (RFC 3411): how many times the agent's engine started.
const SNMP_ENGINE_BOOTS_0: &str = "1.3.6.1.6.3.10.2.1.2.0";
/// snmpEngineID.0 (RFC 3411).
const SNMP_ENGINE_ID_0: &str = "1.3.6.1.6.3.10.2.1.1.0";

fn strings(oids: &[&str]) -> Vec<String> {
    oids.iter().map(|s| (*s).to_owned()).collect()
}

fn octets(varbind: &Varbind) -> String {
    match &varbind.value {
        SnmpValue::OctetString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => panic!("{} is not an OCTET STRING: {other:?}", varbind.oid),
    }
}

/// Arcs, for comparing OIDs in MIB order.
fn arcs(oid: &str) -> Vec<u32> {
    oid.split('.').map(|a| a.parse().unwrap()).collect()
}

/// Asserts that `varbinds` are strictly below `root` and strictly increasing, as a walk
/// promises.
fn assert_walk_shape(root: &str, varbinds: &[Varbind]) {
    let root = arcs(root);
    let mut previous = root.clone();
    for vb in varbinds {
        let oid = arcs(&vb.oid);
        assert!(
            oid.len() > root.len() && oid.starts_with(&root),
            "{} is not below the root",
            vb.oid
        );
        assert!(oid > previous, "{} is not after the previous OID", vb.oid);
        previous = oid;
    }
}

/// The interface index of `lo` from a walk of ifDescr.
fn loopback_index(if_descr: &[Varbind]) -> String {
    let lo = if_descr
        .iter()
        .find(|vb| octets(vb) == "lo")
        .unwrap_or_else(|| panic!("no loopback interface in {if_descr:?}"));
    lo.oid
        .strip_prefix(&format!("{IF_DESCR}."))
        .unwrap()
        .to_owned()
}

/// An endpoint that gives up fast: for the failures that wait for a timeout.
fn impatient(mut ep: SnmpEndpoint) -> SnmpEndpoint {
    ep.timeout = Duration::from_millis(300);
    ep.retries = 0;
    ep
}

fn failed_message(result: Result<Vec<Varbind>, PollError>) -> String {
    match result {
        Err(PollError::Failed(message)) => message,
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn v2c_get_returns_values_in_request_order() {
    let agent = Snmpd::start().await;
    let poller = SnmpPoller::new(opsconductor_tests::loopback_egress());
    let varbinds = poller
        .get(
            &agent.v2c(),
            &strings(&[
                SYS_DESCR_0,
                // A leading dot is accepted.
                ".1.3.6.1.2.1.1.3.0",
                SYS_OBJECT_ID_0,
                // No such object in the system group, no such instance of sysDescr.
                "1.3.6.1.2.1.1.99.0",
                "1.3.6.1.2.1.1.1.7",
            ]),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}; agent log:\n{}", agent.log()));
    let oids: Vec<&str> = varbinds.iter().map(|vb| vb.oid.as_str()).collect();
    assert_eq!(
        oids,
        [
            SYS_DESCR_0,
            SYS_UPTIME_0,
            SYS_OBJECT_ID_0,
            "1.3.6.1.2.1.1.99.0",
            "1.3.6.1.2.1.1.1.7"
        ]
    );
    assert!(octets(&varbinds[0]).starts_with("Linux"), "{varbinds:?}");
    assert!(
        matches!(varbinds[1].value, SnmpValue::TimeTicks(_)),
        "{varbinds:?}"
    );
    // net-snmp's own enterprise subtree (netSnmpAgentOIDs).
    assert!(
        matches!(&varbinds[2].value, SnmpValue::ObjectId(oid) if oid.starts_with("1.3.6.1.4.1.8072.3.2")),
        "{varbinds:?}"
    );
    assert_eq!(varbinds[3].value, SnmpValue::NoSuchObject);
    assert_eq!(varbinds[4].value, SnmpValue::NoSuchInstance);

    assert_eq!(poller.get(&agent.v2c(), &[]).await.unwrap(), vec![]);
}

#[tokio::test]
async fn v2c_get_next_returns_successors() {
    let agent = Snmpd::start().await;
    let varbinds = SnmpPoller::new(opsconductor_tests::loopback_egress())
        .get_next(&agent.v2c(), &strings(&[SYSTEM, SYS_DESCR_0]))
        .await
        .unwrap();
    assert_eq!(varbinds[0].oid, SYS_DESCR_0);
    assert!(octets(&varbinds[0]).starts_with("Linux"));
    assert_eq!(varbinds[1].oid, SYS_OBJECT_ID_0);
}

#[tokio::test]
async fn v2c_walk_of_if_table_columns_finds_the_loopback_interface() {
    let agent = Snmpd::start().await;
    let poller = SnmpPoller::new(opsconductor_tests::loopback_egress());
    let descr = poller.walk(&agent.v2c(), IF_DESCR).await.unwrap();
    assert_walk_shape(IF_DESCR, &descr);
    let lo = loopback_index(&descr);

    let status = poller.walk(&agent.v2c(), IF_OPER_STATUS).await.unwrap();
    assert_walk_shape(IF_OPER_STATUS, &status);
    assert_eq!(status.len(), descr.len(), "one status per interface");
    let lo_status = status
        .iter()
        .find(|vb| vb.oid == format!("{IF_OPER_STATUS}.{lo}"))
        .unwrap();
    assert_eq!(lo_status.value, SnmpValue::Integer(1), "lo is up");
}

/// A walk far longer than one GETBULK answer (max-repetitions 25) comes back whole and in
/// order: the same OIDs a GETNEXT-by-GETNEXT walk visits.
#[tokio::test]
async fn v2c_walk_spans_many_getbulk_answers() {
    let agent = Snmpd::start().await;
    let poller = SnmpPoller::new(opsconductor_tests::loopback_egress());
    let ep = agent.v2c();
    let walked = poller.walk(&ep, SYSTEM).await.unwrap();
    assert!(walked.len() > 25, "system group: {} varbinds", walked.len());
    assert_walk_shape(SYSTEM, &walked);

    let mut stepped = Vec::new();
    let mut at = SYSTEM.to_owned();
    loop {
        let next = poller.get_next(&ep, &[at]).await.unwrap().remove(0);
        if !next.oid.starts_with(&format!("{SYSTEM}.")) {
            break;
        }
        at = next.oid.clone();
        stepped.push(next.oid);
    }
    let walked: Vec<String> = walked.into_iter().map(|vb| vb.oid).collect();
    assert_eq!(walked, stepped);

    // The whole of MIB-2: hundreds of answers' worth.
    let mib2 = poller.walk(&ep, "1.3.6.1.2.1").await.unwrap();
    assert_walk_shape("1.3.6.1.2.1", &mib2);
    assert!(mib2.len() > 250, "mib-2: {} varbinds", mib2.len());

    // A leaf has nothing below it.
    assert_eq!(poller.walk(&ep, SYS_UPTIME_0).await.unwrap(), vec![]);
}

#[tokio::test]
async fn v3_auth_priv_sha_aes_get_and_walk() {
    let agent = Snmpd::start().await;
    let poller = SnmpPoller::new(opsconductor_tests::loopback_egress());
    let ep = agent.v3(snmpd::SHA_AES.usm());
    let varbinds = poller
        .get(&ep, &strings(&[SYS_DESCR_0, SYS_UPTIME_0]))
        .await
        .unwrap_or_else(|e| panic!("{e}; agent log:\n{}", agent.log()));
    assert!(octets(&varbinds[0]).starts_with("Linux"));
    assert!(matches!(varbinds[1].value, SnmpValue::TimeTicks(_)));

    let descr = poller.walk(&ep, IF_DESCR).await.unwrap();
    assert_walk_shape(IF_DESCR, &descr);
    loopback_index(&descr);
    let system = poller.walk(&ep, SYSTEM).await.unwrap();
    assert!(system.len() > 25, "{} varbinds", system.len());
    assert_walk_shape(SYSTEM, &system);
}

/// Every user the agent has, one per auth/priv protocol pair: MD5/DES, SHA-256/AES,
/// SHA-512/AES, SHA-1 authNoPriv, and noAuthNoPriv.
#[tokio::test]
async fn v3_every_protocol_the_agent_supports() {
    let agent = Snmpd::start().await;
    let poller = SnmpPoller::new(opsconductor_tests::loopback_egress());
    for user in snmpd::USERS {
        let ep = agent.v3(user.usm());
        let varbinds = poller
            .get(&ep, &strings(&[SYS_DESCR_0]))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}; agent log:\n{}", user.name, agent.log()));
        assert!(octets(&varbinds[0]).starts_with("Linux"), "{}", user.name);
        let status = poller.walk(&ep, IF_OPER_STATUS).await.unwrap();
        assert!(!status.is_empty(), "{}", user.name);
    }
}

/// Concurrent calls share the engine cache; each still gets its own answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn v3_concurrent_calls_on_one_poller() {
    let agent = Snmpd::start().await;
    let poller = SnmpPoller::new(opsconductor_tests::loopback_egress());
    let ep = agent.v3(snmpd::SHA_AES.usm());
    let calls = (0..16).map(|i| {
        let poller = poller.clone();
        let ep = ep.clone();
        tokio::spawn(async move {
            let oid = if i % 2 == 0 {
                SYS_DESCR_0
            } else {
                SYS_OBJECT_ID_0
            };
            let varbinds = poller.get(&ep, &strings(&[oid])).await.unwrap();
            assert_eq!(varbinds[0].oid, oid);
        })
    });
    for call in calls {
        call.await.unwrap();
    }
}

#[tokio::test]
async fn wrong_community_is_unreachable() {
    let agent = Snmpd::start().await;
    let ep = impatient(agent.endpoint(SnmpAuth::Community("not-the-community".into())));
    let err = SnmpPoller::new(opsconductor_tests::loopback_egress())
        .get(&ep, &strings(&[SYS_UPTIME_0]))
        .await
        .unwrap_err();
    // snmpd drops it without a word: from here that is a silent target.
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("community"), "{err}");
}

#[tokio::test]
async fn wrong_v3_auth_password_fails_naming_authentication() {
    let agent = Snmpd::start().await;
    let user = V3User {
        auth: Some((AuthProtocol::Sha1, "not-the-password")),
        ..snmpd::SHA_AES
    };
    let message = failed_message(
        SnmpPoller::new(opsconductor_tests::loopback_egress())
            .get(&agent.v3(user.usm()), &strings(&[SYS_UPTIME_0]))
            .await,
    );
    assert!(
        message.contains("authentication failed (wrong digest)")
            && message.contains("auth password"),
        "{message}"
    );
}

#[tokio::test]
async fn wrong_v3_auth_protocol_fails_naming_authentication() {
    let agent = Snmpd::start().await;
    // The right password under the wrong hash is a different key.
    let user = V3User {
        auth: Some((AuthProtocol::Md5, snmpd::SHA_AES.auth.unwrap().1)),
        ..snmpd::SHA_AES
    };
    let message = failed_message(
        SnmpPoller::new(opsconductor_tests::loopback_egress())
            .walk(&agent.v3(user.usm()), IF_DESCR)
            .await,
    );
    assert!(message.contains("authentication failed"), "{message}");
}

#[tokio::test]
async fn unknown_v3_user_fails() {
    let agent = Snmpd::start().await;
    let user = UsmUser::from_passwords(
        "nobody-here",
        Some((AuthProtocol::Sha1, "whatever-pass")),
        Some((PrivProtocol::Aes128, "whatever-pass")),
    )
    .unwrap();
    let message = failed_message(
        SnmpPoller::new(opsconductor_tests::loopback_egress())
            .get(&agent.v3(user), &strings(&[SYS_UPTIME_0]))
            .await,
    );
    assert!(
        message.contains("unknown SNMPv3 user \"nobody-here\""),
        "{message}"
    );
}

/// Asking for privacy from a user the agent has at authNoPriv.
#[tokio::test]
async fn v3_security_level_the_agent_does_not_have_fails() {
    let agent = Snmpd::start().await;
    let user = V3User {
        privacy: Some((PrivProtocol::Aes128, "some-priv-pass")),
        ..snmpd::SHA_AUTH_ONLY
    };
    let message = failed_message(
        SnmpPoller::new(opsconductor_tests::loopback_egress())
            .get(&agent.v3(user.usm()), &strings(&[SYS_UPTIME_0]))
            .await,
    );
    assert!(message.contains("unsupported security level"), "{message}");
}

/// net-snmp drops an SNMPv3 request it cannot decrypt (a wrong privacy password) or whose
/// context it does not have, without a report: the agent is silent, so the call is
/// Unreachable, but the message names the likely causes since the agent answered discovery.
#[tokio::test]
async fn v3_requests_the_agent_drops_are_unreachable_with_the_likely_cause() {
    let agent = Snmpd::start().await;
    let wrong_privacy = V3User {
        privacy: Some((PrivProtocol::Aes128, "not-the-priv-pass")),
        ..snmpd::SHA_AES
    };
    let unknown_context = SnmpAuth::Usm {
        user: snmpd::SHA_AES.usm(),
        context: "no-such-context".into(),
    };
    for auth in [
        SnmpAuth::Usm {
            user: wrong_privacy.usm(),
            context: String::new(),
        },
        unknown_context,
    ] {
        let ep = impatient(agent.endpoint(auth));
        let err = SnmpPoller::new(opsconductor_tests::loopback_egress())
            .get(&ep, &strings(&[SYS_UPTIME_0]))
            .await
            .unwrap_err();
        assert!(err.is_unreachable(), "{err}");
        assert!(
            err.to_string().contains("privacy password") && err.to_string().contains("context"),
            "{err}"
        );
    }
}

/// A closed port answers with ICMP port unreachable, which a connected socket reports as
/// ECONNREFUSED: the call fails with that reason rather than waiting out a minute of
/// timeouts (the message says which happened).
#[tokio::test]
async fn closed_port_is_unreachable() {
    let closed = {
        let agent = Snmpd::start().await;
        agent.addr()
    };
    for auth in [
        SnmpAuth::Community(snmpd::COMMUNITY.into()),
        SnmpAuth::Usm {
            user: snmpd::SHA_AES.usm(),
            context: String::new(),
        },
    ] {
        let ep = SnmpEndpoint {
            addr: closed,
            auth,
            timeout: Duration::from_secs(20),
            retries: 3,
        };
        let err = SnmpPoller::new(opsconductor_tests::loopback_egress())
            .get(&ep, &strings(&[SYS_UPTIME_0]))
            .await
            .unwrap_err();
        assert!(err.is_unreachable(), "{err}");
        assert!(err.to_string().contains("connection refused"), "{err}");
    }
}

/// net-snmp's `override` forces ifOperStatus of interface 1 (lo) to down(2); the agent
/// restarted without it reports up(1) again.
#[tokio::test]
async fn override_makes_if_oper_status_down_until_restarted_without_it() {
    let down = ".1.3.6.1.2.1.2.2.1.8.1";
    let mut agent = Snmpd::start_with(&[&format!("override {down} integer 2")]).await;
    let poller = SnmpPoller::new(opsconductor_tests::loopback_egress());
    let status = poller.get(&agent.v2c(), &strings(&[down])).await.unwrap();
    assert_eq!(status[0].oid, "1.3.6.1.2.1.2.2.1.8.1");
    assert_eq!(status[0].value, SnmpValue::Integer(2), "{}", agent.log());
    let walked = poller.walk(&agent.v2c(), IF_OPER_STATUS).await.unwrap();
    assert!(walked.contains(&status[0]), "{walked:?}");

    agent.restart_with(&[]).await;
    let status = poller.get(&agent.v2c(), &strings(&[down])).await.unwrap();
    assert_eq!(status[0].value, SnmpValue::Integer(1), "{}", agent.log());
}

/// The poller keeps the agent's engine boots and clock; after the agent restarts (one more
/// boot, clock from zero) its first request is reported outside the time window, and the
/// poller resynchronises and succeeds within the same call.
#[tokio::test]
async fn v3_resynchronises_after_the_agent_restarts() {
    let mut agent = Snmpd::start().await;
    let poller = SnmpPoller::new(opsconductor_tests::loopback_egress());
    let ep = agent.v3(snmpd::SHA_AES.usm());
    let boots = |varbinds: Vec<Varbind>| match varbinds[0].value {
        SnmpValue::Integer(boots) => boots,
        ref other => panic!("snmpEngineBoots is {other:?}"),
    };
    let before = boots(
        poller
            .get(&ep, &strings(&[SNMP_ENGINE_BOOTS_0]))
            .await
            .unwrap(),
    );
    agent.restart_with(&[]).await;
    let after = boots(
        poller
            .get(&ep, &strings(&[SNMP_ENGINE_BOOTS_0]))
            .await
            .unwrap_or_else(|e| panic!("{e}; agent log:\n{}", agent.log())),
    );
    assert_eq!(after, before + 1);
}

/// An agent that comes back with another engine id (a replaced device at the same address)
/// reports the cached one unknown; the poller rediscovers it within the same call.
#[tokio::test]
async fn v3_rediscovers_an_agent_whose_engine_id_changed() {
    let mut agent = Snmpd::start().await;
    let poller = SnmpPoller::new(opsconductor_tests::loopback_egress());
    let ep = agent.v3(snmpd::SHA_AES.usm());
    let engine_id = async || {
        poller
            .get(&ep, &strings(&[SNMP_ENGINE_ID_0]))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .remove(0)
            .value
    };
    let before = engine_id().await;
    agent.replace_with(&["engineID replaced-device"]).await;
    let after = engine_id().await;
    assert_ne!(before, after);
    assert!(
        matches!(&after, SnmpValue::OctetString(id) if id.ends_with(b"replaced-device")),
        "{after:?}"
    );
}

#[tokio::test]
async fn invalid_oids_fail_before_any_request() {
    let agent = Snmpd::start().await;
    let message = failed_message(
        SnmpPoller::new(opsconductor_tests::loopback_egress())
            .get(&agent.v2c(), &strings(&["1.3.6.1.2.1.1.x"]))
            .await,
    );
    assert!(message.contains("invalid OID"), "{message}");
}
