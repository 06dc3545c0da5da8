//! Inbound handlers: data that external systems push to us — webhooks over HTTP and SNMP
//! traps over UDP.

pub mod trap;
pub mod webhook;
pub mod webhook_auth;
