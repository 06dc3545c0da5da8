//! The catch-all trap addon: any trap becomes an alert, so that traps no vendor addon claims
//! are seen rather than only counted. Its manifest prefix `1.3` is the shortest there is, so
//! the registry (longest prefix wins) gives it only what nothing else takes; it ships disabled.
//!
//! - **alert type** and **identity** (`trapOid`) the trap OID: a v1 trap's is already its
//!   RFC 3584 form, `<enterprise>.0.<specific>` or the snmpTraps OID of generic traps 0-5.
//!   The same trap from the same device is therefore one alert whose count grows;
//! - **device** the agent address;
//! - **severity** `warning` for the generic traps that report trouble (coldStart, warmStart,
//!   authenticationFailure, egpNeighborLoss), otherwise the manifest's `info`: without a MIB
//!   there is no telling;
//! - **title** `<name or trap OID> from <agent>`; **message** version, sender and uptime;
//! - **fields** every varbind as `<oid> = <text>` (see `SnmpValue::text`), bounded to stay
//!   inside the host's limits (128 fields, 4 KiB values, 128-byte names): at most
//!   [`MAX_VARBIND_FIELDS`], values cut at [`MAX_VALUE_CHARS`], plus the v1 header.

use opsconductor_addon_sdk::prelude::*;

#[derive(Default)]
struct GenericTrap;

register_addon!(GenericTrap);

/// Varbinds kept as fields; the rest are counted in `varbindsOmitted`. Leaves room under the
/// host's 128 for the identity and the v1 header fields.
const MAX_VARBIND_FIELDS: usize = 100;
/// Characters kept of a value; the host's limit is 4 KiB, and a catch-all alert is for
/// reading, not archiving.
const MAX_VALUE_CHARS: usize = 1000;
/// The host refuses field names over 128 bytes; an OID that long keeps its tail (the index).
const MAX_NAME_BYTES: usize = 128;

impl Addon for GenericTrap {
    fn parse_trap(&self, trap: &SnmpTrap) -> Result<Vec<Alert>> {
        let oid = trap.trap_oid.as_str();
        if oid.is_empty() {
            return Err(AddonError::invalid_input("trap has no snmpTrapOID"));
        }
        let name = mib::STANDARD_TRAPS.get(oid);
        let severity = match name {
            Some("coldStart" | "warmStart" | "authenticationFailure" | "egpNeighborLoss") => {
                Some(Severity::Warning)
            }
            _ => None,
        };
        let version = trap.version.as_str();
        let kind = if trap.is_inform { "inform" } else { "trap" };
        let user = trap
            .security_name
            .as_ref()
            .map(|u| format!(" (user {u})"))
            .unwrap_or_default();
        let message = format!(
            "SNMP{version} {kind} {oid} from {}{user} via {}, agent uptime {}",
            trap.agent_address,
            trap.source,
            SnmpValue::Timeticks(trap.uptime).text(),
        );

        let fields = trap.varbinds.iter().take(MAX_VARBIND_FIELDS).map(|vb| {
            (
                field_name(&vb.oid),
                truncate(&vb.value.text(), MAX_VALUE_CHARS),
            )
        });
        let omitted = trap.varbinds.len().saturating_sub(MAX_VARBIND_FIELDS);
        let v1 = trap.v1.as_ref().map(|h| {
            [
                ("v1.enterprise", h.enterprise.clone()),
                ("v1.genericTrap", h.generic_trap.to_string()),
                ("v1.specificTrap", h.specific_trap.to_string()),
            ]
        });

        Ok(vec![
            Alert::new(
                oid,
                format!("{} from {}", name.unwrap_or(oid), trap.agent_address),
            )
            .device(&trap.agent_address)
            .identity("trapOid", oid)
            .severity(severity)
            .message(message)
            .fields(fields)
            .fields(v1.into_iter().flatten())
            .field_opt(
                "varbindsOmitted",
                (omitted > 0).then(|| omitted.to_string()),
            ),
        ])
    }
}

