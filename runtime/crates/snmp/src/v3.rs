//! SNMPv3 message processing for a notification receiver (RFC 3412 § 7.2, RFC 3414 § 3.2):
//! engine discovery, user lookup, security level, HMAC, timeliness and decryption, in the
//! RFC's order, and the encoding of what we send back (Responses to informs, Reports).
//!
//! Who is authoritative decides whose clock and engine id count (RFC 3414 § 1.5.1): for a trap
//! it is the sender, whose engine id is in the message; for an inform it is us, so an inform
//! must carry our engine id, and a sender that does not know it yet gets a Report telling it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use rasn_snmp::v2;
use rasn_snmp::v3::{HeaderData, Message, ScopedPdu, ScopedPduData, USMSecurityParameters};

use super::pdu;
use super::tlv;
use super::usm::{LocalizedKeys, SecurityLevel, UsmUser};
use super::{
    ENGINE_MAX, MAX_DATAGRAM, Received, Receiver, SnmpError, TIME_WINDOW, decode, encode,
    response_pdu,
};
use opsconductor_model::event::{SnmpTrap, SnmpVersion, Varbind};

const FLAG_AUTH: u8 = 0x01;
const FLAG_PRIV: u8 = 0x02;
pub(super) const FLAG_REPORTABLE: u8 = 0x04;

/// The User-based Security Model's number in msgSecurityModel (RFC 3411 § 5).
const USM: u32 = 3;

/// RFC 3412 § 6.3: every SNMP engine must accept messages of at least 484 octets.
const MIN_MAX_SIZE: u32 = 484;

/// usmStatsNotInTimeWindows.0 and usmStatsUnknownEngineIDs.0 (RFC 3414 § 5): the varbinds of
/// the two Reports we send; net-snmp's senders act on exactly these OIDs, and so does the
/// poller's client on the agents' Reports.
pub(super) const USM_STATS_NOT_IN_TIME_WINDOWS: &[u32] = &[1, 3, 6, 1, 6, 3, 15, 1, 1, 2, 0];
pub(super) const USM_STATS_UNKNOWN_ENGINE_IDS: &[u32] = &[1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0];

/// msgGlobalData, checked.
pub(super) struct Header {
    pub(super) msg_id: i32,
    pub(super) flags: u8,
}

impl Header {
    pub(super) fn parse(data: &HeaderData) -> Result<Header, SnmpError> {
        let msg_id = i32::try_from(&data.message_id)
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| malformed("msgID outside 0..2147483647"))?;
        // Our only replies (a Response echoing the inform, a one-varbind Report) are about the
        // size of the request the sender just sent, so msgMaxSize is checked, not remembered.
        u32::try_from(&data.max_size)
            .ok()
            .filter(|size| (MIN_MAX_SIZE..=ENGINE_MAX).contains(size))
            .ok_or_else(|| malformed("msgMaxSize outside 484..2147483647"))?;
        let flags = match data.flags.as_ref() {
            [flags] => *flags,
            other => {
                return Err(malformed(&format!(
                    "msgFlags of {} octets, expected 1",
                    other.len()
                )));
            }
        };
        if flags & (FLAG_AUTH | FLAG_PRIV) == FLAG_PRIV {
            return Err(malformed("msgFlags ask for privacy without authentication"));
        }
        if u32::try_from(&data.security_model).ok() != Some(USM) {
            return Err(malformed("msgSecurityModel is not USM (3)"));
        }
        Ok(Header { msg_id, flags })
    }

    pub(super) fn level(&self) -> SecurityLevel {
        match (self.flags & FLAG_AUTH != 0, self.flags & FLAG_PRIV != 0) {
            (false, _) => SecurityLevel::NoAuthNoPriv,
            (true, false) => SecurityLevel::AuthNoPriv,
            (true, true) => SecurityLevel::AuthPriv,
        }
    }

    fn reportable(&self) -> bool {
        self.flags & FLAG_REPORTABLE != 0
    }
}

fn malformed(why: &str) -> SnmpError {
    SnmpError::Malformed(why.to_owned())
}

/// msgSecurityParameters, checked.
pub(super) struct UsmParams {
    pub(super) engine_id: Vec<u8>,
    pub(super) boots: u32,
    pub(super) time: u32,
    pub(super) user_name: Vec<u8>,
    auth: Vec<u8>,
    privacy: Vec<u8>,
}

