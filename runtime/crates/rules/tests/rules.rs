//! docs/rules.md, "Conditions", "Rules" and "The alert": every row of the tables, through the
//! public API.

use opsconductor_rules::{EventError, EventErrorKind, RuleAlert, Rules};
use serde_json::{Value, json};

fn run(parse: Value, event: &Value) -> Result<Vec<RuleAlert>, EventError> {
    Rules::compile(&parse)
        .unwrap_or_else(|e| panic!("{e}"))
        .evaluate(event)
}

fn holds(condition: Value, event: &Value) -> bool {
    let parse = json!({"rules": [{"when": condition, "alert": {"type": "t", "device": "d"}}]});
    !run(parse, event).unwrap().is_empty()
}

fn field<'a>(alert: &'a RuleAlert, name: &str) -> Option<&'a str> {
    alert
        .fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn event() -> Value {
    json!({"kind": "webhook", "body": {
        "status": "Firing", "count": 12, "load": "0.75", "empty": "", "nothing": null,
        "name": "api-7d9c8b6f4-x2x9k", "tags": ["a"]
    }})
}

#[test]
fn conditions() {
    let e = event();
    let cases = [
        (json!({"path": "body.status", "exists": true}), true),
        (json!({"path": "body.empty", "exists": true}), true),
        (json!({"path": "body.nothing", "exists": true}), false),
        (json!({"path": "body.nothing", "exists": false}), true),
        (json!({"path": "body.absent", "exists": false}), true),
        (json!({"path": "body.status", "equals": "Firing"}), true),
        (json!({"path": "body.status", "equals": "firing"}), false),
        (
            json!({"path": "body.status", "equals": "firing", "ignore_case": true}),
            true,
        ),
        (json!({"path": "body.count", "equals": "12"}), true),
        (json!({"path": "body.count", "equals": 12}), true),
        (json!({"path": "body.absent", "equals": null}), true),
        (
            json!({"path": "body.status", "in": ["resolved", "Firing"]}),
            true,
        ),
        (
            json!({"path": "body.status", "in": ["resolved", "firing"]}),
            false,
        ),
        (
            json!({"path": "body.status", "in": ["FIRING"], "ignore_case": true}),
            true,
        ),
        (
            json!({"path": "body.name", "matches": "^api-[0-9a-f]+-"}),
            true,
        ),
        (json!({"path": "body.name", "matches": "^web-"}), false),
        (json!({"path": "body.absent", "matches": ".*"}), false),
        (json!({"path": "body.count", "gt": 10}), true),
        (json!({"path": "body.count", "gt": 12}), false),
        (json!({"path": "body.count", "gte": 12}), true),
        (json!({"path": "body.load", "lt": 1}), true),
        (json!({"path": "body.load", "lte": 0.75}), true),
        (json!({"path": "body.status", "lt": 1}), false),
        (json!({"path": "body.count", "gte": 10, "lt": 20}), true),
        (json!({"path": "body.count", "gte": 10, "lt": 12}), false),
        (
            json!({"value": "{body.status | lower}-{body.count}", "equals": "firing-12"}),
            true,
        ),
        (json!({"value": "{body.absent}", "exists": false}), true),
        (
            json!({"all": [{"path": "body.count", "gt": 1}, {"path": "body.status", "exists": true}]}),
            true,
        ),
        (
            json!({"all": [{"path": "body.count", "gt": 1}, {"path": "body.absent", "exists": true}]}),
            false,
        ),
        (
            json!({"any": [{"path": "body.count", "gt": 100}, {"path": "body.status", "exists": true}]}),
            true,
        ),
        (json!({"any": []}), false),
        (json!({"all": []}), true),
        (
            json!({"not": {"path": "body.status", "exists": true}}),
            false,
        ),
    ];
    for (condition, want) in cases {
        assert_eq!(holds(condition.clone(), &e), want, "{condition}");
    }
}

