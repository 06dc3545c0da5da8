//! Mistakes in a `parse` section are found when it compiles, each named by its exact place.

use opsconductor_rules::{MAX_DEPTH, MAX_RULES, Rules, RulesError};
use serde_json::{Value, json};

fn error(parse: Value) -> RulesError {
    match Rules::compile(&parse) {
        Err(e) => e,
        Ok(_) => panic!("compiled: {parse}"),
    }
}

/// A section of one rule.
fn rule_error(rule: Value) -> RulesError {
    error(json!({"rules": [rule]}))
}

fn alert(extra: Value) -> Value {
    let mut a = json!({"type": "t", "device": "d"});
    for (k, v) in extra.as_object().unwrap() {
        a[k] = v.clone();
    }
    json!({"alert": a})
}

#[track_caller]
fn check(e: RulesError, path: &str, message: &str) {
    assert_eq!(e.path, path, "{e}");
    assert!(e.message.contains(message), "{e}\n  wanted: {message}");
}

#[test]
fn the_message_names_the_place() {
    let e = error(json!({"rules": [
        alert(json!({})),
        alert(json!({})),
        {"when": {"path": "x", "matches": "(unclosed"}, "alert": {"type": "t"}}
    ]}));
    assert_eq!(
        e.to_string(),
        "parse.rules[2].when.matches: regex parse error: unclosed group"
    );
}

#[test]
fn the_section() {
    check(
        error(json!([])),
        "parse",
        "expected an object, found a list",
    );
    check(error(json!({})), "parse", "missing `rules`");
    check(
        error(json!({"rules": {}})),
        "parse.rules",
        "expected a list, found an object",
    );
    check(
        error(json!({"rules": [], "rule": []})),
        "parse.rule",
        "unknown key `rule` (expected one of: maps, grok_patterns, rules)",
    );
    let many: Vec<Value> = (0..=MAX_RULES).map(|_| alert(json!({}))).collect();
    check(error(json!({"rules": many})), "parse.rules", "at most 1000");
    check(
        error(json!({"rules": [42]})),
        "parse.rules[0]",
        "expected an object, found a number",
    );
}

#[test]
fn maps() {
    check(
        error(json!({"maps": [], "rules": []})),
        "parse.maps",
        "expected an object",
    );
    check(
        error(json!({"maps": {"severity": "x"}, "rules": []})),
        "parse.maps.severity",
        "expected an object, found text",
    );
    check(
        error(json!({"maps": {"severity": {"a": {"b": 1}}}, "rules": []})),
        "parse.maps.severity.a",
        "expected text, a number",
    );
    let e =
        error(json!({"maps": {"severity": {"crit": "critical", "CRIT": "major"}}, "rules": []}));
    assert_eq!(e.path.to_lowercase(), "parse.maps.severity.crit");
    assert!(e.message.contains("same ignoring case"), "{e}");
    check(
        rule_error(alert(json!({"severity": "{x | map:sev}"}))),
        "parse.rules[0].alert.severity",
        "unknown map `sev`: parse.maps defines none",
    );
    check(
        error(
            json!({"maps": {"severity": {}}, "rules": [alert(json!({"severity": "{x | map:sev}"}))]}),
        ),
        "parse.rules[0].alert.severity",
        "unknown map `sev` (parse.maps has severity)",
    );
}

