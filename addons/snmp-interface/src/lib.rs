//! Interface status by SNMP poll (IF-MIB, RFC 2863): one `interfaceDown` alert per interface
//! that is administratively up but operationally down, cleared by the first poll that finds it
//! up again.
//!
//! The manifest walks ifDescr, ifAdminStatus, ifOperStatus, ifName and ifAlias; each
//! ifOperStatus row is one interface (its ifIndex):
//!
//! - ifAdminStatus `up` and ifOperStatus `down` or `lowerLayerDown` → **raise** `interfaceDown`
//!   (major, identity `ifIndex`, fields `ifDescr`, `ifName`, `ifAlias`, `operStatus`);
//! - ifOperStatus `up`, or ifAdminStatus `down` (an operator shut it: not an outage), or
//!   ifDescr matching the target's `exclude` → **clear** it. Clears are sent on every poll, so
//!   an alert never outlives a lost state or an interface excluded after it was raised; a clear
//!   with nothing open costs the host one index look-up;
//! - anything else (testing, dormant, notPresent, unknown, or no ifAdminStatus to tell a shut
//!   interface from a failed one) → neither: the alert, if any, stays as it is.
//!
//! A failed walk (the host's `Err` outcome) is data we did not get: an ifOperStatus walk that
//! failed means no alerts at all, a failed ifAdminStatus walk means clears only. The host itself
//! raises "target unreachable". ifName and ifAlias (ifXTable) are optional, as not every agent
//! has them.
//!
//! **Device**: the target address as `device-ip` when it is an IP, and the target name.
//! **Config**: `{"exclude": "<regex on ifDescr>"}`, optional; a bad regex is `invalid-input`.

use opsconductor_addon_sdk::prelude::*;

#[derive(Default)]
struct SnmpInterface;

register_addon!(SnmpInterface);

const IF_DESCR: &str = "1.3.6.1.2.1.2.2.1.2";
const IF_ADMIN_STATUS: &str = "1.3.6.1.2.1.2.2.1.7";
const IF_OPER_STATUS: &str = "1.3.6.1.2.1.2.2.1.8";
const IF_NAME: &str = "1.3.6.1.2.1.31.1.1.1.1";
const IF_ALIAS: &str = "1.3.6.1.2.1.31.1.1.1.18";

// ifAdminStatus / ifOperStatus values (IF-MIB).
const UP: i64 = 1;
const DOWN: i64 = 2;
const LOWER_LAYER_DOWN: i64 = 7;

impl Addon for SnmpInterface {
    fn parse_poll(&self, poll: &PollResult) -> Result<Vec<Alert>> {
        let exclude = poll.config()?.regex("exclude")?;
        // Required fetches: a poll result without them is not from this manifest.
        let Some(oper_walk) = poll.snmp("ifOperStatus")? else {
            return Ok(Vec::new());
        };
        let admin_walk = poll.snmp("ifAdminStatus")?.unwrap_or_default();
        let oper = Column::new(oper_walk, IF_OPER_STATUS);
        let admin = Column::new(admin_walk, IF_ADMIN_STATUS);
        let descr = poll.column("ifDescr", IF_DESCR);
        let name = poll.column("ifName", IF_NAME);
        let alias = poll.column("ifAlias", IF_ALIAS);

        let mut alerts = Vec::new();
        for (index, oper_value) in oper.iter() {
            let if_descr = descr.text(index);
            let excluded = exclude
                .as_ref()
                .is_some_and(|re| re.is_match(if_descr.as_deref().unwrap_or("")));
            let (admin_state, oper_state) = (admin.int(index), oper_value.as_i64());
            let down = matches!(oper_state, Some(DOWN | LOWER_LAYER_DOWN));
            let raise = !excluded && admin_state == Some(UP) && down;
            let clear = excluded || oper_state == Some(UP) || admin_state == Some(DOWN);
            if !(raise || clear) {
                continue;
            }
            let (if_name, if_alias) = (name.text(index), alias.text(index));
            let label = if_name.as_deref().or(if_descr.as_deref());
            let label = label.map_or_else(|| format!("ifIndex {index}"), str::to_owned);
            let alias_part = if_alias.as_ref().map(|a| format!(" ({a})"));
            let oper_text = mib::IF_OPER_STATUS.text(oper_value);
            let admin_text = admin.get(index).map(|v| mib::IF_ADMIN_STATUS.text(v));
            let state = match (raise, excluded, admin_state) {
                (true, ..) => "down",
                (false, true, _) => "excluded from monitoring",
                (false, false, Some(DOWN)) => "administratively down",
                (false, false, _) => "up",
            };
            let title = format!(
                "Interface {label}{} {state}",
                alias_part.unwrap_or_default()
            );
            let message = format!(
                "ifIndex {index} on {}: ifAdminStatus {}, ifOperStatus {oper_text}",
                poll.target.label(),
                admin_text.as_deref().unwrap_or("unknown"),
            );
            alerts.push(
                Alert::new("interfaceDown", title)
                    .target(&poll.target)
                    .identity("ifIndex", index)
                    .severity(raise.then_some(Severity::Major))
                    .clears(!raise)
                    .message(message)
                    .field_opt("ifDescr", if_descr)
                    .field_opt("ifName", if_name)
                    .field_opt("ifAlias", if_alias)
                    .field("operStatus", oper_text)
                    .occurred_at_millis(poll.started_at),
            );
        }
        Ok(alerts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsconductor_addon_sdk::{ErrorKind, testing};

    fn parse(json: &str) -> Result<Vec<Alert>> {
        SnmpInterface.parse_poll(&testing::poll_json(json))
    }

    /// (ifIndex, clears) of each alert, in order.
    fn summary(alerts: &[Alert]) -> Vec<(&str, bool)> {
        alerts
            .iter()
            .map(|a| (a.identity[0].1.as_str(), a.clears))
            .collect()
    }

    #[test]
    fn fixture_down_raises_and_clears_by_state() {
        let alerts = parse(include_str!("../fixtures/down.input.poll.json")).unwrap();
        // 1 up → clear; 2 down → raise; 3 lowerLayerDown → raise; 4 admin down → clear;
        // 5 dormant → nothing.
        assert_eq!(
            summary(&alerts),
            [("1", true), ("2", false), ("3", false), ("4", true)]
        );
        let a = &alerts[1];
        assert_eq!(a.title, "Interface Gi1/0/2 (uplink to core-sw-02) down");
        assert_eq!(
            (a.device_ip.as_deref(), a.device_name.as_deref()),
            (Some("192.0.2.10"), Some("access-sw-1"))
        );
        assert_eq!(a.severity, Some(Severity::Major));
        assert_eq!(
            a.message,
            "ifIndex 2 on access-sw-1: ifAdminStatus up, ifOperStatus down"
        );
        assert_eq!(a.occurred_at, Some(1_767_323_045_000));
        let fields: Vec<(&str, &str)> = a
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("ifDescr", "GigabitEthernet1/0/2"),
                ("ifName", "Gi1/0/2"),
                ("ifAlias", "uplink to core-sw-02"),
                ("operStatus", "down"),
            ]
        );
        assert_eq!(
            alerts[2].fields[2],
            ("operStatus".into(), "lowerLayerDown".into())
        );
    }

