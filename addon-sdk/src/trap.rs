//! Helpers for SNMP trap addons: varbinds found by OID prefix, values as text or numbers,
//! [`OidTable`] (trap OID → what it means) and [`MibEnum`] (integer MIB enumerations).
//!
//! OIDs are dotted decimal without a leading dot, as the host delivers them; a leading dot in
//! an OID the addon writes is ignored. Prefixes match whole arcs, so `1.3.6.1.2.1.2.2.1.1` is
//! a prefix of `1.3.6.1.2.1.2.2.1.1.3` but not of `1.3.6.1.2.1.2.2.1.10.3`.

use crate::{AddonError, SnmpTrap, SnmpValue, SnmpVersion};

/// The rest of `oid` after `prefix`, compared arc by arc: the table index of a column OID.
///
/// ```
/// use opsconductor_addon_sdk::oid_suffix;
/// assert_eq!(oid_suffix("1.3.6.1.2.1.2.2.1.1.3", "1.3.6.1.2.1.2.2.1.1"), Some("3"));
/// assert_eq!(oid_suffix("1.3.6.1.2.1.2.2.1.1", "1.3.6.1.2.1.2.2.1.1"), Some(""));
/// assert_eq!(oid_suffix("1.3.6.1.2.1.2.2.1.10.3", "1.3.6.1.2.1.2.2.1.1"), None);
/// ```
pub fn oid_suffix<'o>(oid: &'o str, prefix: &str) -> Option<&'o str> {
    let oid = oid.strip_prefix('.').unwrap_or(oid);
    let prefix = prefix.strip_prefix('.').unwrap_or(prefix);
    match oid.strip_prefix(prefix)? {
        "" => Some(""),
        rest => rest.strip_prefix('.'),
    }
}

impl SnmpTrap {
    /// The first varbind whose OID is `prefix` or lies under it, with the rest of its OID
    /// (for a table column, the row index): on a linkDown trap,
    /// `trap.varbind("1.3.6.1.2.1.2.2.1.8")` is `Some((&Integer(2), "3"))` for ifOperStatus.3.
    pub fn varbind(&self, prefix: &str) -> Option<(&SnmpValue, &str)> {
        self.varbinds_under(prefix).next()
    }

    /// Every varbind under `prefix`, in the order received, with the rest of its OID.
    pub fn varbinds_under<'t>(
        &'t self,
        prefix: &str,
    ) -> impl Iterator<Item = (&'t SnmpValue, &'t str)> {
        self.varbinds
            .iter()
            .filter_map(move |vb| Some((&vb.value, oid_suffix(&vb.oid, prefix)?)))
    }

    /// Like [`SnmpTrap::varbind`], or an `invalid-input` error naming the OID.
    pub fn req_varbind(&self, prefix: &str) -> Result<(&SnmpValue, &str), AddonError> {
        self.varbind(prefix)
            .ok_or_else(|| AddonError::invalid_input(format!("missing varbind {prefix}")))
    }

    /// The first varbind under `prefix` as text (see [`SnmpValue::text`]); `None` when it is
    /// absent or blank, like the JSON helpers.
    pub fn text(&self, prefix: &str) -> Option<String> {
        let text = self.varbind(prefix)?.0.text();
        (!text.trim().is_empty()).then_some(text)
    }

    /// The first varbind under `prefix` as a number (see [`SnmpValue::as_i64`]).
    pub fn int(&self, prefix: &str) -> Option<i64> {
        self.varbind(prefix)?.0.as_i64()
    }

    /// The first varbind under `prefix` decoded by an enumeration (see [`MibEnum::text`]):
    /// `trap.enum_text("1.3.6.1.2.1.2.2.1.8", &mib::IF_OPER_STATUS)` is `Some("down")` for an
    /// ifOperStatus varbind of 2.
    pub fn enum_text(&self, prefix: &str, names: &MibEnum) -> Option<String> {
        Some(names.text(self.varbind(prefix)?.0))
    }
}

