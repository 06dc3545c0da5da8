//! IF-MIB `linkDown` / `linkUp` traps (RFC 2863), as every vendor sends them.
//!
//! How a trap becomes an alert (see README.md for the operator's side):
//!
//! - **alert type** `linkDown` or `linkUp`; the manifest makes `linkUp` clear the `linkDown`
//!   of the same device and ifIndex (and the addon marks it `clears`, so a manifest without the
//!   rule still never opens a "linkUp" alert);
//! - **device** the trap's agent address (the host has already applied snmpTrapAddress and
//!   the v1 agent-addr);
//! - **identity** `ifIndex`: the value of the `ifIndex.<n>` varbind, else the index of any
//!   other per-interface varbind (ifAdminStatus, ifOperStatus, ifDescr, ifName, ifAlias). A
//!   trap without one names no interface and is `invalid-input`;
//! - **severity** `major`, but `info` when ifAdminStatus is `down`: someone shut the interface
//!   on purpose, which is worth a record but not a page (see [`severity`]);
//! - **title** `Interface <ifName | ifDescr | ifIndex n> [(<ifAlias>)] down|up`;
//! - **fields** ifAdminStatus and ifOperStatus by name, ifDescr, ifName, ifAlias and Cisco's
//!   `locIfReason` when the trap carries them.

use opsconductor_addon_sdk::prelude::*;

#[derive(Default)]
struct IfMib;

register_addon!(IfMib);

const LINK_DOWN: &str = "1.3.6.1.6.3.1.1.5.3";
const LINK_UP: &str = "1.3.6.1.6.3.1.1.5.4";

// IF-MIB columns, each indexed by ifIndex.
const IF_INDEX: &str = "1.3.6.1.2.1.2.2.1.1";
const IF_DESCR: &str = "1.3.6.1.2.1.2.2.1.2";
const IF_ADMIN_STATUS: &str = "1.3.6.1.2.1.2.2.1.7";
const IF_OPER_STATUS: &str = "1.3.6.1.2.1.2.2.1.8";
const IF_NAME: &str = "1.3.6.1.2.1.31.1.1.1.1";
const IF_ALIAS: &str = "1.3.6.1.2.1.31.1.1.1.18";
/// OLD-CISCO-INTERFACES-MIB `locIfReason` ("Lost Carrier", "administratively down"), which
/// IOS adds to its link traps. Vendor-specific, but it says why, so it is worth a field.
const LOC_IF_REASON: &str = "1.3.6.1.4.1.9.2.2.1.1.20";

/// Where the ifIndex may be read from when there is no `ifIndex.<n>` varbind: the row index
/// of any per-interface column.
const INDEXED_COLUMNS: [&str; 6] = [
    IF_ADMIN_STATUS,
    IF_OPER_STATUS,
    IF_DESCR,
    IF_NAME,
    IF_ALIAS,
    LOC_IF_REASON,
];

