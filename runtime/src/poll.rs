//! One poll of one target: the I/O it may do ([`TargetIo`]), the declarative fetches or the
//! addon's scripted `poll`, and the reachability verdict, which raises or clears the host's own
//! alerts (`targetUnreachable`, `sshHostKeyChanged`) for the target.
//!
//! **Architecture Invariant:** every byte a poll sends goes through [`TargetIo`]. It holds the
//! target's credential (the addon never sees it), applies it only to the target itself, checks a
//! scripted poll's every call against the addon's declared capabilities, and records what
//! answered, so the verdict "unreachable" means "nothing we tried got an answer".

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::Url;
use tracing::{debug, warn};

use crate::alert::{ReportedAlert, Severity};
use crate::egress::EgressPolicy;
use crate::event::{
    self, Fetched, FetchedData, HttpCallSpec, HttpResponse, PollResult, RawEvent, SshOutput,
    Varbind,
};
use crate::ingest::{self, IngestError};
use crate::manifest::{Capabilities, FetchSpec, PollMode};
use crate::poller::PollError;
use crate::poller::http::{self, HttpAuth, HttpCall, HttpPoller};
use crate::poller::snmp::{SnmpAuth, SnmpEndpoint, SnmpPoller};
use crate::poller::ssh::{HostKey, SshAuth, SshEndpoint, SshPoller};
use crate::registry::LoadedAddon;
use crate::store::Store;
use crate::target::{CredentialSecret, Target, split_host_port};
use crate::writer::AlertWriter;

/// The host's own alert types, raised on the target's addon.
pub const TARGET_UNREACHABLE: &str = "targetUnreachable";
pub const SSH_HOST_KEY_CHANGED: &str = "sshHostKeyChanged";

/// SNMP waits this long per attempt (at most), with one retry.
const SNMP_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
const SNMP_RETRIES: u32 = 1;

/// The outbound clients, shared by every poll on a node, all under one egress policy.
#[derive(Clone)]
pub struct Pollers {
    pub snmp: SnmpPoller,
    pub http: HttpPoller,
    pub ssh: SshPoller,
}

impl Pollers {
    pub fn new(egress: EgressPolicy) -> Pollers {
        let egress = Arc::new(egress);
        Pollers {
            snmp: SnmpPoller::new(Arc::clone(&egress)),
            http: HttpPoller::new(Arc::clone(&egress)),
            ssh: SshPoller::new(egress),
        }
    }
}

/// What the I/O of one poll came to.
#[derive(Debug, Default, Clone)]
struct IoLog {
    answered: u32,
    unreachable: u32,
    denied: u32,
    /// Calls the egress policy refused: nothing was sent.
    refused: u32,
    failed: u32,
    last_failed: Option<String>,
    last_refused: Option<String>,
    last_unreachable: Option<String>,
    host_key_mismatch: Option<String>,
}

/// The I/O one poll of one target may do. See the module's invariant.
pub struct TargetIo {
    addon: Arc<LoadedAddon>,
    target: Target,
    /// The target's host (no port, no brackets), as capabilities name it.
    host: String,
    port: Option<u16>,
    credential: Option<CredentialSecret>,
    /// `Some` for scripted polls: every call is checked against it. Declarative fetches are
    /// declared by the manifest itself and go only to the target.
    scripted: Option<Capabilities>,
    pollers: Pollers,
    store: Store,
    deadline: Instant,
    log: Mutex<IoLog>,
}

/// The sandbox's `io` imports reach the target through these, and nothing else.
impl crate::sandbox::GuestIo for TargetIo {
    fn snmp_get<'a>(&'a self, oids: &'a [String]) -> crate::sandbox::IoFuture<'a, Vec<Varbind>> {
        Box::pin(TargetIo::snmp_get(self, oids))
    }

    fn snmp_walk<'a>(&'a self, root: &'a str) -> crate::sandbox::IoFuture<'a, Vec<Varbind>> {
        Box::pin(TargetIo::snmp_walk(self, root))
    }

