//! The raw event as the one JSON document rules read (docs/rules.md, "The event"). Values are
//! rendered the way the SDK renders them for compiled addons, so that a rule and the code it
//! replaces see the same text.

use opsconductor_addon_sdk::bindings::opsconductor::addon::types::RawEvent;
use opsconductor_addon_sdk::serde_json::{Map, Value, json};
use opsconductor_addon_sdk::{
    FetchedData, HttpResponse, PollResult, SnmpTrap, SnmpValue, SshOutput, Varbind, WebhookRequest,
    host_part,
};

pub fn document(event: &RawEvent) -> Value {
    match event {
        RawEvent::Webhook(request) => webhook(request),
        RawEvent::SnmpTrap(trap) => trap_document(trap),
        RawEvent::Poll(poll) => poll_document(poll),
    }
}

fn webhook(r: &WebhookRequest) -> Value {
    let mut doc = json!({
        "kind": "webhook",
        "method": r.method,
        "path": r.path,
        "headers": pairs(&r.headers),
        "query": pairs(&r.query),
        "source": r.source,
        "text": String::from_utf8_lossy(&r.body),
    });
    insert_body(&mut doc, &r.body);
    doc
}

fn trap_document(t: &SnmpTrap) -> Value {
    json!({
        "kind": "trap",
        "version": t.version.as_str(),
        "source": t.source,
        "agent_address": t.agent_address,
        "security_name": t.security_name,
        "context_name": t.context_name,
        "trap_oid": t.trap_oid,
        "uptime": t.uptime,
        "is_inform": t.is_inform,
        "varbinds": varbinds(&t.varbinds),
        "v1": t.v1.as_ref().map(|h| json!({
            "enterprise": h.enterprise,
            "agent_addr": h.agent_addr,
            "generic_trap": h.generic_trap,
            "specific_trap": h.specific_trap,
        })),
    })
}

fn poll_document(p: &PollResult) -> Value {
    // The target's configuration is a JSON object by contract; anything else reads as absent.
    let config: Value =
        opsconductor_addon_sdk::serde_json::from_str(&p.target.config).unwrap_or(Value::Null);
    let fetched: Map<String, Value> = p
        .fetched
        .iter()
        .map(|f| {
            let result = match &f.outcome {
                Ok(FetchedData::Http(response)) => http(response),
                Ok(FetchedData::Snmp(list)) => json!({"ok": true, "varbinds": varbinds(list)}),
                Ok(FetchedData::Ssh(output)) => ssh(output),
                Err(error) => json!({"ok": false, "error": error}),
            };
            (f.name.clone(), result)
        })
        .collect();
    json!({
        "kind": "poll",
        "target": {
            "id": p.target.id,
            "name": p.target.name,
            "address": p.target.address,
            "host": host_part(&p.target.address),
            "config": config,
        },
        "started_at": p.started_at,
        "fetched": fetched,
    })
}

fn http(r: &HttpResponse) -> Value {
    let mut doc = json!({
        "ok": true,
        "status": r.status,
        "headers": pairs(&r.headers),
        "text": String::from_utf8_lossy(&r.body),
    });
    insert_body(&mut doc, &r.body);
    doc
}

fn ssh(o: &SshOutput) -> Value {
    json!({
        "ok": true,
        "command": o.command,
        "exit_status": o.exit_status,
        "stdout": o.stdout_text(),
        "stderr": String::from_utf8_lossy(&o.stderr),
    })
}

/// `body`: the bytes parsed as JSON, left out when they are not JSON.
fn insert_body(doc: &mut Value, bytes: &[u8]) {
    if let Ok(body) = opsconductor_addon_sdk::serde_json::from_slice::<Value>(bytes) {
        doc["body"] = body;
    }
}

/// Header or query pairs as an object; the first of a repeated name wins.
fn pairs(list: &[(String, String)]) -> Value {
    let mut map = Map::new();
    for (name, value) in list {
        map.entry(name.clone())
            .or_insert_with(|| Value::String(value.clone()));
    }
    Value::Object(map)
}

fn varbinds(list: &[Varbind]) -> Value {
    list.iter()
        .map(|vb| {
            json!({
                "oid": vb.oid,
                "type": vb.value.type_name(),
                "value": value(&vb.value),
                "text": vb.value.text(),
            })
        })
        .collect()
}

/// Numbers for the integer types, the operator's text for the rest.
fn value(v: &SnmpValue) -> Value {
    match v {
        SnmpValue::Integer(n) => json!(n),
        SnmpValue::Counter32(n) | SnmpValue::Gauge32(n) | SnmpValue::Timeticks(n) => json!(n),
        SnmpValue::Counter64(n) => json!(n),
        other => Value::String(other.text()),
    }
}
