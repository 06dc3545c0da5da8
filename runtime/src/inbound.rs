//! Inbound handlers: data that external systems push to us. Webhooks now; the SNMP trap
//! listener joins them here.

pub mod webhook;