impl UsmParams {
    pub(super) fn parse(bytes: &[u8]) -> Result<UsmParams, SnmpError> {
        tlv::validate_exact(bytes)
            .map_err(|e| SnmpError::Malformed(format!("msgSecurityParameters: {e}")))?;
        let usm: USMSecurityParameters = decode(bytes)?;
        let engine_value = |value: &rasn::types::Integer, what: &str| {
            u32::try_from(value)
                .ok()
                .filter(|v| *v <= ENGINE_MAX)
                .ok_or_else(|| SnmpError::Malformed(format!("{what} outside 0..2147483647")))
        };
        let params = UsmParams {
            boots: engine_value(
                &usm.authoritative_engine_boots,
                "msgAuthoritativeEngineBoots",
            )?,
            time: engine_value(&usm.authoritative_engine_time, "msgAuthoritativeEngineTime")?,
            engine_id: usm.authoritative_engine_id.to_vec(),
            user_name: usm.user_name.to_vec(),
            auth: usm.authentication_parameters.to_vec(),
            privacy: usm.privacy_parameters.to_vec(),
        };
        // RFC 3414 § 2.4: engine ids are at most 32 octets, user names at most 32.
        if params.engine_id.len() > 32 {
            return Err(malformed("msgAuthoritativeEngineID longer than 32 octets"));
        }
        if params.user_name.len() > 32 {
            return Err(malformed("msgUserName longer than 32 octets"));
        }
        Ok(params)
    }

    pub(super) fn user_label(&self) -> String {
        String::from_utf8_lossy(&self.user_name).into_owned()
    }
}

