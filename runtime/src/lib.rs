//! OpsConductor: an alert-ingestion runtime. Raw events (SNMP traps, webhooks, poll results)
//! go through sandboxed WebAssembly addons and the alert engine into deduplicated, stored
//! alerts. See ARCHITECTURE.md for the map.

// The pure crates, under the names the runtime's modules have always used for them.
pub use opsconductor_model::{alert, engine, event, manifest, silence, text};
pub use opsconductor_snmp as snmp;

pub mod api;
pub mod api_error;
pub mod auth;
pub mod authoring;
pub mod bundle;
pub mod bus;
pub mod cli;
pub mod client_addr;
pub mod config;
pub mod directory;
pub mod egress;
pub mod filter;
pub mod fixtures;
pub mod generation;
pub mod http_server;
pub mod identity;
pub mod import;
pub mod inbound;
pub mod ingest;
pub mod metrics;
pub mod oidc;
pub mod poll;
pub mod poller;
pub mod quarantine;
pub mod registry;
pub mod sandbox;
pub mod scheduler;
pub mod secrets;
pub mod server;
pub mod slots;
pub mod store;
pub mod target;
pub mod testing;
pub mod webhook_auth;
pub mod writer;