#[test]
fn rules_run_in_order_and_last_stops_them() {
    let e = event();
    let parse = json!({"rules": [
        {"name": "first", "alert": {"type": "a", "device": "d"}},
        {"when": {"path": "body.absent", "exists": true}, "last": true, "alert": {"type": "b", "device": "d"}},
        {"last": true, "alert": {"type": "c", "device": "d"}},
        {"alert": {"type": "d", "device": "d"}}
    ]});
    let types: Vec<_> = run(parse, &e)
        .unwrap()
        .into_iter()
        .map(|a| a.alert_type)
        .collect();
    assert_eq!(
        types,
        ["a", "c"],
        "a rule that did not apply does not stop the others"
    );
    let none = json!({"rules": [{"when": {"path": "body.absent", "exists": true}, "alert": {"type": "a", "device": "d"}}]});
    assert_eq!(run(none, &e).unwrap(), [], "no rule applies: no alerts");
}

#[test]
fn for_each_takes_array_elements_and_object_entries() {
    let e = json!({"kind": "webhook", "body": {
        "alerts": [{"n": "x"}, {"n": "y"}, {"skip": true}],
        "disks": {"/": {"used": 91}, "/var/log": {"used": 40}}
    }});
    let parse = json!({"rules": [
        {"for_each": "body.alerts", "when": {"path": "n", "exists": true},
         "alert": {"type": "{n}", "device": "d", "fields": {"i": "{@index}"}}},
        {"for_each": "body.disks", "when": {"path": "used", "gt": 90},
         "alert": {"type": "full", "device": "d", "identity": {"mount": "{@key}"}, "fields": {"at": "{@pointer}"}}}
    ]});
    let alerts = run(parse, &e).unwrap();
    assert_eq!(alerts.len(), 3);
    assert_eq!(
        (alerts[1].alert_type.as_str(), field(&alerts[1], "i")),
        ("y", Some("1"))
    );
    assert_eq!(alerts[2].identity, [("mount".to_owned(), "/".to_owned())]);
    assert_eq!(field(&alerts[2], "at"), Some("/disks/~1"));

    // Without `required` an absent array is no items; with it, the event is refused.
    let quiet =
        json!({"rules": [{"for_each": "body.none", "alert": {"type": "t", "device": "d"}}]});
    assert_eq!(run(quiet, &e).unwrap(), []);
    let strict = json!({"rules": [{"for_each": "body.none", "required": true, "alert": {"type": "t", "device": "d"}}]});
    let err = run(strict, &e).unwrap_err();
    assert_eq!(
        (err.kind, err.message.as_str()),
        (EventErrorKind::InvalidInput, "missing array at /none")
    );
    let wrong = json!({"rules": [{"for_each": "body.alerts.0.n", "required": true, "alert": {"type": "t", "device": "d"}}]});
    assert_eq!(
        run(wrong, &e).unwrap_err().message,
        "expected an array or an object at /alerts/0/n, found text"
    );
}

#[test]
fn match_makes_an_item_of_each_match() {
    let e = json!({"kind": "webhook", "text": "disk /a 91%; disk /b 40%\ndisk /c 97%"});
    let parse = json!({"rules": [{
        "match": {"value": "{text}", "regex": r"disk (?P<mount>\S+) (?P<used>\d+)%"},
        "when": {"path": "used", "gt": 90},
        "alert": {"type": "full", "device": "d", "identity": {"mount": "{mount}", "match": "{@index}"}}
    }]});
    let alerts = run(parse, &e).unwrap();
    let mounts: Vec<_> = alerts.iter().map(|a| a.identity.clone()).collect();
    assert_eq!(
        mounts,
        [
            [
                ("match".to_owned(), "0".to_owned()),
                ("mount".to_owned(), "/a".to_owned())
            ],
            [
                ("match".to_owned(), "2".to_owned()),
                ("mount".to_owned(), "/c".to_owned())
            ]
        ]
    );

    // `lines`: each line on its own, so `^` and `$` are a line's ends.
    let parse = json!({"rules": [{
        "match": {"value": "{text}", "regex": r"^disk (?P<mount>\S+)", "lines": true},
        "alert": {"type": "t", "device": "d", "fields": {"m": "{mount}"}}
    }]});
    let got: Vec<_> = run(parse, &e)
        .unwrap()
        .iter()
        .map(|a| field(a, "m").unwrap().to_owned())
        .collect();
    assert_eq!(got, ["/a", "/c"]);

    let missing = json!({"rules": [{"match": {"value": "{nope}", "regex": "x"}, "alert": {"type": "t", "device": "d"}}]});
    assert_eq!(run(missing, &e).unwrap(), []);
}

