//! The manager side of SNMP, pure like the rest of this module: the requests the poller sends
//! (GetRequest, GetNextRequest, GetBulkRequest; SNMPv2c or SNMPv3 USM) and the decoding of what
//! an agent answers (a Response-PDU, or an SNMPv3 Report). The socket, retries, the cache of
//! agent engines and walking live in `poller::snmp`.
//!
//! For requests the agent is the authoritative engine (RFC 3414 § 1.5.1): its engine id, boots
//! and time go into our messages and into key localisation. We learn them by discovery
//! (RFC 3414 § 4: [`encode_discovery`]) and keep them in an [`AgentEngine`].

use std::time::Instant;

use rasn::types::ObjectIdentifier;
use rasn_snmp::v3::{Message, ScopedPduData};
use rasn_snmp::{v2, v2c};

use super::usm::{LocalizedKeys, SecurityLevel, UsmUser};
use super::v3::{self, Header, Outgoing, UsmParams};
use super::{
    ENGINE_MAX, MAX_DATAGRAM, MAX_OID_ARCS, RemoteClock, SnmpError, decode, encode, pdu, tlv,
};
use opsconductor_model::event::{SnmpValue, Varbind};

/// A request operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Get,
    GetNext,
    /// GetBulkRequest with non-repeaters 0: up to `max_repetitions` successors of each OID.
    GetBulk {
        max_repetitions: u32,
    },
}

/// Parses an OID a caller asked for: dotted decimal, a leading dot tolerated.
pub fn parse_oid(text: &str) -> Result<ObjectIdentifier, SnmpError> {
    pdu::parse_oid(text)
}

/// Dotted decimal, no leading dot.
pub fn oid_string(arcs: &[u32]) -> String {
    pdu::oid_string(arcs)
}

/// The PDU of a request. Every varbind's value is NULL (`unSpecified`, RFC 3416 § 4.1).
pub fn request_pdu(op: Operation, request_id: i32, oids: &[ObjectIdentifier]) -> v2::Pdus {
    let variable_bindings: Vec<v2::VarBind> = oids
        .iter()
        .map(|oid| v2::VarBind {
            name: oid.clone(),
            value: v2::VarBindValue::Unspecified,
        })
        .collect();
    let pdu = |variable_bindings| v2::Pdu {
        request_id,
        error_status: v2::Pdu::ERROR_STATUS_NO_ERROR,
        error_index: 0,
        variable_bindings,
    };
    match op {
        Operation::Get => v2::Pdus::GetRequest(v2::GetRequest(pdu(variable_bindings))),
        Operation::GetNext => v2::Pdus::GetNextRequest(v2::GetNextRequest(pdu(variable_bindings))),
        Operation::GetBulk { max_repetitions } => {
            v2::Pdus::GetBulkRequest(v2::GetBulkRequest(v2::BulkPdu {
                request_id,
                non_repeaters: 0,
                max_repetitions,
                variable_bindings,
            }))
        }
    }
}

/// One varbind of a Response, its OID kept in arcs so that walks can compare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub oid: ObjectIdentifier,
    pub value: SnmpValue,
}

impl Binding {
    pub fn into_varbind(self) -> Varbind {
        Varbind {
            oid: oid_string(&self.oid),
            value: self.value,
        }
    }
}

/// A decoded Response-PDU (authenticated and decrypted, for SNMPv3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub request_id: i32,
    pub error_status: u32,
    pub error_index: u32,
    pub varbinds: Vec<Binding>,
}

/// RFC 3416 § 3 error-status names, indexed by value.
const ERROR_STATUS_NAMES: &[&str] = &[
    "noError",
    "tooBig",
    "noSuchName",
    "badValue",
    "readOnly",
    "genErr",
    "noAccess",
    "wrongType",
    "wrongLength",
    "wrongEncoding",
    "wrongValue",
    "noCreation",
    "inconsistentValue",
    "resourceUnavailable",
    "commitFailed",
    "undoFailed",
    "authorizationError",
    "notWritable",
    "inconsistentName",
];

impl Response {
    fn from_pdu(pdu: v2::Pdu) -> Result<Response, SnmpError> {
        let varbinds = pdu
            .variable_bindings
            .into_iter()
            .map(|vb| {
                // RFC 2578 § 3.5: at most 128 sub-identifiers; a longer one is refused rather
                // than carried into addon memory and storage.
                if vb.name.len() > MAX_OID_ARCS {
                    return Err(SnmpError::Malformed(format!(
                        "OID with {} arcs (at most {MAX_OID_ARCS})",
                        vb.name.len()
                    )));
                }
                Ok(Binding {
                    value: pdu::value_from_v2(&vb.value)?,
                    oid: vb.name,
                })
            })
            .collect::<Result<Vec<_>, SnmpError>>()?;
        Ok(Response {
            request_id: pdu.request_id,
            error_status: pdu.error_status,
            error_index: pdu.error_index,
            varbinds,
        })
    }

