//! The legacy system's addon manifests (the Python design in
//! `shared/seed/clean-core-architecture.md`) turned into rules addons: `opsconductor addon
//! convert-legacy`. Pure: a JSON document in, a manifest and a report of what did not come over
//! out.
//!
//! The legacy manifest named one `method`, one `parser` (`json`, `snmp`, `regex` or `grok`)
//! whose keys said where the alert type, device and text were, and `severity_mappings` /
//! `category_mappings` from alert type to severity and category. docs/rules.md ("Coming from the
//! legacy system") lists every key read here; any other key is reported, by its path, never
//! silently dropped.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::manifest::{Manifest, ManifestError, WORLD_RULES};

/// A converted manifest and what could not be carried over.
#[derive(Debug)]
pub struct Conversion {
    /// The rules addon's manifest, validated.
    pub manifest: Manifest,
    /// One line per legacy key, or value, that has no place in the rules addon.
    pub left_out: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    #[error("legacy manifest: {0}")]
    Shape(String),
    /// The conversion made a manifest the runtime refuses (a regex the rules engine cannot
    /// compile, an id that is not valid here).
    #[error("the converted manifest is not valid: {0}")]
    Invalid(#[from] ManifestError),
}

fn shape(message: impl Into<String>) -> LegacyError {
    LegacyError::Shape(message.into())
}

/// Reads keys off a legacy object, remembering which were read so that the rest can be
/// reported.
struct Reader<'a> {
    object: &'a Map<String, Value>,
    prefix: &'static str,
    taken: Vec<&'static str>,
}