pub(super) fn process(
    receiver: &Receiver,
    datagram: &[u8],
    source: SocketAddr,
    now: Instant,
) -> Result<Received, SnmpError> {
    let message: Message = decode(datagram)?;
    let header = Header::parse(&message.global_data)?;
    let usm = UsmParams::parse(&message.security_parameters)?;
    let engine = &receiver.engine;
    let ours = usm.engine_id == engine.engine_id;

    // RFC 3414 § 3.2 step 3. A confirmed-class message (reportable) must be addressed to us;
    // one that is not — typically the empty-engine-id probe of `snmpinform` — learns our
    // engine id, boots and time from an unauthenticated Report. A readable SNMPv2-Trap is
    // unconfirmed whatever its flags say (RFC 3412 § 6.4), so a sender that wrongly sets
    // reportable on traps still gets them processed rather than reported at.
    let plaintext_trap = matches!(
        &message.scoped_data,
        ScopedPduData::CleartextPdu(ScopedPdu {
            data: v2::Pdus::Trap(_),
            ..
        })
    );
    if !ours {
        if header.reportable() && !plaintext_trap {
            let count = receiver.unknown_engine_ids.fetch_add(1, Ordering::Relaxed) + 1;
            let request_id = match &message.scoped_data {
                ScopedPduData::CleartextPdu(scoped) => request_id_of(&scoped.data),
                ScopedPduData::EncryptedPdu(_) => 0,
            };
            let report = Outgoing {
                msg_id: header.msg_id,
                level: SecurityLevel::NoAuthNoPriv,
                reportable: false,
                engine_id: &engine.engine_id,
                boots: engine.boots,
                time: engine.engine_time_at(now),
                user_name: &usm.user_name,
                keys: None,
                salt: 0,
                context_engine_id: &engine.engine_id,
                context_name: b"",
                pdu: report_pdu(request_id, USM_STATS_UNKNOWN_ENGINE_IDS, count),
            };
            return Ok(Received::Report(report.encode()?));
        }
        if usm.engine_id.is_empty() {
            return Err(SnmpError::UnknownEngineId);
        }
    }

    // Steps 4 and 5. The message's level must be the user's: accepting less than configured
    // would let anyone who knows a user name inject unauthenticated traps in its name.
    let credentials = receiver.credentials.load();
    let user: &UsmUser = credentials
        .users
        .get(&usm.user_name)
        .ok_or_else(|| SnmpError::UnknownUser(usm.user_label()))?;
    let level = header.level();
    if level != user.level() {
        return Err(SnmpError::UnsupportedSecurityLevel(usm.user_label()));
    }

    let mut keys: Option<Arc<LocalizedKeys>> = None;
    if level >= SecurityLevel::AuthNoPriv {
        // Step 6: the HMAC over the whole message.
        let (localized, fresh) = credentials.keys(user, &usm.engine_id);
        authenticate(datagram, &usm, &localized)?;
        if fresh {
            credentials.remember(user, &usm.engine_id, Arc::clone(&localized));
        }

        // Step 7: timeliness, only meaningful for authenticated messages.
        if ours {
            let our_time = engine.engine_time_at(now);
            let outside = engine.boots == ENGINE_MAX
                || usm.boots != engine.boots
                || u64::from(usm.time.abs_diff(our_time)) > TIME_WINDOW.as_secs();
            if outside {
                if !header.reportable() {
                    return Err(SnmpError::NotInTimeWindow(usm.user_label()));
                }
                // An authenticated Report (authNoPriv, RFC 3414 § 3.2 step 7a) carrying our
                // boots and time, from which the sender resynchronises and retries.
                let count = receiver.not_in_time_windows.fetch_add(1, Ordering::Relaxed) + 1;
                let request_id = scoped_pdu(message.scoped_data, &usm, &localized, level)
                    .map(|scoped| request_id_of(&scoped.data))
                    .unwrap_or(0);
                let report = Outgoing {
                    msg_id: header.msg_id,
                    level: SecurityLevel::AuthNoPriv,
                    reportable: false,
                    engine_id: &engine.engine_id,
                    boots: engine.boots,
                    time: our_time,
                    user_name: &usm.user_name,
                    keys: Some(&localized),
                    salt: 0,
                    context_engine_id: &engine.engine_id,
                    context_name: b"",
                    pdu: report_pdu(request_id, USM_STATS_NOT_IN_TIME_WINDOWS, count),
                };
                return Ok(Received::Report(report.encode()?));
            }
        } else {
            receiver.check_replay(
                &usm.engine_id,
                usm.boots,
                usm.time,
                super::replay::message_digest(&usm.engine_id, &usm.auth),
                now,
                || usm.user_label(),
            )?;
        }
        keys = Some(localized);
    }

    // Step 8: decryption.
    let scoped = match &keys {
        Some(keys) => scoped_pdu(message.scoped_data, &usm, keys, level)?,
        None => match message.scoped_data {
            ScopedPduData::CleartextPdu(scoped) => scoped,
            ScopedPduData::EncryptedPdu(_) => {
                return Err(malformed("encrypted scopedPDU without the privFlag"));
            }
        },
    };

    let security_name = usm.user_label();
    let context_name = String::from_utf8_lossy(&scoped.name).into_owned();
    let with_security = |mut trap: SnmpTrap| {
        trap.security_name = Some(security_name.clone());
        trap.context_name = context_name.clone();
        trap
    };
    match scoped.data {
        v2::Pdus::Trap(v2::Trap(pdu)) => Ok(Received::Trap(with_security(pdu::trap_from_v2(
            SnmpVersion::V3,
            &pdu,
            source,
            false,
        )?))),
        v2::Pdus::InformRequest(v2::InformRequest(pdu)) => {
            if !ours {
                // An inform names its receiver as the authoritative engine; one that names
                // another engine and asks for no report cannot be answered usefully.
                return Err(SnmpError::UnknownEngineId);
            }
            let trap = with_security(pdu::trap_from_v2(SnmpVersion::V3, &pdu, source, true)?);
            // Answered at the request's security level, with our clock, msgID echoed.
            let response = Outgoing {
                msg_id: header.msg_id,
                level,
                reportable: false,
                engine_id: &engine.engine_id,
                boots: engine.boots,
                time: engine.engine_time_at(now),
                user_name: &usm.user_name,
                keys: keys.as_deref(),
                salt: receiver.next_salt(),
                context_engine_id: &scoped.engine_id,
                context_name: &scoped.name,
                pdu: v2::Pdus::Response(v2::Response(response_pdu(pdu))),
            }
            .encode()?;
            Ok(Received::Inform { trap, response })
        }
        other => Err(SnmpError::UnsupportedPdu(pdu::pdu_name(&other))),
    }
}

/// RFC 3414 § 3.2 step 6: checks the HMAC of a received message, which covers the whole
/// datagram with msgAuthenticationParameters zeroed. Shared with the poller's client, which
/// checks the agent's Responses the same way.
pub(super) fn authenticate(
    datagram: &[u8],
    usm: &UsmParams,
    keys: &LocalizedKeys,
) -> Result<(), SnmpError> {
    let range = tlv::auth_params_range(datagram).map_err(SnmpError::Malformed)?;
    if datagram.get(range.clone()) != Some(usm.auth.as_slice()) {
        return Err(malformed(
            "msgAuthenticationParameters not where the framing says",
        ));
    }
    let mut zeroed = datagram.to_vec();
    zeroed[range].fill(0);
    if !keys.verify(&zeroed, &usm.auth) {
        return Err(SnmpError::WrongDigest(usm.user_label()));
    }
    Ok(())
}