    /// The error-status as a sentence naming the varbind it points at, or `None` for
    /// noError.
    pub fn error(&self) -> Option<String> {
        if self.error_status == v2::Pdu::ERROR_STATUS_NO_ERROR {
            return None;
        }
        let name = usize::try_from(self.error_status)
            .ok()
            .and_then(|i| ERROR_STATUS_NAMES.get(i))
            .copied()
            .unwrap_or("an unknown error");
        // error-index counts varbinds from 1; 0 means the error is about no varbind in
        // particular.
        let at = usize::try_from(self.error_index)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| self.varbinds.get(i))
            .map(|b| format!(" for varbind {} ({})", self.error_index, oid_string(&b.oid)))
            .unwrap_or_default();
        Some(format!(
            "the agent answered {name} (error-status {}){at}",
            self.error_status
        ))
    }
}

/// Checks the framing of an answer before `rasn` sees it (bounded nesting, definite lengths
/// that fit, no trailing bytes) and that it is of the version we asked in.
fn check_framing(datagram: &[u8], version: i64) -> Result<(), SnmpError> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(SnmpError::TooBig(format!(
            "datagram of {} bytes (at most {MAX_DATAGRAM})",
            datagram.len()
        )));
    }
    tlv::validate_exact(datagram).map_err(SnmpError::Malformed)?;
    let got = tlv::message_version(datagram).map_err(SnmpError::Malformed)?;
    if got != version {
        // The wire number is one less than the version for v1 (0) and v2c (1).
        return Err(SnmpError::Malformed(format!(
            "answered with message version {got}, the request used {version}"
        )));
    }
    Ok(())
}

fn unexpected_pdu(pdu: &v2::Pdus) -> SnmpError {
    SnmpError::Malformed(format!(
        "answered with a {} PDU instead of a response",
        pdu::pdu_name(pdu)
    ))
}

/// An SNMPv2c request message.
pub fn encode_v2c(community: &str, pdu: v2::Pdus) -> Result<Vec<u8>, SnmpError> {
    encode(&v2c::Message {
        version: 1.into(),
        community: community.as_bytes().to_vec().into(),
        data: pdu,
    })
}

/// Decodes an SNMPv2c answer. The community is not checked: the socket is connected to the
/// agent, and the caller matches the request-id.
pub fn decode_v2c(datagram: &[u8]) -> Result<Response, SnmpError> {
    check_framing(datagram, 1)?;
    let message: v2c::Message<v2::Pdus> = decode(datagram)?;
    match message.data {
        v2::Pdus::Response(v2::Response(pdu)) => Response::from_pdu(pdu),
        other => Err(unexpected_pdu(&other)),
    }
}

/// An agent's SNMPv3 engine as the poller knows it: its id, learnt by discovery, and its clock
/// (RFC 3414 § 2.3: boots, time, latestReceivedEngineTime), kept like the receiver keeps the
/// clocks of trap senders.
#[derive(Debug, Clone)]
pub struct AgentEngine {
    engine_id: Vec<u8>,
    clock: RemoteClock,
}

impl AgentEngine {
    pub fn new(engine_id: Vec<u8>, boots: u32, time: u32, now: Instant) -> AgentEngine {
        AgentEngine {
            engine_id,
            clock: RemoteClock::new(boots, time, now),
        }
    }

    pub fn engine_id(&self) -> &[u8] {
        &self.engine_id
    }

    /// snmpEngineBoots and our estimate of snmpEngineTime at `now`, for a request.
    pub fn boots_and_time(&self, now: Instant) -> (u32, u32) {
        let time = u32::try_from(self.clock.time_at(now))
            .unwrap_or(ENGINE_MAX)
            .min(ENGINE_MAX);
        (self.clock.boots, time)
    }

    /// RFC 3414 § 3.2 step 7b for an authenticated answer: moves the clock forward and says
    /// whether the answer is timely (a replayed old one is not).
    pub fn observe(&mut self, boots: u32, time: u32, now: Instant) -> bool {
        self.clock.observe(boots, time, now)
    }
}