impl SnmpValue {
    /// The value as an operator reads it: numbers in decimal; an octet string as text when it
    /// is printable UTF-8 (trailing NULs, which some agents send, dropped), else as hex bytes
    /// `00:1a:2b`; opaque as hex; OIDs and IP addresses as sent; TimeTicks as
    /// `[<days>d ]HH:MM:SS.cc`; `null` and the exceptions as empty or their SMI name.
    pub fn text(&self) -> String {
        match self {
            SnmpValue::Integer(v) => v.to_string(),
            SnmpValue::Counter32(v) | SnmpValue::Gauge32(v) => v.to_string(),
            SnmpValue::Counter64(v) => v.to_string(),
            SnmpValue::Timeticks(t) => timeticks_text(*t),
            SnmpValue::OctetString(_) => match self.as_str() {
                Some(s) => s.to_owned(),
                None => self.as_bytes().map(hex_text).unwrap_or_default(),
            },
            SnmpValue::Opaque(b) => hex_text(b),
            SnmpValue::ObjectId(s) | SnmpValue::IpAddress(s) => s.clone(),
            SnmpValue::Null => String::new(),
            SnmpValue::NoSuchObject => "noSuchObject".to_owned(),
            SnmpValue::NoSuchInstance => "noSuchInstance".to_owned(),
            SnmpValue::EndOfMibView => "endOfMibView".to_owned(),
        }
    }

    /// Integer, Counter32, Gauge32, TimeTicks and Counter64 (when it fits) as a number.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            SnmpValue::Integer(v) => Some(i64::from(*v)),
            SnmpValue::Counter32(v) | SnmpValue::Gauge32(v) | SnmpValue::Timeticks(v) => {
                Some(i64::from(*v))
            }
            SnmpValue::Counter64(v) => i64::try_from(*v).ok(),
            _ => None,
        }
    }

    /// An octet string that is printable UTF-8, without trailing NULs.
    pub fn as_str(&self) -> Option<&str> {
        let bytes = match self {
            SnmpValue::OctetString(b) => b.as_slice(),
            _ => return None,
        };
        let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let s = std::str::from_utf8(&bytes[..end]).ok()?;
        let printable = !s
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'));
        printable.then_some(s)
    }

    /// The bytes of an octet string or opaque value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            SnmpValue::OctetString(b) | SnmpValue::Opaque(b) => Some(b),
            _ => None,
        }
    }

    /// The SMI type's name as the WIT spells it (`integer`, `octet-string`, ...), for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            SnmpValue::Integer(_) => "integer",
            SnmpValue::OctetString(_) => "octet-string",
            SnmpValue::Null => "null",
            SnmpValue::ObjectId(_) => "object-id",
            SnmpValue::IpAddress(_) => "ip-address",
            SnmpValue::Counter32(_) => "counter32",
            SnmpValue::Gauge32(_) => "gauge32",
            SnmpValue::Timeticks(_) => "timeticks",
            SnmpValue::Opaque(_) => "opaque",
            SnmpValue::Counter64(_) => "counter64",
            SnmpValue::NoSuchObject => "no-such-object",
            SnmpValue::NoSuchInstance => "no-such-instance",
            SnmpValue::EndOfMibView => "end-of-mib-view",
        }
    }
}

impl SnmpVersion {
    /// `v1`, `v2c` or `v3`.
    pub fn as_str(self) -> &'static str {
        match self {
            SnmpVersion::V1 => "v1",
            SnmpVersion::V2c => "v2c",
            SnmpVersion::V3 => "v3",
        }
    }
}

fn hex_text(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.join(":")
}

/// Hundredths of a second as `HH:MM:SS.cc`, with `<days>d ` in front from one day on.
fn timeticks_text(ticks: u32) -> String {
    let (cs, s) = (ticks % 100, ticks / 100);
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let clock = format!("{h:02}:{m:02}:{s:02}.{cs:02}");
    if d == 0 {
        clock
    } else {
        format!("{d}d {clock}")
    }
}