/// The plaintext scopedPDU of an authenticated message, decrypting it at authPriv.
pub(super) fn scoped_pdu(
    data: ScopedPduData,
    usm: &UsmParams,
    keys: &LocalizedKeys,
    level: SecurityLevel,
) -> Result<ScopedPdu, SnmpError> {
    match (data, level) {
        (ScopedPduData::CleartextPdu(scoped), SecurityLevel::AuthNoPriv) => Ok(scoped),
        (ScopedPduData::EncryptedPdu(ciphertext), SecurityLevel::AuthPriv) => {
            let failed = || SnmpError::DecryptFailed(usm.user_label());
            let plaintext = keys
                .decrypt(usm.boots, usm.time, &usm.privacy, &ciphertext)
                .ok_or_else(failed)?;
            // A wrong privacy key yields noise, noticed only here: count it as a decryption
            // failure (usmStatsDecryptionErrors), not as a malformed message. DES leaves up to
            // seven pad bytes after the scopedPDU.
            let end = tlv::validate_first(&plaintext).map_err(|_| failed())?;
            plaintext
                .get(..end)
                .and_then(|bytes| rasn::ber::decode::<ScopedPdu>(bytes).ok())
                .ok_or_else(failed)
        }
        _ => Err(malformed(
            "the privFlag does not match the scopedPduData form",
        )),
    }
}

fn request_id_of(pdu: &v2::Pdus) -> i32 {
    match pdu {
        v2::Pdus::GetRequest(v2::GetRequest(p))
        | v2::Pdus::GetNextRequest(v2::GetNextRequest(p))
        | v2::Pdus::Response(v2::Response(p))
        | v2::Pdus::SetRequest(v2::SetRequest(p))
        | v2::Pdus::InformRequest(v2::InformRequest(p))
        | v2::Pdus::Trap(v2::Trap(p))
        | v2::Pdus::Report(v2::Report(p)) => p.request_id,
        v2::Pdus::GetBulkRequest(v2::GetBulkRequest(p)) => p.request_id,
    }
}

fn report_pdu(request_id: i32, stat: &'static [u32], count: u32) -> v2::Pdus {
    v2::Pdus::Report(v2::Report(v2::Pdu {
        request_id,
        error_status: v2::Pdu::ERROR_STATUS_NO_ERROR,
        error_index: 0,
        variable_bindings: vec![v2::VarBind {
            name: rasn::types::ObjectIdentifier::new_unchecked(stat.into()),
            value: v2::VarBindValue::Value(rasn_smi::v1::Counter(count).into()),
        }],
    }))
}

/// One SNMPv3 message to encode, at `level` with `keys`: our Responses and Reports, the v3
/// sender's notifications and the poller client's requests.
pub(super) struct Outgoing<'a> {
    pub(super) msg_id: i32,
    pub(super) level: SecurityLevel,
    pub(super) reportable: bool,
    pub(super) engine_id: &'a [u8],
    pub(super) boots: u32,
    pub(super) time: u32,
    pub(super) user_name: &'a [u8],
    pub(super) keys: Option<&'a LocalizedKeys>,
    pub(super) salt: u64,
    pub(super) context_engine_id: &'a [u8],
    pub(super) context_name: &'a [u8],
    pub(super) pdu: v2::Pdus,
}

