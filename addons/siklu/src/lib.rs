//! Siklu EtherHaul radios: the notifications of RADIO-BRIDGE-MIB (`radioBridgeTraps`,
//! 1.3.6.1.4.1.31926.3), as LibreNMS ships the MIB (`mibs/siklu/RADIO-BRIDGE-MIB`).
//!
//! The MIB defines three kinds of trap, and [`TRAPS`] says which is which:
//!
//! - **condition pairs** without varbinds (or with the port's `ifIndex`): temperature, CINR,
//!   RSSI, lowest modulation, TX mute, loopback and SFP. The raising trap opens an alert named
//!   after it (`rssiOutOfRange`); its partner (`rssiInRange`) clears it through the manifest's
//!   `clears` rules. Radio-wide ones have no identity (an EtherHaul has one RF link); port ones
//!   are identified by `ifIndex`;
//! - **`trapCurrentAlarm`** (.11), one trap per change of the radio's alarm table: the alarm
//!   row (type, source, severity, raised time) and `rbCurrentAlarmLastTrapType` saying whether
//!   the alarm was added (`alarm-up`) or removed (`alarm-down`). Alert type `alarm` + the
//!   MIB's `AlarmType` (`alarmLinkDown`), identity the alarm's `source` (`rf`, `eth1`,
//!   `system`), severity the alarm's own; alarm-down clears the same type and source;
//! - **events** `trapModulationChange` and `trapRefClockChanged`: `info` alerts that stay open
//!   and are updated (counted) by each change, carrying the new state in their fields.
//!
//! Device: the trap's agent address. RF link state also reaches the host as standard IF-MIB
//! linkDown/linkUp, which the `if-mib` addon handles.

use opsconductor_addon_sdk::prelude::*;

#[derive(Default)]
struct Siklu;

register_addon!(Siklu);

/// `radioBridgeTraps`.
const TRAPS_ROOT: &str = "1.3.6.1.4.1.31926.3";

/// What a RADIO-BRIDGE-MIB notification means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Starts or (`clears`) ends a condition of the radio or, with `port`, of the port named
    /// by the trap's ifIndex varbind.
    Condition {
        alert_type: &'static str,
        title: &'static str,
        severity: Severity,
        clears: bool,
        port: bool,
    },
    ModulationChange,
    RefClockChanged,
    CurrentAlarm,
}

/// Where a condition is: the whole radio, or the port named by the trap's ifIndex varbind.
const RADIO: bool = false;
const PORT: bool = true;

const fn raise(
    alert_type: &'static str,
    title: &'static str,
    severity: Severity,
    port: bool,
) -> Kind {
    Kind::Condition {
        alert_type,
        title,
        severity,
        clears: false,
        port,
    }
}

const fn clear(alert_type: &'static str, title: &'static str, port: bool) -> Kind {
    Kind::Condition {
        alert_type,
        title,
        severity: Severity::Info,
        clears: true,
        port,
    }
}

/// Every notification of `radioBridgeTraps`, by its OID under [`TRAPS_ROOT`]. Severities: heat
/// and a pulled SFP are outages in the making (`major`); signal quality that left its
/// configured range, and the link falling back to its lowest modulation, degrade capacity
/// (`minor`); TX mute and loopback are usually maintenance someone forgot to undo (`warning`).
#[rustfmt::skip] // one line per notification reads as the table it is
const TRAPS: OidTable<Kind> = {
    use Severity::{Major, Minor, Warning};
    OidTable::new(&[
        ("1", Kind::ModulationChange),
        ("2", raise("temperatureOutOfRange", "Temperature out of range", Major, RADIO)),
        ("3", clear("temperatureInRange", "Temperature back in range", RADIO)),
        ("4", clear("sfpIn", "SFP inserted", PORT)),
        ("5", raise("sfpOut", "SFP removed", Major, PORT)),
        ("6", Kind::RefClockChanged),
        ("11", Kind::CurrentAlarm),
        ("12", raise("loopEnabled", "Loopback enabled", Warning, PORT)),
        ("13", clear("loopDisabled", "Loopback disabled", PORT)),
        ("14", raise("txMuteEnabled", "Radio transmitter muted", Warning, RADIO)),
        ("15", clear("txMuteDisabled", "Radio transmitter unmuted", RADIO)),
        ("19", raise("cinrOutOfRange", "CINR out of range", Minor, RADIO)),
        ("20", clear("cinrInRange", "CINR back in range", RADIO)),
        ("21", raise("rssiOutOfRange", "RSSI out of range", Minor, RADIO)),
        ("22", clear("rssiInRange", "RSSI back in range", RADIO)),
        ("23", raise("lowestModulation", "Radio link at its lowest modulation", Minor, RADIO)),
        ("24", clear("noLowestModulation", "Radio link above its lowest modulation", RADIO)),
    ])
};

