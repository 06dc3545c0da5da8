//! `GET /metrics`, read by a real Prometheus: after webhook traffic, the counters and the
//! latency histogram Prometheus stored from its scrapes match what was sent; without a
//! credential the endpoint answers 401; and the exposition carries every family operators
//! build dashboards on, on SQLite and PostgreSQL.

use opsconductor_tests::prometheus::Prometheus;
use opsconductor_tests::{Db, TestRuntime, both_databases, bundle, client_with_bearer, fixture};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Posts the Alertmanager fixture `n` times; returns how many alerts each post carries.
async fn send_webhooks(rt: &TestRuntime, n: usize) -> usize {
    let body = fixture("alertmanager", "firing");
    let per_post = serde_json::from_slice::<Value>(&body).unwrap()["alerts"]
        .as_array()
        .unwrap()
        .len();
    for _ in 0..n {
        let (status, answer) = rt.post_webhook("alertmanager", body.clone()).await;
        assert_eq!(status, 200, "{answer}");
    }
    per_post
}

/// A viewer API key: the least role that may scrape.
async fn viewer_key(rt: &TestRuntime) -> String {
    let (status, key) = rt
        .send_json(
            "POST",
            "/api/v1/api-keys",
            &json!({"name": "prometheus", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    key["key"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_scrapes_what_was_ingested() {
    let rt = TestRuntime::start(Db::Sqlite, &[bundle("alertmanager")]).await;
    let posts = 7;
    send_webhooks(&rt, posts).await;
    let key = viewer_key(&rt).await;
    let target = rt.url("").trim_start_matches("http://").to_owned();
    let prometheus = Prometheus::start(&target, "/metrics", &key);

    let posts = posts as f64;
    let queries = [
        ("up{job=\"opsconductor\"}", 1.0),
        ("opsconductor_webhooks_accepted_total", posts),
        (
            "opsconductor_ingest_seconds_count{source=\"webhook\",addon=\"alertmanager\"}",
            posts,
        ),
        (
            "opsconductor_sandbox_calls_total{addon=\"alertmanager\"}",
            posts,
        ),
        (
            "opsconductor_addon_events_total{addon=\"alertmanager\"}",
            posts,
        ),
        ("opsconductor_build_info{database=\"sqlite\"}", 1.0),
    ];
    // Prometheus scrapes every second; wait for a scrape after the traffic to be stored.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut seen = Vec::new();
        for (expr, want) in queries {
            let got = prometheus.query(expr).await;
            if got != Some(want) {
                seen.push(format!("{expr} = {got:?}, want {want}"));
            }
        }
        if seen.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not store the expected values:\n{}\ntargets: {}\nlog:\n{}",
            seen.join("\n"),
            prometheus.targets().await,
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Prometheus computes over what it stored: to it the histogram is a histogram.
    let p99 = prometheus
        .query(
            "histogram_quantile(0.99, sum by (le) \
             (opsconductor_ingest_seconds_bucket{source=\"webhook\"}))",
        )
        .await;
    assert!(p99.is_some_and(|p| p > 0.0), "p99 {p99:?}");

    // The Grafana dashboard we ship: every query is valid PromQL to this Prometheus, names
    // only families the runtime exposes, and the ingest panels show data.
    let exposed = families(&rt, &key).await;
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/grafana/opsconductor.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    for expr in exprs {
        for name in metric_names(expr) {
            assert!(
                exposed.iter().any(|f| name == *f
                    || name
                        .strip_prefix(f.as_str())
                        .is_some_and(|s| ["_total", "_bucket", "_sum", "_count"].contains(&s))),
                "the dashboard's `{expr}` names `{name}`, which /metrics does not expose"
            );
        }
        let runnable = expr
            .replace("$__rate_interval", "1m")
            .replace("$instance", ".*");
        prometheus.query_all(&runnable).await;
    }
    drop(prometheus);
    rt.stop().await;
}

/// The family names of the runtime's exposition (its `# TYPE` lines).
async fn families(rt: &TestRuntime, key: &str) -> Vec<String> {
    let text = client_with_bearer(Some(key))
        .get(rt.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

/// The `opsconductor_…` metric names a PromQL expression mentions.
fn metric_names(expr: &str) -> Vec<&str> {
    expr.match_indices("opsconductor_")
        .map(|(at, _)| {
            let rest = &expr[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

/// The endpoint is guarded like every route: no credential, no metrics.
async fn metrics_need_a_credential_and_show_every_family(db: Db) {
    let rt = TestRuntime::start(db, &[bundle("alertmanager")]).await;
    let per_post = send_webhooks(&rt, 2).await;

    let anonymous = client_with_bearer(None)
        .get(rt.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    let key = viewer_key(&rt).await;
    let response = client_with_bearer(Some(&key))
        .get(rt.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        response.headers()
    );
    let text = response.text().await.unwrap();
    let database = rt.server.state().store.kind().to_string();
    for line in [
        "opsconductor_webhooks_received_total 2".to_owned(),
        "opsconductor_webhooks_accepted_total 2".to_owned(),
        format!("opsconductor_writer_actions_total {}", 2 * per_post),
        format!("opsconductor_open_alerts{{severity=\"critical\"}} {per_post}"),
        format!("opsconductor_alerts{{status=\"active\"}} {per_post}"),
        "opsconductor_addon_alerts_created_total{addon=\"alertmanager\"} ".to_owned()
            + &per_post.to_string(),
        "opsconductor_addons_loaded 1".to_owned(),
        "opsconductor_queue_depth{queue=\"writer\"} 0".to_owned(),
        "opsconductor_queue_depth{queue=\"traps\"} 0".to_owned(),
        "opsconductor_events_clients 0".to_owned(),
        "opsconductor_writer_batch_actions_count 2".to_owned(),
        "opsconductor_writer_commit_seconds_count 2".to_owned(),
        "opsconductor_ingest_seconds_count{source=\"webhook\",addon=\"alertmanager\"} 2".to_owned(),
        "opsconductor_ingest_seconds_count{source=\"snmp_trap\",addon=\"alertmanager\"} 0"
            .to_owned(),
        "opsconductor_sandbox_call_seconds_count{addon=\"alertmanager\"} 2".to_owned(),
        format!(
            "opsconductor_build_info{{version=\"{}\",database=\"{database}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line `{line}` in:\n{text}"
        );
    }
    for family in [
        "# TYPE opsconductor_traps_received counter",
        "# TYPE opsconductor_http_connections_open gauge",
        "# TYPE opsconductor_database_connections gauge",
        "# TYPE opsconductor_poll_seconds histogram",
        "# HELP opsconductor_traps_dropped_queue_full ",
    ] {
        assert!(text.contains(family), "no `{family}` in:\n{text}");
    }
    assert!(text.ends_with("# EOF\n"));
    rt.stop().await;
}

both_databases!(metrics_e2e, metrics_need_a_credential_and_show_every_family);
