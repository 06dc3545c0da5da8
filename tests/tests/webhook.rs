//! End to end over real HTTP, on SQLite and PostgreSQL: a webhook becomes a deduplicated
//! alert, a resolved notification resolves it, a recurrence opens a new one, and concurrent
//! senders of the same alert end up as exactly one row.

use opsconductor_tests::{Db, TestRuntime, both_databases, bundle, fixture};
use serde_json::Value;

/// The Alertmanager fixture with every alert's status set to `status`.
fn alertmanager_payload(status: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture("alertmanager", "firing")).unwrap();
    v["status"] = status.into();
    for alert in v["alerts"].as_array_mut().unwrap() {
        alert["status"] = status.into();
    }
    serde_json::to_vec(&v).unwrap()
}

async fn dedupe_resolve_and_recur(db: Db) {
    let rt = TestRuntime::start(db, &[bundle("alertmanager")]).await;
    let firing = alertmanager_payload("firing");
    let n_alerts = serde_json::from_slice::<Value>(&firing).unwrap()["alerts"]
        .as_array()
        .unwrap()
        .len();

    for round in 1..=3 {
        let (status, answer) = rt.post_webhook("alertmanager", firing.clone()).await;
        assert_eq!(status, 200, "round {round}: {answer}");
        let expected = if round == 1 { "created" } else { "updated" };
        for outcome in answer["outcomes"].as_array().unwrap() {
            assert_eq!(outcome["outcome"], expected, "round {round}: {answer}");
        }
    }
    let open = rt.alerts("?addon=alertmanager&status=active").await;
    assert_eq!(open.len(), n_alerts, "{open:?}");
    for alert in &open {
        assert_eq!(alert["occurrence_count"], 3, "{alert}");
    }
    let first_ids: Vec<i64> = open.iter().map(|a| a["id"].as_i64().unwrap()).collect();

    let (status, answer) = rt
        .post_webhook("alertmanager", alertmanager_payload("resolved"))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["outcome"] == "resolved"),
        "{answer}"
    );
    assert!(
        rt.alerts("?addon=alertmanager&status=active")
            .await
            .is_empty()
    );
    let resolved = rt.alerts("?addon=alertmanager&status=resolved").await;
    assert_eq!(resolved.len(), n_alerts);
    for alert in &resolved {
        assert!(alert["resolved_at"].is_string(), "{alert}");
        assert!(
            alert["resolved_by"].as_str().unwrap().starts_with("clear:"),
            "{alert}"
        );
    }

    let (status, answer) = rt.post_webhook("alertmanager", firing.clone()).await;
    assert_eq!(status, 200, "{answer}");
    let reopened = rt.alerts("?addon=alertmanager&status=active").await;
    assert_eq!(reopened.len(), n_alerts);
    for alert in &reopened {
        assert_eq!(
            alert["occurrence_count"], 1,
            "a recurrence is a new alert: {alert}"
        );
        assert!(!first_ids.contains(&alert["id"].as_i64().unwrap()));
    }

    let one = &reopened[0];
    let (status, got) = rt.get_json(&format!("/api/v1/alerts/{}", one["id"])).await;
    assert_eq!((status, &got), (200, one));
    rt.stop().await;
}
both_databases!(dedupe_resolve_and_recur_e2e, dedupe_resolve_and_recur);

async fn concurrent_senders_make_one_alert(db: Db) {
    let rt = std::sync::Arc::new(TestRuntime::start(db, &[bundle("alertmanager")]).await);
    let body: Value = serde_json::from_slice(&alertmanager_payload("firing")).unwrap();
    let mut single = body.clone();
    single["alerts"] = Value::Array(vec![body["alerts"][0].clone()]);
    let single = serde_json::to_vec(&single).unwrap();

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let rt = rt.clone();
        let single = single.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..100 {
                let (status, answer) = rt.post_webhook("alertmanager", single.clone()).await;
                assert_eq!(status, 200, "{answer}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let open = rt.alerts("?addon=alertmanager").await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["occurrence_count"], 800);
    assert_eq!(open[0]["status"], "active");
    let rt = std::sync::Arc::into_inner(rt).expect("all tasks done");
    rt.stop().await;
}
both_databases!(concurrent_senders_e2e, concurrent_senders_make_one_alert);
