//! docs/rules.md, "Paths" and "Values and templates": every row of the tables, through the
//! public API.

use opsconductor_rules::{EventErrorKind, Rules};
use serde_json::{Value, json};

/// The text of `template` for `event` (`None`: missing). Read through a variable, because a
/// field leaves out empty text as well as a missing value.
fn render_with(
    parse_extra: Value,
    rule_extra: Value,
    template: &str,
    event: &Value,
) -> Option<String> {
    let missing = json!([{"when": {"path": "@v", "exists": false}, "value": "yes"}]);
    let mut rule = json!({
        "let": {"v": template},
        "alert": {"type": "t", "device": "d", "fields": {"v": "{@v}", "missing": missing}}
    });
    for (k, v) in rule_extra.as_object().unwrap() {
        match (k.as_str(), v) {
            ("let", Value::Object(lets)) => {
                for (name, value) in lets {
                    rule["let"][name] = value.clone();
                }
            }
            _ => rule[k] = v.clone(),
        }
    }
    let mut parse = json!({"rules": [rule]});
    for (k, v) in parse_extra.as_object().unwrap() {
        parse[k] = v.clone();
    }
    let rules = Rules::compile(&parse).unwrap_or_else(|e| panic!("{template}: {e}"));
    let alerts = rules
        .evaluate(event)
        .unwrap_or_else(|e| panic!("{template}: {e}"));
    assert_eq!(alerts.len(), 1, "{template}");
    let field = |name: &str| {
        alerts[0]
            .fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    match field("missing") {
        Some(_) => None,
        None => Some(field("v").unwrap_or_default()),
    }
}

fn render(template: &str, event: &Value) -> Option<String> {
    render_with(json!({}), json!({}), template, event)
}

/// Whether `condition` holds for `event`.
fn holds(condition: Value, event: &Value) -> bool {
    let rules = Rules::compile(
        &json!({"rules": [{"when": condition, "alert": {"type": "t", "device": "d"}}]}),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    !rules.evaluate(event).unwrap().is_empty()
}

fn webhook() -> Value {
    json!({
        "kind": "webhook",
        "body": {
            "status": "firing",
            "externalURL": "http://am.example.net:9093",
            "alerts": [{"status": "firing", "n": 3}, {"status": "resolved"}],
            "labels": {"app.kubernetes.io/name": "shop", "team": "web"},
            "count": 3,
            "ratio": 2.5,
            "list": [1, 2],
            "empty": "",
            "nothing": null,
            "flag": true,
            "padded": "  Gi0/1  ",
            "json_text": "{\"a\": [1, 2]}",
            "when": "2024-05-14T11:00:15.5Z",
            "url": "https://shop.example.com:8443/x"
        }
    })
}

#[test]
fn paths_read_keys_indexes_pointers_and_the_root() {
    let e = webhook();
    assert_eq!(render("{body.status}", &e).as_deref(), Some("firing"));
    assert_eq!(
        render("{body.alerts.1.status}", &e).as_deref(),
        Some("resolved")
    );
    assert_eq!(render("{body.alerts.7.status}", &e), None);
    assert_eq!(
        render("{/body/labels/app.kubernetes.io~1name}", &e).as_deref(),
        Some("shop")
    );
    assert_eq!(
        render("{$.body.externalURL}", &e).as_deref(),
        Some("http://am.example.net:9093")
    );
    assert_eq!(render("{body.status.deeper}", &e), None);
}

#[test]
fn paths_are_relative_to_the_item_and_name_it() {
    let rules = Rules::compile(&json!({"rules": [{
        "for_each": "body.alerts",
        "alert": {"type": "t", "device": "d", "fields": {
            "status": "{status}", "root": "{$.body.status}", "index": "{@index}",
            "pointer": "{@pointer}", "key": "{@key}", "self": "{. | text}"
        }}
    }]}))
    .unwrap();
    let alerts = rules.evaluate(&webhook()).unwrap();
    assert_eq!(alerts.len(), 2);
    let fields = &alerts[1].fields;
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("status"), Some("resolved"));
    assert_eq!(get("root"), Some("firing"));
    assert_eq!(get("index"), Some("1"));
    assert_eq!(get("pointer"), Some("/alerts/1"));
    assert_eq!(get("key"), None, "array elements have no key");
    assert_eq!(get("self"), Some(r#"{"status":"resolved"}"#));
}

#[test]
fn variables_come_from_let() {
    let e = webhook();
    let lets = json!({"let": {"s": "{body.status | upper}", "t": "{@s}!"}});
    assert_eq!(
        render_with(json!({}), lets, "{@t}", &e).as_deref(),
        Some("FIRING!")
    );
}

fn trap() -> Value {
    json!({
        "kind": "trap",
        "agent_address": "192.0.2.10",
        "trap_oid": "1.3.6.1.6.3.1.1.5.3",
        "varbinds": [
            {"oid": "1.3.6.1.2.1.2.2.1.10.3", "type": "counter32", "value": 77, "text": "77"},
            {"oid": "1.3.6.1.2.1.2.2.1.1.3", "type": "integer", "value": 3, "text": "3"},
            {"oid": "1.3.6.1.2.1.2.2.1.8.3", "type": "integer", "value": 2, "text": "2"},
            {"oid": ".1.3.6.1.2.1.31.1.1.1.1.3", "type": "octet-string", "value": "Gi0/1", "text": "Gi0/1"}
        ]
    })
}

#[test]
fn oid_paths_read_varbinds_by_whole_arcs() {
    let t = trap();
    // `...2.2.1.1` is a prefix of `...2.2.1.1.3`, not of `...2.2.1.10.3`, which comes first.
    assert_eq!(
        render("{oid:1.3.6.1.2.1.2.2.1.1}", &t).as_deref(),
        Some("3")
    );
    assert_eq!(
        render("{oid_index:1.3.6.1.2.1.2.2.1.8}", &t).as_deref(),
        Some("3")
    );
    assert_eq!(
        render("{oid:1.3.6.1.2.1.2.2.1.8.3}", &t).as_deref(),
        Some("2")
    );
    assert_eq!(
        render("{oid:1.3.6.1.2.1.31.1.1.1.1}", &t).as_deref(),
        Some("Gi0/1"),
        "leading dot"
    );
    assert_eq!(render("{oid:1.3.6.1.2.1.2.2.1.7}", &t), None);
    let lets = json!({"let": {"i": "{oid:1.3.6.1.2.1.2.2.1.1}"}});
    assert_eq!(
        render_with(json!({}), lets, "{oid:1.3.6.1.2.1.31.1.1.1.1.@i}", &t).as_deref(),
        Some("Gi0/1")
    );
    let lets = json!({"let": {"i": "'x'"}});
    assert_eq!(
        render_with(json!({}), lets, "{oid:1.3.6.1.2.1.31.1.1.1.1.@i}", &t),
        None,
        "an arc is a number"
    );
}

#[test]
fn oid_paths_read_a_fetched_snmp_result() {
    let poll = json!({
        "kind": "poll",
        "target": {"id": 1, "name": "edge-1", "address": "192.0.2.1:161", "host": "192.0.2.1", "config": {}},
        "fetched": {
            "ifTable": {"ok": true, "varbinds": [
                {"oid": "1.3.6.1.2.1.2.2.1.8.1", "type": "integer", "value": 1},
                {"oid": "1.3.6.1.2.1.2.2.1.8.2", "type": "integer", "value": 2}
            ]},
            "broken": {"ok": false, "error": "timeout"}
        }
    });
    let rules = Rules::compile(&json!({"rules": [{
        "for_each": "fetched",
        "when": {"path": "ok", "equals": true},
        "alert": {"type": "{@key}", "fields": {"oper": "{oid:1.3.6.1.2.1.2.2.1.8.2}"}}
    }]}))
    .unwrap();
    let alerts = rules.evaluate(&poll).unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].alert_type, "ifTable");
    assert_eq!(alerts[0].fields, [("oper".to_owned(), "2".to_owned())]);
}

#[test]
fn a_single_expression_keeps_its_value_and_text_makes_text() {
    let e = webhook();
    // Kept as they are: an array still equals an array, a missing value stays missing.
    assert!(holds(json!({"value": "{body.list}", "equals": [1, 2]}), &e));
    assert!(!holds(
        json!({"value": "x{body.list}", "equals": [1, 2]}),
        &e
    ));
    assert!(holds(
        json!({"value": "x{body.list}", "equals": "x[1,2]"}),
        &e
    ));
    assert!(holds(
        json!({"value": "{body.missing}", "exists": false}),
        &e
    ));
    assert!(
        holds(json!({"value": "a{body.missing}b", "equals": "ab"}), &e),
        "missing reads as empty"
    );
    assert_eq!(render("{body.missing}", &e), None);
    assert_eq!(
        render("{body.count} of {body.ratio}", &e).as_deref(),
        Some("3 of 2.5")
    );
    assert_eq!(
        render("{{literal}} {{{body.count}}}", &e).as_deref(),
        Some("{literal} {3}")
    );
    assert_eq!(render("{body.flag}", &e).as_deref(), Some("true"));
    assert_eq!(render("{body.nothing}", &e), None, "null is missing");
}

#[test]
fn numbers_booleans_null_and_choices_are_values() {
    let e = webhook();
    let severity = |v: Value| -> Option<String> {
        let rules = Rules::compile(
            &json!({"rules": [{"alert": {"type": "t", "device": "d", "severity": v}}]}),
        )
        .unwrap();
        rules.evaluate(&e).unwrap()[0].severity.clone()
    };
    assert_eq!(severity(json!(3)).as_deref(), Some("3"));
    assert_eq!(severity(json!(true)).as_deref(), Some("true"));
    assert_eq!(severity(json!(null)), None);
    let choice = json!([
        {"when": {"path": "body.status", "equals": "resolved"}, "value": "info"},
        {"when": {"path": "body.count", "gt": 2}, "value": "{body.status}"},
        {"value": "never reached"}
    ]);
    assert_eq!(severity(choice).as_deref(), Some("firing"));
    let none = json!([{"when": {"path": "body.status", "equals": "resolved"}, "value": "info"}]);
    assert_eq!(severity(none), None, "missing when no entry holds");
    assert_eq!(
        severity(json!([{"value": "major"}])).as_deref(),
        Some("major"),
        "no `when` always holds"
    );
}

#[test]
fn alternatives_take_the_first_present_and_not_empty() {
    let e = webhook();
    assert_eq!(
        render("{body.missing ?? body.empty ?? body.status}", &e).as_deref(),
        Some("firing")
    );
    assert_eq!(
        render("{body.nothing ?? 'no name'}", &e).as_deref(),
        Some("no name")
    );
    assert_eq!(
        render(r"{body.missing ?? 'it\'s'}", &e).as_deref(),
        Some("it's")
    );
    assert_eq!(
        render("{body.missing ?? ''}", &e).as_deref(),
        Some(""),
        "the last one's value"
    );
    assert_eq!(render("{body.missing ?? body.other}", &e), None);
    assert_eq!(render("{'a {b} | c'}", &e).as_deref(), Some("a {b} | c"));
}

#[test]
fn filters() {
    let e = webhook();
    let maps = json!({"maps": {"sev": {"Firing": "critical", "3": "three", "*": "info"}, "strict": {"a": "b"}}});
    let cases: &[(&str, Option<&str>)] = &[
        ("{body.url | host}", Some("shop.example.com")),
        ("{'10.0.0.1:9100' | host}", Some("10.0.0.1")),
        ("{'[2001:db8::1]:9100' | host}", Some("2001:db8::1")),
        ("{'node-1' | host}", Some("node-1")),
        ("{body.status | upper}", Some("FIRING")),
        ("{'MiXeD' | lower}", Some("mixed")),
        ("{body.padded | trim}", Some("Gi0/1")),
        ("{'FIRING' | map:sev}", Some("critical")),
        ("{body.count | map:sev}", Some("three")),
        ("{'other' | map:sev}", Some("info")),
        ("{'other' | map:strict}", None),
        ("{'other' | map:strict ?? 'fallback'}", Some("fallback")),
        ("{'interface down' | truncate:9}", Some("interface…")),
        ("{'down' | truncate:9}", Some("down")),
        (
            "{body.status | prefix:' (' | suffix:')'}",
            Some(" (firing)"),
        ),
        ("x{body.missing | prefix:' (' | suffix:')'}", Some("x")),
        ("{body.empty | prefix:'a'}", Some("")),
        ("{body.missing | default:'none'}", Some("none")),
        ("{body.empty | default:'none'}", Some("none")),
        ("{body.status | default:'none'}", Some("firing")),
        ("{' 42 ' | number}", Some("42")),
        ("{'4.50' | number}", Some("4.5")),
        ("{'many' | number}", None),
        ("{body.list | text}", Some("[1,2]")),
        ("{body.json_text | json | text}", Some(r#"{"a":[1,2]}"#)),
        ("{body.json_text | json}", Some(r#"{"a":[1,2]}"#)),
        ("{'not json' | json}", None),
        ("{body.when | time}", Some("1715684415500")),
        ("{'1715684415500' | time}", Some("1715684415500")),
        ("{body.count | time}", Some("3")),
        ("{'last tuesday' | time}", None),
        ("{body.status | required}", Some("firing")),
    ];
    for (template, want) in cases {
        assert_eq!(
            render_with(maps.clone(), json!({}), template, &e).as_deref(),
            *want,
            "{template}"
        );
    }
    // `number` makes a number: it compares as one.
    assert!(holds(
        json!({"value": "{' 10 ' | number}", "equals": 10}),
        &e
    ));
    assert!(holds(
        json!({"value": "{body.json_text | json}", "equals": {"a": [1, 2]}}),
        &e
    ));
}

#[test]
fn required_names_the_pointer_of_the_missing_value() {
    let rules = Rules::compile(&json!({"rules": [{
        "for_each": "body.alerts",
        "alert": {"type": "{labels.alertname | required}", "device": "d"}
    }]}))
    .unwrap();
    let event = json!({"kind": "webhook", "body": {"alerts": [{"labels": {"alertname": "A"}}, {"labels": {}}]}});
    let e = rules.evaluate(&event).unwrap_err();
    assert_eq!(e.kind, EventErrorKind::InvalidInput);
    assert_eq!(e.message, "missing value at /alerts/1/labels/alertname");

    let rules = Rules::compile(&json!({"rules": [{
        "let": {"s": "{$.body.x}"},
        "alert": {"type": "t", "device": "{@s | required}"}
    }]}))
    .unwrap();
    assert_eq!(
        rules.evaluate(&event).unwrap_err().message,
        "missing value at @s"
    );

    let rules = Rules::compile(
        &json!({"rules": [{"alert": {"type": "{$.body.x.y | required}", "device": "d"}}]}),
    )
    .unwrap();
    assert_eq!(
        rules.evaluate(&event).unwrap_err().message,
        "missing value at /x/y"
    );
}
