//! Prometheus Alertmanager webhook receiver (payload version 4): one alert per `alerts[]` entry.
//!
//! How an entry becomes an alert (see README.md for the operator's side):
//!
//! - **alert type** `labels.alertname`; **clears** when the entry's `status` is `resolved`;
//! - **identity** every other label, sorted, so the same label set re-firing is the same alert
//!   (this is exactly how Alertmanager itself tells alerts apart);
//! - **device** the first of the labels `host`, `hostname`, `node`, `instance` with a host in
//!   it (`10.0.0.12:9100` → device-ip `10.0.0.12`; `web-1:9100` → device-name `web-1`;
//!   `https://shop.example.com/healthz` → `shop.example.com`); alerts about no machine (a
//!   queue, a job) fall back to the host of `externalURL`, the Alertmanager that sent them, and
//!   then to the name `alertmanager`;
//! - **severity** `labels.severity` through the SDK's [`SEVERITY_WORDS`]; an unknown word leaves it to the
//!   manifest's default;
//! - **title** `annotations.summary`, else the alert name; **message** `annotations.description`,
//!   else `annotations.message` (the older kube-prometheus convention);
//! - **fields** `startsAt`, `generatorURL`, `fingerprint` and every annotation as
//!   `annotations.<name>`; **occurred-at** `startsAt`.

use opsconductor_addon_sdk::prelude::*;

#[derive(Default)]
struct Alertmanager;

register_addon!(Alertmanager);

/// Labels that name the machine an alert is about. Labels a rule author set on purpose come
/// before `instance`, which is only the scrape target: for kube-state-metrics or blackbox
/// alerts that is the exporter, while a `node` label names the machine in trouble.
const DEVICE_LABELS: [&str; 4] = ["host", "hostname", "node", "instance"];

impl Addon for Alertmanager {
    fn parse_webhook(&self, req: &WebhookRequest) -> Result<Vec<Alert>> {
        let body = req.json()?;
        if let Some(version) = ptr_str(&body, "/version")
            && version != "4"
        {
            // Versions 1-3 predate Alertmanager 0.8 and are long gone; parse what is there
            // rather than drop a page, and say so.
            host::warn(&format!("expected payload version 4, got {version}"));
        }
        let fallback_device = ptr_str(&body, "/externalURL")
            .and_then(host_part)
            .unwrap_or("alertmanager");
        let group_status = ptr_str(&body, "/status");
        req_items(&body, "/alerts")?
            .iter()
            .map(|e| entry(e, group_status, fallback_device))
            .collect()
    }
}

