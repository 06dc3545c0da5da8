//! What the event bus reads and sends through the store, on both databases: alerts rendered for
//! events, and the channel between nodes (PostgreSQL; nothing on SQLite, which has one node).

use super::*;
use crate::alert::StoredAlert;

on_both!(
    summaries_show_alerts_as_stored,
    summaries_of_many_ids_span_several_queries,
    notifications_reach_other_stores_in_order,
);

fn by_id(summaries: Vec<StoredAlert>) -> BTreeMap<i64, StoredAlert> {
    summaries.into_iter().map(|s| (s.id, s)).collect()
}

async fn summaries_show_alerts_as_stored(db: TestDb) {
    let store = &db.store;
    install(store, ADDON).await;
    let at = t0();
    let outcomes = store
        .apply_batch(&[
            AlertAction::Raise(new_alert(ADDON, "fp-1", at)),
            AlertAction::Raise(new_alert(ADDON, "fp-2", at)),
            AlertAction::Raise(new_alert(ADDON, "fp-2", at + Duration::seconds(5))),
        ])
        .await
        .unwrap();
    let [
        ActionOutcome::Created { alert_id: one },
        ActionOutcome::Created { alert_id: two },
        ActionOutcome::Updated { .. },
    ] = outcomes[..]
    else {
        panic!("{outcomes:?}");
    };
    store
        .apply_batch(&[AlertAction::Clear(ClearAlert {
            addon_id: ADDON.to_owned(),
            fingerprint: "fp-1".to_owned(),
            alert_type: "linkDown".to_owned(),
            cleared_by: "linkUp".to_owned(),
            received_at: at + Duration::seconds(9),
        })])
        .await
        .unwrap();

    // An id that does not exist is left out, not an error.
    let summaries = by_id(store.alerts_for_events(&[one, two, 999_999]).await.unwrap());
    assert_eq!(summaries.len(), 2, "{summaries:?}");
    let resolved = &summaries[&one];
    assert_eq!(resolved.status, AlertStatus::Resolved);
    assert_eq!(resolved.resolved_by.as_deref(), Some("clear:linkUp"));
    assert_eq!(
        resolved.resolved_at,
        Some(ts(at + Duration::seconds(9))),
        "{resolved:?}"
    );
    let open = &summaries[&two];
    let stored = store.get_alert(two).await.unwrap().unwrap();
    assert_eq!(
        open,
        &StoredAlert {
            id: two,
            addon_id: ADDON.to_owned(),
            fingerprint: "fp-2".to_owned(),
            alert_type: "linkDown".to_owned(),
            severity: Severity::Major,
            status: AlertStatus::Active,
            category: "network".to_owned(),
            device_ip: Some("10.0.0.1".to_owned()),
            device_name: Some("core-sw-1".to_owned()),
            title: "link down (fp-2)".to_owned(),
            message: stored.message.clone(),
            fields: stored.fields.clone(),
            occurrence_count: 2,
            occurred_at: stored.occurred_at,
            first_seen_at: stored.first_seen_at,
            last_seen_at: ts(at + Duration::seconds(5)),
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolved_by: None,
        }
    );
    assert!(store.alerts_for_events(&[]).await.unwrap().is_empty());
}

async fn summaries_of_many_ids_span_several_queries(db: TestDb) {
    let store = &db.store;
    install(store, ADDON).await;
    let actions: Vec<AlertAction> = (0..2_500)
        .map(|i| AlertAction::Raise(new_alert(ADDON, &format!("fp-{i}"), t0())))
        .collect();
    let ids: Vec<i64> = store
        .apply_batch(&actions)
        .await
        .unwrap()
        .into_iter()
        .map(|o| match o {
            ActionOutcome::Created { alert_id } => alert_id,
            other => panic!("{other:?}"),
        })
        .collect();
    let summaries = by_id(store.alerts_for_events(&ids).await.unwrap());
    assert_eq!(summaries.len(), ids.len());
    assert!(ids.iter().all(|id| summaries.contains_key(id)));
}

async fn notifications_reach_other_stores_in_order(db: TestDb) {
    let store = &db.store;
    let other = Store::connect(&db.url, crate::testing::secret_keys())
        .await
        .unwrap();
    let listener = other.listen_events().await.unwrap();
    let sent: Vec<String> = (0..50).map(|i| format!("{{\"n\":{i}}}")).collect();
    match store.kind() {
        DatabaseKind::Sqlite => {
            // One node: nothing to listen to, and sending is a no-op rather than an error.
            assert!(listener.is_none());
            store.notify_events(&sent).await.unwrap();
        }
        DatabaseKind::Postgres => {
            let mut listener = listener.expect("postgres listens");
            store.notify_events(&sent[..20]).await.unwrap();
            store.notify_events(&[]).await.unwrap();
            store.notify_events(&sent[20..]).await.unwrap();
            // A payload near the limit passes whole.
            let big = format!("\"{}\"", "x".repeat(crate::bus::MAX_NOTIFY_PAYLOAD - 2));
            store
                .notify_events(std::slice::from_ref(&big))
                .await
                .unwrap();
            let mut received = Vec::new();
            while received.len() < sent.len() + 1 {
                let payload = listener.recv().await.unwrap();
                received.push(payload.expect("the connection stays up"));
            }
            assert_eq!(received[..sent.len()], sent[..]);
            assert_eq!(received[sent.len()], big);
        }
    }
    other.close().await;
}
