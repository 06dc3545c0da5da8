//! Grafana Alerting webhook contact point (unified alerting, payload `version: "1"`): one alert
//! per `alerts[]` entry.
//!
//! How an entry becomes an alert (see README.md for the operator's side):
//!
//! - **alert type** `labels.alertname`, the rule's title (Grafana's own `DatasourceNoData` and
//!   `DatasourceError` alerts keep those names, with the rule in the `rulename` label);
//!   **clears** when the entry's `status` is `resolved`;
//! - **identity** every other label, sorted, except Grafana-internal `__name__`-style labels.
//!   `grafana_folder` stays in: two rules with the same title in different folders are
//!   different problems;
//! - **device** the first of the labels `host`, `hostname`, `node`, `instance` with a host in it;
//!   otherwise the host of `externalURL` (the Grafana that evaluated the rule), otherwise the
//!   name `grafana`. The folder is not a device: it is kept as an identity field instead;
//! - **severity** `labels.severity` through the SDK's [`SEVERITY_WORDS`]; an unknown word leaves it to the
//!   manifest's default;
//! - **title** `annotations.summary`, else the rule title; **message** `annotations.description`,
//!   else `valueString` (the query values that fired, the only detail a bare rule has);
//! - **fields** `startsAt`, `generatorURL`, `fingerprint`, the non-empty `silenceURL`,
//!   `dashboardURL` and `panelURL`, `valueString`, `orgId`, each query value as
//!   `values.<refId>`, and every annotation as `annotations.<name>`; **occurred-at** `startsAt`.

use opsconductor_addon_sdk::prelude::*;

#[derive(Default)]
struct Grafana;

register_addon!(Grafana);

/// Labels that name the machine an alert is about; see the alertmanager addon for the order.
const DEVICE_LABELS: [&str; 4] = ["host", "hostname", "node", "instance"];

impl Addon for Grafana {
    fn parse_webhook(&self, req: &WebhookRequest) -> Result<Vec<Alert>> {
        let body = req.json()?;
        let fallback_device = ptr_str(&body, "/externalURL")
            .and_then(host_part)
            .unwrap_or("grafana");
        let org = ptr_text(&body, "/orgId");
        (0..req_array(&body, "/alerts")?.len())
            .map(|i| {
                entry(
                    &body,
                    &format!("/alerts/{i}"),
                    fallback_device,
                    org.as_deref(),
                )
            })
            .collect()
    }
}

