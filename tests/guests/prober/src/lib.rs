//! A scripted-poll test addon. Its `poll` performs the I/O steps listed in the target's config
//! and reports one alert `probeStep` per step (identity `step` = its index) with the outcome, so
//! tests can check what the host allowed, refused and returned:
//!
//! ```json
//! { "steps": [ { "snmp_get": ["1.3.6.1.2.1.1.5.0"] }, { "snmp_walk": "1.3.6.1.2.1.2.2.1.8" },
//!              { "http": "/status" }, { "http": "http://203.0.113.9/" },
//!              { "ssh": "cat /proc/loadavg" }, { "ssh": "rm -rf /" } ] }
//! ```
//!
//! Fields: `outcome` (`ok`, `denied`, `unreachable`, `failed`) and `detail` (varbind count and
//! first value, HTTP status and body, SSH exit status and stdout, or the error message).

use opsconductor_addon_sdk::io::{self, IoError};
use opsconductor_addon_sdk::prelude::*;
use opsconductor_addon_sdk::{SnmpValue, Target, Varbind, serde_json};

#[derive(Default)]
struct Prober;

register_addon!(Prober);

fn describe_varbinds(v: &[Varbind]) -> String {
    let first = v.first().map(|vb| match &vb.value {
        SnmpValue::Integer(i) => format!("{}={i}", vb.oid),
        SnmpValue::OctetString(s) => format!("{}={}", vb.oid, String::from_utf8_lossy(s)),
        other => format!("{}={other:?}", vb.oid),
    });
    format!("{} varbinds; first {}", v.len(), first.unwrap_or_default())
}

fn outcome<T>(result: Result<T, IoError>, detail: impl FnOnce(T) -> String) -> (String, String) {
    match result {
        Ok(v) => ("ok".into(), detail(v)),
        Err(IoError::Denied(m)) => ("denied".into(), m),
        Err(IoError::Unreachable(m)) => ("unreachable".into(), m),
        Err(IoError::Failed(m)) => ("failed".into(), m),
    }
}

impl Addon for Prober {
    fn poll(&self, target: &Target) -> Result<Vec<Alert>> {
        let config: Value = serde_json::from_str(&target.config)
            .map_err(|e| AddonError::invalid_input(format!("target config: {e}")))?;
        let steps = config["steps"]
            .as_array()
            .ok_or_else(|| AddonError::invalid_input("target config needs `steps`"))?;
        let mut alerts = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let (outcome, detail) = if let Some(oids) = step["snmp_get"].as_array() {
                let oids: Vec<&str> = oids.iter().filter_map(Value::as_str).collect();
                outcome(io::snmp_get(&oids), |v| describe_varbinds(&v))
            } else if let Some(root) = step["snmp_walk"].as_str() {
                outcome(io::snmp_walk(root), |v| describe_varbinds(&v))
            } else if let Some(url) = step["http"].as_str() {
                outcome(io::http_get(url), |r| {
                    format!("{} {}", r.status, String::from_utf8_lossy(&r.body))
                })
            } else if let Some(command) = step["ssh"].as_str() {
                outcome(io::ssh_exec(command), |o| {
                    format!("{} {}", o.exit_status, String::from_utf8_lossy(&o.stdout))
                })
            } else {
                return Err(AddonError::invalid_input(format!(
                    "step {i} is not understood"
                )));
            };
            alerts.push(
                Alert::new("probeStep", format!("step {i}: {outcome}"))
                    .device_name(&target.name)
                    .identity("step", i.to_string())
                    .field("outcome", outcome)
                    .field("detail", detail),
            );
        }
        Ok(alerts)
    }
}