impl<'a> Reader<'a> {
    fn new(object: &'a Map<String, Value>, prefix: &'static str) -> Reader<'a> {
        Reader {
            object,
            prefix,
            taken: Vec::new(),
        }
    }

    /// The first of `keys` present (all of them count as read).
    fn get(&mut self, keys: &[&'static str]) -> Option<&'a Value> {
        self.taken.extend_from_slice(keys);
        keys.iter()
            .find_map(|k| self.object.get(*k).filter(|v| !v.is_null()))
    }

    fn text(&mut self, keys: &[&'static str]) -> Option<&'a str> {
        self.get(keys).and_then(Value::as_str).map(str::trim)
    }

    /// Every key not read, as `parser.foo`.
    fn rest(&self, out: &mut Vec<String>) {
        for key in self.object.keys() {
            if !self.taken.contains(&key.as_str()) {
                out.push(format!(
                    "{}{key}: not a key this converter knows; carried over nowhere",
                    self.prefix
                ));
            }
        }
    }
}

/// A legacy path (`labels.alertname`, `$.alerts[0].labels.alertname`, `/labels/alertname`) as a
/// rules path under `base` (`body`, `fetched.response.body`, or empty inside `for_each`).
fn path(legacy: &str, base: &str) -> String {
    let legacy = legacy.trim();
    if legacy.starts_with('/') {
        // A JSON pointer: the rules take it as it is, from the item.
        return if base.is_empty() {
            legacy.to_owned()
        } else {
            format!(
                "{base}.{}",
                legacy.trim_start_matches('/').replace('/', ".")
            )
        };
    }
    let legacy = legacy.trim_start_matches('$').trim_start_matches('.');
    let mut out = legacy.replace("[*]", "").replace('[', ".").replace(']', "");
    if !base.is_empty() {
        out = if out.is_empty() {
            base.to_owned()
        } else {
            format!("{base}.{out}")
        };
    }
    out
}

/// A legacy template (`"{host} is {state}"`) or bare field name (`"host"`) as a rules template
/// whose paths are under `base`.
fn template(legacy: &str, base: &str) -> String {
    if !legacy.contains('{') {
        return format!("{{{}}}", path(legacy, base));
    }
    let mut out = String::new();
    let mut rest = legacy;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        out.push('{');
        out.push_str(&path(&rest[open + 1..open + close], base));
        out.push('}');
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// An OID as the rules and the manifest write it: dotted decimal without a leading dot.
fn oid(text: &str) -> String {
    text.trim().trim_start_matches('.').to_owned()
}

/// What a legacy `method` is called here.
fn method(legacy: &str) -> Option<&'static str> {
    Some(match legacy.trim().to_ascii_lowercase().as_str() {
        "webhook" | "http_webhook" => "webhook",
        "snmp_trap" | "trap" | "snmp" => "snmp_trap",
        "api_poll" | "http_poll" | "rest_poll" => "api_poll",
        "snmp_poll" => "snmp_poll",
        "ssh" | "ssh_poll" => "ssh_poll",
        _ => return None,
    })
}

/// The root path of the raw data for a method: what the legacy parser was handed.
fn data_root(method: &str) -> &'static str {
    match method {
        "api_poll" => "fetched.response.body",
        "ssh_poll" => "fetched.output.stdout",
        "webhook" => "body",
        _ => "",
    }
}

/// Converts a legacy manifest.
pub fn convert(legacy: &Value) -> Result<Conversion, LegacyError> {
    let object = legacy
        .as_object()
        .ok_or_else(|| shape("expected a JSON object"))?;
    let mut top = Reader::new(object, "");
    let mut left_out = Vec::new();

    let id = top
        .text(&["id", "addon_id"])
        .ok_or_else(|| shape("`id` is required"))?
        .to_ascii_lowercase();
    let name = top.text(&["name"]).unwrap_or(&id).to_owned();
    let mut version = top.text(&["version"]).unwrap_or("1.0.0").to_owned();
    let parts = version.split('.').count();
    if parts < 3 && version.split('.').all(|p| p.parse::<u64>().is_ok()) {
        let padded = format!("{version}{}", ".0".repeat(3 - parts));
        left_out.push(format!(
            "version: `{version}` is written `{padded}` (versions here are x.y.z)"
        ));
        version = padded;
    }
    let description = top.text(&["description"]).unwrap_or_default().to_owned();
    let legacy_method = top
        .text(&["method", "type"])
        .ok_or_else(|| shape("`method` is required (snmp_trap, webhook, api_poll, ...)"))?;
    let method = method(legacy_method).ok_or_else(|| {
        shape(format!(
            "method `{legacy_method}` is not one of webhook, snmp_trap, api_poll, snmp_poll, ssh_poll"
        ))
    })?;
    let enabled = top
        .get(&["enabled"])
        .and_then(Value::as_bool)
        .unwrap_or(true);

    let mut manifest = json!({
        "id": id,
        "name": name,
        "version": version,
        "description": description,
        "world": WORLD_RULES,
        "methods": [method],
        "enabled_by_default": enabled,
    });

    // Where the events come from.
    match method {
        "webhook" => {
            let webhook = top.get(&["webhook"]).and_then(Value::as_object);
            let legacy_path = webhook
                .and_then(|w| w.get("path"))
                .and_then(Value::as_str)
                .or_else(|| top.text(&["webhook_path", "endpoint"]))
                .unwrap_or(&id);
            let path = legacy_path
                .trim()
                .trim_start_matches('/')
                .trim_start_matches("webhooks/")
                .trim_start_matches("webhook/")
                .to_owned();
            manifest["webhook"] = json!({"path": path, "format": "json"});
        }
        "snmp_trap" => {
            let snmp = top.get(&["snmp"]).and_then(Value::as_object);
            let from_snmp = |key: &str| snmp.and_then(|s| s.get(key));
            let prefixes: Vec<String> = match from_snmp("oid_prefixes")
                .or_else(|| from_snmp("enterprise_oids"))
                .or_else(|| top.get(&["oid_prefixes", "enterprise_oids", "trap_oids"]))
            {
                Some(Value::Array(list)) => {
                    list.iter().filter_map(Value::as_str).map(oid).collect()
                }
                _ => from_snmp("enterprise_oid")
                    .and_then(Value::as_str)
                    .or_else(|| top.text(&["enterprise_oid", "oid_prefix"]))
                    .map(|o| vec![oid(o)])
                    .unwrap_or_default(),
            };
            if prefixes.is_empty() {
                return Err(shape(
                    "an snmp_trap addon needs its OID prefixes (`snmp.oid_prefixes` or `enterprise_oid`)",
                ));
            }
            manifest["snmp_trap"] = json!({"oid_prefixes": prefixes});
        }
        poll => {
            let p = top
                .get(&["poll", "polling"])
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let mut poll_reader = Reader::new(&p, "poll.");
            let interval = poll_reader
                .get(&["interval", "interval_seconds", "poll_interval"])
                .and_then(Value::as_u64)
                .unwrap_or(300);
            let fetch = match poll {
                "api_poll" => {
                    let url = poll_reader
                        .text(&["path", "url", "endpoint"])
                        .unwrap_or("/");
                    // Targets carry the host; a legacy absolute URL keeps only its path.
                    let path = url
                        .split_once("://")
                        .map(|(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]))
                        .unwrap_or(url);
                    let method = poll_reader.text(&["method"]).unwrap_or("GET");
                    json!({"name": "response", "kind": "http", "method": method, "path": path})
                }
                "snmp_poll" => {
                    let oids: Vec<String> = poll_reader
                        .get(&["oids"])
                        .and_then(Value::as_array)
                        .map(|l| l.iter().filter_map(Value::as_str).map(oid).collect())
                        .unwrap_or_default();
                    json!({"name": "snmp", "kind": "snmp_get", "oids": oids})
                }
                _ => {
                    let command = poll_reader
                        .text(&["command"])
                        .ok_or_else(|| shape("an ssh poll needs `poll.command`"))?;
                    json!({"name": "output", "kind": "ssh", "command": command})
                }
            };
            poll_reader.rest(&mut left_out);
            manifest["poll"] = json!({
                "default_interval_seconds": interval,
                "mode": "declarative",
                "fetch": [fetch],
            });
        }
    }

    // Severity and category by alert type: severity through the rules (so that the legacy
    // words `high`, `error`, `crit` read as the SDK reads them), category as the manifest's map.
    let severities: Map<String, Value> = top
        .get(&["severity_mappings", "severity_map"])
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let categories: BTreeMap<String, String> = top
        .get(&["category_mappings", "category_map"])
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), category(v.as_str()?))))
                .collect()
        })
        .unwrap_or_default();
    let default_category = top
        .text(&["default_category"])
        .map(category)
        .unwrap_or_else(|| "unknown".to_owned());
    let default_severity = top.text(&["default_severity"]).unwrap_or("warning");
    let mut clears: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(Value::Object(m)) = top.get(&["clear_mappings", "clears"]) {
        for (clearing, cleared) in m {
            let list = match cleared {
                Value::String(s) => vec![s.clone()],
                Value::Array(l) => l
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                _ => continue,
            };
            clears.insert(clearing.clone(), list);
        }
    }

    let parser = top
        .get(&["parser"])
        .and_then(Value::as_object)
        .ok_or_else(|| {
            shape(
                "`parser` is required: {\"type\": \"json\" | \"snmp\" | \"regex\" | \"grok\", ...}",
            )
        })?;
    top.taken.extend([
        "webhook",
        "snmp",
        "poll",
        "polling",
        "webhook_path",
        "endpoint",
    ]);
    top.rest(&mut left_out);

    let mut p = Reader::new(parser, "parser.");
    let kind = p
        .text(&["type"])
        .ok_or_else(|| shape("`parser.type` is required"))?
        .to_ascii_lowercase();
    let root = data_root(method);
    let mut maps = Map::new();
    if !severities.is_empty() {
        maps.insert("severity".into(), Value::Object(severities));
    }
    let (rule, extra_maps) = match kind.as_str() {
        "json" => json_rule(&mut p, root)?,
        "snmp" => snmp_rule(&mut p, method)?,
        "regex" | "grok" => text_rule(&mut p, &kind, root)?,
        other => {
            return Err(shape(format!(
                "parser.type `{other}` is not one of json, snmp, regex, grok"
            )));
        }
    };
    p.rest(&mut left_out);
    maps.extend(extra_maps);

    let mut rule = rule;
    if maps.contains_key("severity") {
        rule["alert"]["severity"] = json!("{@type | map:severity}");
    }
    let mut parse = json!({"rules": [rule]});
    if !maps.is_empty() {
        parse["maps"] = Value::Object(maps);
    }
    manifest["parse"] = parse;
    manifest["alerts"] = json!({
        "default_severity": default_severity,
        "default_category": default_category,
        "category_map": categories,
        "clears": clears,
    });

    let bytes = serde_json::to_vec(&manifest).expect("a JSON value serialises");
    let manifest = Manifest::from_json(&bytes)?;
    Ok(Conversion { manifest, left_out })
}

