//! Realistic rules against realistic events: the Alertmanager example at the top of
//! docs/rules.md, an IF-MIB linkDown trap, and `df` output over SSH read with grok.

use opsconductor_rules::{EventErrorKind, RuleAlert, Rules};
use serde_json::{Value, json};

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The `parse` section at the top of docs/rules.md, as it is written there.
fn alertmanager_section() -> Value {
    json!({
      "maps": {
        "severity": {"crit": "critical", "warn": "warning", "*": "info"}
      },
      "grok_patterns": {"QUEUE": "[a-z][a-z0-9_-]*"},
      "rules": [
        {
          "name": "alerts",
          "for_each": "body.alerts",
          "required": true,
          "when": {"path": "labels.alertname", "exists": true},
          "let": {"status": "{status ?? $.body.status}"},
          "alert": {
            "type": "{labels.alertname}",
            "device": "{labels.instance | host}",
            "title": "{annotations.summary ?? labels.alertname}",
            "message": "{annotations.description ?? ''}",
            "severity": "{labels.severity | map:severity}",
            "clears": {"path": "@status", "equals": "resolved"},
            "identity_from": {"object": "labels", "except": ["alertname"]},
            "fields": {"startsAt": "{startsAt}"},
            "occurred_at": "{startsAt}"
          }
        }
      ]
    })
}

/// An Alertmanager webhook (payload version 4) as the engine hands it to the rules.
fn alertmanager_webhook(alerts: Value) -> Value {
    let body = json!({
        "version": "4",
        "status": "firing",
        "receiver": "opsconductor",
        "externalURL": "http://alertmanager.example.net:9093",
        "alerts": alerts
    });
    json!({
        "kind": "webhook",
        "method": "POST",
        "path": "/webhooks/alertmanager",
        "headers": {"content-type": "application/json"},
        "query": {},
        "source": "10.1.2.3",
        "text": body.to_string(),
        "body": body
    })
}

#[test]
fn alertmanager_example_from_the_spec() {
    let rules = Rules::compile(&alertmanager_section()).unwrap();
    let event = alertmanager_webhook(json!([
        {
            // No status of its own: the payload's (`firing`) applies.
            "labels": {"alertname": "InstanceDown", "instance": "10.20.0.40:9100", "job": "node", "severity": "CRIT"},
            "annotations": {"summary": "Instance 10.20.0.40:9100 down", "description": "Down for 5 minutes."},
            "startsAt": "2024-05-14T11:10:00.123Z",
            "endsAt": "0001-01-01T00:00:00Z"
        },
        {
            "status": "resolved",
            "labels": {"alertname": "BlackboxProbeFailed", "instance": "https://shop.example.com:8443/healthz", "severity": "page"},
            "annotations": {},
            "startsAt": "2024-05-14T11:02:00+02:00"
        }
    ]));
    let alerts = rules.evaluate(&event).unwrap();
    assert_eq!(
        alerts,
        [
            RuleAlert {
                alert_type: "InstanceDown".into(),
                device_ip: Some("10.20.0.40".into()),
                device_name: None,
                title: "Instance 10.20.0.40:9100 down".into(),
                message: "Down for 5 minutes.".into(),
                severity: Some("critical".into()),
                clears: false,
                identity: pairs(&[
                    ("instance", "10.20.0.40:9100"),
                    ("job", "node"),
                    ("severity", "CRIT")
                ]),
                fields: pairs(&[("startsAt", "2024-05-14T11:10:00.123Z")]),
                occurred_at: Some(1_715_685_000_123),
            },
            RuleAlert {
                alert_type: "BlackboxProbeFailed".into(),
                device_ip: None,
                device_name: Some("shop.example.com".into()),
                title: "BlackboxProbeFailed".into(),
                message: String::new(),
                severity: Some("info".into()),
                clears: true,
                identity: pairs(&[
                    ("instance", "https://shop.example.com:8443/healthz"),
                    ("severity", "page")
                ]),
                fields: pairs(&[("startsAt", "2024-05-14T11:02:00+02:00")]),
                occurred_at: Some(1_715_677_320_000),
            },
        ]
    );
}

