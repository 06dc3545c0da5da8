//! Receiver tests: real datagrams captured from net-snmp 5.9 (`testdata/*.hex`, each with the
//! command that produced it), packets we encode ourselves for what needs a live peer (synced
//! v3 informs, clocks), refusals, and decoding back everything we send.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rasn_snmp::v3::{Message, ScopedPdu, ScopedPduData, USMSecurityParameters};
use rasn_snmp::{v2, v2c};

use super::usm::{AuthProtocol as A, LocalizedKeys, PrivProtocol as P, UsmUser};
use super::*;
use opsconductor_model::event::{SnmpValue, SnmpVersion, Varbind};

/// The receiver's engine id in these tests; the `*_unsynced` informs were sent to it.
const OURS: &str = "80000000050102030405060708";
/// The engine id the captured v3 traps were sent with (`snmptrap -e`).
const SENDER: &str = "8000000001020304";

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

/// A captured datagram: the hex lines of `testdata/<name>.hex`, comments skipped.
fn vector(name: &str) -> Vec<u8> {
    let path = format!("{}/src/testdata/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let hex: String = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .collect::<Vec<_>>()
        .concat();
    unhex(hex.trim())
}

const VECTORS: &[&str] = &[
    "v1_enterprise_specific",
    "v1_link_down_agent_zero",
    "v2c_link_down",
    "v2c_all_types",
    "v2c_proxied",
    "v2c_inform",
    "v3_noauth",
    "v3_md5",
    "v3_sha",
    "v3_sha224",
    "v3_sha384",
    "v3_sha_aes",
    "v3_md5_des",
    "v3_sha256_aes",
    "v3_sha512_aes",
    "v3_inform_discovery_probe",
    "v3_inform_sha_aes_unsynced",
    "v3_inform_md5_des_unsynced",
    "v3_inform_sha_unsynced",
    "v3_inform_noauth",
    "v3_inform_sha",
    "v3_inform_sha_aes",
    "v3_inform_md5_des",
    "v3_inform_sha256_aes",
];

fn user(name: &str, auth: Option<(A, &str)>, privacy: Option<(P, &str)>) -> UsmUser {
    UsmUser::from_passwords(name, auth, privacy).unwrap()
}

/// The users the captures were made with. Password expansion costs milliseconds per key, so
/// they are built once.
fn users() -> &'static [UsmUser] {
    static USERS: OnceLock<Vec<UsmUser>> = OnceLock::new();
    USERS.get_or_init(|| {
        vec![
            user("noauthuser", None, None),
            user("md5user", Some((A::Md5, "md5password")), None),
            user("shauser", Some((A::Sha1, "shapassword")), None),
            user("sha224user", Some((A::Sha224, "sha224password")), None),
            user("sha384user", Some((A::Sha384, "sha384password")), None),
            user(
                "shaaesuser",
                Some((A::Sha1, "shapassword")),
                Some((P::Aes128, "aespassword")),
            ),
            user(
                "md5desuser",
                Some((A::Md5, "md5password")),
                Some((P::Des, "despassword")),
            ),
            user(
                "sha256user",
                Some((A::Sha256, "sha256password")),
                Some((P::Aes128, "aespassword")),
            ),
            user(
                "sha512user",
                Some((A::Sha512, "sha512password")),
                Some((P::Aes128, "aespassword")),
            ),
        ]
    })
}

fn find_user(name: &str) -> &'static UsmUser {
    users().iter().find(|u| u.name == name).unwrap()
}

fn credentials() -> Credentials {
    Credentials {
        communities: vec!["public".into()],
        users: users().to_vec(),
    }
}

/// Our engine with boots 1, its clock started `uptime` seconds before `now`.
fn receiver_at(now: Instant, uptime: u64) -> Receiver {
    let engine = LocalEngine::started_at(unhex(OURS), 1, now - Duration::from_secs(uptime));
    Receiver::new(engine, credentials())
}

fn receiver() -> Receiver {
    receiver_at(Instant::now(), 100)
}

fn source() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

fn trap(received: Result<Received, SnmpError>) -> SnmpTrap {
    match received {
        Ok(Received::Trap(trap)) => trap,
        other => panic!("expected a trap, got {other:?}"),
    }
}

fn vb(oid: &str, value: SnmpValue) -> Varbind {
    Varbind {
        oid: oid.into(),
        value,
    }
}

/// The varbinds every `$T` capture carries after sysUpTime.0 and snmpTrapOID.0 (linkDown).
fn link_down_varbinds() -> Vec<Varbind> {
    vec![
        vb("1.3.6.1.2.1.2.2.1.1.3", SnmpValue::Integer(3)),
        vb(
            "1.3.6.1.2.1.2.2.1.2.3",
            SnmpValue::OctetString(b"eth3".to_vec()),
        ),
    ]
}

const LINK_DOWN: &str = "1.3.6.1.6.3.1.1.5.3";