/// A legacy category as a category here: lower case, blanks as `_`.
fn category(text: &str) -> String {
    let c: String = text
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if c.is_empty() {
        "unknown".to_owned()
    } else {
        c
    }
}

/// The alert type, device, texts, fields and clearing of a rule, read from the parser keys every
/// legacy parser shares. `base` is where the parser's paths start.
fn common_alert(p: &mut Reader<'_>, base: &str, alert_type: String) -> Value {
    let mut alert = json!({"type": alert_type});
    let t = |p: &mut Reader<'_>, keys: &[&'static str]| p.text(keys).map(|v| template(v, base));
    if let Some(device) = t(p, &["device_ip_field", "device_ip", "host_field"]) {
        // A single field may hold `host:port` or a URL: keep its host. A template of several
        // parts is taken as it is.
        let single =
            device.starts_with('{') && device.ends_with('}') && device.matches('{').count() == 1;
        alert["device"] = match single {
            true => json!(format!("{} | host}}", &device[..device.len() - 1])),
            false => json!(device),
        };
    }
    if let Some(name) = t(p, &["device_name_field", "device_name"]) {
        alert["device_name"] = json!(name);
    }
    if let Some(title) = t(
        p,
        &["title", "title_field", "title_template", "summary_field"],
    ) {
        alert["title"] = json!(title);
    }
    if let Some(message) = t(
        p,
        &[
            "message",
            "message_field",
            "message_template",
            "description_field",
        ],
    ) {
        alert["message"] = json!(message);
    }
    if let Some(Value::Object(fields)) = p.get(&["fields", "field_mappings"]) {
        let fields: Map<String, Value> = fields
            .iter()
            .filter_map(|(name, from)| Some((name.clone(), json!(template(from.as_str()?, base)))))
            .collect();
        alert["fields"] = Value::Object(fields);
    }
    if let Some(Value::Array(keys)) =
        p.get(&["identity_fields", "dedupe_fields", "fingerprint_fields"])
    {
        let identity: Map<String, Value> = keys
            .iter()
            .filter_map(Value::as_str)
            .map(|k| (k.to_owned(), json!(template(k, base))))
            .collect();
        alert["identity"] = Value::Object(identity);
    }
    let clear_field = p.text(&["clear_field", "status_field", "state_field"]);
    let clear_values = p.get(&["clear_values", "clear_value", "resolved_values"]);
    if let (Some(field), Some(values)) = (clear_field, clear_values) {
        let values = match values {
            Value::Array(list) => list.clone(),
            one => vec![one.clone()],
        };
        alert["clears"] = json!({"path": path(field, base), "in": values, "ignore_case": true});
    }
    alert
}

