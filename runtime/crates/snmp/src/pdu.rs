//! Between `rasn-snmp`'s PDU types and the host's `SnmpTrap`: varbind values, OIDs as dotted
//! strings, the SNMPv2 notification layout (sysUpTime.0, snmpTrapOID.0, …) and the RFC 3584
//! mapping of SNMPv1 Trap-PDUs onto it.

use std::net::{Ipv4Addr, SocketAddr};

use rasn::types::{Integer, ObjectIdentifier, OctetString};
// SNMPv2's SMI reuses most SNMPv1 types (Counter32 = Counter, Unsigned32 = Gauge, …) as
// aliases; constructing them goes through the v1 names.
use rasn_smi::v1 as smi1;
use rasn_smi::v2 as smi2;
use rasn_snmp::{v1, v2};

use super::{MAX_OID_ARCS, MAX_VARBINDS, SnmpError};
use opsconductor_model::event::{SnmpTrap, SnmpV1Header, SnmpValue, SnmpVersion, Varbind};

/// sysUpTime.0 (RFC 3418), the first varbind of every SNMPv2 notification.
pub const SYS_UPTIME_0: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 3, 0];
/// snmpTrapOID.0 (RFC 3418), the second varbind.
pub const SNMP_TRAP_OID_0: &[u32] = &[1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0];
/// snmpTrapAddress.0 (RFC 3584 § 3.1): the original agent's address, added by proxies.
pub const SNMP_TRAP_ADDRESS_0: &[u32] = &[1, 3, 6, 1, 6, 3, 18, 1, 3, 0];
/// snmpTraps (RFC 3418): the generic v1 traps map to snmpTraps.{generic-trap + 1}.
const SNMP_TRAPS: &[u32] = &[1, 3, 6, 1, 6, 3, 1, 1, 5];

/// Dotted decimal, no leading dot, as the WIT contract and the registry's prefix index use.
pub fn oid_string(arcs: &[u32]) -> String {
    let mut out = String::with_capacity(arcs.len() * 4);
    for (i, arc) in arcs.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(&arc.to_string());
    }
    out
}

/// Parses a dotted OID (a leading dot is tolerated) for encoding.
pub fn parse_oid(text: &str) -> Result<ObjectIdentifier, SnmpError> {
    let trimmed = text.strip_prefix('.').unwrap_or(text);
    let arcs = trimmed
        .split('.')
        .map(|arc| arc.parse::<u32>())
        .collect::<Result<Vec<u32>, _>>()
        .map_err(|_| SnmpError::Encode(format!("invalid OID {text:?}")))?;
    if arcs.len() > MAX_OID_ARCS {
        return Err(SnmpError::Encode(format!(
            "OID {text:?} has more than {MAX_OID_ARCS} arcs"
        )));
    }
    ObjectIdentifier::new(arcs).ok_or_else(|| SnmpError::Encode(format!("invalid OID {text:?}")))
}

/// RFC 2578 § 3.5 limits OIDs to 128 sub-identifiers; longer ones are refused rather than
/// carried into storage and addon memory.
fn checked_oid(oid: &ObjectIdentifier) -> Result<String, SnmpError> {
    if oid.len() > MAX_OID_ARCS {
        return Err(SnmpError::Malformed(format!(
            "OID with {} arcs (at most {MAX_OID_ARCS})",
            oid.len()
        )));
    }
    Ok(oid_string(oid))
}

fn integer32(value: &Integer, what: &str) -> Result<i32, SnmpError> {
    i32::try_from(value).map_err(|_| SnmpError::Malformed(format!("{what} out of Integer32 range")))
}

fn ipv4(octets: &[u8; 4]) -> String {
    Ipv4Addr::from(*octets).to_string()
}