// --- SNMPv1 and SNMPv2c, captured -------------------------------------------------------------

#[test]
fn net_snmp_v1_enterprise_specific_trap_maps_per_rfc3584() {
    let trap = trap(receiver().process(&vector("v1_enterprise_specific"), source()));
    assert_eq!(trap.version, SnmpVersion::V1);
    assert_eq!(trap.trap_oid, "1.3.6.1.4.1.8072.2.3.0.17");
    assert_eq!(trap.agent_address, "192.0.2.10");
    assert_eq!(trap.source, "127.0.0.1:40000");
    assert_eq!(trap.uptime, 12345);
    assert_eq!(trap.security_name, None);
    assert!(!trap.is_inform);
    assert_eq!(
        trap.varbinds,
        vec![
            vb("1.3.6.1.4.1.8072.2.3.2.1", SnmpValue::Integer(42)),
            vb(
                "1.3.6.1.4.1.8072.2.3.2.2",
                SnmpValue::OctetString(b"hello v1".to_vec())
            ),
        ]
    );
    let header = trap.v1.unwrap();
    assert_eq!(header.enterprise, "1.3.6.1.4.1.8072.2.3");
    assert_eq!(header.agent_addr, "192.0.2.10");
    assert_eq!((header.generic_trap, header.specific_trap), (6, 17));
}

#[test]
fn net_snmp_v1_generic_trap_with_zero_agent_addr_uses_the_source() {
    let trap = trap(receiver().process(&vector("v1_link_down_agent_zero"), source()));
    assert_eq!(trap.trap_oid, LINK_DOWN);
    assert_eq!(trap.agent_address, "127.0.0.1");
    assert_eq!(trap.uptime, 777);
    assert_eq!(
        trap.varbinds,
        vec![vb("1.3.6.1.2.1.2.2.1.1.3", SnmpValue::Integer(3))]
    );
}

#[test]
fn net_snmp_v2c_trap() {
    let trap = trap(receiver().process(&vector("v2c_link_down"), source()));
    assert_eq!(trap.version, SnmpVersion::V2c);
    assert_eq!(trap.trap_oid, LINK_DOWN);
    assert_eq!(trap.uptime, 1000);
    assert_eq!(trap.agent_address, "127.0.0.1");
    assert_eq!(trap.varbinds, link_down_varbinds());
    assert_eq!(trap.v1, None);
}

#[test]
fn net_snmp_v2c_trap_with_every_value_type() {
    let trap = trap(receiver().process(&vector("v2c_all_types"), source()));
    let base = "1.3.6.1.4.1.8072.9";
    let expected = vec![
        vb(&format!("{base}.1"), SnmpValue::Integer(-7)),
        vb(&format!("{base}.2"), SnmpValue::Gauge32(4_000_000_000)),
        vb(&format!("{base}.3"), SnmpValue::Counter32(123)),
        vb(
            &format!("{base}.4"),
            SnmpValue::OctetString(b"text".to_vec()),
        ),
        vb(
            &format!("{base}.5"),
            SnmpValue::OctetString(vec![0, 0xff, 0x10]),
        ),
        vb(&format!("{base}.6"), SnmpValue::Null),
        vb(
            &format!("{base}.7"),
            SnmpValue::ObjectId("1.3.6.1.2.1.1".into()),
        ),
        vb(&format!("{base}.8"), SnmpValue::TimeTicks(500)),
        vb(
            &format!("{base}.9"),
            SnmpValue::IpAddress("10.1.2.3".into()),
        ),
        vb(&format!("{base}.10"), SnmpValue::Counter64(u64::MAX)),
        // net-snmp wraps its Unsigned64 extension in an Opaque (tag 9f 7b); it stays opaque.
        vb(
            &format!("{base}.11"),
            SnmpValue::Opaque(vec![0x9f, 0x7b, 0x01, 0x05]),
        ),
    ];
    assert_eq!(trap.trap_oid, "1.3.6.1.4.1.8072.2.3.0.1");
    assert_eq!(trap.uptime, 4242);
    assert_eq!(trap.varbinds, expected);
}

#[test]
fn net_snmp_v2c_proxied_trap_takes_the_agent_from_snmp_trap_address() {
    let trap = trap(receiver().process(&vector("v2c_proxied"), source()));
    assert_eq!(trap.trap_oid, "1.3.6.1.6.3.1.1.5.4");
    assert_eq!(trap.agent_address, "192.0.2.77");
}