const IF_INDEX: &str = "1.3.6.1.2.1.2.2.1.1";

// rbRfTable columns, indexed by rfIndex.
const RF_MODULATION_TYPE: &str = "1.3.6.1.4.1.31926.2.1.1.7";
const RF_NUM_OF_SUBCHANNELS: &str = "1.3.6.1.4.1.31926.2.1.1.8";
const RF_NUM_OF_REPETITIONS: &str = "1.3.6.1.4.1.31926.2.1.1.9";
const RF_FEC_RATE: &str = "1.3.6.1.4.1.31926.2.1.1.10";
/// rbRefClockTable `refClockQualityLevelActual`, indexed by ifIndex.
const REF_CLOCK_QUALITY_LEVEL_ACTUAL: &str = "1.3.6.1.4.1.31926.4.1.1.3";

// rbAlarmsCommon scalars and rbCurrentAlarmTable columns (indexed by rbCurrentAlarmIndex).
const ALARM_MOST_SEVERE: &str = "1.3.6.1.4.1.31926.11.1.2.0";
const ALARM_LAST_TRAP_TYPE: &str = "1.3.6.1.4.1.31926.11.1.4.0";
const ALARM_SOURCE_ADDR: &str = "1.3.6.1.4.1.31926.11.1.10.0";
const ALARM_TYPE: &str = "1.3.6.1.4.1.31926.11.2.1.2";
const ALARM_TYPE_NAME: &str = "1.3.6.1.4.1.31926.11.2.1.3";
const ALARM_SOURCE: &str = "1.3.6.1.4.1.31926.11.2.1.4";
const ALARM_SEVERITY: &str = "1.3.6.1.4.1.31926.11.2.1.5";
const ALARM_RAISED_TIME: &str = "1.3.6.1.4.1.31926.11.2.1.6";
const ALARM_IF_INDEX: &str = "1.3.6.1.4.1.31926.11.2.1.10";

const MODULATION: MibEnum = MibEnum::new(&[(1, "QPSK"), (2, "QAM-16"), (3, "QAM-64")]);
const FEC_RATE: MibEnum = MibEnum::new(&[(1, "0.5"), (2, "0.67"), (3, "0.8")]);
/// `AlarmSeverity`; `no-alarm` appears only in rbCurrentAlarmMostSevere.
const ALARM_SEVERITIES: MibEnum = MibEnum::new(&[
    (1, "critical"),
    (2, "major"),
    (3, "minor"),
    (4, "warning"),
    (5, "no-alarm"),
]);
/// `AlarmType` by its MIB labels; [`alarm_alert_type`] turns a label into the alert type.
const ALARM_TYPES: MibEnum = MibEnum::new(&[
    (1, "link-down"),
    (2, "temperature-out-of-range"),
    (3, "synthesizer-unlock"),
    (4, "pow-low"),
    (5, "cfm-mep-defect"),
    (6, "loopback-active"),
    (7, "tx-mute"),
    (8, "ql-eec1-or-worse"),
    (9, "poe-incompatible"),
    (10, "rssi-out-of-range"),
    (11, "cinr-out-of-range"),
    (12, "lowest-modulation"),
]);