#[test]
fn alertmanager_entry_without_alertname() {
    let event = alertmanager_webhook(json!([
        {"status": "firing", "labels": {"alertname": "InstanceDown", "instance": "10.20.0.40:9100"}, "startsAt": "2024-05-14T11:10:00Z"},
        {"status": "firing", "labels": {"instance": "10.20.0.41:9100"}, "startsAt": "2024-05-14T11:10:00Z"}
    ]));
    // As written, `when` passes over the entry.
    let alerts = Rules::compile(&alertmanager_section())
        .unwrap()
        .evaluate(&event)
        .unwrap();
    assert_eq!(alerts.len(), 1);

    // Without `when` and with `required`, it refuses the event and says where.
    let mut section = alertmanager_section();
    let rule = section["rules"][0].as_object_mut().unwrap();
    rule.remove("when");
    rule["alert"]["type"] = json!("{labels.alertname | required}");
    let e = Rules::compile(&section)
        .unwrap()
        .evaluate(&event)
        .unwrap_err();
    assert_eq!(e.kind, EventErrorKind::InvalidInput);
    assert_eq!(e.message, "missing value at /alerts/1/labels/alertname");

    // `required` on `for_each`: a payload without alerts.
    let e = Rules::compile(&section)
        .unwrap()
        .evaluate(&json!({"kind": "webhook", "body": {"status": "firing"}}))
        .unwrap_err();
    assert_eq!(e.message, "missing array at /alerts");
}

/// Link down/up traps (IF-MIB, RFC 2863): the interface from the varbinds, by ifIndex.
fn if_mib_section() -> Value {
    json!({
      "maps": {
        "ifStatus": {"1": "up", "2": "down", "3": "testing"}
      },
      "rules": [
        {
          "name": "link traps only",
          "when": {"not": {"path": "trap_oid", "in": ["1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4"]}},
          "error": {"kind": "unsupported", "message": "trap {trap_oid} is neither linkDown nor linkUp"}
        },
        {
          "name": "link down or up",
          "let": {
            "ifIndex": "{oid:1.3.6.1.2.1.2.2.1.1 ?? oid_index:1.3.6.1.2.1.2.2.1.8 | required}",
            "up": [{"when": {"path": "trap_oid", "equals": "1.3.6.1.6.3.1.1.5.4"}, "value": true}, {"value": false}],
            "admin": "{oid:1.3.6.1.2.1.2.2.1.7.@ifIndex | map:ifStatus}",
            "oper": "{oid:1.3.6.1.2.1.2.2.1.8.@ifIndex | map:ifStatus}",
            "name": "{oid:1.3.6.1.2.1.31.1.1.1.1.@ifIndex ?? 'ifIndex ' }"
          },
          "alert": {
            "type": [{"when": {"path": "@up", "equals": true}, "value": "linkUp"}, {"value": "linkDown"}],
            "title": "Interface {@name} {@oper ?? 'state unknown'}",
            "message": "from {agent_address}: ifIndex {@ifIndex} (index {oid_index:1.3.6.1.2.1.2.2.1.7}), admin {@admin ?? 'not sent'}",
            "severity": [
              {"when": {"path": "@up", "equals": true}, "value": null},
              {"when": {"path": "@admin", "equals": "down"}, "value": "info"},
              {"value": "major"}
            ],
            "clears": {"path": "@up", "equals": true},
            "identity": {"ifIndex": "{@ifIndex}"},
            "fields": {"ifName": "{@name}", "ifAdminStatus": "{@admin}", "ifOperStatus": "{@oper}", "ifAlias": "{oid:1.3.6.1.2.1.31.1.1.1.18.@ifIndex}"}
          }
        }
      ]
    })
}

fn link_trap(trap_oid: &str, oper: i64) -> Value {
    json!({
        "kind": "trap",
        "version": "v2c",
        "source": "192.0.2.10:50123",
        "agent_address": "192.0.2.10",
        "security_name": null,
        "context_name": "",
        "trap_oid": trap_oid,
        "uptime": 123456789,
        "is_inform": false,
        "v1": null,
        "varbinds": [
            {"oid": "1.3.6.1.2.1.2.2.1.1.3", "type": "integer", "value": 3, "text": "3"},
            {"oid": "1.3.6.1.2.1.2.2.1.7.3", "type": "integer", "value": 1, "text": "1"},
            {"oid": "1.3.6.1.2.1.2.2.1.8.3", "type": "integer", "value": oper, "text": oper.to_string()},
            {"oid": "1.3.6.1.2.1.31.1.1.1.1.3", "type": "octet-string", "value": "Gi0/1", "text": "Gi0/1"}
        ]
    })
}