#[test]
fn net_snmp_v2c_inform_is_answered_with_a_matching_response() {
    let datagram = vector("v2c_inform");
    let request: v2c::Message<v2::Pdus> = rasn::ber::decode(&datagram).unwrap();
    let v2::Pdus::InformRequest(v2::InformRequest(request_pdu)) = request.data else {
        panic!("not an inform");
    };
    let Ok(Received::Inform { trap, response }) = receiver().process(&datagram, source()) else {
        panic!("not answered");
    };
    assert!(trap.is_inform);
    assert_eq!(trap.trap_oid, LINK_DOWN);
    assert_eq!(trap.varbinds, link_down_varbinds());

    let decoded: v2c::Message<v2::Pdus> = rasn::ber::decode(&response).unwrap();
    assert_eq!(decoded.version, 1.into());
    assert_eq!(decoded.community.as_ref(), b"public");
    let v2::Pdus::Response(v2::Response(pdu)) = decoded.data else {
        panic!("not a response: {:?}", decoded.data);
    };
    assert_eq!(pdu.request_id, request_pdu.request_id);
    assert_eq!((pdu.error_status, pdu.error_index), (0, 0));
    assert_eq!(pdu.variable_bindings, request_pdu.variable_bindings);
    // The Response-PDU tag, right after version and community.
    let community_end = 2 + 3 + 2 + b"public".len();
    assert_eq!(response[community_end], 0xa2);
}

#[test]
fn unknown_community_is_refused_for_v1_and_v2c() {
    let receiver = receiver();
    receiver.set_credentials(Credentials {
        communities: vec!["private".into()],
        users: vec![],
    });
    for name in ["v1_enterprise_specific", "v2c_link_down", "v2c_inform"] {
        let err = receiver.process(&vector(name), source()).unwrap_err();
        assert_eq!(err, SnmpError::UnknownCommunity, "{name}");
        assert_eq!(err.counter(), "unknown_community");
    }
}

#[test]
fn encode_v2c_trap_is_accepted_back() {
    let varbinds = link_down_varbinds();
    let datagram = encode_v2c_trap("public", 7, 321, LINK_DOWN, &varbinds).unwrap();
    let trap = trap(receiver().process(&datagram, source()));
    assert_eq!((trap.uptime, trap.trap_oid.as_str()), (321, LINK_DOWN));
    assert_eq!(trap.varbinds, varbinds);
    assert!(encode_v2c_trap("public", 7, 321, "not.an.oid", &[]).is_err());
}

// --- SNMPv3 traps, captured -------------------------------------------------------------------

#[test]
fn net_snmp_v3_traps_at_every_level_and_protocol() {
    for (name, user, context) in [
        ("v3_noauth", "noauthuser", ""),
        ("v3_md5", "md5user", ""),
        ("v3_sha", "shauser", ""),
        ("v3_sha224", "sha224user", ""),
        ("v3_sha384", "sha384user", ""),
        ("v3_sha_aes", "shaaesuser", "ctx1"),
        ("v3_md5_des", "md5desuser", ""),
        ("v3_sha256_aes", "sha256user", ""),
        ("v3_sha512_aes", "sha512user", ""),
    ] {
        let trap = trap(receiver().process(&vector(name), source()));
        assert_eq!(trap.version, SnmpVersion::V3, "{name}");
        assert_eq!(trap.security_name.as_deref(), Some(user), "{name}");
        assert_eq!(trap.context_name, context, "{name}");
        assert_eq!(trap.trap_oid, LINK_DOWN, "{name}");
        assert_eq!(trap.uptime, 1000, "{name}");
        assert_eq!(trap.varbinds, link_down_varbinds(), "{name}");
        assert_eq!(trap.agent_address, "127.0.0.1", "{name}");
    }
}

#[test]
fn wrong_auth_password_is_a_wrong_digest() {
    let receiver = receiver();
    let wrong: Vec<UsmUser> = users()
        .iter()
        .map(|u| UsmUser {
            auth: u
                .auth
                .as_ref()
                .map(|(p, _)| (*p, usm::password_to_key(*p, b"wrongpassword"))),
            ..u.clone()
        })
        .collect();
    receiver.set_credentials(Credentials {
        communities: vec![],
        users: wrong,
    });
    for (name, user) in [
        ("v3_md5", "md5user"),
        ("v3_sha", "shauser"),
        ("v3_sha224", "sha224user"),
        ("v3_sha_aes", "shaaesuser"),
        ("v3_md5_des", "md5desuser"),
        ("v3_sha512_aes", "sha512user"),
    ] {
        let err = receiver.process(&vector(name), source()).unwrap_err();
        assert_eq!(err, SnmpError::WrongDigest(user.into()), "{name}");
        assert_eq!(err.counter(), "auth_failures");
    }
}

#[test]
fn wrong_privacy_password_is_a_decryption_failure() {
    let receiver = receiver();
    let wrong = vec![
        user(
            "shaaesuser",
            Some((A::Sha1, "shapassword")),
            Some((P::Aes128, "wrongpassword")),
        ),
        user(
            "md5desuser",
            Some((A::Md5, "md5password")),
            Some((P::Des, "wrongpassword")),
        ),
    ];
    receiver.set_credentials(Credentials {
        communities: vec![],
        users: wrong,
    });
    for (name, user) in [("v3_sha_aes", "shaaesuser"), ("v3_md5_des", "md5desuser")] {
        let err = receiver.process(&vector(name), source()).unwrap_err();
        assert_eq!(err, SnmpError::DecryptFailed(user.into()), "{name}");
        assert_eq!(err.counter(), "auth_failures");
    }
}