/// `parser.type: json`: one alert per document, or per element of `alerts_path`.
fn json_rule(p: &mut Reader<'_>, root: &str) -> Result<(Value, Map<String, Value>), LegacyError> {
    let each = p.text(&["alerts_path", "items_path", "array_path", "root"]);
    let base = if each.is_some() { "" } else { root };
    let alert_type = match (
        p.text(&["alert_type_field", "type_field"]),
        p.text(&["alert_type"]),
    ) {
        (Some(field), _) => template(field, base),
        (None, Some(fixed)) => fixed.to_owned(),
        (None, None) => {
            return Err(shape(
                "a json parser needs `alert_type_field` (where the type is) or `alert_type` (a fixed type)",
            ));
        }
    };
    let mut rule = json!({"let": {"type": alert_type}});
    rule["alert"] = common_alert(p, base, "{@type}".to_owned());
    if let Some(each) = each {
        rule["for_each"] = json!(path(each, root));
        rule["required"] = json!(true);
    }
    Ok((rule, Map::new()))
}

/// `parser.type: snmp`: the trap OID (or a fixed type) names the alert type; varbinds by OID
/// prefix become fields, through value tables; the trap's agent is the device.
fn snmp_rule(p: &mut Reader<'_>, method: &str) -> Result<(Value, Map<String, Value>), LegacyError> {
    let mut maps = Map::new();
    let mut alert = json!({});
    let types = p.get(&["trap_mappings", "trap_types", "oid_mappings", "traps"]);
    let alert_type = match (types, p.text(&["alert_type"])) {
        (Some(Value::Object(types)), _) => {
            let table: Map<String, Value> = types
                .iter()
                .map(|(trap, alert_type)| (oid(trap), alert_type.clone()))
                .collect();
            maps.insert("trap_type".into(), Value::Object(table));
            "{trap_oid | map:trap_type}".to_owned()
        }
        (_, Some(fixed)) => fixed.to_owned(),
        _ => {
            return Err(shape(
                "an snmp parser needs `trap_mappings` (trap OID → alert type) or `alert_type`",
            ));
        }
    };
    let varbinds = p
        .get(&["varbind_mappings", "varbinds", "fields"])
        .and_then(Value::as_object);
    let values = p
        .get(&["value_mappings", "enum_mappings", "enums"])
        .and_then(Value::as_object);
    let mut fields = Map::new();
    for (prefix, name) in varbinds.into_iter().flatten() {
        let Some(name) = name.as_str() else { continue };
        let mut value = format!("{{oid:{}", oid(prefix));
        if let Some(Value::Object(table)) = values.and_then(|v| v.get(name)) {
            let map = format!("values_{}", category(name));
            maps.insert(map.clone(), Value::Object(table.clone()));
            value = format!("{value} | map:{map} ?? oid:{}", oid(prefix));
        }
        value.push('}');
        fields.insert(name.to_owned(), json!(value));
    }
    if !fields.is_empty() {
        alert["fields"] = Value::Object(fields);
    }
    if let Some(index) = p.text(&["index_oid", "index_from"]) {
        alert["identity"] = json!({"index": format!("{{oid_index:{}}}", oid(index))});
    }
    if let Some(title) = p.text(&["title", "title_template"]) {
        alert["title"] = json!(template(title, ""));
    }
    if let Some(message) = p.text(&["message", "message_template"]) {
        alert["message"] = json!(template(message, ""));
    }
    alert["type"] = json!("{@type}");
    let mut rule = json!({
        "let": {"type": alert_type},
        "when": {"path": "@type", "exists": true},
        "alert": alert,
    });
    if method == "snmp_poll" {
        // `oid:` paths read the item's varbinds: make the fetched result the item.
        rule["for_each"] = json!("fetched");
    }
    Ok((rule, maps))
}