/// The alert for one `alerts[]` entry; its errors name the entry's pointer.
fn entry(e: &Node, group_status: Option<&str>, fallback_device: &str) -> Result<Alert> {
    let name = e.req_str("labels/alertname")?;
    let resolved = match e.str("status").or(group_status) {
        Some("firing") => false,
        Some("resolved") => true,
        other => {
            return Err(AddonError::invalid_input(format!(
                "expected `firing` or `resolved` at {}, found {other:?}",
                e.pointer_to("status")
            )));
        }
    };
    let device = DEVICE_LABELS
        .iter()
        .find_map(|l| e.str(&format!("labels/{l}")).and_then(host_part))
        .unwrap_or(fallback_device);
    let labels = e.pairs("labels");
    let summary = e.str("annotations/summary");
    let description = e.str("annotations/description");

    Ok(Alert::new(name, summary.unwrap_or(name))
        .device(device)
        .message(description.or(e.str("annotations/message")).unwrap_or(""))
        .severity(SEVERITY_WORDS.get_opt(e.str("labels/severity")))
        .clears(resolved)
        .identities(labels.into_iter().filter(|(k, _)| k != "alertname"))
        .fields(e.strs(&["startsAt", "generatorURL", "fingerprint"]))
        .fields(e.prefixed_pairs("annotations", "annotations"))
        .occurred_at_millis(e.str("startsAt").and_then(rfc3339_millis)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsconductor_addon_sdk::{ErrorKind, testing};

    fn parse(body: &str) -> Result<Vec<Alert>> {
        Alertmanager.parse_webhook(&testing::webhook("alertmanager", body))
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn fixture_firing() {
        let alerts = parse(include_str!("../fixtures/firing.input.json")).unwrap();
        assert_eq!(
            alerts,
            vec![Alert {
                alert_type: "NodeFilesystemAlmostOutOfSpace".into(),
                device_ip: Some("10.20.0.12".into()),
                device_name: None,
                title: "Filesystem has less than 5% space left.".into(),
                message: "Filesystem on /dev/sda1 at 10.20.0.12:9100 has only 3.21% available space left.".into(),
                severity: Some(Severity::Critical),
                clears: false,
                identity: pairs(&[
                    ("device", "/dev/sda1"),
                    ("fstype", "ext4"),
                    ("instance", "10.20.0.12:9100"),
                    ("job", "node"),
                    ("mountpoint", "/"),
                    ("severity", "critical"),
                ]),
                fields: pairs(&[
                    ("startsAt", "2024-05-14T09:12:45.123Z"),
                    ("generatorURL", "http://prometheus.example.net:9090/graph?g0.expr=node_filesystem_avail_bytes%7Bjob%3D%22node%22%7D&g0.tab=1"),
                    ("fingerprint", "5d0b3e1e6f3c7a2b"),
                    ("annotations.description", "Filesystem on /dev/sda1 at 10.20.0.12:9100 has only 3.21% available space left."),
                    ("annotations.runbook_url", "https://runbooks.prometheus-operator.dev/runbooks/node/nodefilesystemalmostoutofspace"),
                    ("annotations.summary", "Filesystem has less than 5% space left."),
                ]),
                occurred_at: Some(1_715_677_965_123),
            }]
        );
    }

    #[test]
    fn fixture_resolved_clears_the_same_identity() {
        let firing = parse(include_str!("../fixtures/firing.input.json")).unwrap();
        let resolved = parse(include_str!("../fixtures/resolved.input.json")).unwrap();
        assert_eq!(resolved.len(), 1);
        assert!(resolved[0].clears);
        assert!(!firing[0].clears);
        // Same type, device and identity: the host resolves exactly the alert that fired.
        assert_eq!(resolved[0].alert_type, firing[0].alert_type);
        assert_eq!(resolved[0].device_ip, firing[0].device_ip);
        assert_eq!(resolved[0].identity, firing[0].identity);
    }

    #[test]
    fn fixture_multi_mixes_devices_severities_and_states() {
        let alerts = parse(include_str!("../fixtures/multi.input.json")).unwrap();
        let summary: Vec<_> = alerts
            .iter()
            .map(|a| {
                (
                    a.alert_type.as_str(),
                    a.device_ip.as_deref(),
                    a.device_name.as_deref(),
                    a.severity,
                    a.clears,
                )
            })
            .collect();
        let warning = Some(Severity::Warning);
        assert_eq!(
            summary,
            vec![
                (
                    "KubePodCrashLooping",
                    Some("10.244.1.17"),
                    None,
                    warning,
                    false
                ),
                (
                    "KubePodCrashLooping",
                    Some("10.244.1.17"),
                    None,
                    warning,
                    true
                ),
                (
                    "BlackboxProbeFailed",
                    None,
                    Some("shop.example.com"),
                    Some(Severity::Critical),
                    false
                ),
                (
                    "NodeHighLoad",
                    None,
                    Some("worker-5.k8s.example.net"),
                    Some(Severity::Major),
                    false
                ),
                (
                    "QueueBacklogGrowing",
                    None,
                    Some("alertmanager.example.net"),
                    None,
                    false
                ),
            ]
        );
        // The two pods are two alerts: identity carries every label but the name.
        assert_ne!(alerts[0].identity, alerts[1].identity);
        // No summary annotation: the title falls back to the alert name.
        assert_eq!(alerts[4].title, "QueueBacklogGrowing");
        assert_eq!(
            alerts[4].message,
            "Queue orders has 18234 messages waiting."
        );
    }

    #[test]
    fn fixture_invalid_names_the_missing_label() {
        let err = parse(include_str!("../fixtures/missing-alertname.input.json")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert_eq!(err.message, "missing string at /alerts/1/labels/alertname");
    }

    #[test]
    fn every_fixture_passes_natively() {
        // The host's fixture runner, natively: parse, manifest rules, expectation.
        testing::check_fixtures(&Alertmanager, env!("CARGO_MANIFEST_DIR"));
    }

    #[test]
    fn bad_status_and_body_are_invalid_input() {
        let err =
            parse(r#"{"alerts":[{"status":"pending","labels":{"alertname":"X"}}]}"#).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("/alerts/0/status"), "{}", err.message);

        let err = parse(r#"{"version":"4"}"#).unwrap_err();
        assert_eq!(err.message, "missing array at /alerts");

        assert_eq!(parse("[").unwrap_err().kind, ErrorKind::InvalidInput);
    }

    #[test]
    fn entry_status_falls_back_to_the_group_status() {
        let alerts = parse(
            r#"{"status":"resolved","alerts":[{"labels":{"alertname":"X","instance":"db-1:5432"}}]}"#,
        )
        .unwrap();
        assert!(alerts[0].clears);
        assert_eq!(alerts[0].device_name.as_deref(), Some("db-1"));
        assert_eq!(alerts[0].occurred_at, None);
    }
}