impl Outgoing<'_> {
    pub(super) fn encode(self) -> Result<Vec<u8>, SnmpError> {
        let missing = |what: &str| SnmpError::Encode(format!("no {what} key for this level"));
        let scoped = ScopedPdu {
            engine_id: self.context_engine_id.to_vec().into(),
            name: self.context_name.to_vec().into(),
            data: self.pdu,
        };
        let (scoped_data, privacy) = if self.level == SecurityLevel::AuthPriv {
            let keys = self.keys.ok_or_else(|| missing("privacy"))?;
            let plaintext = encode(&scoped)?;
            let (ciphertext, params) = keys
                .encrypt(self.boots, self.time, self.salt, &plaintext)
                .ok_or_else(|| missing("privacy"))?;
            (
                ScopedPduData::EncryptedPdu(ciphertext.into()),
                params.to_vec(),
            )
        } else {
            (ScopedPduData::CleartextPdu(scoped), Vec::new())
        };
        let auth_len = match (self.level, self.keys.and_then(|k| k.auth.as_ref())) {
            (SecurityLevel::NoAuthNoPriv, _) => 0,
            (_, Some((protocol, _))) => protocol.mac_len(),
            (_, None) => return Err(missing("authentication")),
        };
        let usm = USMSecurityParameters {
            authoritative_engine_id: self.engine_id.to_vec().into(),
            authoritative_engine_boots: self.boots.into(),
            authoritative_engine_time: self.time.into(),
            user_name: self.user_name.to_vec().into(),
            // Zeros while the HMAC is computed (RFC 3414 § 6.3.1 step 1), then the HMAC.
            authentication_parameters: vec![0u8; auth_len].into(),
            privacy_parameters: privacy.into(),
        };
        let flags = match self.level {
            SecurityLevel::NoAuthNoPriv => 0,
            SecurityLevel::AuthNoPriv => FLAG_AUTH,
            SecurityLevel::AuthPriv => FLAG_AUTH | FLAG_PRIV,
        } | if self.reportable { FLAG_REPORTABLE } else { 0 };
        let message = Message {
            version: 3.into(),
            global_data: HeaderData {
                message_id: self.msg_id.into(),
                max_size: (MAX_DATAGRAM as u32).into(),
                flags: vec![flags].into(),
                security_model: USM.into(),
            },
            security_parameters: encode(&usm)?.into(),
            scoped_data,
        };
        let mut bytes = encode(&message)?;
        if auth_len > 0 {
            let keys = self.keys.ok_or_else(|| missing("authentication"))?;
            let range = tlv::auth_params_range(&bytes).map_err(SnmpError::Encode)?;
            let mac = keys.sign(&bytes).ok_or_else(|| missing("authentication"))?;
            bytes
                .get_mut(range)
                .filter(|slot| slot.len() == mac.len())
                .ok_or_else(|| SnmpError::Encode("authentication parameters misplaced".into()))?
                .copy_from_slice(&mac);
        }
        Ok(bytes)
    }
}

/// Encodes SNMPv3 notifications the way a device does: for tests, fuzzing seeds and the load
/// generator. Traps name the sender's own engine (it is authoritative); informs must name the
/// receiver's engine and use its boots and time.
#[derive(Debug, Clone)]
pub struct V3Sender<'a> {
    pub user: &'a UsmUser,
    /// The authoritative engine: the sender's own for traps, the receiver's for informs.
    pub engine_id: &'a [u8],
    pub boots: u32,
    pub time: u32,
    pub context_name: &'a str,
    /// The privacy salt; use a different one for every message.
    pub salt: u64,
}

impl V3Sender<'_> {
    /// An SNMPv2-Trap at the user's security level.
    pub fn trap(
        &self,
        msg_id: i32,
        request_id: i32,
        uptime: u32,
        trap_oid: &str,
        varbinds: &[Varbind],
    ) -> Result<Vec<u8>, SnmpError> {
        let pdu = super::notification_pdu(request_id, uptime, trap_oid, varbinds)?;
        self.encode(msg_id, false, v2::Pdus::Trap(v2::Trap(pdu)))
    }

    /// An InformRequest at the user's security level, flagged reportable as RFC 3412 § 6.4
    /// requires of confirmed-class PDUs.
    pub fn inform(
        &self,
        msg_id: i32,
        request_id: i32,
        uptime: u32,
        trap_oid: &str,
        varbinds: &[Varbind],
    ) -> Result<Vec<u8>, SnmpError> {
        let pdu = super::notification_pdu(request_id, uptime, trap_oid, varbinds)?;
        self.encode(
            msg_id,
            true,
            v2::Pdus::InformRequest(v2::InformRequest(pdu)),
        )
    }

    fn encode(&self, msg_id: i32, reportable: bool, pdu: v2::Pdus) -> Result<Vec<u8>, SnmpError> {
        let keys = LocalizedKeys::new(self.user, self.engine_id);
        Outgoing {
            msg_id,
            level: self.user.level(),
            reportable,
            engine_id: self.engine_id,
            boots: self.boots,
            time: self.time,
            user_name: self.user.name.as_bytes(),
            keys: Some(&keys),
            salt: self.salt,
            context_engine_id: self.engine_id,
            context_name: self.context_name.as_bytes(),
            pdu,
        }
        .encode()
    }
}
