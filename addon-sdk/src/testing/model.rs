//! The model crate's records as the SDK's (the WIT records wit-bindgen generates), and back:
//! the native fixture runner reads inputs and judges alerts with the host's own code
//! (`opsconductor-model`), so only the records in between are converted, here and once.

use opsconductor_model::{alert, event};

use crate::{
    Alert, Fetched, FetchedData, HttpResponse, PollResult, Severity, SnmpTrap, SnmpV1Header,
    SnmpValue, SnmpVersion, SshOutput, Target, Varbind, WebhookRequest,
};

pub(crate) fn webhook(w: event::WebhookRequest) -> WebhookRequest {
    WebhookRequest {
        method: w.method,
        path: w.path,
        headers: w.headers,
        query: w.query,
        body: w.body,
        source: w.source,
    }
}

pub(crate) fn trap(t: event::SnmpTrap) -> SnmpTrap {
    SnmpTrap {
        version: match t.version {
            event::SnmpVersion::V1 => SnmpVersion::V1,
            event::SnmpVersion::V2c => SnmpVersion::V2c,
            event::SnmpVersion::V3 => SnmpVersion::V3,
        },
        source: t.source,
        agent_address: t.agent_address,
        security_name: t.security_name,
        context_name: t.context_name,
        trap_oid: t.trap_oid,
        uptime: t.uptime,
        varbinds: varbinds(t.varbinds),
        is_inform: t.is_inform,
        v1: t.v1.map(|h| SnmpV1Header {
            enterprise: h.enterprise,
            agent_addr: h.agent_addr,
            generic_trap: h.generic_trap,
            specific_trap: h.specific_trap,
        }),
    }
}

pub(crate) fn poll(p: event::PollResult) -> PollResult {
    let fetched = p.fetched.into_iter().map(|f| Fetched {
        name: f.name,
        outcome: f.outcome.map(|data| match data {
            event::FetchedData::Snmp(list) => FetchedData::Snmp(varbinds(list)),
            event::FetchedData::Http(h) => FetchedData::Http(HttpResponse {
                status: h.status,
                headers: h.headers,
                body: h.body,
            }),
            event::FetchedData::Ssh(s) => FetchedData::Ssh(SshOutput {
                command: s.command,
                exit_status: s.exit_status,
                stdout: s.stdout,
                stderr: s.stderr,
            }),
        }),
    });
    PollResult {
        target: Target {
            id: p.target.id,
            name: p.target.name,
            address: p.target.address,
            config: p.target.config,
        },
        started_at: p.started_at,
        fetched: fetched.collect(),
    }
}

fn varbinds(list: Vec<event::Varbind>) -> Vec<Varbind> {
    let value = |v| match v {
        event::SnmpValue::Integer(v) => SnmpValue::Integer(v),
        event::SnmpValue::OctetString(v) => SnmpValue::OctetString(v),
        event::SnmpValue::Null => SnmpValue::Null,
        event::SnmpValue::ObjectId(v) => SnmpValue::ObjectId(v),
        event::SnmpValue::IpAddress(v) => SnmpValue::IpAddress(v),
        event::SnmpValue::Counter32(v) => SnmpValue::Counter32(v),
        event::SnmpValue::Gauge32(v) => SnmpValue::Gauge32(v),
        event::SnmpValue::TimeTicks(v) => SnmpValue::Timeticks(v),
        event::SnmpValue::Opaque(v) => SnmpValue::Opaque(v),
        event::SnmpValue::Counter64(v) => SnmpValue::Counter64(v),
        event::SnmpValue::NoSuchObject => SnmpValue::NoSuchObject,
        event::SnmpValue::NoSuchInstance => SnmpValue::NoSuchInstance,
        event::SnmpValue::EndOfMibView => SnmpValue::EndOfMibView,
    };
    list.into_iter()
        .map(|vb| Varbind {
            oid: vb.oid,
            value: value(vb.value),
        })
        .collect()
}

/// An alert as the host receives it from the sandbox.
pub(crate) fn reported(a: Alert) -> alert::ReportedAlert {
    alert::ReportedAlert {
        alert_type: a.alert_type,
        device_ip: a.device_ip,
        device_name: a.device_name,
        title: a.title,
        message: a.message,
        severity: a.severity.map(|s| match s {
            Severity::Critical => alert::Severity::Critical,
            Severity::Major => alert::Severity::Major,
            Severity::Minor => alert::Severity::Minor,
            Severity::Warning => alert::Severity::Warning,
            Severity::Info => alert::Severity::Info,
        }),
        clears: a.clears,
        identity: a.identity,
        fields: a.fields,
        occurred_at: a.occurred_at,
    }
}