#[test]
fn unknown_user_is_refused() {
    let receiver = receiver();
    receiver.set_credentials(Credentials {
        communities: vec!["public".into()],
        users: vec![],
    });
    for (name, user) in [("v3_noauth", "noauthuser"), ("v3_sha_aes", "shaaesuser")] {
        let err = receiver.process(&vector(name), source()).unwrap_err();
        assert_eq!(err, SnmpError::UnknownUser(user.into()), "{name}");
        assert_eq!(err.counter(), "auth_failures");
    }
}

#[test]
fn a_message_below_the_users_level_is_refused() {
    let receiver = receiver();
    // shauser configured with privacy: its authNoPriv trap must not be accepted, or anyone
    // knowing the authentication key alone could send in its name. And noauthuser configured
    // with authentication: an unauthenticated trap in its name is refused.
    receiver.set_credentials(Credentials {
        communities: vec![],
        users: vec![
            user(
                "shauser",
                Some((A::Sha1, "shapassword")),
                Some((P::Aes128, "aespassword")),
            ),
            user("noauthuser", Some((A::Sha1, "shapassword")), None),
        ],
    });
    for (name, user) in [("v3_sha", "shauser"), ("v3_noauth", "noauthuser")] {
        let err = receiver.process(&vector(name), source()).unwrap_err();
        assert_eq!(
            err,
            SnmpError::UnsupportedSecurityLevel(user.into()),
            "{name}"
        );
    }
}

#[test]
fn changed_password_is_not_served_from_the_key_cache() {
    let receiver = receiver();
    trap(receiver.process(&vector("v3_sha"), source()));
    receiver.set_credentials(Credentials {
        communities: vec![],
        users: vec![user("shauser", Some((A::Sha1, "anotherpassword")), None)],
    });
    let err = receiver.process(&vector("v3_sha"), source()).unwrap_err();
    assert_eq!(err, SnmpError::WrongDigest("shauser".into()));
}

// --- SNMPv3 discovery and informs ---------------------------------------------------------------

/// An SNMPv3 message we sent, opened as its receiver would: HMAC checked with `user`'s keys
/// localised to our engine, scopedPDU decrypted.
fn open_v3(bytes: &[u8], user: Option<&UsmUser>) -> (Message, USMSecurityParameters, ScopedPdu) {
    tlv::validate_exact(bytes).unwrap();
    let message: Message = rasn::ber::decode(bytes).unwrap();
    let usm: USMSecurityParameters = rasn::ber::decode(&message.security_parameters).unwrap();
    assert_eq!(usm.authoritative_engine_id.as_ref(), unhex(OURS).as_slice());
    let flags = message.global_data.flags[0];
    let keys = user.map(|u| LocalizedKeys::new(u, &unhex(OURS)));
    if flags & 0x01 != 0 {
        let keys = keys.as_ref().expect("authenticated message needs a user");
        let range = tlv::auth_params_range(bytes).unwrap();
        let mut zeroed = bytes.to_vec();
        zeroed[range].fill(0);
        assert!(
            keys.verify(&zeroed, &usm.authentication_parameters),
            "HMAC of our message does not verify"
        );
    }
    let scoped = match &message.scoped_data {
        ScopedPduData::CleartextPdu(scoped) => scoped.clone(),
        ScopedPduData::EncryptedPdu(ciphertext) => {
            assert_eq!(flags & 0x03, 0x03);
            let boots = u32::try_from(&usm.authoritative_engine_boots).unwrap();
            let time = u32::try_from(&usm.authoritative_engine_time).unwrap();
            let plaintext = keys
                .as_ref()
                .unwrap()
                .decrypt(boots, time, &usm.privacy_parameters, ciphertext)
                .unwrap();
            let (scoped, _padding) =
                rasn::ber::decode_with_remainder::<ScopedPdu>(&plaintext).unwrap();
            scoped
        }
    };
    (message, usm, scoped)
}

fn report_varbind(scoped: &ScopedPdu) -> (i32, String, SnmpValue) {
    let v2::Pdus::Report(v2::Report(pdu)) = &scoped.data else {
        panic!("not a report: {:?}", scoped.data);
    };
    let [varbind] = pdu.variable_bindings.as_slice() else {
        panic!("one varbind expected");
    };
    let value = pdu::value_from_v2(&varbind.value).unwrap();
    (pdu.request_id, pdu::oid_string(&varbind.name), value)
}

