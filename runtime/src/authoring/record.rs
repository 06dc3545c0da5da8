//! `opsconductor addon record`: one poll of a configured target through the real poll path,
//! written as a poll fixture with its secrets redacted, so that a bug seen on a device
//! reproduces offline.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::Value;

use super::copy_dir;
use super::test::{report_line, scratch_sandbox, test_sources};
use crate::config::Config;
use crate::fixtures::run_fixtures;
use crate::manifest::{Manifest, PollMode};
use crate::poll::Pollers;
use crate::registry::{IngestCounters, LoadedAddon};
use crate::sandbox::{HostServices, Sandbox};
use crate::target::CredentialSecret;
use crate::webhook_auth::WebhookAuth;

/// Polls the configured target `target` (name or id) once with the addon in `dir` (a bundle or
/// source directory) through the real poll path — the target's credential applied by the host,
/// SSH host keys pinned as a scheduled poll would — and writes what the host's fetches
/// returned as `fixtures/<fixture>.input.poll.json`, plus `<fixture>.expected.json` with what
/// the addon made of it. Declarative polls only: a scripted poll's I/O has no fixture format.
///
/// Credentials never reach the file: the poll result has none (the host applies them), and
/// [`redact`] also replaces, in every string, the text of the target's secret (a device may
/// echo it), URL user info (`https://user:pw@host` → `https://host`), and the values of
/// sensitive keys and headers (`authorization`, `cookie`, `set-cookie`, names containing
/// `token`, `secret`, `password`, ...) with `<redacted>`.
pub async fn record(
    config: &Config,
    dir: &Path,
    target: &str,
    fixture: &str,
) -> anyhow::Result<()> {
    let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if fixture.is_empty() || fixture.starts_with('.') || !fixture.chars().all(name_ok) {
        bail!("fixture name `{fixture}`: use letters, digits, `-`, `_` and `.`");
    }
    let (sources, bundle) = test_sources(dir)?;
    let input_path = sources.fixtures.join(format!("{fixture}.input.poll.json"));
    let expected_path = sources.fixtures.join(format!("{fixture}.expected.json"));
    if input_path.exists() || expected_path.exists() {
        bail!("{} exists; choose another --fixture", input_path.display());
    }
    let manifest_bytes = std::fs::read(&sources.manifest)
        .with_context(|| format!("reading {}", sources.manifest.display()))?;
    let manifest = Manifest::from_json(&manifest_bytes)?;
    match &manifest.poll {
        Some(p) if p.mode == PollMode::Declarative => {}
        Some(_) => bail!(
            "addon `{}` polls by script: `record` captures declarative fetches only (a scripted \
             poll's io calls have no fixture format yet)",
            manifest.id
        ),
        None => bail!(
            "addon `{}` does not poll (no `poll` in its manifest)",
            manifest.id
        ),
    }

    let store = crate::server::connect_store(config)
        .await
        .with_context(|| {
            format!(
                "opening the database {}",
                crate::server::redact_url(&config.database_url)
            )
        })?;
    let by_id = match target.parse::<i64>() {
        Ok(id) => store.target(id).await?,
        Err(_) => None,
    };
    let target = match by_id {
        Some(t) => t,
        None => store
            .target_by_name(target)
            .await?
            .with_context(|| format!("no target named `{target}`"))?,
    };
    if target.addon_id != manifest.id {
        eprintln!(
            "note: target `{}` is configured for addon `{}`; polling it with `{}`",
            target.name, target.addon_id, manifest.id
        );
    }
    let credential =
        match &target.credentials {
            None => None,
            Some(name) => Some(store.credential_secret(name).await?.with_context(|| {
                format!("target `{}`: no credential named `{name}`", target.name)
            })?),
        };
    let secrets = credential.as_ref().map(secret_texts).unwrap_or_default();

    let sandbox = Arc::new(Sandbox::new(
        Some(config.compiled_cache_dir()),
        HostServices {
            store: store.clone(),
        },
    )?);
    let wasm = std::fs::read(&sources.wasm)
        .with_context(|| format!("reading {}", sources.wasm.display()))?;
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&wasm));
    let component = sandbox.load(
        &manifest.id,
        &manifest.world,
        &wasm,
        &sha,
        &manifest.capabilities,
    )?;
    let addon = Arc::new(LoadedAddon {
        rules: crate::engine::AlertRules::new(&manifest.id, &manifest.alerts),
        wasm_sha256: sha,
        webhook_auth: arc_swap::ArcSwap::from_pointee(WebhookAuth::open()),
        manifest,
        component,
        counters: IngestCounters::default(),
        // One poll, by hand: nothing to protect by quarantine.
        quarantine: crate::quarantine::Quarantine::new(
            crate::quarantine::QuarantineConfig {
                faults: 0,
                ..Default::default()
            },
            Arc::default(),
        ),
    });
    eprintln!(
        "polling target `{}` ({})",
        target.name,
        redact_text(&target.address, &secrets)
    );
    let poll = crate::poll::fetch_once(
        addon,
        &target,
        credential,
        &Pollers::new(config.poll.clone()),
        &store,
    )
    .await
    .map_err(|e| anyhow::anyhow!("target `{}`: {e}", target.name))?;
    store.close().await;
    for f in &poll.fetched {
        match &f.outcome {
            Ok(_) => eprintln!("  fetch `{}`: answered", f.name),
            Err(e) => eprintln!("  fetch `{}`: {}", f.name, redact_text(e, &secrets)),
        }
    }

    let mut recorded = crate::fixtures::poll_to_json(&poll);
    redact(&mut recorded, &secrets);
    std::fs::create_dir_all(&sources.fixtures)
        .with_context(|| format!("creating {}", sources.fixtures.display()))?;
    std::fs::write(&input_path, serde_json::to_string_pretty(&recorded)? + "\n")
        .with_context(|| format!("writing {}", input_path.display()))?;
    // The expectation is what the addon makes of the recorded input, through the same runner
    // as `addon test`.
    std::fs::write(&expected_path, "[]\n")
        .with_context(|| format!("writing {}", expected_path.display()))?;
    let (sandbox, scratch_store, _scratch) = scratch_sandbox().await?;
    let results = run_fixtures(&sandbox, &sources).await;
    scratch_store.close().await;
    let result = results?
        .into_iter()
        .find(|r| r.name == fixture)
        .context("the recorded fixture did not run")?;
    std::fs::write(
        &expected_path,
        serde_json::to_string_pretty(&result.updated_expectation())? + "\n",
    )
    .with_context(|| format!("writing {}", expected_path.display()))?;
    if let Some(bundle) = bundle {
        copy_dir(&sources.fixtures, &bundle.join("fixtures"))?;
    }
    println!("recorded {}", input_path.display());
    println!(
        "expected {} (review it: it is what the addon does today)",
        expected_path.display()
    );
    println!("{}", report_line(&result, "ok"));
    Ok(())
}

