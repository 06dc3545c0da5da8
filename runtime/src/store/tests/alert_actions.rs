//! Operators' actions on alerts, alert history, suppression by silences and the REST list's
//! extra filters, on both databases.

use serde_json::Value;

use super::*;
use crate::store::{AlertEventKind, AlertOp, AlertSearch};

on_both!(
    actions_check_status_record_actor_and_history,
    bulk_actions_answer_per_alert,
    notes_are_checked,
    ingest_records_creation_and_clearing_but_not_occurrences,
    history_derives_what_was_not_recorded,
    history_pages_oldest_first,
    retention_deletes_history_with_its_alert,
    silenced_raises_open_suppressed_and_later_occurrences_decide,
    unsilenced_batches_leave_suppression_alone,
    search_by_time_range_and_text,
);

fn conflict(result: Result<crate::store::AlertChange, StoreError>) -> String {
    match result {
        Err(StoreError::Conflict(message)) => message,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn actions_check_status_record_actor_and_history(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let id = created_id(apply_one(&store, raise("fp-1", t0())).await);

    let acked = store
        .act_on_alert(
            id,
            AlertOp::Acknowledge,
            "user:ann",
            Some("  looking  "),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(acked.alert.status, AlertStatus::Acknowledged);
    assert_eq!(acked.alert.acknowledged_by.as_deref(), Some("user:ann"));
    assert_eq!(acked.event.kind, AlertEventKind::Acknowledged);
    assert_eq!(acked.event.actor, "user:ann");
    assert_eq!(acked.event.note.as_deref(), Some("looking"), "trimmed");
    assert_eq!(acked.event.at, acked.alert.acknowledged_at.unwrap());

    let again = store
        .act_on_alert(id, AlertOp::Acknowledge, "user:bob", None, now())
        .await;
    assert_eq!(
        conflict(again),
        format!("alert {id} is already acknowledged by user:ann")
    );

    let unacked = store
        .act_on_alert(id, AlertOp::Unacknowledge, "user:bob", None, now())
        .await
        .unwrap();
    assert_eq!(unacked.alert.status, AlertStatus::Active);
    assert_eq!(unacked.alert.acknowledged_by, None);
    assert_eq!(
        conflict(
            store
                .act_on_alert(id, AlertOp::Unacknowledge, "user:bob", None, now())
                .await
        ),
        format!("alert {id} is not acknowledged (it is active)")
    );

    let resolved = store
        .act_on_alert(
            id,
            AlertOp::Resolve,
            "user:bob",
            Some("fixed the optic"),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(resolved.alert.status, AlertStatus::Resolved);
    assert_eq!(resolved.alert.resolved_by.as_deref(), Some("user:bob"));
    for (op, message) in [
        (AlertOp::Resolve, format!("alert {id} is resolved already")),
        (AlertOp::Acknowledge, format!("alert {id} is resolved")),
        (AlertOp::Unacknowledge, format!("alert {id} is resolved")),
    ] {
        assert_eq!(
            conflict(store.act_on_alert(id, op, "user:bob", None, now()).await),
            message
        );
    }
    // A note is welcome after resolution (a post-mortem), and changes nothing else.
    let noted = store
        .act_on_alert(id, AlertOp::Note, "user:cy", Some("RMA opened"), now())
        .await
        .unwrap();
    assert_eq!(noted.alert, resolved.alert);
    assert_eq!(noted.event.kind, AlertEventKind::Note);

    for op in [
        AlertOp::Acknowledge,
        AlertOp::Unacknowledge,
        AlertOp::Resolve,
        AlertOp::Note,
    ] {
        assert!(
            matches!(
                store
                    .act_on_alert(999_999, op, "user:bob", Some("n"), now())
                    .await,
                Err(StoreError::NotFound)
            ),
            "{op:?}"
        );
    }

    let page = store.alert_history(id, None, 0).await.unwrap().unwrap();
    assert_eq!(page.alert, store.get_alert(id).await.unwrap().unwrap());
    assert_eq!(page.next_after, None);
    let entries: Vec<_> = page
        .items
        .iter()
        .map(|e| (e.kind, e.actor.as_str(), e.note.as_deref()))
        .collect();
    assert_eq!(
        entries,
        [
            (AlertEventKind::Created, "addon:test-addon", None),
            (AlertEventKind::Acknowledged, "user:ann", Some("looking")),
            (AlertEventKind::Unacknowledged, "user:bob", None),
            (
                AlertEventKind::Resolved,
                "user:bob",
                Some("fixed the optic")
            ),
            (AlertEventKind::Note, "user:cy", Some("RMA opened")),
        ]
    );
    assert!(
        page.items
            .iter()
            .all(|e| e.alert_id == id && e.id.is_some())
    );
    assert!(page.items.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(page.items[3], resolved.event);
    assert_eq!(store.alert_history(999_999, None, 0).await.unwrap(), None);
}

async fn bulk_actions_answer_per_alert(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let ids: Vec<i64> = store
        .apply_batch(&[
            raise("fp-1", t0()),
            raise("fp-2", t0()),
            raise("fp-3", t0()),
            raise("fp-4", t0()),
        ])
        .await
        .unwrap()
        .into_iter()
        .map(created_id)
        .collect();
    store
        .act_on_alert(ids[1], AlertOp::Acknowledge, "user:ann", None, now())
        .await
        .unwrap();
    apply_one(&store, clear("fp-3", t0())).await;

    let results = store
        .act_on_alerts(
            &[ids[3], ids[1], ids[2], 999_999, ids[0]],
            AlertOp::Acknowledge,
            "user:bob",
            Some("bulk"),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(results.len(), 5);
    let ok =
        |r: &Result<crate::store::AlertChange, StoreError>| r.as_ref().ok().map(|c| c.alert.id);
    assert_eq!(ok(&results[0]), Some(ids[3]));
    assert!(matches!(&results[1], Err(StoreError::Conflict(m)) if m.contains("user:ann")));
    assert!(matches!(&results[2], Err(StoreError::Conflict(m)) if m.contains("resolved")));
    assert!(matches!(results[3], Err(StoreError::NotFound)));
    assert_eq!(ok(&results[4]), Some(ids[0]));
    for (id, status, by) in [
        (ids[0], AlertStatus::Acknowledged, Some("user:bob")),
        (ids[1], AlertStatus::Acknowledged, Some("user:ann")),
        (ids[2], AlertStatus::Resolved, None),
        (ids[3], AlertStatus::Acknowledged, Some("user:bob")),
    ] {
        let a = alert(&store, id).await;
        assert_eq!(
            (a.status, a.acknowledged_by.as_deref()),
            (status, by),
            "{id}"
        );
    }
    // Refused alerts got no history entry.
    let history = store.alert_history(ids[1], None, 0).await.unwrap().unwrap();
    assert_eq!(
        history.items.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [AlertEventKind::Created, AlertEventKind::Acknowledged]
    );

    let resolved = store
        .act_on_alerts(&ids, AlertOp::Resolve, "user:bob", None, now())
        .await
        .unwrap();
    assert_eq!(
        resolved.iter().map(Result::is_ok).collect::<Vec<_>>(),
        [true, true, false, true]
    );
    assert!(
        store
            .act_on_alerts(&[], AlertOp::Resolve, "user:bob", None, now())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn notes_are_checked(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let id = created_id(apply_one(&store, raise("fp-1", t0())).await);
    for (note, expected) in [
        (None, "note: is required to add a note"),
        (Some("   "), "note: must not be empty"),
    ] {
        match store
            .act_on_alert(id, AlertOp::Note, "user:ann", note, now())
            .await
        {
            Err(StoreError::Invalid(m)) => assert_eq!(m, expected),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
    let long = "x".repeat(crate::store::MAX_NOTE_LEN + 1);
    assert!(matches!(
        store
            .act_on_alert(id, AlertOp::Acknowledge, "user:ann", Some(&long), now())
            .await,
        Err(StoreError::Invalid(m)) if m.contains("longer than")
    ));
    // Nothing happened.
    assert_eq!(alert(&store, id).await.status, AlertStatus::Active);
    let history = store.alert_history(id, None, 0).await.unwrap().unwrap();
    assert_eq!(history.items.len(), 1);

    let unicode = "très bien ✓";
    let noted = store
        .act_on_alert(id, AlertOp::Note, "user:ann", Some(unicode), now())
        .await
        .unwrap();
    assert_eq!(noted.event.note.as_deref(), Some(unicode));
}

async fn ingest_records_creation_and_clearing_but_not_occurrences(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let t = t0();
    let id = created_id(apply_one(&store, raise("fp-1", t)).await);
    for i in 1..=3 {
        apply_one(&store, raise("fp-1", t + Duration::seconds(i))).await;
    }
    apply_one(&store, clear("fp-1", t + Duration::seconds(10))).await;
    let page = store.alert_history(id, None, 0).await.unwrap().unwrap();
    assert_eq!(page.alert.occurrence_count, 4);
    let entries: Vec<_> = page
        .items
        .iter()
        .map(|e| (e.kind, e.actor.as_str(), e.at))
        .collect();
    assert_eq!(
        entries,
        [
            (AlertEventKind::Created, "addon:test-addon", ts(t)),
            (
                AlertEventKind::Resolved,
                "clear:linkUp",
                ts(t + Duration::seconds(10))
            ),
        ]
    );
    assert_eq!(
        page.items[0].details,
        json!({"status": "active"}).as_object().unwrap().clone()
    );
}

/// Removes every recorded history entry of an alert, as if it predated the history table.
async fn forget_history(store: &Store, id: i64) {
    with_pool!(store, write, |pool| {
        sqlx::query("DELETE FROM alert_events WHERE alert_id = $1")
            .bind(id)
            .execute(pool)
            .await
            .unwrap();
    });
}

async fn history_derives_what_was_not_recorded(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let t = t0();
    let id = created_id(apply_one(&store, raise("fp-1", t)).await);
    store
        .act_on_alert(id, AlertOp::Note, "user:ann", Some("seen"), now())
        .await
        .unwrap();
    // The expiry job resolves in bulk, without recording entries.
    let later = t + Duration::hours(2);
    assert_eq!(
        store
            .expire_alerts(ADDON, t + Duration::hours(1), later)
            .await
            .unwrap(),
        1
    );
    let page = store.alert_history(id, None, 0).await.unwrap().unwrap();
    let entries: Vec<_> = page
        .items
        .iter()
        .map(|e| (e.id.is_some(), e.kind, e.actor.as_str()))
        .collect();
    assert_eq!(
        entries,
        [
            (true, AlertEventKind::Created, "addon:test-addon"),
            (true, AlertEventKind::Note, "user:ann"),
            (false, AlertEventKind::Resolved, "system:expiry"),
        ]
    );
    assert_eq!(page.items[2].at, ts(later));

    // An alert from before the history table: its creation is derived from the row.
    let old = created_id(apply_one(&store, raise("fp-2", t)).await);
    forget_history(&store, old).await;
    let page = store.alert_history(old, None, 0).await.unwrap().unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, None);
    assert_eq!(page.items[0].kind, AlertEventKind::Created);
    assert_eq!(page.items[0].at, ts(t));
    assert_eq!(page.items[0].actor, "addon:test-addon");
}

async fn history_pages_oldest_first(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let id = created_id(apply_one(&store, raise("fp-1", t0())).await);
    for i in 0..5 {
        store
            .act_on_alert(
                id,
                AlertOp::Note,
                "user:ann",
                Some(&format!("note {i}")),
                now(),
            )
            .await
            .unwrap();
    }
    let mut notes = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store.alert_history(id, after, 2).await.unwrap().unwrap();
        pages += 1;
        assert!(page.items.len() <= 2);
        notes.extend(
            page.items
                .iter()
                .map(|e| e.note.clone().unwrap_or_default()),
        );
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        notes,
        ["", "note 0", "note 1", "note 2", "note 3", "note 4"]
    );

    // Derived entries take their place in the pages: an unrecorded creation first, an
    // unrecorded resolution last, even when each fills a page alone.
    let old = created_id(apply_one(&store, raise("fp-2", t0())).await);
    forget_history(&store, old).await;
    store
        .act_on_alert(old, AlertOp::Note, "user:ann", Some("only note"), now())
        .await
        .unwrap();
    store
        .expire_alerts(ADDON, t0() + Duration::days(1), t0() + Duration::days(1))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.alert_history(old, after, 1).await.unwrap().unwrap();
        assert_eq!(page.items.len(), 1, "{page:?}");
        seen.push((page.items[0].id.is_some(), page.items[0].kind));
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            (false, AlertEventKind::Created),
            (true, AlertEventKind::Note),
            (false, AlertEventKind::Resolved),
        ]
    );
}

async fn retention_deletes_history_with_its_alert(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let id = created_id(apply_one(&store, raise("fp-1", t0())).await);
    store
        .act_on_alert(id, AlertOp::Resolve, "user:ann", Some("done"), now())
        .await
        .unwrap();
    let kept = created_id(apply_one(&store, raise("fp-2", t0())).await);
    assert_eq!(
        store
            .delete_resolved_before(Utc::now() + Duration::days(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.alert_history(id, None, 0).await.unwrap(), None);
    let remaining: i64 = with_pool!(store, read, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM alert_events")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(remaining, 1, "only the open alert's creation is left");
    assert!(store.alert_history(kept, None, 0).await.unwrap().is_some());
}

async fn silenced_raises_open_suppressed_and_later_occurrences_decide(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let t = t0();
    let at = |s: i64| t + Duration::seconds(s);
    let silenced = |fp: &str, s: i64, silence: Option<i64>| {
        let store = store.clone();
        let action = raise(fp, at(s));
        async move {
            let outcomes = store
                .apply_batch_silenced(&[action], &[silence])
                .await
                .unwrap();
            outcomes[0]
        }
    };

    // Raised under silence 5: stored, suppressed, counted like any other.
    let id = created_id(silenced("fp-1", 0, Some(5)).await);
    assert_eq!(alert(&store, id).await.status, AlertStatus::Suppressed);
    assert_eq!(
        silenced("fp-1", 1, Some(5)).await,
        ActionOutcome::Updated {
            alert_id: id,
            occurrence_count: 2
        }
    );
    // The silence is over: the next occurrence brings it back.
    silenced("fp-1", 2, None).await;
    assert_eq!(alert(&store, id).await.status, AlertStatus::Active);
    silenced("fp-1", 3, None).await;
    // A silence that starts while it is open covers it from its next occurrence.
    silenced("fp-1", 4, Some(6)).await;
    assert_eq!(alert(&store, id).await.status, AlertStatus::Suppressed);
    // An operator's acknowledgement outlasts silences starting and ending.
    store
        .act_on_alert(id, AlertOp::Acknowledge, "user:ann", None, now())
        .await
        .unwrap();
    silenced("fp-1", 5, None).await;
    silenced("fp-1", 6, Some(6)).await;
    let a = alert(&store, id).await;
    assert_eq!(
        (a.status, a.occurrence_count),
        (AlertStatus::Acknowledged, 7)
    );
    // A clear resolves whatever the status.
    store
        .apply_batch_silenced(&[clear("fp-1", at(7))], &[Some(6)])
        .await
        .unwrap();
    assert_eq!(alert(&store, id).await.status, AlertStatus::Resolved);

    let page = store.alert_history(id, None, 0).await.unwrap().unwrap();
    let entries: Vec<_> = page
        .items
        .iter()
        .map(|e| {
            (
                e.kind,
                e.actor.as_str(),
                e.at,
                Value::Object(e.details.clone()),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (
                AlertEventKind::Created,
                "addon:test-addon",
                ts(at(0)),
                json!({"status": "suppressed", "silence_id": 5})
            ),
            (
                AlertEventKind::Unsuppressed,
                "addon:test-addon",
                ts(at(2)),
                json!({})
            ),
            (
                AlertEventKind::Suppressed,
                "silence:6",
                ts(at(4)),
                json!({"silence_id": 6})
            ),
            (
                AlertEventKind::Acknowledged,
                "user:ann",
                page.items[3].at,
                json!({})
            ),
            (
                AlertEventKind::Resolved,
                "clear:linkUp",
                ts(at(7)),
                json!({})
            ),
        ]
    );

    // One decision per action, or nothing is applied.
    let error = store
        .apply_batch_silenced(&[raise("fp-2", t), raise("fp-3", t)], &[None])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Invalid(m) if m == "1 silence decisions for 2 alert actions"),
        "{error:?}"
    );
    assert_eq!(
        store
            .list_alerts(&AlertFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn unsilenced_batches_leave_suppression_alone(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let id = created_id(
        store
            .apply_batch_silenced(&[raise("fp-1", t0())], &[Some(1)])
            .await
            .unwrap()[0],
    );
    // `apply_batch` does not consult silences, so it has no say on suppression.
    apply_one(&store, raise("fp-1", t0() + Duration::seconds(1))).await;
    let a = alert(&store, id).await;
    assert_eq!((a.status, a.occurrence_count), (AlertStatus::Suppressed, 2));
    // Acknowledging a suppressed alert is allowed: someone is on it after all.
    let acked = store
        .act_on_alert(id, AlertOp::Acknowledge, "user:ann", None, now())
        .await
        .unwrap();
    assert_eq!(acked.alert.status, AlertStatus::Acknowledged);
}

async fn search_by_time_range_and_text(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let t = t0();
    let texts = [
        ("Link DOWN on ge-0/0/1", "optic failure"),
        ("BGP session flap", "peer 192.0.2.7 reset the session"),
        ("Disk 95% full", "volume /var"),
        ("Fan tray", "fan_speed below threshold"),
        ("Power supply", "PSU 2 lost input; Link to UPS down"),
    ];
    let mut ids = Vec::new();
    for (i, (title, message)) in texts.iter().enumerate() {
        let mut a = new_alert(ADDON, &format!("fp-{i}"), t + Duration::minutes(i as i64));
        a.title = (*title).to_owned();
        a.message = (*message).to_owned();
        ids.push(created_id(apply_one(&store, AlertAction::Raise(a)).await));
    }
    let search = |since: Option<i64>, until: Option<i64>, text: Option<&str>| {
        let store = store.clone();
        let search = AlertSearch {
            filter: AlertFilter::default(),
            since: since.map(|m| t + Duration::minutes(m)),
            until: until.map(|m| t + Duration::minutes(m)),
            text: text.map(str::to_owned),
        };
        async move {
            store
                .search_alerts(&search)
                .await
                .unwrap()
                .into_iter()
                .map(|a| a.id)
                .collect::<Vec<_>>()
        }
    };
    let pick = |idx: &[usize]| idx.iter().map(|&i| ids[i]).collect::<Vec<_>>();

    assert_eq!(search(None, None, None).await, pick(&[4, 3, 2, 1, 0]));
    // `since` includes, `until` excludes, both on last_seen_at.
    assert_eq!(search(Some(1), None, None).await, pick(&[4, 3, 2, 1]));
    assert_eq!(search(None, Some(1), None).await, pick(&[0]));
    assert_eq!(search(Some(1), Some(3), None).await, pick(&[2, 1]));
    // A later occurrence moves last_seen_at into the range.
    apply_one(&store, raise("fp-0", t + Duration::minutes(10))).await;
    assert_eq!(search(Some(5), None, None).await, pick(&[0]));

    // Text: title or message, ignoring ASCII case; LIKE's wildcards match only themselves.
    assert_eq!(search(None, None, Some("link")).await, pick(&[4, 0]));
    assert_eq!(search(None, None, Some("SESSION")).await, pick(&[1]));
    assert_eq!(search(None, None, Some("95%")).await, pick(&[2]));
    assert_eq!(search(None, None, Some("%")).await, pick(&[2]));
    assert_eq!(search(None, None, Some("fan_s")).await, pick(&[3]));
    assert_eq!(search(None, None, Some("_")).await, pick(&[3]));
    assert_eq!(search(None, None, Some("a\\b")).await, pick(&[]));
    assert_eq!(search(None, None, Some("nothing like it")).await, pick(&[]));
    // With the other filters and the cursor.
    assert_eq!(search(Some(4), Some(5), Some("link")).await, pick(&[4]));
    let page = store
        .search_alerts(&AlertSearch {
            filter: AlertFilter {
                before_id: Some(ids[4]),
                limit: 1,
                ..AlertFilter::default()
            },
            text: Some("link".into()),
            ..AlertSearch::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.into_iter().map(|a| a.id).collect::<Vec<_>>(),
        pick(&[0])
    );
}