pub fn value_from_v2(value: &v2::VarBindValue) -> Result<SnmpValue, SnmpError> {
    use smi2::{ApplicationSyntax as A, ObjectSyntax as O, SimpleSyntax as S};
    Ok(match value {
        v2::VarBindValue::Value(O::Simple(S::Integer(i))) => {
            SnmpValue::Integer(integer32(i, "INTEGER value")?)
        }
        v2::VarBindValue::Value(O::Simple(S::String(s))) => SnmpValue::OctetString(s.to_vec()),
        v2::VarBindValue::Value(O::Simple(S::ObjectId(oid))) => {
            SnmpValue::ObjectId(checked_oid(oid)?)
        }
        v2::VarBindValue::Value(O::ApplicationWide(A::Address(ip))) => {
            SnmpValue::IpAddress(ipv4(&ip.0))
        }
        v2::VarBindValue::Value(O::ApplicationWide(A::Counter(c))) => SnmpValue::Counter32(c.0),
        v2::VarBindValue::Value(O::ApplicationWide(A::Unsigned(g))) => SnmpValue::Gauge32(g.0),
        v2::VarBindValue::Value(O::ApplicationWide(A::Ticks(t))) => SnmpValue::TimeTicks(t.0),
        v2::VarBindValue::Value(O::ApplicationWide(A::Arbitrary(o))) => {
            SnmpValue::Opaque(o.as_ref().to_vec())
        }
        v2::VarBindValue::Value(O::ApplicationWide(A::BigCounter(c))) => SnmpValue::Counter64(c.0),
        v2::VarBindValue::Unspecified => SnmpValue::Null,
        v2::VarBindValue::NoSuchObject => SnmpValue::NoSuchObject,
        v2::VarBindValue::NoSuchInstance => SnmpValue::NoSuchInstance,
        v2::VarBindValue::EndOfMibView => SnmpValue::EndOfMibView,
    })
}

fn value_from_v1(value: &smi1::ObjectSyntax) -> Result<SnmpValue, SnmpError> {
    use smi1::{ApplicationSyntax as A, NetworkAddress, ObjectSyntax as O, SimpleSyntax as S};
    Ok(match value {
        O::Simple(S::Number(i)) => SnmpValue::Integer(integer32(i, "INTEGER value")?),
        O::Simple(S::String(s)) => SnmpValue::OctetString(s.to_vec()),
        O::Simple(S::Object(oid)) => SnmpValue::ObjectId(checked_oid(oid)?),
        O::Simple(S::Empty) => SnmpValue::Null,
        O::ApplicationWide(A::Address(NetworkAddress::Internet(ip))) => {
            SnmpValue::IpAddress(ipv4(&ip.0))
        }
        O::ApplicationWide(A::Counter(c)) => SnmpValue::Counter32(c.0),
        O::ApplicationWide(A::Gauge(g)) => SnmpValue::Gauge32(g.0),
        O::ApplicationWide(A::Ticks(t)) => SnmpValue::TimeTicks(t.0),
        O::ApplicationWide(A::Arbitrary(o)) => SnmpValue::Opaque(o.as_ref().to_vec()),
    })
}

/// The wire form of a host value, for the encoders.
pub fn value_to_v2(value: &SnmpValue) -> Result<v2::VarBindValue, SnmpError> {
    use smi2::{ApplicationSyntax as A, ObjectSyntax as O, SimpleSyntax as S};
    let syntax = match value {
        SnmpValue::Integer(i) => O::Simple(S::Integer((*i).into())),
        SnmpValue::OctetString(s) => O::Simple(S::String(OctetString::from(s.clone()))),
        SnmpValue::ObjectId(oid) => O::Simple(S::ObjectId(parse_oid(oid)?)),
        SnmpValue::IpAddress(ip) => {
            let ip: Ipv4Addr = ip
                .parse()
                .map_err(|_| SnmpError::Encode(format!("invalid IpAddress {ip:?}")))?;
            O::ApplicationWide(A::Address(rasn_smi::v1::IpAddress(ip.octets().into())))
        }
        SnmpValue::Counter32(c) => O::ApplicationWide(A::Counter(smi1::Counter(*c))),
        SnmpValue::Gauge32(g) => O::ApplicationWide(A::Unsigned(smi1::Gauge(*g))),
        SnmpValue::TimeTicks(t) => O::ApplicationWide(A::Ticks(smi1::TimeTicks(*t))),
        SnmpValue::Opaque(bytes) => {
            // rasn-smi's Opaque has no public constructor; decoding its own encoding is the
            // supported way in.
            let mut der = vec![0x44];
            der.extend(ber_length(bytes.len()));
            der.extend_from_slice(bytes);
            let opaque: smi2::Opaque = rasn::ber::decode(&der)
                .map_err(|e| SnmpError::Encode(format!("opaque value: {e}")))?;
            O::ApplicationWide(A::Arbitrary(opaque))
        }
        SnmpValue::Counter64(c) => O::ApplicationWide(A::BigCounter(smi2::Counter64(*c))),
        SnmpValue::Null => return Ok(v2::VarBindValue::Unspecified),
        SnmpValue::NoSuchObject => return Ok(v2::VarBindValue::NoSuchObject),
        SnmpValue::NoSuchInstance => return Ok(v2::VarBindValue::NoSuchInstance),
        SnmpValue::EndOfMibView => return Ok(v2::VarBindValue::EndOfMibView),
    };
    Ok(v2::VarBindValue::Value(syntax))
}