/// A fixed table from OIDs (usually trap OIDs) to values, written inline like [`crate::Mapping`]:
///
/// ```
/// use opsconductor_addon_sdk::OidTable;
/// const TRAPS: OidTable<(&str, bool)> = OidTable::new(&[
///     ("1.3.6.1.6.3.1.1.5.3", ("linkDown", false)),
///     ("1.3.6.1.6.3.1.1.5.4", ("linkUp", true)),
///     ("1.3.6.1.4.1.9", ("cisco", false)),
/// ]);
/// assert_eq!(TRAPS.get("1.3.6.1.6.3.1.1.5.4"), Some(("linkUp", true)));
/// assert_eq!(TRAPS.longest_prefix("1.3.6.1.4.1.9.9.41.2.0.1"), Some((("cisco", false), "9.41.2.0.1")));
/// ```
///
/// A linear scan, as for `Mapping`: vendor trap tables have tens of entries.
#[derive(Debug, Clone, Copy)]
pub struct OidTable<'a, T> {
    entries: &'a [(&'a str, T)],
}

impl<'a, T: Copy> OidTable<'a, T> {
    pub const fn new(entries: &'a [(&'a str, T)]) -> OidTable<'a, T> {
        OidTable { entries }
    }

    /// The value for exactly `oid`.
    pub fn get(&self, oid: &str) -> Option<T> {
        self.entries
            .iter()
            .find(|(k, _)| oid_suffix(oid, k) == Some(""))
            .map(|(_, v)| *v)
    }

    /// The value of the longest key that is `oid` or a prefix of it, with the rest of `oid`.
    pub fn longest_prefix<'o>(&self, oid: &'o str) -> Option<(T, &'o str)> {
        self.entries
            .iter()
            .filter_map(|(k, v)| Some((k.trim_start_matches('.').len(), *v, oid_suffix(oid, k)?)))
            // `rev` so that among equal keys the first listed wins, as in `Mapping`.
            .rev()
            .max_by_key(|(len, ..)| *len)
            .map(|(_, v, rest)| (v, rest))
    }
}

/// The names of an integer MIB enumeration, e.g. `ifOperStatus`:
///
/// ```
/// use opsconductor_addon_sdk::{SnmpValue, mib};
/// assert_eq!(mib::IF_OPER_STATUS.name(2), Some("down"));
/// assert_eq!(mib::IF_OPER_STATUS.text(&SnmpValue::Integer(7)), "lowerLayerDown");
/// assert_eq!(mib::IF_OPER_STATUS.text(&SnmpValue::Integer(99)), "99");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MibEnum<'a> {
    entries: &'a [(i64, &'a str)],
}

impl<'a> MibEnum<'a> {
    pub const fn new(entries: &'a [(i64, &'a str)]) -> MibEnum<'a> {
        MibEnum { entries }
    }

    /// The name of `value`, if the enumeration has one.
    pub fn name(&self, value: i64) -> Option<&'a str> {
        self.entries
            .iter()
            .find(|(v, _)| *v == value)
            .map(|(_, n)| *n)
    }

    /// The value named `name`, the reverse of [`MibEnum::name`].
    pub fn value(&self, name: &str) -> Option<i64> {
        self.entries
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(v, _)| *v)
    }

    /// The name of a varbind's value, or its plain text when it has none (an agent newer than
    /// the MIB the addon knows, or not a number at all): the operator still sees what came.
    pub fn text(&self, value: &SnmpValue) -> String {
        match value.as_i64().and_then(|v| self.name(v)) {
            Some(name) => name.to_owned(),
            None => value.text(),
        }
    }
}

/// Standard MIB objects many trap addons need.
pub mod mib {
    use super::{MibEnum, OidTable};

    /// The SNMPv2 generic traps, `snmpTraps` (RFC 3418); v1 generic traps 0-5 map here (RFC 3584).
    pub const SNMP_TRAPS: &str = "1.3.6.1.6.3.1.1.5";

    /// The six generic traps by name: coldStart, warmStart, linkDown, linkUp,
    /// authenticationFailure, egpNeighborLoss.
    pub const STANDARD_TRAPS: OidTable<'static, &'static str> = OidTable::new(&[
        ("1.3.6.1.6.3.1.1.5.1", "coldStart"),
        ("1.3.6.1.6.3.1.1.5.2", "warmStart"),
        ("1.3.6.1.6.3.1.1.5.3", "linkDown"),
        ("1.3.6.1.6.3.1.1.5.4", "linkUp"),
        ("1.3.6.1.6.3.1.1.5.5", "authenticationFailure"),
        ("1.3.6.1.6.3.1.1.5.6", "egpNeighborLoss"),
    ]);