    #[test]
    fn fixture_up_clears_every_interface() {
        let alerts = parse(include_str!("../fixtures/up.input.poll.json")).unwrap();
        assert_eq!(summary(&alerts), [("1", true), ("2", true), ("3", true)]);
        assert!(alerts.iter().all(|a| a.severity.is_none()));
        assert_eq!(
            alerts[1].title,
            "Interface Gi1/0/2 (uplink to core-sw-02) up"
        );
    }

    #[test]
    fn fixture_exclude_clears_excluded_interfaces() {
        let alerts = parse(include_str!("../fixtures/exclude.input.poll.json")).unwrap();
        assert_eq!(summary(&alerts), [("1", false), ("99", true)]);
    }

    #[test]
    fn fixture_without_ifxtable_or_admin_status() {
        // ifName/ifAlias failed and ifAdminStatus timed out: only clears, titles from ifDescr.
        let alerts = parse(include_str!("../fixtures/partial.input.poll.json")).unwrap();
        assert_eq!(summary(&alerts), [("1", true)]);
        assert_eq!(alerts[0].title, "Interface eth0 up");
        assert_eq!(alerts[0].device_name.as_deref(), Some("edge-1"));
    }

    #[test]
    fn fixture_unreachable_reports_nothing() {
        let alerts = parse(include_str!("../fixtures/unreachable.input.poll.json")).unwrap();
        assert!(alerts.is_empty());
    }

    #[test]
    fn fixture_bad_exclude_is_invalid_input() {
        let err = parse(include_str!("../fixtures/bad-exclude.input.poll.json")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(
            err.message
                .starts_with("target config `exclude`: regex parse error"),
            "{}",
            err.message
        );
    }

    #[test]
    fn missing_fetch_is_invalid_input() {
        let poll = testing::poll_json(
            r#"{"target": {"id": "1", "name": "x", "address": "192.0.2.1"},
                "started_at": 0, "fetched": []}"#,
        );
        let err = SnmpInterface.parse_poll(&poll).unwrap_err();
        assert_eq!(err.message, "the poll result has no fetch `ifOperStatus`");
    }

    #[test]
    fn odd_rows_do_not_panic() {
        // A non-integer status, an index with several arcs, an interface with no description.
        let poll = testing::poll_json(
            r#"{"target": {"id": "1", "name": "", "address": "sw.example.net"}, "started_at": 0,
                "fetched": [
                  {"name": "ifOperStatus", "snmp": [
                    {"oid": "1.3.6.1.2.1.2.2.1.8.1", "type": "octet-string", "value": "down"},
                    {"oid": "1.3.6.1.2.1.2.2.1.8.2.1", "type": "integer", "value": 2},
                    {"oid": "1.3.6.1.2.1.2.2.1.8", "type": "integer", "value": 2}
                  ]},
                  {"name": "ifAdminStatus", "snmp": [
                    {"oid": "1.3.6.1.2.1.2.2.1.7.2.1", "type": "integer", "value": 1}
                  ]}
                ]}"#,
        );
        let alerts = SnmpInterface.parse_poll(&poll).unwrap();
        assert_eq!(summary(&alerts), [("2.1", false)]);
        assert_eq!(alerts[0].title, "Interface ifIndex 2.1 down");
        assert_eq!(alerts[0].device_name.as_deref(), Some("sw.example.net"));
    }

    #[test]
    fn every_fixture_passes_natively() {
        // The host's fixture runner, natively: parse, manifest rules, expectation.
        testing::check_fixtures(&SnmpInterface, env!("CARGO_MANIFEST_DIR"));
    }
}