impl Addon for IfMib {
    fn parse_trap(&self, trap: &SnmpTrap) -> Result<Vec<Alert>> {
        let (alert_type, state) = match trap.trap_oid.as_str() {
            LINK_DOWN => ("linkDown", "down"),
            LINK_UP => ("linkUp", "up"),
            other => {
                return Err(AddonError::unsupported(format!(
                    "trap {other} is neither linkDown nor linkUp"
                )));
            }
        };
        let if_index = if_index(trap)?;
        // Read each column at this interface's row, so a trap about several rows (rare, but
        // legal) still describes the interface it is filed under.
        let row = |col: &str| format!("{col}.{if_index}");
        let column = |col: &str| trap.text(&row(col));
        let admin = trap.enum_text(&row(IF_ADMIN_STATUS), &mib::IF_ADMIN_STATUS);
        let oper = trap.enum_text(&row(IF_OPER_STATUS), &mib::IF_OPER_STATUS);
        let (name, descr, alias) = (column(IF_NAME), column(IF_DESCR), column(IF_ALIAS));

        let admin_down = admin.as_deref() == Some("down");
        let label = name
            .clone()
            .or_else(|| descr.clone())
            .unwrap_or_else(|| format!("ifIndex {if_index}"));
        let alias_part = alias
            .as_ref()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        let state_text = if admin_down && state == "down" {
            "administratively down"
        } else {
            state
        };
        let title = format!("Interface {label}{alias_part} {state_text}");
        let message = format!(
            "{alert_type} from {}: ifIndex {if_index}, ifAdminStatus {}, ifOperStatus {}",
            trap.agent_address,
            admin.as_deref().unwrap_or("not sent"),
            oper.as_deref().unwrap_or("not sent"),
        );

        Ok(vec![
            Alert::new(alert_type, title)
                .device(&trap.agent_address)
                .identity("ifIndex", if_index.to_string())
                .severity(severity(state == "up", admin_down))
                .clears(state == "up")
                .message(message)
                .field_opt("ifAdminStatus", admin)
                .field_opt("ifOperStatus", oper)
                .field_opt("ifDescr", descr)
                .field_opt("ifName", name)
                .field_opt("ifAlias", alias)
                .field_opt("reason", column(LOC_IF_REASON)),
        ])
    }
}

/// `major` for a link that went down by itself. An interface an operator shut
/// (ifAdminStatus `down`) is not an outage: `info` keeps the record (and lets the linkUp clear
/// it) without paging anyone. A linkUp clears and carries no severity of its own.
fn severity(up: bool, admin_down: bool) -> Option<Severity> {
    match (up, admin_down) {
        (true, _) => None,
        (false, true) => Some(Severity::Info),
        (false, false) => Some(Severity::Major),
    }
}

