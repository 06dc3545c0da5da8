//! OpsConductor: an alert-ingestion runtime. Raw events (SNMP traps, webhooks, poll results)
//! go through sandboxed WebAssembly addons and the alert engine into deduplicated, stored
//! alerts. See ARCHITECTURE.md for the map.

pub mod alert;
pub mod api;
pub mod auth;
pub mod authoring;
pub mod bundle;
pub mod cli;
pub mod config;
pub mod directory;
pub mod egress;
pub mod engine;
pub mod event;
pub mod events;
pub mod filter;
pub mod fixtures;
pub mod http_server;
pub mod inbound;
pub mod ingest;
pub mod manifest;
pub mod poll;
pub mod poller;
pub mod registry;
pub mod sandbox;
pub mod scheduler;
pub mod secrets;
pub mod server;
pub mod slots;
pub mod snmp;
pub mod store;
pub mod target;
pub mod testing;
pub mod writer;
pub mod ws;