fn ber_length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|&b| b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

pub fn varbind_to_v2(varbind: &Varbind) -> Result<v2::VarBind, SnmpError> {
    Ok(v2::VarBind {
        name: parse_oid(&varbind.oid)?,
        value: value_to_v2(&varbind.value)?,
    })
}

fn check_count(count: usize) -> Result<(), SnmpError> {
    if count > MAX_VARBINDS {
        return Err(SnmpError::TooBig(format!(
            "{count} varbinds (at most {MAX_VARBINDS})"
        )));
    }
    Ok(())
}

/// The notification varbinds of an SNMPv2-Trap or InformRequest PDU, mapped into an
/// `SnmpTrap` (RFC 3416 § 4.2.6: sysUpTime.0 first, snmpTrapOID.0 second).
pub fn trap_from_v2(
    version: SnmpVersion,
    pdu: &v2::Pdu,
    source: SocketAddr,
    is_inform: bool,
) -> Result<SnmpTrap, SnmpError> {
    let bindings = &pdu.variable_bindings;
    check_count(bindings.len())?;
    let (uptime_vb, trap_oid_vb) = match bindings.as_slice() {
        [first, second, ..] => (first, second),
        _ => {
            return Err(SnmpError::Malformed(format!(
                "notification has {} varbinds; sysUpTime.0 and snmpTrapOID.0 are required",
                bindings.len()
            )));
        }
    };
    if &*uptime_vb.name != SYS_UPTIME_0 {
        return Err(SnmpError::Malformed(format!(
            "first varbind is {}, not sysUpTime.0",
            checked_oid(&uptime_vb.name)?
        )));
    }
    if &*trap_oid_vb.name != SNMP_TRAP_OID_0 {
        return Err(SnmpError::Malformed(format!(
            "second varbind is {}, not snmpTrapOID.0",
            checked_oid(&trap_oid_vb.name)?
        )));
    }
    let uptime = match value_from_v2(&uptime_vb.value)? {
        SnmpValue::TimeTicks(t) => t,
        // Some agents send sysUpTime as a plain number; the value is still meaningful.
        SnmpValue::Gauge32(t) | SnmpValue::Counter32(t) => t,
        SnmpValue::Integer(t) if t >= 0 => t.unsigned_abs(),
        other => {
            return Err(SnmpError::Malformed(format!(
                "sysUpTime.0 is not TimeTicks: {other:?}"
            )));
        }
    };
    let trap_oid = match value_from_v2(&trap_oid_vb.value)? {
        SnmpValue::ObjectId(oid) => oid,
        other => {
            return Err(SnmpError::Malformed(format!(
                "snmpTrapOID.0 is not an OBJECT IDENTIFIER: {other:?}"
            )));
        }
    };
    let varbinds = bindings[2..]
        .iter()
        .map(|vb| {
            Ok(Varbind {
                oid: checked_oid(&vb.name)?,
                value: value_from_v2(&vb.value)?,
            })
        })
        .collect::<Result<Vec<_>, SnmpError>>()?;
    let agent_address = trap_address(&varbinds).unwrap_or_else(|| source.ip().to_string());
    Ok(SnmpTrap {
        version,
        source: source.to_string(),
        agent_address,
        security_name: None,
        context_name: String::new(),
        trap_oid,
        uptime,
        varbinds,
        is_inform,
        v1: None,
    })
}

/// snmpTrapAddress.0 when a proxy added it: the device the trap is about.
fn trap_address(varbinds: &[Varbind]) -> Option<String> {
    let wanted = oid_string(SNMP_TRAP_ADDRESS_0);
    varbinds.iter().find_map(|vb| match &vb.value {
        SnmpValue::IpAddress(ip) if vb.oid == wanted => Some(ip.clone()),
        _ => None,
    })
}

