//! `opsconductor config check`: reads a configuration file the way `serve` does (the file, then
//! the environment's overrides) and says what is wrong and where, without opening the database
//! or binding a port, so that a change can be checked before a restart.

use std::path::Path;

use anyhow::bail;

use crate::config::Config;
use crate::store::Store;

/// Checks the configuration at `path`: prints `<path>: ok` and any warnings on standard output,
/// or every problem found on standard error and fails.
pub(super) fn check(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        bail!("{}: no such file", path.display());
    }
    // Syntax, unknown keys and wrong types: toml's message names the line and column.
    let config = Config::load(Some(path))?;
    let (problems, warnings) = review(&config);
    for warning in &warnings {
        println!("warning: {warning}");
    }
    if problems.is_empty() {
        println!("{}: ok", path.display());
        return Ok(());
    }
    for problem in &problems {
        eprintln!("{}: {problem}", path.display());
    }
    bail!(
        "{}: {} problem(s); `opsconductor serve` would not start with it",
        path.display(),
        problems.len()
    )
}

/// What `serve` would refuse (problems) and what it would take but an operator should know
/// (warnings), from the settings alone.
fn review(config: &Config) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    if let Err(e) = Store::check_url(&config.database_url) {
        problems.push(format!("database_url: {e}"));
    }
    if let Err(e) = config.auth().check() {
        problems.push(e.to_string());
    }
    if let Some(ldap) = &config.ldap
        && let Err(e) = ldap.validate()
    {
        problems.push(format!("[ldap] {e}"));
    }
    if let Some(oidc) = &config.oidc
        && let Err(e) = oidc.validate()
    {
        problems.push(format!("[oidc] {e}"));
    }
    if let Err(e) = config.quarantine.check() {
        problems.push(e);
    }
    if let Err(e) = config.bundles.policy() {
        problems.push(e.to_string());
    }
    if let Some(traps) = config.trap_listen
        && traps.port() < 1024
        && !may_bind_low_ports()
    {
        warnings.push(format!(
            "trap_listen {traps}: a port below 1024 needs root or CAP_NET_BIND_SERVICE"
        ));
    }
    if !config.listen.ip().is_loopback() {
        warnings.push(format!(
            "listen {}: reachable beyond this host; a webhook addon whose authentication \
             was never set refuses posts until it is",
            config.listen
        ));
    }
    (problems, warnings)
}

/// Whether this process may bind ports below 1024: `CAP_NET_BIND_SERVICE` (bit 10) in its
/// effective capabilities, which root has too. Where that cannot be read, assume not.
fn may_bind_low_ports() -> bool {
    const CAP_NET_BIND_SERVICE: u32 = 10;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_NET_BIND_SERVICE) != 0)
}