impl Addon for Siklu {
    fn parse_trap(&self, trap: &SnmpTrap) -> Result<Vec<Alert>> {
        // A v1 trap (from a proxy: the radios send v2c or v3) maps to `<enterprise>.0.<n>`
        // (RFC 3584), while these notifications are defined directly under radioBridgeTraps.
        let oid = match oid_suffix(&trap.trap_oid, &format!("{TRAPS_ROOT}.0")) {
            Some(n) if !n.is_empty() => format!("{TRAPS_ROOT}.{n}"),
            _ => trap.trap_oid.clone(),
        };
        let kind = oid_suffix(&oid, TRAPS_ROOT).and_then(|n| TRAPS.get(n));
        let kind = kind.ok_or_else(|| {
            AddonError::unsupported(format!("{} is not a RADIO-BRIDGE-MIB trap", trap.trap_oid))
        })?;
        let alert = match kind {
            Kind::Condition {
                alert_type,
                title,
                severity,
                clears,
                port,
            } => {
                let if_index = match port {
                    true => Some(trap.int(IF_INDEX).ok_or_else(|| {
                        AddonError::invalid_input(format!("{alert_type} trap has no ifIndex"))
                    })?),
                    false => None,
                };
                let title = match if_index {
                    Some(i) => format!("{title} on port ifIndex {i}"),
                    None => title.to_owned(),
                };
                Alert::new(alert_type, title)
                    .severity((!clears).then_some(severity))
                    .clears(clears)
                    .identities(if_index.map(|i| ("ifIndex", i.to_string())))
            }
            Kind::ModulationChange => modulation_change(trap),
            Kind::RefClockChanged => ref_clock_changed(trap),
            Kind::CurrentAlarm => current_alarm(trap)?,
        };
        Ok(vec![alert.device(&trap.agent_address)])
    }
}

/// `QAM-64, 4 subchannels, 1 repetition, FEC 0.8`: the adaptive modulation the link now uses.
fn modulation_change(trap: &SnmpTrap) -> Alert {
    let modulation = trap.varbind(RF_MODULATION_TYPE);
    let rf_index = modulation.map(|(_, index)| index.to_owned());
    let modulation = modulation.map(|(v, _)| MODULATION.text(v));
    let subchannels = trap.text(RF_NUM_OF_SUBCHANNELS);
    let repetitions = trap.text(RF_NUM_OF_REPETITIONS);
    let fec = trap.enum_text(RF_FEC_RATE, &FEC_RATE);
    let parts = [
        modulation.clone(),
        subchannels.as_deref().map(|n| plural(n, "subchannel")),
        repetitions.as_deref().map(|n| plural(n, "repetition")),
        fec.as_ref().map(|f| format!("FEC {f}")),
    ];
    let summary: Vec<String> = parts.into_iter().flatten().collect();
    let title = match summary.is_empty() {
        true => "Modulation changed".to_owned(),
        false => format!("Modulation changed to {}", summary.join(", ")),
    };
    Alert::new("modulationChange", title)
        .severity(Severity::Info)
        .identities(rf_index.map(|i| ("rfIndex", i)))
        .field_opt("modulation", modulation)
        .field_opt("subchannels", subchannels)
        .field_opt("repetitions", repetitions)
        .field_opt("fecRate", fec)
}

fn plural(n: &str, word: &str) -> String {
    match n {
        "1" => format!("1 {word}"),
        _ => format!("{n} {word}s"),
    }
}

/// The radio now synchronises to the port in the trap (SyncE reference clock).
fn ref_clock_changed(trap: &SnmpTrap) -> Alert {
    let if_index = trap.text(IF_INDEX);
    let quality = trap.text(REF_CLOCK_QUALITY_LEVEL_ACTUAL);
    let title = match &if_index {
        Some(i) => format!("Reference clock changed to port ifIndex {i}"),
        None => "Reference clock changed".to_owned(),
    };
    Alert::new("refClockChanged", title)
        .severity(Severity::Info)
        .field_opt("ifIndex", if_index)
        .field_opt("qualityLevel", quality)
}