/// RFC 3584 § 3.1 (1): an SNMPv1 Trap-PDU as the SNMPv2 notification it stands for.
///
/// snmpTrapOID is snmpTraps.{generic-trap + 1} for the generic traps 0–5 and
/// enterprise.0.specific-trap for enterpriseSpecific (6). The varbinds are kept as received;
/// nothing is appended (the v1 header travels in `SnmpTrap::v1` instead of the
/// snmpTrapEnterprise/snmpTrapAddress varbinds the RFC adds for a proxy's downstream).
pub fn trap_from_v1(trap: &v1::Trap, source: SocketAddr) -> Result<SnmpTrap, SnmpError> {
    check_count(trap.variable_bindings.len())?;
    let enterprise = checked_oid(&trap.enterprise)?;
    let generic = integer32(&trap.generic_trap, "generic-trap")?;
    let specific = integer32(&trap.specific_trap, "specific-trap")?;
    let trap_oid = match generic {
        0..=5 => format!("{}.{}", oid_string(SNMP_TRAPS), generic + 1),
        6 => {
            if trap.enterprise.len() + 2 > MAX_OID_ARCS {
                return Err(SnmpError::Malformed(format!(
                    "enterprise OID with {} arcs leaves no room for .0.specific",
                    trap.enterprise.len()
                )));
            }
            // Sub-identifiers are unsigned; a negative specific-trap cannot form an OID.
            let specific_arc = u32::try_from(specific)
                .map_err(|_| SnmpError::Malformed(format!("negative specific-trap {specific}")))?;
            format!("{enterprise}.0.{specific_arc}")
        }
        other => {
            return Err(SnmpError::Malformed(format!(
                "generic-trap {other} is outside 0..=6"
            )));
        }
    };
    let smi1::NetworkAddress::Internet(agent_ip) = &trap.agent_addr;
    let agent_addr = ipv4(&agent_ip.0);
    let varbinds = trap
        .variable_bindings
        .iter()
        .map(|vb| {
            Ok(Varbind {
                oid: checked_oid(&vb.name)?,
                value: value_from_v1(&vb.value)?,
            })
        })
        .collect::<Result<Vec<_>, SnmpError>>()?;
    let agent_address = trap_address(&varbinds).unwrap_or_else(|| {
        if *agent_ip.0 == [0, 0, 0, 0] {
            source.ip().to_string()
        } else {
            agent_addr.clone()
        }
    });
    Ok(SnmpTrap {
        version: SnmpVersion::V1,
        source: source.to_string(),
        agent_address,
        security_name: None,
        context_name: String::new(),
        trap_oid,
        uptime: trap.time_stamp.0,
        varbinds,
        is_inform: false,
        v1: Some(SnmpV1Header {
            enterprise,
            agent_addr,
            generic_trap: generic,
            specific_trap: specific,
        }),
    })
}

/// The notification varbind list for encoders: sysUpTime.0, snmpTrapOID.0, then `varbinds`.
pub fn notification_varbinds(
    uptime: u32,
    trap_oid: &str,
    varbinds: &[Varbind],
) -> Result<Vec<v2::VarBind>, SnmpError> {
    check_count(varbinds.len() + 2).map_err(|e| SnmpError::Encode(e.to_string()))?;
    let mut out = Vec::with_capacity(varbinds.len() + 2);
    out.push(v2::VarBind {
        name: ObjectIdentifier::new_unchecked(SYS_UPTIME_0.into()),
        value: v2::VarBindValue::Value(smi1::TimeTicks(uptime).into()),
    });
    out.push(v2::VarBind {
        name: ObjectIdentifier::new_unchecked(SNMP_TRAP_OID_0.into()),
        value: v2::VarBindValue::Value(parse_oid(trap_oid)?.into()),
    });
    for varbind in varbinds {
        out.push(varbind_to_v2(varbind)?);
    }
    Ok(out)
}

/// The name of a PDU type as RFC 3416 spells it, for `UnsupportedPdu`.
pub fn pdu_name(pdu: &v2::Pdus) -> &'static str {
    match pdu {
        v2::Pdus::GetRequest(_) => "get-request",
        v2::Pdus::GetNextRequest(_) => "get-next-request",
        v2::Pdus::Response(_) => "response",
        v2::Pdus::SetRequest(_) => "set-request",
        v2::Pdus::GetBulkRequest(_) => "get-bulk-request",
        v2::Pdus::InformRequest(_) => "inform-request",
        v2::Pdus::Trap(_) => "snmpV2-trap",
        v2::Pdus::Report(_) => "report",
    }
}