#[test]
fn net_snmp_discovery_probe_gets_our_engine_id_boots_and_time() {
    let datagram = vector("v3_inform_discovery_probe");
    let request: Message = rasn::ber::decode(&datagram).unwrap();
    let ScopedPduData::CleartextPdu(request_scoped) = &request.scoped_data else {
        panic!("probe is plaintext");
    };
    let now = Instant::now();
    let receiver = receiver_at(now, 4321);
    for expected_count in 1..=2u32 {
        let Ok(Received::Report(report)) = receiver.process_at(&datagram, source(), now) else {
            panic!("no report");
        };
        let (message, usm, scoped) = open_v3(&report, None);
        assert_eq!(
            message.global_data.message_id,
            request.global_data.message_id
        );
        assert_eq!(
            message.global_data.flags.as_ref(),
            &[0x00],
            "noAuthNoPriv, not reportable"
        );
        assert_eq!(usm.authoritative_engine_boots, 1.into());
        assert_eq!(usm.authoritative_engine_time, 4321.into());
        assert_eq!(scoped.engine_id.as_ref(), unhex(OURS).as_slice());
        let (request_id, oid, value) = report_varbind(&scoped);
        assert_eq!(request_id, request_id_of(&request_scoped.data));
        assert_eq!(oid, "1.3.6.1.6.3.15.1.1.4.0", "usmStatsUnknownEngineIDs.0");
        assert_eq!(value, SnmpValue::Counter32(expected_count));
    }
}