#[test]
fn let_is_computed_for_each_item_in_dependency_order() {
    let e = json!({"kind": "webhook", "body": {"alerts": [{"s": "a"}, {"s": "b"}]}});
    // `a` reads `b`, which sorts after it: the order of reading decides, not of writing.
    let parse = json!({"rules": [{
        "for_each": "body.alerts",
        "let": {"a": "{@b}-{@index}", "b": "{s | upper}"},
        "when": {"path": "@a", "matches": "^B"},
        "alert": {"type": "{@a}", "device": "d"}
    }]});
    let alerts = run(parse, &e).unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].alert_type, "B-1");
}

#[test]
fn error_refuses_the_event() {
    let e = event();
    for (kind, want) in [
        ("invalid-input", EventErrorKind::InvalidInput),
        ("unsupported", EventErrorKind::Unsupported),
    ] {
        let parse = json!({"rules": [
            {"alert": {"type": "before", "device": "d"}},
            {"when": {"path": "body.count", "gt": 10}, "error": {"kind": kind, "message": "count {body.count} is too high"}}
        ]});
        let err = run(parse, &e).unwrap_err();
        assert_eq!(err.kind, want);
        assert_eq!(err.message, "count 12 is too high");
    }
}

#[test]
fn alert_device() {
    let alert = |extra: Value, event: &Value| -> Result<RuleAlert, EventError> {
        let mut a = json!({"type": "t"});
        for (k, v) in extra.as_object().unwrap() {
            a[k] = v.clone();
        }
        run(json!({"rules": [{"alert": a}]}), event).map(|mut v| v.remove(0))
    };
    let device = |extra: Value, event: &Value| {
        let a = alert(extra, event).unwrap();
        (a.device_ip, a.device_name)
    };
    let web = event();
    let ip = |s: &str| (Some(s.to_owned()), None);
    let name = |s: &str| (None, Some(s.to_owned()));
    assert_eq!(device(json!({"device": "10.0.0.5"}), &web), ip("10.0.0.5"));
    assert_eq!(
        device(json!({"device": "[2001:0db8::1]"}), &web),
        ip("2001:db8::1")
    );
    assert_eq!(
        device(json!({"device": " core-sw-01 "}), &web),
        name("core-sw-01")
    );
    assert_eq!(
        device(
            json!({"device_ip": "192.0.2.1", "device_name": "edge"}),
            &web
        ),
        (Some("192.0.2.1".into()), Some("edge".into()))
    );
    assert_eq!(device(json!({"device_name": "edge"}), &web), name("edge"));
    let bad = alert(json!({"device_ip": "edge"}), &web).unwrap_err();
    assert!(
        bad.message
            .ends_with("device_ip `edge` is not an IP address"),
        "{}",
        bad.message
    );

    let none = alert(json!({"device": "{body.absent}"}), &web).unwrap_err();
    assert_eq!(none.kind, EventErrorKind::InvalidInput);
    assert!(
        none.message
            .starts_with("parse.rules[0]: the alert has no device"),
        "{}",
        none.message
    );

    let trap = json!({"kind": "trap", "agent_address": "192.0.2.10", "varbinds": []});
    assert_eq!(device(json!({}), &trap), ip("192.0.2.10"));
    assert_eq!(
        device(json!({"device": "sw-1"}), &trap),
        name("sw-1"),
        "the rule's device wins"
    );

    let poll = |address: &str, target_name: &str| json!({"kind": "poll", "target": {"id": 1, "name": target_name, "address": address, "host": "ignored", "config": {}}, "fetched": {}});
    assert_eq!(
        device(json!({}), &poll("192.0.2.1:161", "edge-1")),
        (Some("192.0.2.1".into()), Some("edge-1".into()))
    );
    assert_eq!(
        device(json!({}), &poll("https://[2001:db8::1]:8443/api", "")),
        ip("2001:db8::1")
    );
    assert_eq!(
        device(json!({}), &poll("web-1.example.com:443", "")),
        name("web-1.example.com")
    );
    assert_eq!(
        device(json!({}), &poll("web-1.example.com", "Shop web")),
        name("Shop web")
    );
}