#[test]
fn grok() {
    check(
        error(json!({"grok_patterns": {"my-pat": "x"}, "rules": []})),
        "parse.grok_patterns.my-pat",
        "letters, digits and `_`",
    );
    check(
        error(json!({"grok_patterns": {"QUEUE": 3}, "rules": []})),
        "parse.grok_patterns.QUEUE",
        "expected text",
    );
    check(
        error(json!({"grok_patterns": {"QUEUE": "(unclosed"}, "rules": []})),
        "parse.grok_patterns.QUEUE",
        "not a valid regular expression",
    );
    check(
        error(json!({"grok_patterns": {"LOOP": "a%{LOOP}"}, "rules": []})),
        "parse.grok_patterns.LOOP",
        "too deeply",
    );
    let grok_rule = |g: &str| json!({"match": {"value": "{text}", "grok": g}, "alert": {"type": "t", "device": "d"}});
    check(
        rule_error(grok_rule("%{NOPE:x}")),
        "parse.rules[0].match.grok",
        "`%{NOPE}` is not defined",
    );
    let ok =
        json!({"grok_patterns": {"QUEUE": "[a-z]+"}, "rules": [grok_rule("%{QUEUE:q} %{INT:n}")]});
    assert!(
        Rules::compile(&ok).is_ok(),
        "the section's own patterns are known"
    );
}

#[test]
fn rules() {
    check(
        rule_error(json!({"alret": {}})),
        "parse.rules[0].alret",
        "unknown key `alret`",
    );
    check(
        rule_error(json!({"name": "x"})),
        "parse.rules[0]",
        "a rule needs `alert` or `error`",
    );
    let both = json!({"alert": {"type": "t"}, "error": {"kind": "unsupported", "message": "m"}});
    check(rule_error(both), "parse.rules[0]", "not both");
    check(
        rule_error(json!({"name": 3, "alert": {"type": "t"}})),
        "parse.rules[0].name",
        "expected text, found a number",
    );
    check(
        rule_error(json!({"last": "yes", "alert": {"type": "t"}})),
        "parse.rules[0].last",
        "expected true or false",
    );
    let with_match =
        json!({"for_each": "a", "match": {"value": "{b}", "regex": "c"}, "alert": {"type": "t"}});
    check(
        rule_error(with_match),
        "parse.rules[0].match",
        "`for_each` and `match` cannot be combined",
    );
    check(
        rule_error(json!({"for_each": "@x", "alert": {"type": "t"}})),
        "parse.rules[0].for_each",
        "unknown variable `@x`",
    );
    check(
        rule_error(json!({"for_each": "oid:1.3", "alert": {"type": "t"}})),
        "parse.rules[0].for_each",
        "not a variable or an OID",
    );
    check(
        rule_error(json!({"for_each": "a..b", "alert": {"type": "t"}})),
        "parse.rules[0].for_each",
        "empty key",
    );
    check(
        rule_error(json!({"required": true, "alert": {"type": "t"}})),
        "parse.rules[0].required",
        "only with `for_each`",
    );
    check(
        rule_error(json!({"for_each": "a", "required": 1, "alert": {"type": "t"}})),
        "parse.rules[0].required",
        "expected true, false, \"array\" or \"object\"",
    );
    check(
        rule_error(json!({"match": {"value": "{b}"}, "alert": {"type": "t"}})),
        "parse.rules[0].match",
        "needs `regex` or `grok`",
    );
    check(
        rule_error(json!({"match": {"value": "{b}", "regex": "(?P<x"}, "alert": {"type": "t"}})),
        "parse.rules[0].match.regex",
        "regex parse error",
    );
    check(
        rule_error(json!({"match": {"regex": "x"}, "alert": {"type": "t"}})),
        "parse.rules[0].match",
        "missing `value`",
    );
    check(
        rule_error(
            json!({"match": {"value": "{b}", "regex": "x", "line": true}, "alert": {"type": "t"}}),
        ),
        "parse.rules[0].match.line",
        "unknown key",
    );
    let match_reads_let = json!({"match": {"value": "{@v}", "regex": "x"}, "let": {"v": "1"}, "alert": {"type": "t"}});
    check(
        rule_error(match_reads_let),
        "parse.rules[0].match.value",
        "`@v` cannot be read here",
    );
    check(
        rule_error(json!({"error": {"kind": "fatal", "message": "m"}})),
        "parse.rules[0].error.kind",
        "expected `invalid-input` or `unsupported`, found `fatal`",
    );
    check(
        rule_error(json!({"error": {"kind": "unsupported"}})),
        "parse.rules[0].error",
        "missing `message`",
    );
    check(
        rule_error(json!({"error": {"kind": "unsupported", "message": "{x"}})),
        "parse.rules[0].error.message",
        "unclosed `{` at character 1",
    );
}

