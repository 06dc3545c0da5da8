//! Outside I/O for scripted polls (manifest `poll.mode: "scripted"`), WIT 0.2.0 and later.
//!
//! Every function acts on the target being polled, with that target's credentials, which the
//! addon never sees. The host checks each call against the manifest's `capabilities.hosts` and
//! `capabilities.ssh_commands` first and answers [`IoError::Denied`] otherwise; outside a
//! [`crate::Addon::poll`] call everything is denied.
//!
//! On `wasm32` these call the `opsconductor:addon/io` imports. Natively (an addon's `cargo test`)
//! they go to a responder the test installs with [`set_test_responder`], so that
//! scripted poll logic is testable without a device; with none installed every call is denied.

pub use crate::bindings::opsconductor::addon::io::{HttpCall, IoError};
use crate::{HttpResponse, SshOutput, Varbind};

/// One I/O call, as a native test responder sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoCall {
    SnmpGet(Vec<String>),
    SnmpWalk(String),
    Http(HttpCall),
    SshExec(String),
}

/// A responder's answer to one [`IoCall`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoReply {
    Snmp(Vec<Varbind>),
    Http(HttpResponse),
    Ssh(SshOutput),
}

/// A one-line description of an I/O error (the generated `Display` is a debug dump).
pub fn describe(e: &IoError) -> String {
    match e {
        IoError::Denied(m) => format!("denied: {m}"),
        IoError::Unreachable(m) => format!("unreachable: {m}"),
        IoError::Failed(m) => format!("failed: {m}"),
    }
}

impl From<IoError> for crate::AddonError {
    fn from(e: IoError) -> Self {
        crate::AddonError::internal(describe(&e))
    }
}

/// SNMP GET of `oids` (dotted decimal) on the polled target.
pub fn snmp_get(oids: &[&str]) -> Result<Vec<Varbind>, IoError> {
    let oids: Vec<String> = oids.iter().map(|o| (*o).to_owned()).collect();
    imp::snmp_get(oids)
}

/// Every varbind below `root` on the polled target, in MIB order.
pub fn snmp_walk(root: &str) -> Result<Vec<Varbind>, IoError> {
    imp::snmp_walk(root)
}

/// An HTTP request; `url` is absolute or a path on the target's base URL.
pub fn http_request(request: &HttpCall) -> Result<HttpResponse, IoError> {
    imp::http_request(request)
}

/// `GET url` with no extra headers.
pub fn http_get(url: &str) -> Result<HttpResponse, IoError> {
    http_request(&HttpCall {
        method: "GET".into(),
        url: url.into(),
        headers: Vec::new(),
        body: Vec::new(),
    })
}

/// Runs `command` (listed verbatim in `capabilities.ssh_commands`) on the polled target.
pub fn ssh_exec(command: &str) -> Result<SshOutput, IoError> {
    imp::ssh_exec(command)
}

/// Answers this thread's I/O calls with `responder` (native builds only): how an addon's unit
/// tests play a device. Replaces any responder installed before.
#[cfg(not(target_arch = "wasm32"))]
pub fn set_test_responder(responder: impl FnMut(IoCall) -> Result<IoReply, IoError> + 'static) {
    imp::RESPONDER.with(|r| *r.borrow_mut() = Some(Box::new(responder)));
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{HttpCall, IoError};
    use crate::bindings::opsconductor::addon::io;
    use crate::{HttpResponse, SshOutput, Varbind};

    pub fn snmp_get(oids: Vec<String>) -> Result<Vec<Varbind>, IoError> {
        io::snmp_get(&oids)
    }

    pub fn snmp_walk(root: &str) -> Result<Vec<Varbind>, IoError> {
        io::snmp_walk(root)
    }

    pub fn http_request(request: &HttpCall) -> Result<HttpResponse, IoError> {
        io::http_request(request)
    }

    pub fn ssh_exec(command: &str) -> Result<SshOutput, IoError> {
        io::ssh_exec(command)
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod imp {
    use std::cell::RefCell;

    use super::{HttpCall, IoCall, IoError, IoReply};
    use crate::{HttpResponse, SshOutput, Varbind};

    pub(crate) type Responder = Box<dyn FnMut(IoCall) -> Result<IoReply, IoError>>;

    thread_local! {
        pub(crate) static RESPONDER: RefCell<Option<Responder>> = const { RefCell::new(None) };
    }

    fn call(c: IoCall) -> Result<IoReply, IoError> {
        RESPONDER.with(|r| match r.borrow_mut().as_mut() {
            Some(responder) => responder(c),
            None => Err(IoError::Denied(
                "no I/O in a native test without io::set_test_responder".into(),
            )),
        })
    }

    fn mismatch(what: &str) -> IoError {
        IoError::Failed(format!(
            "test responder answered {what} with another kind of reply"
        ))
    }

    pub fn snmp_get(oids: Vec<String>) -> Result<Vec<Varbind>, IoError> {
        match call(IoCall::SnmpGet(oids))? {
            IoReply::Snmp(v) => Ok(v),
            _ => Err(mismatch("snmp-get")),
        }
    }

    pub fn snmp_walk(root: &str) -> Result<Vec<Varbind>, IoError> {
        match call(IoCall::SnmpWalk(root.to_owned()))? {
            IoReply::Snmp(v) => Ok(v),
            _ => Err(mismatch("snmp-walk")),
        }
    }

    pub fn http_request(request: &HttpCall) -> Result<HttpResponse, IoError> {
        match call(IoCall::Http(request.clone()))? {
            IoReply::Http(h) => Ok(h),
            _ => Err(mismatch("http-request")),
        }
    }

    pub fn ssh_exec(command: &str) -> Result<SshOutput, IoError> {
        match call(IoCall::SshExec(command.to_owned()))? {
            IoReply::Ssh(s) => Ok(s),
            _ => Err(mismatch("ssh-exec")),
        }
    }
}