/// One change of the alarm table: the row's columns are read at the row index of its
/// rbCurrentAlarmType varbind.
fn current_alarm(trap: &SnmpTrap) -> Result<Alert> {
    let (type_value, row) = trap.req_varbind(ALARM_TYPE)?;
    let column = |col: &str| trap.text(&format!("{col}.{row}"));
    let label = ALARM_TYPES.text(type_value);
    let alert_type = match type_value.as_i64().and_then(|t| ALARM_TYPES.name(t)) {
        Some(known) => alarm_alert_type(known),
        None => format!("alarmType{label}"),
    };
    let type_name = column(ALARM_TYPE_NAME).unwrap_or_else(|| label.clone());
    let source = column(ALARM_SOURCE);
    let severity = trap.enum_text(&format!("{ALARM_SEVERITY}.{row}"), &ALARM_SEVERITIES);
    // alarm-up(1) / alarm-down(2); without it the trap can only be a raise.
    let cleared = trap.int(ALARM_LAST_TRAP_TYPE) == Some(2);
    let if_index = column(ALARM_IF_INDEX).filter(|i| i != "-1");

    let title = match &source {
        Some(s) => format!("Alarm {type_name} on {s}"),
        None => format!("Alarm {type_name}"),
    };
    Ok(Alert::new(alert_type, title)
        .severity(SEVERITY_WORDS.get_opt(severity.as_deref()))
        .clears(cleared)
        .identities(source.clone().map(|s| ("source", s)))
        .field("alarmType", label)
        .field_opt("alarmSeverity", severity)
        .field("alarmIndex", row)
        .field_opt("ifIndex", if_index)
        .field_opt(
            "raisedTime",
            trap.varbind(&format!("{ALARM_RAISED_TIME}.{row}"))
                .map(|(v, _)| v.text()),
        )
        .field_opt("sourceAddr", trap.text(ALARM_SOURCE_ADDR))
        .field_opt(
            "mostSevere",
            trap.enum_text(ALARM_MOST_SEVERE, &ALARM_SEVERITIES),
        ))
}