/// The interface the trap is about: `ifIndex.<n>`'s value, else the row index of another
/// per-interface varbind. ifIndex is 1..2147483647 (RFC 2863 `InterfaceIndex`).
fn if_index(trap: &SnmpTrap) -> Result<i64> {
    let valid = |n: i64| (1..=i64::from(i32::MAX)).contains(&n);
    if let Some((value, _)) = trap.varbind(IF_INDEX) {
        return value.as_i64().filter(|n| valid(*n)).ok_or_else(|| {
            AddonError::invalid_input(format!(
                "ifIndex varbind is {} `{}`, expected an integer from 1",
                value.type_name(),
                value.text()
            ))
        });
    }
    INDEXED_COLUMNS
        .iter()
        .find_map(|col| {
            let (_, index) = trap.varbind(col)?;
            index.parse().ok().filter(|n| valid(*n))
        })
        .ok_or_else(|| {
            AddonError::invalid_input(
                "the trap names no interface: no ifIndex, ifAdminStatus, ifOperStatus, ifDescr, \
                 ifName or ifAlias varbind",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsconductor_addon_sdk::{ErrorKind, SnmpValue, testing};

    fn parse(json: &str) -> Result<Vec<Alert>> {
        IfMib.parse_trap(&testing::trap_json(json))
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn fixture_link_down() {
        let alerts = parse(include_str!("../fixtures/link-down.input.trap.json")).unwrap();
        assert_eq!(
            alerts,
            vec![Alert {
                alert_type: "linkDown".into(),
                device_ip: Some("192.0.2.10".into()),
                device_name: None,
                title: "Interface ge-0/0/3 down".into(),
                message:
                    "linkDown from 192.0.2.10: ifIndex 516, ifAdminStatus up, ifOperStatus down"
                        .into(),
                severity: Some(Severity::Major),
                clears: false,
                identity: pairs(&[("ifIndex", "516")]),
                fields: pairs(&[
                    ("ifAdminStatus", "up"),
                    ("ifOperStatus", "down"),
                    ("ifName", "ge-0/0/3"),
                ]),
                occurred_at: None,
            }]
        );
    }

    #[test]
    fn fixture_link_up_clears_the_same_interface() {
        let down = parse(include_str!("../fixtures/link-down.input.trap.json")).unwrap();
        let up = parse(include_str!("../fixtures/link-up.input.trap.json")).unwrap();
        assert_eq!(up[0].alert_type, "linkUp");
        assert!(up[0].clears);
        assert_eq!(up[0].severity, None);
        assert_eq!(up[0].title, "Interface ge-0/0/3 up");
        // Same device and identity: the manifest rule resolves exactly that linkDown.
        assert_eq!(
            (&up[0].device_ip, &up[0].identity),
            (&down[0].device_ip, &down[0].identity)
        );
    }

    #[test]
    fn fixture_v1_link_down_reads_cisco_ios_varbinds() {
        let alerts = parse(include_str!("../fixtures/link-down-v1.input.trap.json")).unwrap();
        let a = &alerts[0];
        assert_eq!(a.device_ip.as_deref(), Some("198.51.100.7"));
        assert_eq!(a.identity, pairs(&[("ifIndex", "10101")]));
        assert_eq!(a.title, "Interface GigabitEthernet1/0/1 down");
        assert_eq!(
            a.fields,
            pairs(&[
                ("ifDescr", "GigabitEthernet1/0/1"),
                ("reason", "Lost Carrier")
            ])
        );
        assert_eq!(a.severity, Some(Severity::Major));
    }

    #[test]
    fn fixture_cisco_with_name_and_alias() {
        let alerts = parse(include_str!("../fixtures/link-down-cisco.input.trap.json")).unwrap();
        assert_eq!(
            alerts[0].title,
            "Interface Gi1/0/24 (uplink to core-sw-02 Te1/1/1) down"
        );
        assert_eq!(alerts[0].identity, pairs(&[("ifIndex", "24")]));
    }

    #[test]
    fn fixture_admin_down_is_info() {
        let alerts = parse(include_str!("../fixtures/admin-down.input.trap.json")).unwrap();
        assert_eq!(alerts[0].severity, Some(Severity::Info));
        assert_eq!(alerts[0].title, "Interface xe-0/1/0 administratively down");
    }

    #[test]
    fn fixture_without_interface_is_invalid_input() {
        let err = parse(include_str!("../fixtures/no-ifindex.input.trap.json")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(
            err.message.contains("names no interface"),
            "{}",
            err.message
        );
    }

    #[test]
    fn if_index_falls_back_to_a_column_index() {
        let trap = testing::trap(
            LINK_DOWN,
            [
                ("1.3.6.1.2.1.2.2.1.7.9", SnmpValue::Integer(1)),
                ("1.3.6.1.2.1.2.2.1.8.9", SnmpValue::Integer(7)),
            ],
        );
        let a = &IfMib.parse_trap(&trap).unwrap()[0];
        assert_eq!(a.identity, pairs(&[("ifIndex", "9")]));
        assert_eq!(a.title, "Interface ifIndex 9 down");
        assert_eq!(
            a.fields[1],
            ("ifOperStatus".into(), "lowerLayerDown".into())
        );
    }

    #[test]
    fn bad_if_index_and_other_traps_are_refused() {
        let trap = testing::trap(
            LINK_UP,
            [("1.3.6.1.2.1.2.2.1.1.3", testing::octets("three"))],
        );
        let err = IfMib.parse_trap(&trap).unwrap_err();
        assert_eq!(
            err.message,
            "ifIndex varbind is octet-string `three`, expected an integer from 1"
        );

        let trap = testing::trap("1.3.6.1.6.3.1.1.5.3.1", []);
        assert_eq!(
            IfMib.parse_trap(&trap).unwrap_err().kind,
            ErrorKind::Unsupported
        );
    }

    #[test]
    fn every_fixture_passes_natively() {
        // The host's fixture runner, natively: parse, manifest rules, expectation.
        testing::check_fixtures(&IfMib, env!("CARGO_MANIFEST_DIR"));
    }
}