#[test]
fn variables() {
    check(
        rule_error(alert(json!({"title": "{@status}"}))),
        "parse.rules[0].alert.title",
        "unknown variable `@status`",
    );
    let cycle = json!({"let": {"a": "{@b}", "b": "{@a}", "c": "{x}"}, "alert": {"type": "{@c}"}});
    check(
        rule_error(cycle),
        "parse.rules[0].let.a",
        "read each other, so none can be computed first: @a, @b",
    );
    check(
        rule_error(json!({"let": {"a": "{@a}"}, "alert": {"type": "t"}})),
        "parse.rules[0].let.a",
        "@a",
    );
    check(
        rule_error(json!({"let": {"my-var": "1"}, "alert": {"type": "t"}})),
        "parse.rules[0].let.my-var",
        "a variable's name",
    );
    check(
        rule_error(json!({"let": {"index": "1"}, "alert": {"type": "t"}})),
        "parse.rules[0].let.index",
        "built-in",
    );
    check(
        rule_error(json!({"let": {"v": {"a": 1}}, "alert": {"type": "t"}})),
        "parse.rules[0].let.v",
        "found an object",
    );
    check(
        rule_error(alert(json!({"fields": {"x": "{oid:1.3.@nope}"}}))),
        "parse.rules[0].alert.fields.x",
        "unknown variable `@nope`",
    );
}

#[test]
fn the_alert() {
    check(
        rule_error(json!({"alert": {"device": "d"}})),
        "parse.rules[0].alert",
        "the alert needs a `type`",
    );
    check(
        rule_error(alert(json!({"titel": "x"}))),
        "parse.rules[0].alert.titel",
        "unknown key `titel`",
    );
    check(
        rule_error(alert(json!({"title": "Link {name"}))),
        "parse.rules[0].alert.title",
        "unclosed `{` at character 6",
    );
    check(
        rule_error(alert(json!({"message": "{a | shout}"}))),
        "parse.rules[0].alert.message",
        "unknown filter `shout`",
    );
    check(
        rule_error(alert(json!({"message": "{a | truncate:many}"}))),
        "parse.rules[0].alert.message",
        "`truncate` takes a number",
    );
    check(
        rule_error(alert(json!({"title": {"path": "a"}}))),
        "parse.rules[0].alert.title",
        "found an object",
    );
    check(
        rule_error(alert(json!({"clears": "yes"}))),
        "parse.rules[0].alert.clears",
        "a condition, true or false",
    );
    check(
        rule_error(alert(json!({"clears": {"path": "a"}}))),
        "parse.rules[0].alert.clears",
        "needs a test",
    );
    check(
        rule_error(alert(json!({"fields": ["a"]}))),
        "parse.rules[0].alert.fields",
        "expected an object, found a list",
    );
    check(
        rule_error(alert(
            json!({"identity_from": {"object": "a", "except": "b"}}),
        )),
        "parse.rules[0].alert.identity_from.except",
        "a list of keys",
    );
    check(
        rule_error(alert(
            json!({"identity_from": {"object": "a", "except": [1]}}),
        )),
        "parse.rules[0].alert.identity_from.except[0]",
        "expected text",
    );
    check(
        rule_error(alert(
            json!({"fields_from": [{"object": "a"}, {"prefix": "p"}]}),
        )),
        "parse.rules[0].alert.fields_from[1]",
        "missing `object`",
    );
    check(
        rule_error(alert(
            json!({"fields_from": [{"object": "a", "prefx": "p"}]}),
        )),
        "parse.rules[0].alert.fields_from[0].prefx",
        "unknown key",
    );
    let choice = json!([{"value": "a"}, {"when": {"path": "x", "gt": "high"}, "value": "b"}]);
    check(
        rule_error(alert(json!({"severity": choice}))),
        "parse.rules[0].alert.severity[1].when.gt",
        "expected a number, found text",
    );
    check(
        rule_error(alert(
            json!({"severity": [{"when": {"path": "x", "exists": true}}]}),
        )),
        "parse.rules[0].alert.severity[0]",
        "missing `value`",
    );
    check(
        rule_error(alert(json!({"severity": [{"value": "a", "else": "b"}]}))),
        "parse.rules[0].alert.severity[0].else",
        "unknown key",
    );
}

