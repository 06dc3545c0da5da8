//! The one place that runs `bindgen!`: generated host bindings for each supported WIT version
//! of the package `opsconductor:addon`, and conversions between them and the host's own types
//! (`crate::event`, `crate::alert`), so that nothing else depends on generated code.
//!
//! **API Boundary:** every released WIT version (`wit/v*/`) keeps a module here for as long as
//! the runtime supports it. 0.2.0 repeats 0.1.0's `types` unchanged, so its bindings reuse the
//! 0.1.0 types (`with`; the component model checks types structurally) and every conversion is
//! written once. The `host` interface is generated per version (its functions are registered
//! under the versioned interface name) and both implementations forward to the same code.

use crate::alert::{ReportedAlert, Severity};
use crate::event;

/// `opsconductor:addon@0.1.0`: parse only.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "addon",
        // State imports reach the database, so every import is async; exports are async so
        // that a call can be bounded by a wall-clock timeout and interrupted by the epoch
        // deadline.
        imports: {
            // A failing state store must fail the call, not look like an absent key.
            "opsconductor:addon/host.state-get": async | trappable,
            "opsconductor:addon/host.state-set": async | trappable,
            "opsconductor:addon/host.state-delete": async | trappable,
            default: async,
        },
        exports: { default: async },
    });
}

/// `opsconductor:addon@0.2.0`: 0.1.0 plus scripted polling (`io` imports, `poller` export).
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2.0",
        world: "addon",
        imports: {
            "opsconductor:addon/host.state-get": async | trappable,
            "opsconductor:addon/host.state-set": async | trappable,
            "opsconductor:addon/host.state-delete": async | trappable,
            default: async,
        },
        exports: { default: async },
        with: {
            "opsconductor:addon/types": super::v0_1::opsconductor::addon::types,
        },
    });
}

/// `opsconductor:rules@0.1.0`: the rules engine that runs rules addons (docs/rules.md). The
/// addon types and the `host` interface are 0.2.0's (linked once, for both); only the `rules`
/// import and the engine's own `handler` export are generated here.
pub mod rules_engine {
    wasmtime::component::bindgen!({
        path: ["../wit/v0.2.0", "../wit/rules-v0.1.0"],
        world: "opsconductor:rules/engine",
        // `host` comes from 0.2.0 (`with`), its state imports' flags with it.
        imports: { default: async },
        exports: { default: async },
        with: {
            "opsconductor:addon/types": super::v0_1::opsconductor::addon::types,
            "opsconductor:addon/host": super::v0_2::opsconductor::addon::host,
        },
    });
}

pub use v0_1::opsconductor::addon::types as wit;
pub use v0_1::opsconductor::addon::types::{AddonError, ErrorKind};
pub use v0_2::opsconductor::addon::io as wit_io;

/// Log levels of the host interface; the same enum in every version.
pub type LogLevel = v0_1::opsconductor::addon::host::LogLevel;

impl From<v0_2::opsconductor::addon::host::LogLevel> for LogLevel {
    fn from(l: v0_2::opsconductor::addon::host::LogLevel) -> Self {
        use v0_2::opsconductor::addon::host::LogLevel as L2;
        match l {
            L2::Trace => LogLevel::Trace,
            L2::Debug => LogLevel::Debug,
            L2::Info => LogLevel::Info,
            L2::Warn => LogLevel::Warn,
            L2::Error => LogLevel::Error,
        }
    }
}

impl From<event::AddonTarget> for wit::Target {
    fn from(t: event::AddonTarget) -> Self {
        wit::Target {
            id: t.id,
            name: t.name,
            address: t.address,
            config: t.config,
        }
    }
}

impl From<wit::SnmpValue> for event::SnmpValue {
    fn from(v: wit::SnmpValue) -> Self {
        use event::SnmpValue as E;
        match v {
            wit::SnmpValue::Integer(i) => E::Integer(i),
            wit::SnmpValue::OctetString(b) => E::OctetString(b),
            wit::SnmpValue::Null => E::Null,
            wit::SnmpValue::ObjectId(o) => E::ObjectId(o),
            wit::SnmpValue::IpAddress(a) => E::IpAddress(a),
            wit::SnmpValue::Counter32(c) => E::Counter32(c),
            wit::SnmpValue::Gauge32(g) => E::Gauge32(g),
            wit::SnmpValue::Timeticks(t) => E::TimeTicks(t),
            wit::SnmpValue::Opaque(b) => E::Opaque(b),
            wit::SnmpValue::Counter64(c) => E::Counter64(c),
            wit::SnmpValue::NoSuchObject => E::NoSuchObject,
            wit::SnmpValue::NoSuchInstance => E::NoSuchInstance,
            wit::SnmpValue::EndOfMibView => E::EndOfMibView,
        }
    }
}

