//! Fuzzes `snmp::Receiver::process` — BER framing, v1/v2c/v3 decoding, USM and the encoding of
//! answers — over arbitrary datagrams, against a receiver that knows the users and community
//! of the net-snmp captures in `runtime/crates/snmp/src/testdata/` (seed the corpus with those, see
//! `seed.sh`), so that mutations start from messages that get deep into the code.
//!
//! Besides "never panics", it checks one invariant: whatever we answer decodes as SNMP again.
//!
//! Run with `just fuzz-snmp` (seeds the corpus, then `cargo +nightly fuzz run datagram`).
//! A crashing input goes to `runtime/crates/snmp/src/testdata/regressions/` with a regression test
//! named after what broke.

#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use opsconductor_snmp::{
    AuthProtocol, Credentials, LocalEngine, PrivProtocol, Received, Receiver, UsmUser,
};

fn receiver() -> &'static Receiver {
    static RECEIVER: OnceLock<Receiver> = OnceLock::new();
    RECEIVER.get_or_init(|| {
        let user = |name: &str, auth: Option<(AuthProtocol, &str)>, privacy| {
            UsmUser::from_passwords(name, auth, privacy).expect("valid test user")
        };
        let users = vec![
            user("noauthuser", None, None),
            user("shauser", Some((AuthProtocol::Sha1, "shapassword")), None),
            user(
                "shaaesuser",
                Some((AuthProtocol::Sha1, "shapassword")),
                Some((PrivProtocol::Aes128, "aespassword")),
            ),
            user(
                "md5desuser",
                Some((AuthProtocol::Md5, "md5password")),
                Some((PrivProtocol::Des, "despassword")),
            ),
        ];
        let engine_id = vec![0x80, 0, 0, 0, 5, 1, 2, 3, 4, 5, 6, 7, 8];
        Receiver::new(
            LocalEngine::new(engine_id, 1),
            Credentials {
                communities: vec!["public".into()],
                users,
            },
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let source: SocketAddr = ([127, 0, 0, 1], 40000).into();
    let answer = match receiver().process(data, source) {
        Ok(Received::Inform { response, .. }) => response,
        Ok(Received::Report(report)) => report,
        Ok(Received::Trap(_)) | Err(_) => return,
    };
    let decodes = rasn::ber::decode::<rasn_snmp::v3::Message>(&answer).is_ok()
        || rasn::ber::decode::<rasn_snmp::v2c::Message<rasn_snmp::v2::Pdus>>(&answer).is_ok();
    assert!(decodes, "we answered with something that is not SNMP");
});