/// An SNMPv3 request to an agent whose engine we know, at the user's security level and
/// flagged reportable, so that the agent says what is wrong instead of dropping it.
pub struct V3Request<'a> {
    pub msg_id: i32,
    pub user: &'a UsmUser,
    /// The user's keys localised to `engine`.
    pub keys: &'a LocalizedKeys,
    pub engine: &'a AgentEngine,
    pub now: Instant,
    pub context: &'a str,
    /// The privacy salt; fresh for every message.
    pub salt: u64,
    pub pdu: v2::Pdus,
}

impl V3Request<'_> {
    pub fn encode(self) -> Result<Vec<u8>, SnmpError> {
        let (boots, time) = self.engine.boots_and_time(self.now);
        Outgoing {
            msg_id: self.msg_id,
            level: self.user.level(),
            reportable: true,
            engine_id: &self.engine.engine_id,
            boots,
            time,
            user_name: self.user.name.as_bytes(),
            keys: Some(self.keys),
            salt: self.salt,
            // The agent is both the authoritative and the context engine.
            context_engine_id: &self.engine.engine_id,
            context_name: self.context.as_bytes(),
            pdu: self.pdu,
        }
        .encode()
    }
}

/// The RFC 3414 § 4 discovery probe: noAuthNoPriv, reportable, empty engine id and user name,
/// a GetRequest without varbinds. The agent answers with a usmStatsUnknownEngineIDs Report
/// carrying its engine id (and, from net-snmp, its boots and time).
pub fn encode_discovery(msg_id: i32, request_id: i32) -> Result<Vec<u8>, SnmpError> {
    Outgoing {
        msg_id,
        level: SecurityLevel::NoAuthNoPriv,
        reportable: true,
        engine_id: b"",
        boots: 0,
        time: 0,
        user_name: b"",
        keys: None,
        salt: 0,
        context_engine_id: b"",
        context_name: b"",
        pdu: request_pdu(Operation::Get, request_id, &[]),
    }
    .encode()
}

/// What an agent reports instead of answering (RFC 3414 § 5 usmStats, RFC 3413 § 4.1.2
/// snmpUnknownContexts and snmpUnavailableContexts), from the first varbind of a Report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportKind {
    UnsupportedSecLevel,
    NotInTimeWindow,
    UnknownUserName,
    UnknownEngineId,
    WrongDigest,
    DecryptionError,
    UnknownContext,
    UnavailableContext,
    /// Any other report, by OID (or "no varbind").
    Other(String),
}

const USM_STATS_UNSUPPORTED_SEC_LEVELS: &[u32] = &[1, 3, 6, 1, 6, 3, 15, 1, 1, 1, 0];
const USM_STATS_UNKNOWN_USER_NAMES: &[u32] = &[1, 3, 6, 1, 6, 3, 15, 1, 1, 3, 0];
const USM_STATS_WRONG_DIGESTS: &[u32] = &[1, 3, 6, 1, 6, 3, 15, 1, 1, 5, 0];
const USM_STATS_DECRYPTION_ERRORS: &[u32] = &[1, 3, 6, 1, 6, 3, 15, 1, 1, 6, 0];
const SNMP_UNAVAILABLE_CONTEXTS: &[u32] = &[1, 3, 6, 1, 6, 3, 12, 1, 4, 0];
const SNMP_UNKNOWN_CONTEXTS: &[u32] = &[1, 3, 6, 1, 6, 3, 12, 1, 5, 0];

fn level_name(level: SecurityLevel) -> &'static str {
    match level {
        SecurityLevel::NoAuthNoPriv => "noAuthNoPriv",
        SecurityLevel::AuthNoPriv => "authNoPriv",
        SecurityLevel::AuthPriv => "authPriv",
    }
}

impl ReportKind {
    fn of(pdu: &v2::Pdu) -> ReportKind {
        let Some(first) = pdu.variable_bindings.first() else {
            return ReportKind::Other("a report without varbinds".into());
        };
        match &**first.name {
            USM_STATS_UNSUPPORTED_SEC_LEVELS => ReportKind::UnsupportedSecLevel,
            v3::USM_STATS_NOT_IN_TIME_WINDOWS => ReportKind::NotInTimeWindow,
            USM_STATS_UNKNOWN_USER_NAMES => ReportKind::UnknownUserName,
            v3::USM_STATS_UNKNOWN_ENGINE_IDS => ReportKind::UnknownEngineId,
            USM_STATS_WRONG_DIGESTS => ReportKind::WrongDigest,
            USM_STATS_DECRYPTION_ERRORS => ReportKind::DecryptionError,
            SNMP_UNKNOWN_CONTEXTS => ReportKind::UnknownContext,
            SNMP_UNAVAILABLE_CONTEXTS => ReportKind::UnavailableContext,
            other => ReportKind::Other(oid_string(other)),
        }
    }