/// The secret texts of a credential, to be replaced wherever they appear in a recording.
/// (SNMPv3 keys are bytes derived from passwords, which are not stored.)
fn secret_texts(credential: &CredentialSecret) -> Vec<String> {
    let texts = match credential {
        CredentialSecret::SnmpCommunity { community } => vec![community.clone()],
        CredentialSecret::SnmpUsm { .. } => Vec::new(),
        CredentialSecret::HttpBasic { password, .. } => vec![password.clone()],
        CredentialSecret::HttpBearer { token } => vec![token.clone()],
        CredentialSecret::HttpHeader { value, .. } => vec![value.clone()],
        CredentialSecret::SshPassword { password, .. } => vec![password.clone()],
        CredentialSecret::SshKey {
            private_key,
            passphrase,
            ..
        } => std::iter::once(private_key.clone())
            .chain(passphrase.clone())
            .collect(),
    };
    // Very short secrets would blank out ordinary words; they are still never in a poll result.
    texts.into_iter().filter(|t| t.trim().len() >= 4).collect()
}

const REDACTED: &str = "<redacted>";

/// Whether a JSON key or header name names a secret.
fn sensitive_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "password",
        "passwd",
        "secret",
        "token",
        "api-key",
        "api_key",
        "apikey",
        "private_key",
        "community",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// Redacts a recorded fixture in place (see [`record`]).
fn redact(value: &mut Value, secrets: &[String]) {
    match value {
        Value::String(s) => *s = redact_text(s, secrets),
        Value::Array(items) => items.iter_mut().for_each(|v| redact(v, secrets)),
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if sensitive_name(key) && v.is_string() {
                    *v = Value::from(REDACTED);
                } else {
                    redact(v, secrets);
                }
            }
        }
        _ => {}
    }
}

/// `text` with every secret replaced and the user info of URLs dropped.
fn redact_text(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for secret in secrets {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), REDACTED);
        }
    }
    strip_userinfo(&text)
}

/// Drops `user:password@` from every `scheme://user:password@host` in `text`.
fn strip_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        out.push_str(
            authority
                .rfind('@')
                .map_or(authority, |at| &authority[at + 1..]),
        );
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_are_redacted() {
        let secrets = secret_texts(&CredentialSecret::HttpBearer {
            token: "s3cret-token".into(),
        });
        let mut v = serde_json::json!({
            "target": {"address": "https://ops:hunter22@198.51.100.7:8443/api"},
            "fetched": [{"name": "status", "http": {"status": 200,
                "headers": {"set-cookie": "sid=1", "content-type": "application/json",
                            "X-Auth-Token": "abc"},
                "json": {"echo": "Bearer s3cret-token", "api_key": "k", "count": 3,
                         "next": "see http://u:p@host/x and ftp://host/y"}}}]
        });
        redact(&mut v, &secrets);
        assert_eq!(v["target"]["address"], "https://198.51.100.7:8443/api");
        let http = &v["fetched"][0]["http"];
        assert_eq!(http["headers"]["set-cookie"], REDACTED);
        assert_eq!(http["headers"]["X-Auth-Token"], REDACTED);
        assert_eq!(http["headers"]["content-type"], "application/json");
        assert_eq!(http["json"]["echo"], "Bearer <redacted>");
        assert_eq!(http["json"]["api_key"], REDACTED);
        assert_eq!(http["json"]["count"], 3);
        assert_eq!(http["json"]["next"], "see http://host/x and ftp://host/y");
        assert!(!v.to_string().contains("s3cret") && !v.to_string().contains("hunter22"));
    }
}