#[test]
fn alert_texts_severity_and_clears() {
    let e = event();
    let a = &run(
        json!({"rules": [{"alert": {"type": "{body.status}", "device": "d"}}]}),
        &e,
    )
    .unwrap()[0];
    assert_eq!(
        (a.title.as_str(), a.message.as_str(), &a.severity, a.clears),
        ("Firing", "", &None, false)
    );
    assert_eq!(a.occurred_at, None, "the host's receipt time");

    let parse = json!({"rules": [{"alert": {
        "type": "t", "device": "d", "title": "{body.status} x{body.count}", "message": "m",
        "severity": "  {body.status | lower}  ", "clears": {"path": "body.count", "gt": 10},
        "occurred_at": "2024-05-14T11:00:15.5Z"
    }}]});
    let a = &run(parse, &e).unwrap()[0];
    assert_eq!((a.title.as_str(), a.message.as_str()), ("Firing x12", "m"));
    assert_eq!(
        a.severity.as_deref(),
        Some("firing"),
        "trimmed; the caller maps words"
    );
    assert!(a.clears);
    assert_eq!(a.occurred_at, Some(1_715_684_415_500));

    let parse = json!({"rules": [{"alert": {"type": "t", "device": "d", "clears": true, "severity": "", "occurred_at": 1_715_684_415_000_i64}}]});
    let a = &run(parse, &e).unwrap()[0];
    assert!(a.clears);
    assert_eq!(
        (a.severity.as_deref(), a.occurred_at),
        (None, Some(1_715_684_415_000))
    );

    let empty_type = run(
        json!({"rules": [{"alert": {"type": "{body.empty}", "device": "d"}}]}),
        &e,
    )
    .unwrap_err();
    assert!(
        empty_type.message.ends_with("the alert's type is empty"),
        "{}",
        empty_type.message
    );
}

#[test]
fn alert_identity_and_fields() {
    let e = json!({"kind": "webhook", "body": {
        "labels": {"alertname": "A", "instance": "10.0.0.1:9100", "replicas": 3, "up": false, "gone": null},
        "annotations": {"summary": "S"},
        "extra": {"note": "n"}
    }});
    let parse = json!({"rules": [{"alert": {
        "type": "t", "device": "d",
        "identity": {"instance": "{body.labels.instance | host}", "absent": "{body.nope}"},
        "identity_from": {"object": "body.labels", "except": ["alertname"]},
        "fields": {"summary": "{body.annotations.summary}", "absent": "{body.nope}", "blank": "{body.nope}!"},
        "fields_from": [{"object": "body.annotations", "prefix": "annotations."}, {"object": "body.extra"}, {"object": "body.nope"}]
    }}]});
    let a = &run(parse, &e).unwrap()[0];
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        a.identity,
        pairs(&[("instance", "10.0.0.1"), ("replicas", "3"), ("up", "false")])
    );
    assert_eq!(
        a.fields,
        pairs(&[
            ("annotations.summary", "S"),
            ("note", "n"),
            ("blank", "!"),
            ("summary", "S")
        ])
    );
}

/// Empty values are left out like missing ones, and an `except` entry ending in `*` leaves out
/// every key that starts with the text before it.
#[test]
fn empty_values_and_prefixed_excepts_are_left_out() {
    let e = json!({"kind": "webhook", "body": {
        "labels": {"alertname": "A", "__alert_rule_uid__": "u1", "__name__": "n", "team": "", "zone": "eu"},
        "panelURL": ""
    }});
    let parse = json!({"rules": [{"alert": {
        "type": "t", "device": "d",
        "identity_from": {"object": "body.labels", "except": ["alertname", "__*"]},
        "fields": {"panelURL": "{body.panelURL}", "zone": "{body.labels.zone}"}
    }}]});
    let a = &run(parse, &e).unwrap()[0];
    let pair = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
    assert_eq!(a.identity, pair("zone", "eu"));
    assert_eq!(a.fields, pair("zone", "eu"));
}