    /// What the report means for the operator, naming what to check.
    pub fn explain(&self, user: &UsmUser, context: &str) -> String {
        let name = &user.name;
        match self {
            ReportKind::UnsupportedSecLevel => format!(
                "unsupported security level: the agent does not accept {} for SNMPv3 user \
                 {name:?} (check whether it is configured there with authentication and privacy)",
                level_name(user.level())
            ),
            ReportKind::NotInTimeWindow => "the agent keeps reporting the request outside its \
                 time window (notInTimeWindows), even after resynchronising with its clock"
                .to_owned(),
            ReportKind::UnknownUserName => {
                format!("unknown SNMPv3 user {name:?}: the agent has no such user")
            }
            ReportKind::UnknownEngineId => "the agent keeps reporting an unknown engine id \
                 (unknownEngineIDs), even after rediscovering it"
                .to_owned(),
            ReportKind::WrongDigest => format!(
                "authentication failed (wrong digest): check the SNMPv3 auth password and \
                 protocol of user {name:?}"
            ),
            ReportKind::DecryptionError => format!(
                "the agent could not decrypt the request (decryptionErrors): check the SNMPv3 \
                 privacy password and protocol of user {name:?}"
            ),
            ReportKind::UnknownContext => format!("unknown SNMPv3 context {context:?}"),
            ReportKind::UnavailableContext => {
                format!("SNMPv3 context {context:?} is unavailable on the agent")
            }
            ReportKind::Other(what) => format!("the agent sent a report ({what})"),
        }
    }
}

/// What an SNMPv3 answer carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V3Body {
    Response(Response),
    Report(ReportKind),
}

/// An SNMPv3 answer with the authoritative engine's values from its security parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Reply {
    pub engine_id: Vec<u8>,
    pub boots: u32,
    pub time: u32,
    /// Whether the answer was authenticated with the user's keys; only then are its boots
    /// and time proof of the agent's clock.
    pub authenticated: bool,
    pub body: V3Body,
}

/// Who a request was sent as, to check an authenticated answer with.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub user: &'a UsmUser,
    /// The user's keys localised to `engine_id`.
    pub keys: &'a LocalizedKeys,
    pub engine_id: &'a [u8],
}