/// The OID as a field name, keeping its last [`MAX_NAME_BYTES`] (OIDs are ASCII).
fn field_name(oid: &str) -> String {
    match oid.len() {
        0 => "(empty OID)".to_owned(),
        n if n <= MAX_NAME_BYTES => oid.to_owned(),
        n => format!("…{}", &oid[n - (MAX_NAME_BYTES - '…'.len_utf8())..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsconductor_addon_sdk::testing;

    fn parse(json: &str) -> Alert {
        let mut alerts = GenericTrap.parse_trap(&testing::trap_json(json)).unwrap();
        assert_eq!(alerts.len(), 1);
        alerts.remove(0)
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn fixture_cisco_syslog_keeps_every_varbind() {
        let a = parse(include_str!("../fixtures/cisco-syslog.input.trap.json"));
        assert_eq!(a.alert_type, "1.3.6.1.4.1.9.9.41.2.0.1");
        assert_eq!(a.title, "1.3.6.1.4.1.9.9.41.2.0.1 from 203.0.113.21");
        assert_eq!(a.device_ip.as_deref(), Some("203.0.113.21"));
        assert_eq!(
            a.identity,
            pairs(&[("trapOid", "1.3.6.1.4.1.9.9.41.2.0.1")])
        );
        assert_eq!(a.severity, None);
        assert_eq!(
            a.fields,
            pairs(&[
                ("1.3.6.1.4.1.9.9.41.1.2.3.1.2.1877", "SYS"),
                ("1.3.6.1.4.1.9.9.41.1.2.3.1.3.1877", "6"),
                ("1.3.6.1.4.1.9.9.41.1.2.3.1.4.1877", "CONFIG_I"),
                (
                    "1.3.6.1.4.1.9.9.41.1.2.3.1.5.1877",
                    "Configured from console by admin on vty0 (198.51.100.9)"
                ),
                ("1.3.6.1.4.1.9.9.41.1.2.3.1.6.1877", "4d 15:22:11.47"),
            ])
        );
        assert_eq!(
            a.message,
            "SNMPv2c trap 1.3.6.1.4.1.9.9.41.2.0.1 from 203.0.113.21 via 203.0.113.21:61542, \
             agent uptime 4d 15:22:12.00"
        );
    }

    #[test]
    fn fixture_v1_cold_start_is_named_and_a_warning() {
        let a = parse(include_str!("../fixtures/cold-start-v1.input.trap.json"));
        assert_eq!(a.alert_type, "1.3.6.1.6.3.1.1.5.1");
        assert_eq!(a.title, "coldStart from 198.51.100.30");
        assert_eq!(a.severity, Some(Severity::Warning));
        assert_eq!(
            a.fields,
            pairs(&[
                ("v1.enterprise", "1.3.6.1.4.1.8072.3.2.10"),
                ("v1.genericTrap", "0"),
                ("v1.specificTrap", "0"),
            ])
        );
    }

    #[test]
    fn fixture_huge_trap_is_bounded() {
        let a = parse(include_str!("../fixtures/many-varbinds.input.trap.json"));
        assert_eq!(a.fields.len(), MAX_VARBIND_FIELDS + 1);
        assert_eq!(
            a.fields.last().unwrap(),
            &("varbindsOmitted".into(), "20".into())
        );
        let long = &a.fields[0].1;
        assert_eq!(long.chars().count(), MAX_VALUE_CHARS + 1);
        assert!(long.ends_with('…'));
        assert_eq!(a.fields[1].1, "00:ff:10:80");
        assert!(a.fields.iter().all(|(k, _)| k.len() <= MAX_NAME_BYTES));
        assert!(a.fields[2].0.starts_with('…'), "{}", a.fields[2].0);
    }

    #[test]
    fn names_and_values_are_bounded() {
        assert_eq!(field_name("1.3.6"), "1.3.6");
        let long = format!("1.3.6.1.4.1{}", ".12345".repeat(30));
        let name = field_name(&long);
        assert_eq!(name.len(), MAX_NAME_BYTES);
        assert!(name.ends_with(".12345"));
        let value = truncate(&"é".repeat(1001), MAX_VALUE_CHARS);
        assert_eq!(value, format!("{}…", "é".repeat(1000)));
    }

    #[test]
    fn every_fixture_passes_natively() {
        // The host's fixture runner, natively: parse, manifest rules, expectation.
        testing::check_fixtures(&GenericTrap, env!("CARGO_MANIFEST_DIR"));
    }
}