    /// IF-MIB `ifAdminStatus`.
    pub const IF_ADMIN_STATUS: MibEnum<'static> =
        MibEnum::new(&[(1, "up"), (2, "down"), (3, "testing")]);

    /// IF-MIB `ifOperStatus`.
    pub const IF_OPER_STATUS: MibEnum<'static> = MibEnum::new(&[
        (1, "up"),
        (2, "down"),
        (3, "testing"),
        (4, "unknown"),
        (5, "dormant"),
        (6, "notPresent"),
        (7, "lowerLayerDown"),
    ]);

    /// SNMPv2-TC `TruthValue`.
    pub const TRUTH_VALUE: MibEnum<'static> = MibEnum::new(&[(1, "true"), (2, "false")]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, testing};

    #[test]
    fn suffixes_match_whole_arcs() {
        let cases = [
            ("1.3.6.1.2.1.2.2.1.1.3", "1.3.6.1.2.1.2.2.1.1", Some("3")),
            ("1.3.6.1.2.1.2.2.1.1.3", ".1.3.6.1.2.1.2.2.1.1", Some("3")),
            (
                ".1.3.6.1.4.1.31926.2.1.1.7.1",
                "1.3.6.1.4.1.31926",
                Some("2.1.1.7.1"),
            ),
            ("1.3.6.1.2.1.2.2.1.1", "1.3.6.1.2.1.2.2.1.1", Some("")),
            ("1.3.6.1.2.1.2.2.1.10.3", "1.3.6.1.2.1.2.2.1.1", None),
            ("1.3.6.1.2.1.2.2.1", "1.3.6.1.2.1.2.2.1.1", None),
        ];
        for (oid, prefix, want) in cases {
            assert_eq!(oid_suffix(oid, prefix), want, "oid_suffix({oid}, {prefix})");
        }
    }

    #[test]
    fn varbinds_by_prefix() {
        let trap = testing::trap(
            "1.3.6.1.6.3.1.1.5.3",
            [
                ("1.3.6.1.2.1.2.2.1.1.3", SnmpValue::Integer(3)),
                ("1.3.6.1.2.1.2.2.1.10.3", SnmpValue::Counter32(10)),
                ("1.3.6.1.2.1.2.2.1.2.3", testing::octets("ge-0/0/3")),
                ("1.3.6.1.2.1.31.1.1.1.18.3", testing::octets(" ")),
            ],
        );
        assert_eq!(
            trap.varbind("1.3.6.1.2.1.2.2.1.1"),
            Some((&SnmpValue::Integer(3), "3"))
        );
        assert_eq!(trap.int("1.3.6.1.2.1.2.2.1.10"), Some(10));
        assert_eq!(
            trap.text("1.3.6.1.2.1.2.2.1.2").as_deref(),
            Some("ge-0/0/3")
        );
        assert_eq!(
            trap.text("1.3.6.1.2.1.31.1.1.1.18"),
            None,
            "blank is absent"
        );
        assert_eq!(trap.varbinds_under("1.3.6.1.2.1.2.2.1").count(), 3);
        let err = trap.req_varbind("1.3.6.1.2.1.2.2.1.8").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert_eq!(err.message, "missing varbind 1.3.6.1.2.1.2.2.1.8");
    }

    #[test]
    fn values_as_text_and_numbers() {
        let cases = [
            (SnmpValue::Integer(-5), "-5", Some(-5)),
            (testing::octets("ge-0/0/3"), "ge-0/0/3", None),
            (SnmpValue::OctetString(b"eth1\0\0".to_vec()), "eth1", None),
            (
                SnmpValue::OctetString(vec![0, 0x1a, 0xff]),
                "00:1a:ff",
                None,
            ),
            (SnmpValue::OctetString(vec![b'a', 7]), "61:07", None),
            (SnmpValue::Opaque(vec![0x9f, 0x78]), "9f:78", None),
            (SnmpValue::ObjectId("1.3.6.1".into()), "1.3.6.1", None),
            (SnmpValue::IpAddress("192.0.2.7".into()), "192.0.2.7", None),
            (SnmpValue::Counter32(7), "7", Some(7)),
            (SnmpValue::Gauge32(8), "8", Some(8)),
            (SnmpValue::Timeticks(12_345), "00:02:03.45", Some(12_345)),
            (
                SnmpValue::Timeticks(8_640_001),
                "1d 00:00:00.01",
                Some(8_640_001),
            ),
            (SnmpValue::Counter64(u64::MAX), "18446744073709551615", None),
            (SnmpValue::Counter64(9), "9", Some(9)),
            (SnmpValue::Null, "", None),
            (SnmpValue::NoSuchInstance, "noSuchInstance", None),
        ];
        for (value, text, int) in cases {
            assert_eq!(value.text(), text, "{value:?}");
            assert_eq!(value.as_i64(), int, "{value:?}");
        }
        assert_eq!(SnmpValue::Opaque(vec![]).type_name(), "opaque");
        assert_eq!(SnmpVersion::V2c.as_str(), "v2c");
        assert_eq!(testing::octets("x").as_bytes(), Some(&b"x"[..]));
    }

    #[test]
    fn oid_table_exact_and_longest_prefix() {
        const T: OidTable<u8> = OidTable::new(&[
            ("1.3.6.1.4.1.31926.3", 1),
            ("1.3.6.1.4.1.31926.3.1", 2),
            ("1.3.6.1.4.1.31926.3.1", 3),
            ("1.3.6.1.4.1", 4),
        ]);
        assert_eq!(T.get("1.3.6.1.4.1.31926.3.1"), Some(2));
        assert_eq!(T.get(".1.3.6.1.4.1.31926.3.1"), Some(2));
        assert_eq!(T.get("1.3.6.1.4.1.31926.3.11"), None);
        assert_eq!(T.longest_prefix("1.3.6.1.4.1.31926.3.1"), Some((2, "")));
        assert_eq!(T.longest_prefix("1.3.6.1.4.1.31926.3.11"), Some((1, "11")));
        assert_eq!(T.longest_prefix("1.3.6.1.4.1.9.9"), Some((4, "9.9")));
        assert_eq!(T.longest_prefix("1.3.6.1.6"), None);
    }

    #[test]
    fn mib_enums() {
        assert_eq!(mib::IF_ADMIN_STATUS.name(3), Some("testing"));
        assert_eq!(mib::IF_OPER_STATUS.name(6), Some("notPresent"));
        assert_eq!(mib::IF_OPER_STATUS.name(0), None);
        assert_eq!(mib::IF_OPER_STATUS.value("lowerLayerDown"), Some(7));
        assert_eq!(mib::IF_OPER_STATUS.value("sideways"), None);
        let trap = testing::trap(
            "1.3.6.1.6.3.1.1.5.3",
            [
                ("1.3.6.1.2.1.2.2.1.8.3", SnmpValue::Integer(2)),
                ("1.3.6.1.2.1.2.2.1.7.3", SnmpValue::Integer(9)),
            ],
        );
        let oper = trap.enum_text("1.3.6.1.2.1.2.2.1.8", &mib::IF_OPER_STATUS);
        assert_eq!(oper.as_deref(), Some("down"));
        let admin = trap.enum_text("1.3.6.1.2.1.2.2.1.7.3", &mib::IF_ADMIN_STATUS);
        assert_eq!(admin.as_deref(), Some("9"), "unknown values as their text");
        assert_eq!(
            trap.enum_text("1.3.6.1.2.1.2.2.1.2", &mib::IF_OPER_STATUS),
            None
        );
        assert_eq!(mib::TRUTH_VALUE.text(&SnmpValue::Integer(1)), "true");
        assert_eq!(mib::TRUTH_VALUE.text(&testing::octets("yes")), "yes");
        assert_eq!(
            mib::STANDARD_TRAPS.get("1.3.6.1.6.3.1.1.5.1"),
            Some("coldStart")
        );
    }
}