/// The alert for the entry at pointer `at`. Pointers stay absolute so errors name the entry.
fn entry(body: &Value, at: &str, fallback_device: &str, org: Option<&str>) -> Result<Alert> {
    let get = |p: &str| ptr_str(body, &format!("{at}/{p}"));
    let name = req_str(body, &format!("{at}/labels/alertname"))?;
    let resolved = match get("status").or(ptr_str(body, "/status")) {
        Some("firing") => false,
        Some("resolved") => true,
        other => {
            return Err(AddonError::invalid_input(format!(
                "expected `firing` or `resolved` at {at}/status, found {other:?}"
            )));
        }
    };
    let device = DEVICE_LABELS
        .iter()
        .find_map(|l| get(&format!("labels/{l}")).and_then(host_part))
        .unwrap_or(fallback_device);
    let identity = ptr_pairs(body, &format!("{at}/labels"))
        .into_iter()
        .filter(|(k, _)| k != "alertname" && !k.starts_with("__"));
    // `values.B`, `annotations.summary`: the prefix keeps them apart from same-named labels.
    let prefixed = |object: &str| -> Vec<(String, String)> {
        ptr_pairs(body, &format!("{at}/{object}"))
            .into_iter()
            .map(|(k, v)| (format!("{object}.{k}"), v))
            .collect()
    };

    Ok(Alert::new(name, get("annotations/summary").unwrap_or(name))
        .device(device)
        .message(
            get("annotations/description")
                .or(get("valueString"))
                .unwrap_or(""),
        )
        .severity(SEVERITY_WORDS.get_opt(get("labels/severity")))
        .clears(resolved)
        .identities(identity)
        .field_opt("startsAt", get("startsAt"))
        .field_opt("generatorURL", get("generatorURL"))
        .field_opt("fingerprint", get("fingerprint"))
        .field_opt("silenceURL", get("silenceURL"))
        .field_opt("dashboardURL", get("dashboardURL"))
        .field_opt("panelURL", get("panelURL"))
        .field_opt("valueString", get("valueString"))
        .field_opt("orgId", org)
        .fields(prefixed("values"))
        .fields(prefixed("annotations"))
        .occurred_at_millis(get("startsAt").and_then(rfc3339_millis)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsconductor_addon_sdk::{ErrorKind, testing};

    fn parse(body: &str) -> Result<Vec<Alert>> {
        Grafana.parse_webhook(&testing::webhook("grafana", body))
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn fixture_firing_is_the_documented_example() {
        let alerts = parse(include_str!("../fixtures/firing.input.json")).unwrap();
        assert_eq!(alerts.len(), 2);
        assert_eq!(
            alerts[0],
            Alert {
                alert_type: "High memory usage".into(),
                device_ip: None,
                // No host label: the Grafana that evaluated the rule is the device.
                device_name: Some("play.grafana.org".into()),
                title: "This alert was triggered for zone us-1".into(),
                message: "The system has high memory usage".into(),
                severity: None,
                clears: false,
                identity: pairs(&[("team", "blue"), ("zone", "us-1")]),
                fields: pairs(&[
                    ("startsAt", "2021-10-12T09:51:03.157076+02:00"),
                    (
                        "generatorURL",
                        "https://play.grafana.org/alerting/1afz29v7z/edit"
                    ),
                    ("fingerprint", "c6eadffa33fcdf37"),
                    (
                        "silenceURL",
                        "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1"
                    ),
                    ("orgId", "1"),
                    ("values.B", "44.23943737541908"),
                    ("values.C", "1"),
                    (
                        "annotations.description",
                        "The system has high memory usage"
                    ),
                    (
                        "annotations.runbook_url",
                        "https://myrunbook.com/runbook/1234"
                    ),
                    (
                        "annotations.summary",
                        "This alert was triggered for zone us-1"
                    ),
                ]),
                occurred_at: Some(1_634_025_063_157),
            }
        );
        assert_eq!(alerts[1].alert_type, "High CPU usage");
        assert_eq!(
            alerts[1].identity,
            pairs(&[("team", "blue"), ("zone", "eu-1")])
        );
    }

    #[test]
    fn fixture_resolved_clears_and_uses_the_instance_label() {
        let alerts = parse(include_str!("../fixtures/resolved.input.json")).unwrap();
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert!(a.clears);
        assert_eq!(a.alert_type, "Disk almost full");
        assert_eq!(a.device_ip.as_deref(), Some("10.30.1.21"));
        assert_eq!(a.severity, Some(Severity::Major));
        assert!(
            a.identity
                .contains(&("grafana_folder".into(), "Linux hosts".into()))
        );
    }

    #[test]
    fn fixture_nodata_keeps_grafana_names_and_skips_blank_urls() {
        let alerts = parse(include_str!("../fixtures/nodata.input.json")).unwrap();
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.alert_type, "DatasourceNoData");
        assert_eq!(a.device_name.as_deref(), Some("grafana.example.net"));
        // No description: the message is Grafana's value string, here empty, so blank.
        assert_eq!(a.message, "");
        assert!(
            a.identity
                .contains(&("rulename".into(), "API latency p99".into()))
        );
        assert!(
            !a.fields
                .iter()
                .any(|(k, _)| k == "dashboardURL" || k == "panelURL")
        );
    }

    #[test]
    fn fixture_invalid_alerts_must_be_an_array() {
        let err = parse(include_str!("../fixtures/alerts-not-array.input.json")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert_eq!(err.message, "expected array at /alerts, found an object");
    }

    #[test]
    fn every_fixture_has_an_expectation() {
        for name in ["firing", "resolved", "nodata", "alerts-not-array"] {
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/");
            assert!(std::path::Path::new(&format!("{dir}{name}.input.json")).exists());
            assert!(std::path::Path::new(&format!("{dir}{name}.expected.json")).exists());
        }
    }

    #[test]
    fn internal_labels_stay_out_of_identity() {
        let alerts = parse(
            r#"{"status":"firing","alerts":[{"status":"firing",
                "labels":{"alertname":"X","__alert_rule_uid__":"abc","team":"a"}}]}"#,
        )
        .unwrap();
        assert_eq!(alerts[0].identity, pairs(&[("team", "a")]));
        assert_eq!(alerts[0].device_name.as_deref(), Some("grafana"));
    }
}