fn request_id_of(pdu: &v2::Pdus) -> i32 {
    match pdu {
        v2::Pdus::GetRequest(v2::GetRequest(p)) | v2::Pdus::InformRequest(v2::InformRequest(p)) => {
            p.request_id
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn net_snmp_unsynced_informs_get_an_authenticated_not_in_time_window_report() {
    for (name, user) in [
        ("v3_inform_sha_aes_unsynced", "shaaesuser"),
        ("v3_inform_md5_des_unsynced", "md5desuser"),
        ("v3_inform_sha_unsynced", "shauser"),
    ] {
        let now = Instant::now();
        let receiver = receiver_at(now, 500);
        let datagram = vector(name);
        let Ok(Received::Report(report)) = receiver.process_at(&datagram, source(), now) else {
            panic!("{name}: no report");
        };
        let (message, usm, scoped) = open_v3(&report, Some(find_user(user)));
        assert_eq!(
            message.global_data.flags.as_ref(),
            &[0x01],
            "{name}: authNoPriv"
        );
        assert_eq!(usm.user_name.as_ref(), user.as_bytes());
        assert_eq!(usm.authoritative_engine_boots, 1.into());
        assert_eq!(usm.authoritative_engine_time, 500.into());
        let (_, oid, value) = report_varbind(&scoped);
        assert_eq!(
            oid, "1.3.6.1.6.3.15.1.1.2.0",
            "{name}: usmStatsNotInTimeWindows.0"
        );
        assert_eq!(value, SnmpValue::Counter32(1));
    }
}

#[test]
fn net_snmp_synced_v3_informs_are_answered_at_their_security_level() {
    for (name, user, flags) in [
        ("v3_inform_noauth", "noauthuser", 0x00),
        ("v3_inform_sha", "shauser", 0x01),
        ("v3_inform_sha_aes", "shaaesuser", 0x03),
        ("v3_inform_md5_des", "md5desuser", 0x03),
        ("v3_inform_sha256_aes", "sha256user", 0x03),
    ] {
        // The engine clock these were captured against: boots 1, time 100.
        let now = Instant::now();
        let receiver = receiver_at(now, 100);
        let datagram = vector(name);
        let request: Message = rasn::ber::decode(&datagram).unwrap();
        let Ok(Received::Inform { trap, response }) = receiver.process_at(&datagram, source(), now)
        else {
            panic!("{name}: not answered");
        };
        assert!(trap.is_inform, "{name}");
        assert_eq!(trap.security_name.as_deref(), Some(user), "{name}");
        assert_eq!(trap.trap_oid, LINK_DOWN, "{name}");
        assert_eq!(trap.uptime, 1000, "{name}");
        assert_eq!(
            trap.varbinds,
            vec![vb("1.3.6.1.2.1.2.2.1.1.3", SnmpValue::Integer(3))],
            "{name}"
        );
        let (message, usm, scoped) = open_v3(&response, Some(find_user(user)));
        assert_eq!(
            message.global_data.message_id, request.global_data.message_id,
            "{name}: msgID echoed"
        );
        assert_eq!(message.global_data.flags.as_ref(), &[flags], "{name}");
        assert_eq!(usm.authoritative_engine_boots, 1.into());
        assert_eq!(usm.authoritative_engine_time, 100.into());
        let v2::Pdus::Response(v2::Response(pdu)) = scoped.data else {
            panic!("{name}: not a response");
        };
        assert_eq!((pdu.error_status, pdu.error_index), (0, 0));
        assert_eq!(
            pdu.variable_bindings.len(),
            3,
            "{name}: the inform's varbinds echoed"
        );
    }
}

/// A v3 inform as a synchronised sender sends it to us, for the cases no capture covers.
fn sender<'a>(user: &'a UsmUser, engine_id: &'a [u8], time: u32) -> V3Sender<'a> {
    V3Sender {
        user,
        engine_id,
        boots: 1,
        time,
        context_name: "",
        salt: 0x0102_0304_0506_0708,
    }
}

#[test]
fn v3_informs_are_answered_at_their_security_level() {
    let ours = unhex(OURS);
    for name in [
        "noauthuser",
        "shauser",
        "shaaesuser",
        "md5desuser",
        "sha256user",
    ] {
        let user = find_user(name);
        let now = Instant::now();
        let receiver = receiver_at(now, 1000);
        let varbinds = link_down_varbinds();
        let datagram = sender(user, &ours, 990)
            .inform(77, 4242, 1000, LINK_DOWN, &varbinds)
            .unwrap();
        let Ok(Received::Inform { trap, response }) = receiver.process_at(&datagram, source(), now)
        else {
            panic!("{name}: inform not answered");
        };
        assert!(trap.is_inform);
        assert_eq!(trap.security_name.as_deref(), Some(name));
        assert_eq!(trap.varbinds, varbinds);

        let (message, usm, scoped) = open_v3(&response, Some(user));
        assert_eq!(
            message.global_data.message_id,
            77.into(),
            "{name}: msgID echoed"
        );
        let expected_flags = match user.level() {
            usm::SecurityLevel::NoAuthNoPriv => 0x00,
            usm::SecurityLevel::AuthNoPriv => 0x01,
            usm::SecurityLevel::AuthPriv => 0x03,
        };
        assert_eq!(
            message.global_data.flags.as_ref(),
            &[expected_flags],
            "{name}"
        );
        assert_eq!(usm.user_name.as_ref(), name.as_bytes());
        assert_eq!(usm.authoritative_engine_time, 1000.into());
        let v2::Pdus::Response(v2::Response(pdu)) = scoped.data else {
            panic!("{name}: not a response");
        };
        assert_eq!(pdu.request_id, 4242);
        assert_eq!(pdu.error_status, 0);
        assert_eq!(
            pdu.variable_bindings.len(),
            4,
            "sysUpTime, snmpTrapOID and two more"
        );
    }
}

#[test]
fn responses_use_a_fresh_salt_each_time() {
    let ours = unhex(OURS);
    let user = find_user("shaaesuser");
    let receiver = receiver();
    let now = Instant::now();
    let datagram = sender(user, &ours, receiver.engine().engine_time_at(now))
        .inform(1, 1, 1, LINK_DOWN, &[])
        .unwrap();
    let salts: Vec<Vec<u8>> = (0..3)
        .map(|_| {
            let Ok(Received::Inform { response, .. }) =
                receiver.process_at(&datagram, source(), now)
            else {
                panic!("not answered");
            };
            let (_, usm, _) = open_v3(&response, Some(user));
            usm.privacy_parameters.to_vec()
        })
        .collect();
    assert_ne!(salts[0], salts[1]);
    assert_ne!(salts[1], salts[2]);
}

#[test]
fn inform_outside_our_time_window_gets_a_report_then_succeeds_after_resync() {
    let ours = unhex(OURS);
    let user = find_user("shaaesuser");
    let now = Instant::now();
    let receiver = receiver_at(now, 1000);
    for (time, answered) in [(849, false), (850, true), (1150, true), (1151, false)] {
        let datagram = sender(user, &ours, time)
            .inform(5, 6, 1, LINK_DOWN, &[])
            .unwrap();
        let received = receiver.process_at(&datagram, source(), now).unwrap();
        match (received, answered) {
            (Received::Inform { .. }, true) => {}
            (Received::Report(report), false) => {
                let (_, usm, scoped) = open_v3(&report, Some(user));
                assert_eq!(usm.authoritative_engine_time, 1000.into());
                let (request_id, oid, _) = report_varbind(&scoped);
                assert_eq!(oid, "1.3.6.1.6.3.15.1.1.2.0");
                assert_eq!(request_id, 6, "request-id recovered by decrypting");
            }
            (other, _) => panic!("time {time}: {other:?}"),
        }
    }
    // Another boot count is outside the window whatever the time.
    let mut other_boots = sender(user, &ours, 1000);
    other_boots.boots = 2;
    let datagram = other_boots.inform(5, 6, 1, LINK_DOWN, &[]).unwrap();
    assert!(matches!(
        receiver.process_at(&datagram, source(), now),
        Ok(Received::Report(_))
    ));
}

/// `datagram` (authenticated by `user` for `engine_id`) with msgFlags replaced and the HMAC
/// recomputed, as a sender with those flags would have produced it.
fn with_flags(datagram: &[u8], user: &UsmUser, engine_id: &[u8], flags: u8) -> Vec<u8> {
    let mut datagram = datagram.to_vec();
    // msgFlags is the only one-octet OCTET STRING in msgGlobalData: 04 01 xx.
    let at = datagram.windows(2).position(|w| w == [0x04, 0x01]).unwrap();
    datagram[at + 2] = flags;
    let keys = LocalizedKeys::new(user, engine_id);
    let range = tlv::auth_params_range(&datagram).unwrap();
    datagram[range.clone()].fill(0);
    let mac = keys.sign(&datagram).unwrap();
    datagram[range].copy_from_slice(&mac);
    datagram
}

#[test]
fn inform_naming_another_engine_without_asking_for_a_report_is_refused() {
    let foreign = unhex(SENDER);
    let user = find_user("shauser");
    let inform = sender(user, &foreign, 1)
        .inform(1, 1, 1, LINK_DOWN, &[])
        .unwrap();
    let datagram = with_flags(&inform, user, &foreign, 0x01);
    assert_eq!(
        receiver().process(&datagram, source()),
        Err(SnmpError::UnknownEngineId)
    );
}

#[test]
fn a_trap_wrongly_flagged_reportable_is_still_a_trap() {
    let foreign = unhex(SENDER);
    let user = find_user("shauser");
    let plain = sender(user, &foreign, 1)
        .trap(1, 1, 1, LINK_DOWN, &[])
        .unwrap();
    let datagram = with_flags(&plain, user, &foreign, 0x05);
    let trap = trap(receiver().process(&datagram, source()));
    assert_eq!(trap.trap_oid, LINK_DOWN);
}

// --- Timeliness of traps ----------------------------------------------------------------------

#[test]
fn trap_clock_is_learnt_from_the_first_message_and_enforced_after() {
    let engine_id = unhex(SENDER);
    let user = find_user("shaaesuser");
    let start = Instant::now();
    let receiver = receiver_at(start, 10);
    let send = |boots: u32, time: u32, at: Instant| {
        let mut s = sender(user, &engine_id, time);
        s.boots = boots;
        let datagram = s.trap(1, 1, 1, LINK_DOWN, &[]).unwrap();
        receiver.process_at(&datagram, source(), at)
    };
    let late = |user: &str| Err(SnmpError::NotInTimeWindow(user.into()));
    // The first authenticated message sets the clock: boots 5, time 1000.
    assert!(send(5, 1000, start).is_ok());
    // Up to 150 s older than the clock is timely; more is not; earlier boots never are.
    assert!(send(5, 850, start).is_ok());
    assert_eq!(send(5, 849, start), late("shaaesuser"));
    assert_eq!(send(4, 5000, start), late("shaaesuser"));
    // The clock runs on: 200 s later the sender's time is about 1200, so 999 is stale. (A
    // time past the latest one received is always taken and resets the clock, RFC 3414
    // § 3.2 step 7b.)
    let later = start + Duration::from_secs(200);
    assert_eq!(send(5, 999, later), late("shaaesuser"));
    assert!(send(5, 1001, later).is_ok());
    assert_eq!(send(5, 850, later), late("shaaesuser"));
    assert!(send(5, 851, later).is_ok());
    // A reboot (more boots) resets the clock, even to a small time.
    assert!(send(6, 3, later).is_ok());
    assert_eq!(send(5, 1300, later), late("shaaesuser"));
    // Clocks are per engine: another engine starts fresh.
    let other = unhex("8000000001020399");
    let datagram = sender(user, &other, 1)
        .trap(1, 1, 1, LINK_DOWN, &[])
        .unwrap();
    assert!(receiver.process_at(&datagram, source(), later).is_ok());
}

#[test]
fn a_trap_that_fails_authentication_does_not_move_the_clock() {
    let engine_id = unhex(SENDER);
    let user = find_user("shauser");
    let forger = UsmUser {
        auth: Some((A::Sha1, usm::password_to_key(A::Sha1, b"notthepassword"))),
        ..user.clone()
    };
    let receiver = receiver();
    let now = Instant::now();
    let forged = sender(&forger, &engine_id, 1_000_000)
        .trap(1, 1, 1, LINK_DOWN, &[])
        .unwrap();
    assert!(matches!(
        receiver.process_at(&forged, source(), now),
        Err(SnmpError::WrongDigest(_))
    ));
    let genuine = sender(user, &engine_id, 10)
        .trap(1, 1, 1, LINK_DOWN, &[])
        .unwrap();
    assert!(receiver.process_at(&genuine, source(), now).is_ok());
}

// --- Refusals and limits ----------------------------------------------------------------------

#[test]
fn every_truncation_of_every_vector_is_refused_without_panicking() {
    let receiver = receiver();
    for name in VECTORS {
        let datagram = vector(name);
        for len in 0..datagram.len() {
            let err = receiver
                .process(&datagram[..len], source())
                .expect_err(&format!("{name} truncated to {len} bytes was accepted"));
            assert_eq!(err.counter(), "malformed", "{name} at {len}: {err}");
        }
    }
}

#[test]
fn corrupting_any_byte_of_any_vector_never_panics() {
    let receiver = receiver();
    for name in VECTORS {
        let datagram = vector(name);
        for i in 0..datagram.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut corrupted = datagram.clone();
                corrupted[i] ^= mask;
                let _ = receiver.process(&corrupted, source());
            }
        }
    }
}

#[test]
fn garbage_is_malformed() {
    let receiver = receiver();
    for garbage in [
        &b""[..],
        b"\x00",
        b"hello world",
        // A SEQUENCE claiming 4 GiB: refused from the header, nothing allocated.
        b"\x30\x84\xff\xff\xff\xff\x02\x01\x01",
        // Indefinite length, prohibited by RFC 3417.
        b"\x30\x80\x02\x01\x01\x00\x00",
        // A message that is only a version.
        b"\x30\x03\x02\x01\x01",
    ] {
        let err = receiver.process(garbage, source()).unwrap_err();
        assert_eq!(err.counter(), "malformed", "{garbage:?}: {err}");
    }
}

#[test]
fn unsupported_versions_and_pdus_are_named() {
    let receiver = receiver();
    assert_eq!(
        receiver.process(b"\x30\x03\x02\x01\x02", source()),
        Err(SnmpError::UnsupportedVersion(2))
    );
    let get = rasn::ber::encode(&v2c::Message {
        version: 1.into(),
        community: b"public".to_vec().into(),
        data: v2::Pdus::GetRequest(v2::GetRequest(v2::Pdu {
            request_id: 1,
            error_status: 0,
            error_index: 0,
            variable_bindings: vec![],
        })),
    })
    .unwrap();
    let err = receiver.process(&get, source()).unwrap_err();
    assert_eq!(err, SnmpError::UnsupportedPdu("get-request"));
    assert_eq!(err.counter(), "unsupported_pdu");
}

#[test]
fn oversized_datagrams_and_varbind_lists_are_too_big() {
    let receiver = receiver();
    let huge = vec![0u8; MAX_DATAGRAM + 1];
    assert!(matches!(
        receiver.process(&huge, source()),
        Err(SnmpError::TooBig(_))
    ));
    // 1025 varbinds after the two notification varbinds, encoded by hand since our encoder
    // refuses to produce them.
    let vb = v2::VarBind {
        name: pdu::parse_oid("1.3.6.1.4.1.1").unwrap(),
        value: v2::VarBindValue::Unspecified,
    };
    let mut bindings = pdu::notification_varbinds(1, LINK_DOWN, &[]).unwrap();
    bindings.extend(std::iter::repeat_n(vb, MAX_VARBINDS));
    let datagram = rasn::ber::encode(&v2c::Message {
        version: 1.into(),
        community: b"public".to_vec().into(),
        data: v2::Pdus::Trap(v2::Trap(v2::Pdu {
            request_id: 1,
            error_status: 0,
            error_index: 0,
            variable_bindings: bindings,
        })),
    })
    .unwrap();
    let err = receiver.process(&datagram, source()).unwrap_err();
    assert!(matches!(err, SnmpError::TooBig(_)), "{err}");
    assert_eq!(err.counter(), "malformed");
}

#[test]
fn oids_longer_than_128_arcs_are_malformed() {
    let arcs: Vec<u32> = std::iter::repeat_n(1, 129).collect();
    let long = rasn::types::ObjectIdentifier::new(arcs).unwrap();
    let mut bindings = pdu::notification_varbinds(1, LINK_DOWN, &[]).unwrap();
    bindings.push(v2::VarBind {
        name: long,
        value: v2::VarBindValue::Unspecified,
    });
    let datagram = rasn::ber::encode(&v2c::Message {
        version: 1.into(),
        community: b"public".to_vec().into(),
        data: v2::Pdus::Trap(v2::Trap(v2::Pdu {
            request_id: 1,
            error_status: 0,
            error_index: 0,
            variable_bindings: bindings,
        })),
    })
    .unwrap();
    let err = receiver().process(&datagram, source()).unwrap_err();
    assert!(err.to_string().contains("129 arcs"), "{err}");
}

#[test]
fn receiver_is_shareable_between_workers() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Receiver>();
}

#[test]
fn engine_time_counts_seconds_since_start() {
    let now = Instant::now();
    let engine = LocalEngine::started_at(unhex(OURS), 3, now - Duration::from_secs(42));
    assert_eq!(engine.engine_time_at(now), 42);
    assert_eq!(engine.engine_time_at(now - Duration::from_secs(100)), 0);
    assert_eq!(
        LocalEngine::new(unhex(OURS), u32::MAX).boots,
        i32::MAX as u32
    );
}