/// `parser.type: regex` / `grok`: the pattern over the text (a field, the body or the command
/// output); named captures are the item's keys, and become fields.
fn text_rule(
    p: &mut Reader<'_>,
    kind: &str,
    root: &str,
) -> Result<(Value, Map<String, Value>), LegacyError> {
    let pattern = p
        .text(&["pattern", "regex", "grok"])
        .ok_or_else(|| shape(format!("a {kind} parser needs `pattern`")))?;
    let source = match p.text(&["source_field", "field", "input_field"]) {
        Some(field) => template(field, root),
        None if root.is_empty() => "{text}".to_owned(),
        None if root == "body" => "{text}".to_owned(),
        None => format!("{{{root}}}"),
    };
    let lines = p
        .get(&["multiline", "per_line", "lines"])
        .and_then(Value::as_bool);
    let mut matcher = json!({"value": source});
    matcher[kind] = json!(pattern);
    if lines.unwrap_or(false) {
        matcher["lines"] = json!(true);
    }
    let alert_type = match (
        p.text(&["alert_type_field", "type_field"]),
        p.text(&["alert_type"]),
    ) {
        (Some(group), _) => format!("{{{group}}}"),
        (None, Some(fixed)) => fixed.to_owned(),
        (None, None) => {
            return Err(shape(format!(
                "a {kind} parser needs `alert_type` (fixed) or `alert_type_field` (a capture name)"
            )));
        }
    };
    let mut alert = common_alert(p, "", "{@type}".to_owned());
    if alert.get("fields").is_none() {
        // The captures are the item: every named one becomes a field.
        alert["fields_from"] = json!([{"object": "."}]);
    }
    Ok((
        json!({"match": matcher, "let": {"type": alert_type}, "alert": alert}),
        Map::new(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_templates() {
        assert_eq!(path("labels.alertname", "body"), "body.labels.alertname");
        assert_eq!(path("$.alerts[*]", "body"), "body.alerts");
        assert_eq!(path("$.alerts[0].status", ""), "alerts.0.status");
        assert_eq!(path("/labels/host", "body"), "body.labels.host");
        assert_eq!(path("/labels/host", ""), "/labels/host");
        assert_eq!(template("host", "body"), "{body.host}");
        assert_eq!(template("{check} is {state}", ""), "{check} is {state}");
        assert_eq!(template("{check}!", "body"), "{body.check}!");
    }

    #[test]
    fn a_json_webhook_manifest() {
        let legacy = json!({
            "id": "Acme", "name": "Acme checks", "version": "1.0", "method": "webhook",
            "webhook": {"path": "/webhooks/acme"},
            "parser": {
                "type": "json", "alerts_path": "alerts", "alert_type_field": "check",
                "device_ip_field": "host", "message_field": "detail",
                "fields": {"check": "check"}, "clear_field": "state", "clear_values": ["ok", "up"],
                "flatten": true
            },
            "severity_mappings": {"disk": "crit"},
            "category_mappings": {"disk": "Storage Systems"},
            "retention_days": 30
        });
        let c = convert(&legacy).unwrap();
        let m = &c.manifest;
        assert_eq!((m.id.as_str(), m.version.as_str()), ("acme", "1.0.0"));
        assert_eq!(m.world, WORLD_RULES);
        assert_eq!(m.webhook.as_ref().unwrap().path, "acme");
        assert_eq!(m.alerts.category_map["disk"], "storage_systems");
        let parse = m.parse.as_ref().unwrap();
        assert_eq!(parse["rules"][0]["for_each"], "body.alerts");
        assert_eq!(parse["rules"][0]["alert"]["device"], "{host | host}");
        assert_eq!(
            parse["rules"][0]["alert"]["severity"],
            "{@type | map:severity}"
        );
        assert_eq!(parse["maps"]["severity"]["disk"], "crit");
        let report = c.left_out.join("\n");
        assert!(report.contains("parser.flatten"), "{report}");
        assert!(report.contains("retention_days"), "{report}");
        assert!(
            report.contains("version: `1.0` is written `1.0.0`"),
            "{report}"
        );
    }

    #[test]
    fn an_snmp_trap_manifest() {
        let legacy = json!({
            "id": "siklu", "method": "snmp_trap", "snmp": {"enterprise_oid": ".1.3.6.1.4.1.31926"},
            "parser": {
                "type": "snmp",
                "trap_mappings": {".1.3.6.1.4.1.31926.0.1": "linkDown", "1.3.6.1.4.1.31926.0.2": "linkUp"},
                "varbind_mappings": {"1.3.6.1.2.1.2.2.1.8": "ifOperStatus"},
                "value_mappings": {"ifOperStatus": {"1": "up", "2": "down"}},
                "index_oid": "1.3.6.1.2.1.2.2.1.8"
            },
            "clear_mappings": {"linkUp": "linkDown"}
        });
        let c = convert(&legacy).unwrap();
        assert!(c.left_out.is_empty(), "{:?}", c.left_out);
        let m = &c.manifest;
        assert_eq!(
            m.snmp_trap.as_ref().unwrap().oid_prefixes,
            ["1.3.6.1.4.1.31926"]
        );
        assert_eq!(m.alerts.clears["linkUp"], ["linkDown"]);
        let parse = m.parse.as_ref().unwrap();
        assert_eq!(
            parse["maps"]["trap_type"]["1.3.6.1.4.1.31926.0.1"],
            "linkDown"
        );
        assert_eq!(
            parse["rules"][0]["alert"]["fields"]["ifOperStatus"],
            "{oid:1.3.6.1.2.1.2.2.1.8 | map:values_ifoperstatus ?? oid:1.3.6.1.2.1.2.2.1.8}"
        );
    }

    #[test]
    fn grok_over_ssh_output_and_refusals() {
        let legacy = json!({
            "id": "disks", "method": "ssh", "poll": {"command": "df -P", "interval": 120},
            "parser": {"type": "grok", "pattern": "%{NOTSPACE:fs} +%{INT} +%{INT} +%{INT} +%{INT:pct}% +%{NOTSPACE:mount}",
                       "per_line": true, "alert_type": "diskUsage"}
        });
        let c = convert(&legacy).unwrap();
        let parse = c.manifest.parse.as_ref().unwrap();
        assert_eq!(
            parse["rules"][0]["match"]["value"],
            "{fetched.output.stdout}"
        );
        assert_eq!(parse["rules"][0]["match"]["lines"], true);
        assert_eq!(
            c.manifest.poll.as_ref().unwrap().default_interval_seconds,
            120
        );

        let refused = |v: Value| convert(&v).unwrap_err().to_string();
        assert!(refused(json!([])).contains("expected a JSON object"));
        assert!(refused(json!({"id": "x"})).contains("`method` is required"));
        assert!(refused(json!({"id": "x", "method": "carrier-pigeon"})).contains("carrier-pigeon"));
        assert!(
            refused(json!({"id": "x", "method": "webhook", "parser": {"type": "xml"}}))
                .contains("parser.type `xml`")
        );
        // A pattern the rules engine cannot compile is named by its place in the new manifest.
        let bad = refused(json!({"id": "x", "method": "webhook",
            "parser": {"type": "regex", "pattern": "(unclosed", "alert_type": "t"}}));
        assert!(bad.contains("parse.rules[0].match.regex"), "{bad}");
    }
}
