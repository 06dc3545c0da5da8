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
        let (group_status, org) = (ptr_str(&body, "/status"), ptr_text(&body, "/orgId"));
        req_items(&body, "/alerts")?
            .iter()
            .map(|e| entry(e, group_status, fallback_device, org.as_deref()))
            .collect()
    }
}

/// The alert for one `alerts[]` entry; its errors name the entry's pointer.
fn entry(e: &Node, group: Option<&str>, fallback_device: &str, org: Option<&str>) -> Result<Alert> {
    let name = e.req_str("labels/alertname")?;
    let resolved = match e.str("status").or(group) {
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
    let identity = e.pairs("labels").into_iter();
    let identity = identity.filter(|(k, _)| k != "alertname" && !k.starts_with("__"));
    let description = e.str("annotations/description");
    let title = e.str("annotations/summary").unwrap_or(name);

    // `values.B`, `annotations.summary`: the prefix keeps them apart from same-named labels.
    Ok(Alert::new(name, title)
        .device(device)
        .message(description.or(e.str("valueString")).unwrap_or(""))
        .severity(SEVERITY_WORDS.get_opt(e.str("labels/severity")))
        .clears(resolved)
        .identities(identity)
        .fields(e.strs(&["startsAt", "generatorURL", "fingerprint", "silenceURL"]))
        .fields(e.strs(&["dashboardURL", "panelURL", "valueString"]))
        .field_opt("orgId", org)
        .fields(e.prefixed_pairs("values", "values"))
        .fields(e.prefixed_pairs("annotations", "annotations"))
        .occurred_at_millis(e.str("startsAt").and_then(rfc3339_millis)))
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
    fn every_fixture_passes_natively() {
        // The host's fixture runner, natively: parse, manifest rules, expectation.
        testing::check_fixtures(&Grafana, env!("CARGO_MANIFEST_DIR"));
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