#[test]
fn conditions() {
    let when = |c: Value| rule_error(json!({"when": c, "alert": {"type": "t"}}));
    check(
        when(json!({"path": "a", "equal": "b"})),
        "parse.rules[0].when.equal",
        "unknown key `equal`",
    );
    check(
        when(json!({"path": "a"})),
        "parse.rules[0].when",
        "needs a test",
    );
    check(
        when(json!({"equals": "b"})),
        "parse.rules[0].when",
        "needs `path` or `value`",
    );
    check(
        when(json!({"path": "a", "value": "b", "exists": true})),
        "parse.rules[0].when",
        "`path` or `value`, not both",
    );
    check(
        when(json!({"path": 3, "exists": true})),
        "parse.rules[0].when.path",
        "expected text",
    );
    check(
        when(json!({"path": "a", "exists": "yes"})),
        "parse.rules[0].when.exists",
        "expected true or false",
    );
    check(
        when(json!({"path": "a", "in": "b"})),
        "parse.rules[0].when.in",
        "expected a list",
    );
    check(
        when(json!({"path": "a", "lte": null})),
        "parse.rules[0].when.lte",
        "expected a number",
    );
    check(
        when(json!({"path": "a", "matches": "x", "ignore_case": true})),
        "parse.rules[0].when.ignore_case",
        "only to `equals` and `in`",
    );
    check(
        when(json!({"all": [{"path": "a", "exists": true}], "path": "b"})),
        "parse.rules[0].when",
        "`all` stands alone",
    );
    check(
        when(json!({"any": {"path": "a", "exists": true}})),
        "parse.rules[0].when.any",
        "expected a list of conditions",
    );
    check(
        when(json!({"all": [{"path": "a", "exists": true}, {"path": "b", "matches": "["}]})),
        "parse.rules[0].when.all[1].matches",
        "regex parse error",
    );
    check(
        when(json!({"not": {"value": "{a | nope}", "exists": true}})),
        "parse.rules[0].when.not.value",
        "unknown filter `nope`",
    );
    check(
        when(json!({"path": "/a~2", "exists": true})),
        "parse.rules[0].when.path",
        "`~0` or `~1`",
    );
}

#[test]
fn pathological_input_is_bounded() {
    let mut c = json!({"path": "a", "exists": true});
    for _ in 0..=MAX_DEPTH {
        c = json!({"not": c});
    }
    let e = rule_error(json!({"when": c, "alert": {"type": "t"}}));
    assert!(e.message.contains("nested deeper than 32 levels"), "{e}");
    assert!(e.path.starts_with("parse.rules[0].when.not.not."), "{e}");

    let mut v = json!("x");
    for _ in 0..=MAX_DEPTH {
        v = json!([{"value": v}]);
    }
    let e = rule_error(alert(json!({"title": v})));
    assert!(e.message.contains("nested deeper than 32 levels"), "{e}");

    // Unicode `\w` repeated compiles to far more than the 1 MiB allowed.
    let e =
        rule_error(json!({"when": {"path": "a", "matches": r"\w{1000}"}, "alert": {"type": "t"}}));
    check(e, "parse.rules[0].when.matches", "regex too big");
}