    fn http(&self, call: HttpCallSpec) -> crate::sandbox::IoFuture<'_, HttpResponse> {
        Box::pin(TargetIo::http(self, call))
    }

    fn ssh_exec<'a>(&'a self, command: &'a str) -> crate::sandbox::IoFuture<'a, SshOutput> {
        Box::pin(TargetIo::ssh_exec(self, command))
    }
}

impl TargetIo {
    pub fn new(
        addon: Arc<LoadedAddon>,
        target: Target,
        credential: Option<CredentialSecret>,
        pollers: Pollers,
        store: Store,
        budget: Duration,
    ) -> Result<TargetIo, PollError> {
        let (host, port) = target_host_port(&target.address)
            .map_err(|m| PollError::Failed(format!("target address: {m}")))?;
        let scripted = addon
            .manifest
            .poll
            .as_ref()
            .filter(|p| p.mode == PollMode::Scripted)
            .map(|_| addon.manifest.capabilities.clone());
        Ok(TargetIo {
            addon,
            target,
            host,
            port,
            credential,
            scripted,
            pollers,
            store,
            deadline: Instant::now() + budget,
            log: Mutex::new(IoLog::default()),
        })
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn record<T>(&self, result: Result<T, PollError>) -> Result<T, PollError> {
        let mut log = self.log.lock().expect("io log lock");
        match &result {
            Ok(_) => log.answered += 1,
            Err(PollError::Unreachable(m)) => {
                log.unreachable += 1;
                log.last_unreachable = Some(m.clone());
            }
            Err(PollError::HostKeyMismatch { .. }) => {
                log.host_key_mismatch = result.as_ref().err().map(ToString::to_string);
            }
            Err(PollError::Denied(_)) => log.denied += 1,
            Err(PollError::Refused(m)) => {
                log.refused += 1;
                log.last_refused = Some(m.clone());
            }
            // The peer answered, if uselessly: it is reachable, and the poll failed.
            Err(PollError::Failed(m)) => {
                log.answered += 1;
                log.failed += 1;
                log.last_failed = Some(m.clone());
            }
        }
        result
    }

    /// Refuses (logs and counts) what the addon's capabilities do not allow.
    fn deny(&self, what: String) -> PollError {
        warn!(
            addon = self.addon.id(),
            target = %self.target.name,
            "scripted poll refused: {what}"
        );
        self.addon
            .counters
            .io_denied
            .fetch_add(1, Ordering::Relaxed);
        PollError::Denied(what)
    }

    /// For SNMP and SSH, which only ever reach the polled target.
    fn check_target_allowed(&self, protocol: &str) -> Result<(), PollError> {
        match &self.scripted {
            Some(caps) if !caps.allows_host(&self.host, &self.host) => Err(self.deny(format!(
                "{protocol} to {} is not in capabilities.hosts (add \"{{target}}\")",
                self.host
            ))),
            _ => Ok(()),
        }
    }

    async fn snmp_endpoint(&self) -> Result<SnmpEndpoint, PollError> {
        let auth = match &self.credential {
            Some(CredentialSecret::SnmpCommunity { community }) => {
                SnmpAuth::Community(community.clone())
            }
            Some(CredentialSecret::SnmpUsm { user }) => SnmpAuth::Usm {
                user: user.clone(),
                context: config_str(&self.target, "snmp_context").unwrap_or_default(),
            },
            _ => {
                return Err(PollError::Failed(format!(
                    "target `{}` has no SNMP credential (kind snmp_community or snmp_usm)",
                    self.target.name
                )));
            }
        };
        let addr = resolve(&self.host, self.port.unwrap_or(161)).await?;
        Ok(SnmpEndpoint {
            addr,
            auth,
            timeout: SNMP_ATTEMPT_TIMEOUT.min(self.remaining()),
            retries: SNMP_RETRIES,
        })
    }

    pub async fn snmp_get(&self, oids: &[String]) -> Result<Vec<Varbind>, PollError> {
        self.check_target_allowed("SNMP")?;
        let result = async {
            let ep = self.snmp_endpoint().await?;
            self.pollers.snmp.get(&ep, oids).await
        }
        .await;
        self.record(result)
    }

    pub async fn snmp_walk(&self, root: &str) -> Result<Vec<Varbind>, PollError> {
        self.check_target_allowed("SNMP")?;
        let result = async {
            let ep = self.snmp_endpoint().await?;
            self.pollers.snmp.walk(&ep, root).await
        }
        .await;
        self.record(result)
    }

    pub async fn http(&self, call: HttpCallSpec) -> Result<HttpResponse, PollError> {
        let base = http::target_base_url(&self.target.address)
            .map_err(|m| PollError::Failed(format!("target address: {m}")))?;
        let url = http::resolve(&base, &call.url).map_err(PollError::Failed)?;
        let auth = match &self.credential {
            Some(CredentialSecret::HttpBasic { username, password }) => Some(HttpAuth::Basic {
                username: username.clone(),
                password: password.clone(),
            }),
            Some(CredentialSecret::HttpBearer { token }) => Some(HttpAuth::Bearer(token.clone())),
            Some(CredentialSecret::HttpHeader { name, value }) => Some(HttpAuth::Header {
                name: name.clone(),
                value: value.clone(),
            }),
            _ => None,
        };
        let target_host = self.host.clone();
        let scripted = self.scripted.clone();
        // Checked for the first URL and every redirect: a scripted poll may reach what its
        // capabilities list; a declarative fetch only the target itself.
        let allow = move |u: &Url| -> Result<(), String> {
            let host = u.host_str().unwrap_or_default();
            let allowed = match &scripted {
                Some(caps) => caps.allows_host(host, &target_host),
                None => host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .eq_ignore_ascii_case(&target_host),
            };
            if allowed {
                Ok(())
            } else {
                Err(format!("HTTP to {host} is not allowed ({u})"))
            }
        };
        if let Err(reason) = allow(&url) {
            return Err(self.deny(reason));
        }
        let http_call = HttpCall {
            method: call.method,
            url,
            headers: call.headers,
            body: call.body,
        };
        let result = self
            .pollers
            .http
            .request(
                http_call,
                auth.as_ref(),
                &base,
                &allow,
                self.remaining(),
                http::DEFAULT_MAX_BODY,
            )
            .await;
        if let Err(PollError::Denied(reason)) = &result {
            // A redirect the capabilities do not allow: refused like a direct attempt.
            return Err(self.deny(reason.clone()));
        }
        self.record(result)
    }

    pub async fn ssh_exec(&self, command: &str) -> Result<SshOutput, PollError> {
        if let Some(caps) = &self.scripted
            && !caps.allows_ssh_command(command)
        {
            return Err(self.deny(format!(
                "SSH command `{command}` is not in capabilities.ssh_commands"
            )));
        }
        self.check_target_allowed("SSH")?;
        let mut outputs = self.ssh_session(&[command.to_owned()]).await?;
        outputs
            .pop()
            .ok_or_else(|| PollError::Failed("the SSH session returned no output".into()))
    }

    /// Runs `commands` in one SSH session, pinning the server's host key on first use and
    /// refusing a different one later.
    async fn ssh_session(&self, commands: &[String]) -> Result<Vec<SshOutput>, PollError> {
        let result = self.ssh_session_inner(commands).await;
        self.record(result)
    }

    async fn ssh_session_inner(&self, commands: &[String]) -> Result<Vec<SshOutput>, PollError> {
        let (username, auth) = match &self.credential {
            Some(CredentialSecret::SshPassword { username, password }) => {
                (username.clone(), SshAuth::Password(password.clone()))
            }
            Some(CredentialSecret::SshKey {
                username,
                private_key,
                passphrase,
            }) => (
                username.clone(),
                SshAuth::PrivateKey {
                    pem: private_key.clone(),
                    passphrase: passphrase.clone(),
                },
            ),
            _ => {
                return Err(PollError::Failed(format!(
                    "target `{}` has no SSH credential (kind ssh_password or ssh_key)",
                    self.target.name
                )));
            }
        };
        let port = self.port.unwrap_or(22);
        let endpoint = ssh_endpoint_name(&self.host, port);
        let pinned = self
            .store
            .ssh_host_key(&endpoint)
            .await
            .map_err(|e| PollError::Failed(format!("reading the pinned host key: {e}")))?
            .map(|p| HostKey {
                key_type: p.key_type,
                public_key: p.public_key,
                fingerprint: p.fingerprint,
            });
        let ep = SshEndpoint {
            host: self.host.clone(),
            port,
            username,
            auth,
            timeout: self.remaining(),
        };
        let (presented, outputs) = self
            .pollers
            .ssh
            .exec(&ep, pinned.as_ref(), commands)
            .await?;
        let now_pinned = self
            .store
            .pin_ssh_host_key(
                &endpoint,
                &presented.key_type,
                &presented.public_key,
                &presented.fingerprint,
                Utc::now(),
            )
            .await
            .map_err(|e| PollError::Failed(format!("pinning the host key: {e}")))?;
        if now_pinned.fingerprint != presented.fingerprint {
            // Another node pinned a different key for this endpoint between our read and our
            // write: one of the two connections met an impostor. Refuse this one's output.
            return Err(PollError::HostKeyMismatch {
                endpoint,
                pinned: now_pinned.fingerprint,
                presented: presented.fingerprint,
            });
        }
        if pinned.is_none() {
            debug!(%endpoint, fingerprint = %presented.fingerprint, "pinned SSH host key on first use");
        }
        Ok(outputs)
    }
}

/// How pinned SSH host keys are keyed: `host:port`, `[v6]:port`.
pub fn ssh_endpoint_name(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, PollError> {
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| PollError::Unreachable(format!("cannot resolve {host}: {e}")))?;
    addrs
        .next()
        .ok_or_else(|| PollError::Unreachable(format!("{host} resolves to no address")))
}

/// The host and port of a target address, which may also be an http(s) base URL.
pub fn target_host_port(address: &str) -> Result<(String, Option<u16>), String> {
    if address.starts_with("http://") || address.starts_with("https://") {
        let url = Url::parse(address).map_err(|e| e.to_string())?;
        let host = url
            .host_str()
            .ok_or("the URL has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        return Ok((host, url.port()));
    }
    split_host_port(address)
}

fn config_str(target: &Target, key: &str) -> Option<String> {
    match target.config.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Replaces `{key}` in a manifest path with the target config's string or number at `key`.
fn fill_placeholders(path: &str, target: &Target) -> Result<String, String> {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in `{path}`"))?;
        let key = &rest[start + 1..start + end];
        let value = config_str(target, key)
            .ok_or_else(|| format!("target config has no string or number `{key}` for `{path}`"))?;
        out.push_str(&value);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    // `"/{path}"` with a config value that starts with `/` would give `//health`, which a URL
    // parser reads as a host name: the operator meant a path.
    while out.starts_with("//") {
        out.remove(0);
    }
    Ok(out)
}

/// How a poll ended, as the scheduler records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollOutcome {
    /// `ok`, `unreachable`, `failed` or `host_key_mismatch`.
    pub status: &'static str,
    pub error: Option<String>,
}

impl PollOutcome {
    fn ok() -> PollOutcome {
        PollOutcome {
            status: "ok",
            error: None,
        }
    }

    fn failed(error: impl Into<String>) -> PollOutcome {
        PollOutcome {
            status: "failed",
            error: Some(error.into()),
        }
    }
}

/// Everything one poll needs.
pub struct PollJob<'a> {
    pub addon: Arc<LoadedAddon>,
    pub target: Target,
    pub credential: Option<CredentialSecret>,
    /// The status the target's previous poll recorded, to know which host alerts to clear.
    pub previous_status: Option<String>,
    pub pollers: &'a Pollers,
    pub store: &'a Store,
    pub writer: &'a AlertWriter,
}

/// Polls one target and stores what came of it. Never panics on bad input: every failure
/// becomes the outcome (and, for unreachable targets, an alert).
pub async fn run(job: PollJob<'_>) -> PollOutcome {
    let addon = job.addon.clone();
    let started = Instant::now();
    let outcome = poll_and_store(job).await;
    addon.counters.poll_time.observe(started.elapsed());
    outcome
}

async fn poll_and_store(job: PollJob<'_>) -> PollOutcome {
    let PollJob {
        addon,
        target,
        credential,
        previous_status,
        pollers,
        store,
        writer,
    } = job;
    addon.counters.polls.fetch_add(1, Ordering::Relaxed);
    let Some(spec) = addon.manifest.poll.clone() else {
        return PollOutcome::failed(format!("addon `{}` does not poll", addon.id()));
    };
    // A quarantined addon's targets are not even fetched: nothing could parse the answer.
    if let Err(refused) = addon.quarantine.check() {
        addon.counters.quarantined.fetch_add(1, Ordering::Relaxed);
        return PollOutcome::failed(refused.to_string());
    }
    let budget = Duration::from_millis(u64::from(spec.timeout_ms));
    let io = match TargetIo::new(
        addon.clone(),
        target.clone(),
        credential,
        pollers.clone(),
        store.clone(),
        budget,
    ) {
        Ok(io) => Arc::new(io),
        Err(e) => return PollOutcome::failed(e.to_string()),
    };
    let started_at = Utc::now().timestamp_millis();
    let wit_target = event::AddonTarget {
        id: target.id.to_string(),
        name: target.name.clone(),
        address: target.address.clone(),
        config: serde_json::Value::Object(target.config.clone()).to_string(),
    };

    let addon_result: Result<(), IngestError> = match spec.mode {
        PollMode::Declarative => {
            let fetched = fetch_declared(&io, &spec.fetch, &target).await;
            let log = io.log.lock().expect("io log lock").clone();
            if log.answered == 0 {
                // Nothing answered: there is nothing for the addon to parse. The verdict below
                // raises the unreachable (or host-key) alert.
                Ok(())
            } else {
                let event = RawEvent::Poll(PollResult {
                    target: wit_target,
                    started_at,
                    fetched,
                });
                ingest::ingest(&addon, event, writer).await.map(drop)
            }
        }
        PollMode::Scripted => {
            addon.counters.event();
            match addon
                .quarantine
                .guard(
                    addon
                        .component
                        .poll(wit_target, io.clone(), spec.timeout_ms),
                )
                .await
            {
                Ok(reported) => ingest::store_reported(&addon, reported, writer)
                    .await
                    .map(drop),
                Err(e) => {
                    addon.counters.call_failed(&e);
                    Err(e.into())
                }
            }
        }
    };

    let log = io.log.lock().expect("io log lock").clone();
    let outcome = verdict(&log, &addon_result);
    if outcome.status == "unreachable" {
        addon
            .counters
            .polls_unreachable
            .fetch_add(1, Ordering::Relaxed);
    }
    let host_alerts = host_alerts(&target, &outcome, previous_status.as_deref());
    if !host_alerts.is_empty()
        && let Err(e) = ingest::store_reported(&addon, host_alerts, writer).await
    {
        warn!(addon = addon.id(), target = %target.name, error = %e, "could not store the target's reachability alert");
    }
    outcome
}

/// The declarative fetches of one poll of `target`, through the same [`TargetIo`] as [`run`]
/// (the target's credential applied, SSH host keys pinned on first use), without calling the
/// addon, storing alerts or recording an outcome: what `opsconductor addon record` turns into a
/// fixture.
pub async fn fetch_once(
    addon: Arc<LoadedAddon>,
    target: &Target,
    credential: Option<CredentialSecret>,
    pollers: &Pollers,
    store: &Store,
) -> Result<PollResult, String> {
    let spec = match &addon.manifest.poll {
        Some(spec) if spec.mode == PollMode::Declarative => spec.clone(),
        _ => return Err(format!("addon `{}` has no declarative poll", addon.id())),
    };
    let budget = Duration::from_millis(u64::from(spec.timeout_ms));
    let io = TargetIo::new(
        addon,
        target.clone(),
        credential,
        pollers.clone(),
        store.clone(),
        budget,
    )
    .map_err(|e| e.to_string())?;
    let started_at = Utc::now().timestamp_millis();
    let fetched = fetch_declared(&io, &spec.fetch, target).await;
    Ok(PollResult {
        target: event::AddonTarget {
            id: target.id.to_string(),
            name: target.name.clone(),
            address: target.address.clone(),
            config: serde_json::Value::Object(target.config.clone()).to_string(),
        },
        started_at,
        fetched,
    })
}

/// Runs a declarative poll's fetches in manifest order; SSH commands share one session.
async fn fetch_declared(io: &TargetIo, fetches: &[FetchSpec], target: &Target) -> Vec<Fetched> {
    let ssh_commands: Vec<String> = fetches
        .iter()
        .filter_map(|f| match f {
            FetchSpec::Ssh { command, .. } => Some(command.clone()),
            _ => None,
        })
        .collect();
    let mut ssh_outputs: BTreeMap<String, Result<SshOutput, String>> = BTreeMap::new();
    if !ssh_commands.is_empty() {
        match io.ssh_session(&ssh_commands).await {
            Ok(outputs) => {
                for o in outputs {
                    ssh_outputs.insert(o.command.clone(), Ok(o));
                }
            }
            Err(e) => {
                for c in &ssh_commands {
                    ssh_outputs.insert(c.clone(), Err(e.to_string()));
                }
            }
        }
    }
    let mut out = Vec::with_capacity(fetches.len());
    for fetch in fetches {
        let outcome = match fetch {
            FetchSpec::SnmpGet { oids, .. } => io
                .snmp_get(oids)
                .await
                .map(FetchedData::Snmp)
                .map_err(|e| e.to_string()),
            FetchSpec::SnmpWalk { oid, .. } => io
                .snmp_walk(oid)
                .await
                .map(FetchedData::Snmp)
                .map_err(|e| e.to_string()),
            FetchSpec::Http {
                method,
                path,
                headers,
                ..
            } => match fill_placeholders(path, target) {
                Ok(path) => io
                    .http(HttpCallSpec {
                        method: method.clone(),
                        url: path,
                        headers: headers
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                        body: Vec::new(),
                    })
                    .await
                    .map(FetchedData::Http)
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            },
            FetchSpec::Ssh { command, .. } => ssh_outputs
                .get(command)
                .cloned()
                .unwrap_or_else(|| Err("the SSH session did not run this command".into()))
                .map(FetchedData::Ssh),
        };
        out.push(Fetched {
            name: fetch.name().to_owned(),
            outcome,
        });
    }
    out
}

fn verdict(log: &IoLog, addon_result: &Result<(), IngestError>) -> PollOutcome {
    if let Some(mismatch) = &log.host_key_mismatch {
        return PollOutcome {
            status: "host_key_mismatch",
            error: Some(mismatch.clone()),
        };
    }
    if log.answered == 0 && log.unreachable > 0 {
        return PollOutcome {
            status: "unreachable",
            error: log.last_unreachable.clone(),
        };
    }
    if log.answered == 0 && log.refused > 0 {
        // Not unreachable: nothing was tried. The target's address is somewhere polls may not
        // go, which only a change of address or of `[poll] allow` mends.
        return PollOutcome::failed(log.last_refused.clone().unwrap_or_default());
    }
    match addon_result {
        Err(e) => PollOutcome::failed(e.to_string()),
        Ok(()) if log.failed > 0 => {
            PollOutcome::failed(log.last_failed.clone().unwrap_or_default())
        }
        Ok(()) => PollOutcome::ok(),
    }
}

/// The host's alerts about the target itself: raised while the condition holds (deduplicated
/// like any alert), cleared by the first poll after it that got an answer.
fn host_alerts(
    target: &Target,
    outcome: &PollOutcome,
    previous: Option<&str>,
) -> Vec<ReportedAlert> {
    let alert = |alert_type: &str, title: String, severity: Severity, clears: bool| {
        let (host, _) = target_host_port(&target.address).unwrap_or_default();
        let is_ip = host.parse::<std::net::IpAddr>().is_ok();
        ReportedAlert {
            alert_type: alert_type.to_owned(),
            device_ip: is_ip.then(|| host.clone()),
            device_name: Some(target.name.clone()),
            title,
            message: outcome.error.clone().unwrap_or_default(),
            severity: Some(severity),
            clears,
            identity: vec![("target_id".into(), target.id.to_string())],
            fields: vec![("address".into(), target.address.clone())],
            occurred_at: None,
        }
    };
    let answered = matches!(outcome.status, "ok" | "failed");
    let mut out = Vec::new();
    match outcome.status {
        "unreachable" => out.push(alert(
            TARGET_UNREACHABLE,
            format!("target {} is unreachable", target.name),
            Severity::Major,
            false,
        )),
        "host_key_mismatch" => out.push(alert(
            SSH_HOST_KEY_CHANGED,
            format!("SSH host key of {} changed; polling refused", target.name),
            Severity::Critical,
            false,
        )),
        _ => {}
    }
    if answered {
        if previous == Some("unreachable") {
            out.push(alert(
                TARGET_UNREACHABLE,
                format!("target {} answers again", target.name),
                Severity::Info,
                true,
            ));
        }
        if previous == Some("host_key_mismatch") {
            out.push(alert(
                SSH_HOST_KEY_CHANGED,
                format!("SSH host key of {} accepted again", target.name),
                Severity::Info,
                true,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(address: &str, config: serde_json::Value) -> Target {
        Target {
            id: 7,
            name: "sw1".into(),
            address: address.into(),
            addon_id: "x".into(),
            schedule: crate::target::Schedule::IntervalSeconds(60),
            enabled: true,
            config: config.as_object().cloned().unwrap_or_default(),
            credentials: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            status: Default::default(),
        }
    }

    #[test]
    fn placeholders_come_from_the_target_config() {
        let t = target(
            "192.0.2.1",
            serde_json::json!({ "path": "/health", "port": 8080 }),
        );
        assert_eq!(
            fill_placeholders("{path}?p={port}", &t).unwrap(),
            "/health?p=8080"
        );
        assert!(
            fill_placeholders("{missing}", &t)
                .unwrap_err()
                .contains("missing")
        );
        assert!(fill_placeholders("/a{path", &t).is_err());
        // A leading slash in the value does not turn the path into a host.
        assert_eq!(fill_placeholders("/{path}", &t).unwrap(), "/health");
    }

    #[test]
    fn unreachable_needs_no_answer_at_all() {
        let unreachable = IoLog {
            unreachable: 2,
            last_unreachable: Some("timed out".into()),
            ..IoLog::default()
        };
        assert_eq!(verdict(&unreachable, &Ok(())).status, "unreachable");
        let partly = IoLog {
            answered: 1,
            unreachable: 1,
            ..IoLog::default()
        };
        assert_eq!(verdict(&partly, &Ok(())).status, "ok");
        let denied_only = IoLog {
            denied: 1,
            ..IoLog::default()
        };
        assert_eq!(verdict(&denied_only, &Ok(())).status, "ok");
        let refused = IoLog {
            refused: 1,
            last_refused: Some("the egress policy refuses 127.0.0.2".into()),
            ..IoLog::default()
        };
        let outcome = verdict(&refused, &Ok(()));
        assert_eq!(outcome.status, "failed");
        assert!(outcome.error.unwrap().contains("egress policy"));
    }

    #[test]
    fn reachability_alerts_raise_and_clear_once() {
        let t = target("192.0.2.1:161", serde_json::json!({}));
        let down = PollOutcome {
            status: "unreachable",
            error: Some("timed out".into()),
        };
        let raised = host_alerts(&t, &down, Some("ok"));
        assert_eq!(raised.len(), 1);
        assert_eq!(raised[0].alert_type, TARGET_UNREACHABLE);
        assert!(!raised[0].clears);
        assert_eq!(raised[0].device_ip.as_deref(), Some("192.0.2.1"));
        let cleared = host_alerts(&t, &PollOutcome::ok(), Some("unreachable"));
        assert_eq!(cleared.len(), 1);
        assert!(cleared[0].clears);
        assert_eq!(cleared[0].identity, raised[0].identity);
        assert!(host_alerts(&t, &PollOutcome::ok(), Some("ok")).is_empty());
    }
}
