//! One poll of one target: the I/O it may do ([`TargetIo`]), declarative fetches, the addon's
//! scripted `poll`, and the reachability verdict.

use crate::event::{HttpCallSpec, HttpResponse, SshOutput, Varbind};
use crate::poller::PollError;

/// The I/O one poll of one target may do, with the target's credentials, checked against the
/// addon's capabilities for scripted polls, and recorded for the reachability verdict.
pub struct TargetIo {}

impl TargetIo {
    pub async fn snmp_get(&self, _oids: &[String]) -> Result<Vec<Varbind>, PollError> {
        Err(PollError::Denied("not yet wired".into()))
    }

    pub async fn snmp_walk(&self, _root: &str) -> Result<Vec<Varbind>, PollError> {
        Err(PollError::Denied("not yet wired".into()))
    }

    pub async fn http(&self, _call: HttpCallSpec) -> Result<HttpResponse, PollError> {
        Err(PollError::Denied("not yet wired".into()))
    }

    pub async fn ssh_exec(&self, _command: &str) -> Result<SshOutput, PollError> {
        Err(PollError::Denied("not yet wired".into()))
    }
}