/// Decodes a datagram answering one of our SNMPv3 requests.
///
/// `Ok(None)` if its msgID is none of `msg_ids`: a late answer to something else, ignored.
/// Authenticated answers are verified (RFC 3414 § 3.2 step 6) and decrypted with `sender`'s
/// keys; without a sender (the discovery probe) an authenticated answer is refused. A Response
/// must come at the level of the request (RFC 3412 § 7.2 step 13); Reports may come lower.
pub fn decode_v3(
    datagram: &[u8],
    msg_ids: &[i32],
    sender: Option<Sender<'_>>,
) -> Result<Option<V3Reply>, SnmpError> {
    check_framing(datagram, 3)?;
    let message: Message = decode(datagram)?;
    let header = Header::parse(&message.global_data)?;
    if !msg_ids.contains(&header.msg_id) {
        return Ok(None);
    }
    let usm = UsmParams::parse(&message.security_parameters)?;
    let level = header.level();
    let scoped = if level == SecurityLevel::NoAuthNoPriv {
        match message.scoped_data {
            ScopedPduData::CleartextPdu(scoped) => scoped,
            ScopedPduData::EncryptedPdu(_) => {
                return Err(SnmpError::Malformed(
                    "encrypted scopedPDU without the privFlag".into(),
                ));
            }
        }
    } else {
        let Some(sender) = sender else {
            return Err(SnmpError::Malformed(
                "authenticated answer to the unauthenticated discovery probe".into(),
            ));
        };
        if usm.engine_id != sender.engine_id {
            return Err(SnmpError::Malformed(format!(
                "the answer names engine {}, the request named {}",
                hex::encode(&usm.engine_id),
                hex::encode(sender.engine_id)
            )));
        }
        if usm.user_name != sender.user.name.as_bytes() {
            return Err(SnmpError::Malformed(format!(
                "the answer names user {:?}, the request named {:?}",
                usm.user_label(),
                sender.user.name
            )));
        }
        v3::authenticate(datagram, &usm, sender.keys)?;
        v3::scoped_pdu(message.scoped_data, &usm, sender.keys, level)?
    };
    let body = match scoped.data {
        v2::Pdus::Response(v2::Response(pdu)) => {
            if let Some(sender) = sender
                && level != sender.user.level()
            {
                return Err(SnmpError::Malformed(format!(
                    "the response came at security level {}, the request at {}",
                    level_name(level),
                    level_name(sender.user.level())
                )));
            }
            V3Body::Response(Response::from_pdu(pdu)?)
        }
        v2::Pdus::Report(v2::Report(pdu)) => V3Body::Report(ReportKind::of(&pdu)),
        other => return Err(unexpected_pdu(&other)),
    };
    Ok(Some(V3Reply {
        engine_id: usm.engine_id,
        boots: usm.boots,
        time: usm.time,
        authenticated: level != SecurityLevel::NoAuthNoPriv,
        body,
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;
    use std::time::Duration;

    use rasn_snmp::v3::ScopedPdu;

    use super::super::usm::{AuthProtocol, PrivProtocol};
    use super::super::{Credentials, LocalEngine, Received, Receiver};
    use super::*;

    const AGENT: &[u8] = b"\x80\x00\x1f\x88\x80agent-engine";

    fn oids(texts: &[&str]) -> Vec<ObjectIdentifier> {
        texts.iter().map(|t| parse_oid(t).unwrap()).collect()
    }

    fn user() -> &'static UsmUser {
        static USER: OnceLock<UsmUser> = OnceLock::new();
        USER.get_or_init(|| {
            UsmUser::from_passwords(
                "poller",
                Some((AuthProtocol::Sha1, "authpassword")),
                Some((PrivProtocol::Aes128, "privpassword")),
            )
            .unwrap()
        })
    }

    fn md5_des_user() -> &'static UsmUser {
        static USER: OnceLock<UsmUser> = OnceLock::new();
        USER.get_or_init(|| {
            UsmUser::from_passwords(
                "olddevice",
                Some((AuthProtocol::Md5, "authpassword")),
                Some((PrivProtocol::Des, "privpassword")),
            )
            .unwrap()
        })
    }

    fn vb(oid: &str, value: SnmpValue) -> v2::VarBind {
        v2::VarBind {
            name: parse_oid(oid).unwrap(),
            value: pdu::value_to_v2(&value).unwrap(),
        }
    }

    fn response_pdu(request_id: i32, error_status: u32, varbinds: Vec<v2::VarBind>) -> v2::Pdus {
        v2::Pdus::Response(v2::Response(v2::Pdu {
            request_id,
            error_status,
            error_index: if error_status == 0 { 0 } else { 1 },
            variable_bindings: varbinds,
        }))
    }

    fn report_pdu(stat: &[u32]) -> v2::Pdus {
        v2::Pdus::Report(v2::Report(v2::Pdu {
            request_id: 0,
            error_status: 0,
            error_index: 0,
            variable_bindings: vec![v2::VarBind {
                name: ObjectIdentifier::new(stat.to_vec()).unwrap(),
                value: pdu::value_to_v2(&SnmpValue::Counter32(1)).unwrap(),
            }],
        }))
    }

    #[test]
    fn request_pdus_carry_null_values_and_bulk_parameters() {
        let wanted = oids(&["1.3.6.1.2.1.1.1.0", ".1.3.6.1.2.1.1.3.0"]);
        let bytes = encode_v2c("public", request_pdu(Operation::Get, 7, &wanted)).unwrap();
        let message: v2c::Message<v2::Pdus> = rasn::ber::decode(&bytes).unwrap();
        assert_eq!(message.version, 1.into());
        assert_eq!(message.community.as_ref(), b"public");
        let v2::Pdus::GetRequest(v2::GetRequest(pdu)) = message.data else {
            panic!("not a GetRequest");
        };
        assert_eq!(pdu.request_id, 7);
        assert_eq!(pdu.variable_bindings.len(), 2);
        assert_eq!(
            oid_string(&pdu.variable_bindings[1].name),
            "1.3.6.1.2.1.1.3.0"
        );
        assert!(
            pdu.variable_bindings
                .iter()
                .all(|vb| vb.value == v2::VarBindValue::Unspecified)
        );

        let next = request_pdu(Operation::GetNext, 8, &wanted[..1]);
        assert!(matches!(next, v2::Pdus::GetNextRequest(_)));
        let bulk = request_pdu(
            Operation::GetBulk {
                max_repetitions: 25,
            },
            9,
            &wanted[..1],
        );
        let v2::Pdus::GetBulkRequest(v2::GetBulkRequest(bulk)) = bulk else {
            panic!("not a GetBulkRequest");
        };
        assert_eq!((bulk.non_repeaters, bulk.max_repetitions), (0, 25));
    }

    #[test]
    fn v2c_responses_decode_in_order_with_exceptions_kept() {
        let bytes = encode_v2c(
            "public",
            response_pdu(
                42,
                0,
                vec![
                    vb(
                        "1.3.6.1.2.1.1.1.0",
                        SnmpValue::OctetString(b"Linux".to_vec()),
                    ),
                    vb("1.3.6.1.2.1.1.3.0", SnmpValue::TimeTicks(1234)),
                    vb("1.3.6.1.2.1.1.99.0", SnmpValue::NoSuchObject),
                    vb("1.3.6.1.2.1.1.1.1", SnmpValue::NoSuchInstance),
                ],
            ),
        )
        .unwrap();
        let response = decode_v2c(&bytes).unwrap();
        assert_eq!(response.request_id, 42);
        assert_eq!(response.error(), None);
        let varbinds: Vec<Varbind> = response
            .varbinds
            .into_iter()
            .map(Binding::into_varbind)
            .collect();
        assert_eq!(
            varbinds,
            vec![
                Varbind {
                    oid: "1.3.6.1.2.1.1.1.0".into(),
                    value: SnmpValue::OctetString(b"Linux".to_vec())
                },
                Varbind {
                    oid: "1.3.6.1.2.1.1.3.0".into(),
                    value: SnmpValue::TimeTicks(1234)
                },
                Varbind {
                    oid: "1.3.6.1.2.1.1.99.0".into(),
                    value: SnmpValue::NoSuchObject
                },
                Varbind {
                    oid: "1.3.6.1.2.1.1.1.1".into(),
                    value: SnmpValue::NoSuchInstance
                },
            ]
        );
    }

    #[test]
    fn error_status_is_named_with_its_varbind() {
        let bytes = encode_v2c(
            "public",
            response_pdu(1, 6, vec![vb("1.3.6.1.2.1.1.5.0", SnmpValue::Null)]),
        )
        .unwrap();
        let error = decode_v2c(&bytes).unwrap().error().unwrap();
        assert_eq!(
            error,
            "the agent answered noAccess (error-status 6) for varbind 1 (1.3.6.1.2.1.1.5.0)"
        );
        let odd = Response {
            request_id: 1,
            error_status: 99,
            error_index: 5,
            varbinds: Vec::new(),
        };
        assert_eq!(
            odd.error().unwrap(),
            "the agent answered an unknown error (error-status 99)"
        );
    }

    #[test]
    fn v2c_answers_that_are_not_responses_are_refused() {
        let request = encode_v2c("public", request_pdu(Operation::Get, 1, &[])).unwrap();
        let err = decode_v2c(&request).unwrap_err();
        assert!(err.to_string().contains("get-request PDU"), "{err}");
        assert!(decode_v2c(b"\x30\x03\x02\x01").is_err());
        assert!(decode_v2c(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err(), "v1");
        let discovery = encode_discovery(1, 1).unwrap();
        let err = decode_v2c(&discovery).unwrap_err();
        assert!(err.to_string().contains("version 3"), "{err}");
    }

    /// An agent's answer, encoded the way the receiver encodes its Responses.
    fn agent_answer(
        msg_id: i32,
        who: &UsmUser,
        level: SecurityLevel,
        boots: u32,
        time: u32,
        pdu: v2::Pdus,
    ) -> Vec<u8> {
        let keys = LocalizedKeys::new(who, AGENT);
        Outgoing {
            msg_id,
            level,
            reportable: false,
            engine_id: AGENT,
            boots,
            time,
            user_name: who.name.as_bytes(),
            keys: Some(&keys),
            salt: 99,
            context_engine_id: AGENT,
            context_name: b"",
            pdu,
        }
        .encode()
        .unwrap()
    }

    fn sender<'a>(user: &'a UsmUser, keys: &'a LocalizedKeys) -> Sender<'a> {
        Sender {
            user,
            keys,
            engine_id: AGENT,
        }
    }

    #[test]
    fn v3_requests_are_readable_by_the_agent_at_the_users_level() {
        for user in [user(), md5_des_user()] {
            let now = Instant::now();
            let engine = AgentEngine::new(AGENT.to_vec(), 3, 1000, now);
            let keys = LocalizedKeys::new(user, AGENT);
            let bytes = V3Request {
                msg_id: 77,
                user,
                keys: &keys,
                engine: &engine,
                now: now + Duration::from_secs(5),
                context: "vrf-a",
                salt: 1,
                pdu: request_pdu(Operation::Get, 5, &oids(&["1.3.6.1.2.1.1.1.0"])),
            }
            .encode()
            .unwrap();

            // Opened as the agent does: RFC 3414 § 3.2, with the same building blocks.
            let message: Message = rasn::ber::decode(&bytes).unwrap();
            let header = Header::parse(&message.global_data).unwrap();
            assert_eq!(header.msg_id, 77);
            assert_eq!(header.level(), SecurityLevel::AuthPriv);
            assert_ne!(header.flags & v3::FLAG_REPORTABLE, 0);
            let usm = UsmParams::parse(&message.security_parameters).unwrap();
            assert_eq!(usm.engine_id, AGENT);
            assert_eq!((usm.boots, usm.time), (3, 1005), "the clock moved on");
            v3::authenticate(&bytes, &usm, &keys).unwrap();
            let scoped: ScopedPdu =
                v3::scoped_pdu(message.scoped_data, &usm, &keys, header.level()).unwrap();
            assert_eq!(scoped.name.as_ref(), b"vrf-a");
            assert_eq!(scoped.engine_id.as_ref(), AGENT);
            let v2::Pdus::GetRequest(v2::GetRequest(pdu)) = scoped.data else {
                panic!("not a GetRequest");
            };
            assert_eq!(pdu.request_id, 5);
        }
    }

    #[test]
    fn v3_responses_are_authenticated_and_decrypted() {
        let keys = LocalizedKeys::new(user(), AGENT);
        let answer = agent_answer(
            77,
            user(),
            SecurityLevel::AuthPriv,
            3,
            1010,
            response_pdu(
                5,
                0,
                vec![vb(
                    "1.3.6.1.2.1.1.5.0",
                    SnmpValue::OctetString(b"r1".to_vec()),
                )],
            ),
        );
        let reply = decode_v3(&answer, &[76, 77], Some(sender(user(), &keys)))
            .unwrap()
            .unwrap();
        assert!(reply.authenticated);
        assert_eq!((reply.boots, reply.time), (3, 1010));
        let V3Body::Response(response) = reply.body else {
            panic!("not a response");
        };
        assert_eq!(response.request_id, 5);
        assert_eq!(
            response.varbinds[0].value,
            SnmpValue::OctetString(b"r1".to_vec())
        );

        // Another msgID: someone else's answer, ignored rather than failed.
        assert_eq!(
            decode_v3(&answer, &[1], Some(sender(user(), &keys))).unwrap(),
            None
        );

        // A flipped bit anywhere in the signed part is a wrong digest, or unparseable.
        let mut tampered = answer.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let err = decode_v3(&tampered, &[77], Some(sender(user(), &keys))).unwrap_err();
        assert!(matches!(err, SnmpError::WrongDigest(_)), "{err}");

        // Keys of another password.
        let other = UsmUser::from_passwords(
            "poller",
            Some((AuthProtocol::Sha1, "otherpassword")),
            Some((PrivProtocol::Aes128, "privpassword")),
        )
        .unwrap();
        let other_keys = LocalizedKeys::new(&other, AGENT);
        let err = decode_v3(&answer, &[77], Some(sender(&other, &other_keys))).unwrap_err();
        assert!(matches!(err, SnmpError::WrongDigest(_)), "{err}");

        // Not for the discovery probe.
        let err = decode_v3(&answer, &[77], None).unwrap_err();
        assert!(err.to_string().contains("discovery"), "{err}");
    }

    #[test]
    fn a_response_below_the_requests_level_is_refused() {
        let keys = LocalizedKeys::new(user(), AGENT);
        for level in [SecurityLevel::NoAuthNoPriv, SecurityLevel::AuthNoPriv] {
            let answer = agent_answer(1, user(), level, 1, 1, response_pdu(5, 0, vec![]));
            let err = decode_v3(&answer, &[1], Some(sender(user(), &keys))).unwrap_err();
            assert!(err.to_string().contains("security level"), "{err}");
        }
    }

    #[test]
    fn reports_are_classified_and_explained() {
        let keys = LocalizedKeys::new(user(), AGENT);
        for (stat, kind, says) in [
            (
                USM_STATS_WRONG_DIGESTS,
                ReportKind::WrongDigest,
                "authentication failed (wrong digest): check the SNMPv3 auth password",
            ),
            (
                USM_STATS_UNKNOWN_USER_NAMES,
                ReportKind::UnknownUserName,
                "unknown SNMPv3 user \"poller\"",
            ),
            (
                USM_STATS_DECRYPTION_ERRORS,
                ReportKind::DecryptionError,
                "privacy password",
            ),
            (
                USM_STATS_UNSUPPORTED_SEC_LEVELS,
                ReportKind::UnsupportedSecLevel,
                "does not accept authPriv",
            ),
            (
                v3::USM_STATS_NOT_IN_TIME_WINDOWS,
                ReportKind::NotInTimeWindow,
                "time window",
            ),
            (
                v3::USM_STATS_UNKNOWN_ENGINE_IDS,
                ReportKind::UnknownEngineId,
                "unknown engine id",
            ),
            (
                SNMP_UNKNOWN_CONTEXTS,
                ReportKind::UnknownContext,
                "unknown SNMPv3 context \"ctx\"",
            ),
            (
                &[1, 3, 6, 1, 6, 3, 11, 2, 1, 1, 0],
                ReportKind::Other("1.3.6.1.6.3.11.2.1.1.0".into()),
                "report (1.3.6.1.6.3.11.2.1.1.0)",
            ),
        ] {
            // Unauthenticated, as agents send most reports: they could not check our digest.
            let answer = agent_answer(
                9,
                user(),
                SecurityLevel::NoAuthNoPriv,
                4,
                50,
                report_pdu(stat),
            );
            let reply = decode_v3(&answer, &[9], Some(sender(user(), &keys)))
                .unwrap()
                .unwrap();
            assert!(!reply.authenticated);
            assert_eq!(reply.body, V3Body::Report(kind.clone()));
            let text = kind.explain(user(), "ctx");
            assert!(text.contains(says), "{text}");
        }

        // An authenticated notInTimeWindow report (how agents send it) is checked too.
        let answer = agent_answer(
            9,
            user(),
            SecurityLevel::AuthNoPriv,
            4,
            50,
            report_pdu(v3::USM_STATS_NOT_IN_TIME_WINDOWS),
        );
        let reply = decode_v3(&answer, &[9], Some(sender(user(), &keys)))
            .unwrap()
            .unwrap();
        assert!(reply.authenticated);
        assert_eq!((reply.boots, reply.time), (4, 50));
        assert_eq!(reply.body, V3Body::Report(ReportKind::NotInTimeWindow));
    }

    /// Our receiver is an SNMPv3 engine too: its answer to the discovery probe is the report
    /// the poller learns an engine from, and it reports a request outside its time window.
    #[test]
    fn discovery_and_time_window_against_our_own_engine() {
        let engine_id = b"\x80\x00\x00\x00\x05receiver".to_vec();
        let started = Instant::now();
        let receiver = Receiver::new(
            LocalEngine::started_at(engine_id.clone(), 7, started),
            Credentials {
                communities: vec![],
                users: vec![user().clone()],
            },
        );
        let source = "127.0.0.1:50000".parse().unwrap();
        let now = started + Duration::from_secs(500);

        let probe = encode_discovery(31, 32).unwrap();
        let Ok(Received::Report(report)) = receiver.process_at(&probe, source, now) else {
            panic!("no report to the probe");
        };
        let reply = decode_v3(&report, &[31], None).unwrap().unwrap();
        assert_eq!(reply.engine_id, engine_id);
        assert_eq!((reply.boots, reply.time), (7, 500));
        assert_eq!(reply.body, V3Body::Report(ReportKind::UnknownEngineId));

        // A request with a clock far behind: an authenticated notInTimeWindow report.
        let stale = AgentEngine::new(engine_id.clone(), 7, 10, now);
        let keys = LocalizedKeys::new(user(), &engine_id);
        let request = V3Request {
            msg_id: 33,
            user: user(),
            keys: &keys,
            engine: &stale,
            now,
            context: "",
            salt: 5,
            pdu: request_pdu(Operation::Get, 34, &oids(&["1.3.6.1.2.1.1.3.0"])),
        }
        .encode()
        .unwrap();
        let Ok(Received::Report(report)) = receiver.process_at(&request, source, now) else {
            panic!("no report to the stale request");
        };
        let sender = Sender {
            user: user(),
            keys: &keys,
            engine_id: &engine_id,
        };
        let reply = decode_v3(&report, &[33], Some(sender)).unwrap().unwrap();
        assert!(reply.authenticated);
        assert_eq!((reply.boots, reply.time), (7, 500));
        assert_eq!(reply.body, V3Body::Report(ReportKind::NotInTimeWindow));
    }

    #[test]
    fn agent_clock_moves_forward_and_refuses_replays() {
        let start = Instant::now();
        let mut engine = AgentEngine::new(AGENT.to_vec(), 2, 100, start);
        assert_eq!(engine.boots_and_time(start), (2, 100));
        assert_eq!(
            engine.boots_and_time(start + Duration::from_secs(60)),
            (2, 160)
        );
        let later = start + Duration::from_secs(400);
        assert!(engine.observe(2, 500, later));
        assert_eq!(engine.boots_and_time(later), (2, 500));
        // More than 150 s older than the clock: a replay.
        assert!(!engine.observe(2, 300, later));
        // From before a reboot.
        assert!(engine.observe(3, 1, later));
        assert!(!engine.observe(2, 600, later));
        assert_eq!(engine.boots_and_time(later), (3, 1));
    }
}
