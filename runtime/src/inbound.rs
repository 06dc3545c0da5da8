//! Inbound data that does not come over HTTP: SNMP traps over UDP. (Webhooks are HTTP
//! handlers, in `api/webhook.rs`.)

pub mod trap;