/// `link-down` → `alarmLinkDown`, `ql-eec1-or-worse` → `alarmQlEec1OrWorse`.
fn alarm_alert_type(label: &str) -> String {
    let mut out = String::from("alarm");
    for word in label.split('-') {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsconductor_addon_sdk::{ErrorKind, SnmpValue, testing};

    fn parse(json: &str) -> Result<Vec<Alert>> {
        Siklu.parse_trap(&testing::trap_json(json))
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn fixture_alarm_link_down_raises_and_its_removal_clears() {
        let raised = parse(include_str!("../fixtures/alarm-link-down.input.trap.json")).unwrap();
        assert_eq!(
            raised,
            vec![Alert {
                alert_type: "alarmLinkDown".into(),
                device_ip: Some("192.0.2.50".into()),
                device_name: None,
                title: "Alarm link-down on rf".into(),
                message: String::new(),
                severity: Some(Severity::Critical),
                clears: false,
                identity: pairs(&[("source", "rf")]),
                fields: pairs(&[
                    ("alarmType", "link-down"),
                    ("alarmSeverity", "critical"),
                    ("alarmIndex", "7113"),
                    ("ifIndex", "1"),
                    ("raisedTime", "1d 00:00:01.23"),
                    ("sourceAddr", "192.0.2.50"),
                    ("mostSevere", "critical"),
                ]),
                occurred_at: None,
            }]
        );
        let cleared = parse(include_str!(
            "../fixtures/alarm-link-down-cleared.input.trap.json"
        ))
        .unwrap();
        assert!(cleared[0].clears);
        assert_eq!(
            (
                &cleared[0].alert_type,
                &cleared[0].device_ip,
                &cleared[0].identity
            ),
            (
                &raised[0].alert_type,
                &raised[0].device_ip,
                &raised[0].identity
            )
        );
    }

    #[test]
    fn fixture_temperature_pair() {
        let out = parse(include_str!(
            "../fixtures/temperature-out-of-range.input.trap.json"
        ))
        .unwrap();
        assert_eq!(
            (out[0].alert_type.as_str(), out[0].severity, out[0].clears),
            ("temperatureOutOfRange", Some(Severity::Major), false)
        );
        assert!(out[0].identity.is_empty());
        let back = parse(include_str!(
            "../fixtures/temperature-in-range.input.trap.json"
        ))
        .unwrap();
        assert_eq!(back[0].alert_type, "temperatureInRange");
        assert!(back[0].clears);
    }

    #[test]
    fn fixture_sfp_out_is_per_port() {
        let out = parse(include_str!("../fixtures/sfp-out.input.trap.json")).unwrap();
        assert_eq!(out[0].title, "SFP removed on port ifIndex 3");
        assert_eq!(out[0].identity, pairs(&[("ifIndex", "3")]));
        let trap = testing::trap("1.3.6.1.4.1.31926.3.4", []);
        assert_eq!(
            Siklu.parse_trap(&trap).unwrap_err().message,
            "sfpIn trap has no ifIndex"
        );
    }

    #[test]
    fn fixture_modulation_change() {
        let out = parse(include_str!(
            "../fixtures/modulation-change.input.trap.json"
        ))
        .unwrap();
        assert_eq!(
            out[0].title,
            "Modulation changed to QAM-16, 2 subchannels, 1 repetition, FEC 0.67"
        );
        assert_eq!(out[0].identity, pairs(&[("rfIndex", "1")]));
        assert_eq!(out[0].severity, Some(Severity::Info));
    }

    #[test]
    fn fixture_v1_form_maps_back_to_the_notification() {
        let out = parse(include_str!(
            "../fixtures/rssi-out-of-range-v1.input.trap.json"
        ))
        .unwrap();
        assert_eq!(out[0].alert_type, "rssiOutOfRange");
    }

    #[test]
    fn fixture_unknown_trap_is_unsupported() {
        let err = parse(include_str!("../fixtures/unknown-trap.input.trap.json")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unsupported);
    }

    #[test]
    fn ref_clock_and_odd_alarms() {
        let trap = testing::trap(
            "1.3.6.1.4.1.31926.3.6",
            [
                ("1.3.6.1.2.1.2.2.1.1.2", SnmpValue::Integer(2)),
                ("1.3.6.1.4.1.31926.4.1.1.3.2", SnmpValue::Integer(4)),
            ],
        );
        let a = &Siklu.parse_trap(&trap).unwrap()[0];
        assert_eq!(a.title, "Reference clock changed to port ifIndex 2");
        assert_eq!(a.fields, pairs(&[("ifIndex", "2"), ("qualityLevel", "4")]));

        // An alarm type newer than the MIB, with nothing but its type.
        let trap = testing::trap(
            "1.3.6.1.4.1.31926.3.11",
            [("1.3.6.1.4.1.31926.11.2.1.2.5", SnmpValue::Integer(42))],
        );
        let a = &Siklu.parse_trap(&trap).unwrap()[0];
        assert_eq!(
            (a.alert_type.as_str(), a.title.as_str()),
            ("alarmType42", "Alarm 42")
        );
        assert!(!a.clears);

        let trap = testing::trap("1.3.6.1.4.1.31926.3.11", []);
        let err = Siklu.parse_trap(&trap).unwrap_err();
        assert_eq!(err.message, "missing varbind 1.3.6.1.4.1.31926.11.2.1.2");
    }

    #[test]
    fn every_notification_has_a_distinct_alert_type() {
        assert_eq!(alarm_alert_type("ql-eec1-or-worse"), "alarmQlEec1OrWorse");
        let mut types = Vec::new();
        for n in [2, 3, 4, 5, 12, 13, 14, 15, 19, 20, 21, 22, 23, 24] {
            let oid = format!("{TRAPS_ROOT}.{n}");
            let trap = testing::trap(&oid, [("1.3.6.1.2.1.2.2.1.1.1", SnmpValue::Integer(1))]);
            types.push(Siklu.parse_trap(&trap).unwrap()[0].alert_type.clone());
        }
        let before = types.len();
        types.sort();
        types.dedup();
        assert_eq!(types.len(), before, "{types:?}");
    }

    #[test]
    fn every_fixture_passes_natively() {
        // The host's fixture runner, natively: parse, manifest rules, expectation.
        testing::check_fixtures(&Siklu, env!("CARGO_MANIFEST_DIR"));
    }
}