pub fn v1_pdu_name(pdu: &v1::Pdus) -> &'static str {
    match pdu {
        v1::Pdus::GetRequest(_) => "get-request",
        v1::Pdus::GetNextRequest(_) => "get-next-request",
        v1::Pdus::GetResponse(_) => "get-response",
        v1::Pdus::SetRequest(_) => "set-request",
        v1::Pdus::Trap(_) => "trap",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vb(oid: &str, value: SnmpValue) -> Varbind {
        Varbind {
            oid: oid.to_owned(),
            value,
        }
    }

    #[test]
    fn oids_roundtrip_through_text() {
        let oid = parse_oid("1.3.6.1.4.1.8072.2.3").unwrap();
        assert_eq!(oid_string(&oid), "1.3.6.1.4.1.8072.2.3");
        assert_eq!(oid_string(&parse_oid(".1.3.6").unwrap()), "1.3.6");
        for bad in ["", "1..3", "1.3.x", "9.1", "1.3.4294967296"] {
            assert!(parse_oid(bad).is_err(), "{bad}");
        }
        let long = vec!["1"; MAX_OID_ARCS + 1].join(".");
        assert!(parse_oid(&long).is_err());
    }

    #[test]
    fn every_value_type_roundtrips_through_the_wire_form() {
        for value in [
            SnmpValue::Integer(-5),
            SnmpValue::OctetString(b"x\0y".to_vec()),
            SnmpValue::Null,
            SnmpValue::ObjectId("1.3.6.1".into()),
            SnmpValue::IpAddress("192.0.2.1".into()),
            SnmpValue::Counter32(u32::MAX),
            SnmpValue::Gauge32(7),
            SnmpValue::TimeTicks(100),
            SnmpValue::Opaque(vec![0x9f, 0x78, 0x04, 0, 0, 0, 1]),
            SnmpValue::Opaque(vec![0xaa; 300]),
            SnmpValue::Counter64(u64::MAX),
            SnmpValue::NoSuchObject,
            SnmpValue::NoSuchInstance,
            SnmpValue::EndOfMibView,
        ] {
            let wire = value_to_v2(&value).unwrap();
            let bytes = rasn::ber::encode(&wire).unwrap();
            let back: v2::VarBindValue = rasn::ber::decode(&bytes).unwrap();
            assert_eq!(value_from_v2(&back).unwrap(), value);
        }
        assert!(value_to_v2(&SnmpValue::IpAddress("::1".into())).is_err());
    }

    fn notification(varbinds: Vec<v2::VarBind>) -> v2::Pdu {
        v2::Pdu {
            request_id: 1,
            error_status: 0,
            error_index: 0,
            variable_bindings: varbinds,
        }
    }

    fn source() -> SocketAddr {
        "198.51.100.9:1162".parse().unwrap()
    }

    #[test]
    fn v2_notification_takes_uptime_and_trap_oid_out_of_the_varbinds() {
        let varbinds = notification_varbinds(
            42,
            "1.3.6.1.6.3.1.1.5.3",
            &[vb("1.3.6.1.2.1.2.2.1.1.3", SnmpValue::Integer(3))],
        )
        .unwrap();
        let trap =
            trap_from_v2(SnmpVersion::V2c, &notification(varbinds), source(), false).unwrap();
        assert_eq!(trap.uptime, 42);
        assert_eq!(trap.trap_oid, "1.3.6.1.6.3.1.1.5.3");
        assert_eq!(trap.agent_address, "198.51.100.9");
        assert_eq!(trap.source, "198.51.100.9:1162");
        assert_eq!(
            trap.varbinds,
            vec![vb("1.3.6.1.2.1.2.2.1.1.3", SnmpValue::Integer(3))]
        );
    }

    #[test]
    fn snmp_trap_address_names_the_agent_of_a_proxied_trap() {
        let varbinds = notification_varbinds(
            1,
            "1.3.6.1.6.3.1.1.5.4",
            &[vb(
                "1.3.6.1.6.3.18.1.3.0",
                SnmpValue::IpAddress("192.0.2.77".into()),
            )],
        )
        .unwrap();
        let trap =
            trap_from_v2(SnmpVersion::V2c, &notification(varbinds), source(), false).unwrap();
        assert_eq!(trap.agent_address, "192.0.2.77");
        assert_eq!(trap.varbinds.len(), 1, "snmpTrapAddress.0 stays a varbind");
    }

    #[test]
    fn v2_notification_without_its_header_varbinds_is_malformed() {
        let full = notification_varbinds(1, "1.3.6.1.6.3.1.1.5.3", &[]).unwrap();
        for (varbinds, why) in [
            (vec![], "sysUpTime.0 and snmpTrapOID.0 are required"),
            (vec![full[0].clone()], "are required"),
            (vec![full[1].clone(), full[0].clone()], "not sysUpTime.0"),
            (vec![full[0].clone(), full[0].clone()], "not snmpTrapOID.0"),
        ] {
            let err = trap_from_v2(SnmpVersion::V2c, &notification(varbinds), source(), false)
                .unwrap_err();
            assert!(
                matches!(&err, SnmpError::Malformed(m) if m.contains(why)),
                "{err}"
            );
        }
        let mut wrong_type = full.clone();
        wrong_type[1].value = v2::VarBindValue::Unspecified;
        let err =
            trap_from_v2(SnmpVersion::V2c, &notification(wrong_type), source(), false).unwrap_err();
        assert!(
            err.to_string().contains("not an OBJECT IDENTIFIER"),
            "{err}"
        );
    }

    #[test]
    fn too_many_varbinds_is_too_big() {
        let many: Vec<Varbind> = (0..MAX_VARBINDS)
            .map(|i| vb(&format!("1.3.6.1.4.1.1.{i}"), SnmpValue::Null))
            .collect();
        assert!(notification_varbinds(1, "1.3.6.1", &many).is_err());
        let mut varbinds = notification_varbinds(1, "1.3.6.1", &many[..10]).unwrap();
        let extra = varbinds[2].clone();
        varbinds.resize(MAX_VARBINDS + 1, extra);
        let err =
            trap_from_v2(SnmpVersion::V2c, &notification(varbinds), source(), false).unwrap_err();
        assert!(matches!(err, SnmpError::TooBig(_)), "{err}");
    }

    fn v1_trap(generic: i32, specific: i32, agent: [u8; 4]) -> v1::Trap {
        v1::Trap {
            enterprise: parse_oid("1.3.6.1.4.1.8072.2.3").unwrap(),
            agent_addr: smi1::NetworkAddress::Internet(smi1::IpAddress(agent.into())),
            generic_trap: generic.into(),
            specific_trap: specific.into(),
            time_stamp: smi1::TimeTicks(55),
            variable_bindings: vec![v1::VarBind {
                name: parse_oid("1.3.6.1.2.1.2.2.1.1.3").unwrap(),
                value: smi1::ObjectSyntax::Simple(smi1::SimpleSyntax::Number(3.into())),
            }],
        }
    }

    /// RFC 3584 § 3.1 (1), table-tested over every generic-trap value.
    #[test]
    fn rfc3584_maps_v1_traps_to_snmp_trap_oid() {
        for (generic, specific, expected) in [
            (0, 0, "1.3.6.1.6.3.1.1.5.1"),
            (1, 0, "1.3.6.1.6.3.1.1.5.2"),
            (2, 0, "1.3.6.1.6.3.1.1.5.3"),
            (3, 0, "1.3.6.1.6.3.1.1.5.4"),
            (4, 0, "1.3.6.1.6.3.1.1.5.5"),
            (5, 0, "1.3.6.1.6.3.1.1.5.6"),
            (6, 17, "1.3.6.1.4.1.8072.2.3.0.17"),
        ] {
            let trap =
                trap_from_v1(&v1_trap(generic, specific, [192, 0, 2, 10]), source()).unwrap();
            assert_eq!(trap.trap_oid, expected, "generic {generic}");
            assert_eq!(trap.uptime, 55);
            assert_eq!(trap.varbinds.len(), 1, "nothing is added");
            assert_eq!(trap.agent_address, "192.0.2.10");
            let header = trap.v1.unwrap();
            assert_eq!(header.generic_trap, generic);
            assert_eq!(header.enterprise, "1.3.6.1.4.1.8072.2.3");
        }
        for (generic, specific) in [(7, 0), (-1, 0), (6, -1)] {
            assert!(trap_from_v1(&v1_trap(generic, specific, [1, 2, 3, 4]), source()).is_err());
        }
    }

    #[test]
    fn v1_agent_addr_of_zero_falls_back_to_the_source() {
        let trap = trap_from_v1(&v1_trap(2, 0, [0, 0, 0, 0]), source()).unwrap();
        assert_eq!(trap.agent_address, "198.51.100.9");
        assert_eq!(trap.v1.unwrap().agent_addr, "0.0.0.0");
    }
}