#[test]
fn if_mib_link_down_trap() {
    let rules = Rules::compile(&if_mib_section()).unwrap();
    let alerts = rules
        .evaluate(&link_trap("1.3.6.1.6.3.1.1.5.3", 2))
        .unwrap();
    assert_eq!(
        alerts,
        [RuleAlert {
            alert_type: "linkDown".into(),
            device_ip: Some("192.0.2.10".into()),
            device_name: None,
            title: "Interface Gi0/1 down".into(),
            message: "from 192.0.2.10: ifIndex 3 (index 3), admin up".into(),
            severity: Some("major".into()),
            clears: false,
            identity: pairs(&[("ifIndex", "3")]),
            fields: pairs(&[
                ("ifAdminStatus", "up"),
                ("ifName", "Gi0/1"),
                ("ifOperStatus", "down")
            ]),
            occurred_at: None,
        }]
    );

    let up = &rules
        .evaluate(&link_trap("1.3.6.1.6.3.1.1.5.4", 1))
        .unwrap()[0];
    assert_eq!(
        (up.alert_type.as_str(), up.title.as_str()),
        ("linkUp", "Interface Gi0/1 up")
    );
    assert!(up.clears);
    assert_eq!(up.severity, None, "left to the manifest");

    let e = rules
        .evaluate(&link_trap("1.3.6.1.4.1.9.9.41.2.0.1", 2))
        .unwrap_err();
    assert_eq!(e.kind, EventErrorKind::Unsupported);
    assert_eq!(
        e.message,
        "trap 1.3.6.1.4.1.9.9.41.2.0.1 is neither linkDown nor linkUp"
    );

    let mut no_index = link_trap("1.3.6.1.6.3.1.1.5.3", 2);
    no_index["varbinds"] =
        json!([{"oid": "1.3.6.1.2.1.1.5.0", "type": "octet-string", "value": "edge-rtr-01"}]);
    let e = rules.evaluate(&no_index).unwrap_err();
    assert_eq!(e.message, "missing value at oid_index:1.3.6.1.2.1.2.2.1.8");
}

#[test]
fn grok_over_ssh_output_line_by_line() {
    let stdout = "Filesystem     Size  Used Avail Use% Mounted on\n\
                  /dev/sda1       50G   46G  4.0G  92% /\n\
                  tmpfs          3.9G     0  3.9G   0% /dev/shm\n\
                  /dev/sdb1      500G  480G   20G  96% /var/lib/postgresql\n";
    let event = json!({
        "kind": "poll",
        "target": {"id": 7, "name": "db-1", "address": "10.0.0.7:22", "host": "10.0.0.7", "config": {"threshold": 90}},
        "started_at": 1_715_685_000_000_i64,
        "fetched": {"df": {"ok": true, "command": "df -h", "exit_status": 0, "stdout": stdout, "stderr": ""}}
    });
    let section = json!({
        "grok_patterns": {"SIZE": r"[0-9.]+[KMGTP]?"},
        "rules": [{
            "match": {
                "value": "{fetched.df.stdout}",
                "grok": r"^%{NOTSPACE:fs}\s+%{SIZE:size}\s+%{SIZE:used}\s+%{SIZE:avail}\s+%{INT:pct}%\s+%{UNIXPATH:mount}$",
                "lines": true
            },
            "when": {"path": "pct", "gte": 90},
            "alert": {
                "type": "diskFull",
                "title": "{mount} is {pct}% full",
                "severity": [{"when": {"path": "pct", "gte": 95}, "value": "critical"}, {"value": "warning"}],
                "identity": {"mount": "{mount}"},
                "fields": {"filesystem": "{fs}", "size": "{size}", "line": "{@index}"}
            }
        }]
    });
    let alerts = Rules::compile(&section).unwrap().evaluate(&event).unwrap();
    let got: Vec<_> = alerts
        .iter()
        .map(|a| {
            (
                a.title.as_str(),
                a.severity.as_deref(),
                a.identity.clone(),
                a.fields.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "/ is 92% full",
                Some("warning"),
                pairs(&[("mount", "/")]),
                pairs(&[("filesystem", "/dev/sda1"), ("line", "0"), ("size", "50G")])
            ),
            (
                "/var/lib/postgresql is 96% full",
                Some("critical"),
                pairs(&[("mount", "/var/lib/postgresql")]),
                pairs(&[("filesystem", "/dev/sdb1"), ("line", "2"), ("size", "500G")])
            ),
        ]
    );
    // The poll's target is the device: its address's IP and its name.
    assert_eq!(alerts[0].device_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(alerts[0].device_name.as_deref(), Some("db-1"));
}