impl From<event::SnmpValue> for wit::SnmpValue {
    fn from(v: event::SnmpValue) -> Self {
        use event::SnmpValue as E;
        match v {
            E::Integer(i) => wit::SnmpValue::Integer(i),
            E::OctetString(b) => wit::SnmpValue::OctetString(b),
            E::Null => wit::SnmpValue::Null,
            E::ObjectId(o) => wit::SnmpValue::ObjectId(o),
            E::IpAddress(a) => wit::SnmpValue::IpAddress(a),
            E::Counter32(c) => wit::SnmpValue::Counter32(c),
            E::Gauge32(g) => wit::SnmpValue::Gauge32(g),
            E::TimeTicks(t) => wit::SnmpValue::Timeticks(t),
            E::Opaque(b) => wit::SnmpValue::Opaque(b),
            E::Counter64(c) => wit::SnmpValue::Counter64(c),
            E::NoSuchObject => wit::SnmpValue::NoSuchObject,
            E::NoSuchInstance => wit::SnmpValue::NoSuchInstance,
            E::EndOfMibView => wit::SnmpValue::EndOfMibView,
        }
    }
}

pub fn varbinds(v: Vec<event::Varbind>) -> Vec<wit::Varbind> {
    v.into_iter()
        .map(|vb| wit::Varbind {
            oid: vb.oid,
            value: vb.value.into(),
        })
        .collect()
}

impl From<event::RawEvent> for wit::RawEvent {
    fn from(e: event::RawEvent) -> Self {
        match e {
            event::RawEvent::SnmpTrap(t) => wit::RawEvent::SnmpTrap(wit::SnmpTrap {
                version: match t.version {
                    event::SnmpVersion::V1 => wit::SnmpVersion::V1,
                    event::SnmpVersion::V2c => wit::SnmpVersion::V2c,
                    event::SnmpVersion::V3 => wit::SnmpVersion::V3,
                },
                source: t.source,
                agent_address: t.agent_address,
                security_name: t.security_name,
                context_name: t.context_name,
                trap_oid: t.trap_oid,
                uptime: t.uptime,
                varbinds: varbinds(t.varbinds),
                is_inform: t.is_inform,
                v1: t.v1.map(|h| wit::SnmpV1Header {
                    enterprise: h.enterprise,
                    agent_addr: h.agent_addr,
                    generic_trap: h.generic_trap,
                    specific_trap: h.specific_trap,
                }),
            }),
            event::RawEvent::Webhook(w) => wit::RawEvent::Webhook(wit::WebhookRequest {
                method: w.method,
                path: w.path,
                headers: w.headers,
                query: w.query,
                body: w.body,
                source: w.source,
            }),
            event::RawEvent::Poll(p) => wit::RawEvent::Poll(wit::PollResult {
                target: p.target.into(),
                started_at: p.started_at,
                fetched: p
                    .fetched
                    .into_iter()
                    .map(|f| wit::Fetched {
                        name: f.name,
                        outcome: f.outcome.map(|d| match d {
                            event::FetchedData::Snmp(v) => wit::FetchedData::Snmp(varbinds(v)),
                            event::FetchedData::Http(h) => wit::FetchedData::Http(h.into()),
                            event::FetchedData::Ssh(s) => wit::FetchedData::Ssh(s.into()),
                        }),
                    })
                    .collect(),
            }),
        }
    }
}

impl From<event::HttpResponse> for wit::HttpResponse {
    fn from(h: event::HttpResponse) -> Self {
        wit::HttpResponse {
            status: h.status,
            headers: h.headers,
            body: h.body,
        }
    }
}

impl From<event::SshOutput> for wit::SshOutput {
    fn from(s: event::SshOutput) -> Self {
        wit::SshOutput {
            command: s.command,
            exit_status: s.exit_status,
            stdout: s.stdout,
            stderr: s.stderr,
        }
    }
}

impl From<wit::Severity> for Severity {
    fn from(s: wit::Severity) -> Self {
        match s {
            wit::Severity::Critical => Severity::Critical,
            wit::Severity::Major => Severity::Major,
            wit::Severity::Minor => Severity::Minor,
            wit::Severity::Warning => Severity::Warning,
            wit::Severity::Info => Severity::Info,
        }
    }
}

impl From<wit::Alert> for ReportedAlert {
    fn from(a: wit::Alert) -> Self {
        ReportedAlert {
            alert_type: a.alert_type,
            device_ip: a.device_ip,
            device_name: a.device_name,
            title: a.title,
            message: a.message,
            severity: a.severity.map(Severity::from),
            clears: a.clears,
            identity: a.identity,
            fields: a.fields,
            occurred_at: a.occurred_at,
        }
    }
}

/// The kind of a structured addon error, as the API reports it.
pub fn error_kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotImplemented => "not-implemented",
        ErrorKind::InvalidInput => "invalid-input",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Internal => "internal",
    }
}
