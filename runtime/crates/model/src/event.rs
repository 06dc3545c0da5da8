//! Raw events as the host hands them to addons, independent of any WIT version: the inbound
//! listeners and pollers build these, and the sandbox converts them into the bindings of the
//! WIT version the addon was built against.

/// One typed SNMP value (RFC 3416 `ObjectSyntax`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnmpValue {
    Integer(i32),
    OctetString(Vec<u8>),
    Null,
    ObjectId(String),
    IpAddress(String),
    Counter32(u32),
    Gauge32(u32),
    TimeTicks(u32),
    Opaque(Vec<u8>),
    Counter64(u64),
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Varbind {
    pub oid: String,
    pub value: SnmpValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnmpVersion {
    V1,
    V2c,
    V3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnmpV1Header {
    pub enterprise: String,
    pub agent_addr: String,
    pub generic_trap: i32,
    pub specific_trap: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnmpTrap {
    pub version: SnmpVersion,
    pub source: String,
    pub agent_address: String,
    pub security_name: Option<String>,
    pub context_name: String,
    pub trap_oid: String,
    pub uptime: u32,
    pub varbinds: Vec<Varbind>,
    pub is_inform: bool,
    pub v1: Option<SnmpV1Header>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub source: String,
}

/// A target as addons see it: what a poll is about, never its credentials (the stored
/// target, with its schedule and credential, is the runtime's `target::Target`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonTarget {
    pub id: String,
    pub name: String,
    pub address: String,
    /// JSON object, never containing credentials.
    pub config: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOutput {
    pub command: String,
    pub exit_status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchedData {
    Snmp(Vec<Varbind>),
    Http(HttpResponse),
    Ssh(SshOutput),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub name: String,
    pub outcome: Result<FetchedData, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollResult {
    pub target: AddonTarget,
    /// Milliseconds since the Unix epoch.
    pub started_at: i64,
    pub fetched: Vec<Fetched>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawEvent {
    SnmpTrap(SnmpTrap),
    Webhook(WebhookRequest),
    Poll(PollResult),
}

impl RawEvent {
    /// A short name for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            RawEvent::SnmpTrap(_) => "snmp_trap",
            RawEvent::Webhook(_) => "webhook",
            RawEvent::Poll(_) => "poll",
        }
    }
}

/// An HTTP request an addon asks for (a manifest fetch or a scripted poll's `http-request`):
/// `url` is absolute or a path on the target's base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCallSpec {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}
