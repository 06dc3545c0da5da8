//! Silences on both databases: create, read, replace, delete with the generation moving in the
//! same transaction; validation naming fields; lists by state with keyset pages; what the
//! writer loads.

use super::*;
use crate::silence::{
    Day, Recurrence, Silence, SilenceMatchers, SilenceSpec, SilenceState, silencing,
};
use crate::store::SilenceFilter;

on_both!(
    silences_roundtrip_and_move_the_generation,
    bad_silences_are_refused_naming_the_field,
    silences_list_by_state_newest_first_in_pages,
    loaded_silences_suppress_matching_alerts,
);

fn spec(starts: DateTime<Utc>, ends: DateTime<Utc>) -> SilenceSpec {
    SilenceSpec {
        matchers: SilenceMatchers {
            addon: Some(ADDON.to_owned()),
            device: Some("2001:DB8::0:1".to_owned()),
            alert_type: Some("linkDown".to_owned()),
            fields: BTreeMap::from([("ifIndex".to_owned(), "7".to_owned())]),
        },
        starts_at: starts,
        ends_at: ends,
        recurrence: Some(Recurrence {
            days: vec![Day::Sun, Day::Sat],
            start: "22:00".parse().unwrap(),
            end: "02:00".parse().unwrap(),
        }),
        comment: " core switch upgrade ".to_owned(),
    }
}

async fn silences_roundtrip_and_move_the_generation(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    assert_eq!(store.silences_generation().await.unwrap(), 0);

    let t = t0();
    let created = store
        .create_silence(spec(t, t + Duration::hours(4)), "user:ann", now())
        .await
        .unwrap();
    assert_eq!(store.silences_generation().await.unwrap(), 1);
    // Stored as normalised: canonical IP, trimmed comment, sorted days, microseconds.
    assert_eq!(created.matchers.device.as_deref(), Some("2001:db8::1"));
    assert_eq!(created.comment, "core switch upgrade");
    assert_eq!(
        created.recurrence.as_ref().unwrap().days,
        [Day::Sat, Day::Sun]
    );
    assert_eq!(created.starts_at, ts(t));
    assert_eq!(created.created_by, "user:ann");
    assert_eq!(
        store.silence(created.id).await.unwrap().as_ref(),
        Some(&created)
    );

    let mut changed = spec(t, t + Duration::hours(8));
    changed.matchers = SilenceMatchers {
        device: Some("edge-1".to_owned()),
        ..SilenceMatchers::default()
    };
    changed.recurrence = None;
    changed.comment = "extended".to_owned();
    let updated = store
        .update_silence(created.id, changed, now())
        .await
        .unwrap();
    assert_eq!(store.silences_generation().await.unwrap(), 2);
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.matchers.addon, None);
    assert_eq!(updated.matchers.fields, BTreeMap::new());
    assert_eq!(updated.recurrence, None);
    assert_eq!(updated.ends_at, ts(t + Duration::hours(8)));
    assert_eq!(
        (updated.created_by.as_str(), updated.created_at),
        ("user:ann", created.created_at),
        "who created it stays"
    );
    assert!(updated.updated_at >= created.updated_at);
    assert_eq!(store.silence(created.id).await.unwrap(), Some(updated));

    store.delete_silence(created.id, now()).await.unwrap();
    assert_eq!(store.silences_generation().await.unwrap(), 3);
    assert_eq!(store.silence(created.id).await.unwrap(), None);
    // Missing silences change nothing, the generation included.
    assert!(matches!(
        store.delete_silence(created.id, now()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .update_silence(created.id, spec(t, t + Duration::hours(1)), now())
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.silences_generation().await.unwrap(), 3);
}

async fn bad_silences_are_refused_naming_the_field(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let t = t0();
    type Edit = fn(&mut SilenceSpec);
    let cases: &[(Edit, &str)] = &[
        (
            |s| s.matchers.addon = Some("not-installed".into()),
            "silence field `matchers.addon`: no addon `not-installed` is installed",
        ),
        (
            |s| s.matchers = SilenceMatchers::default(),
            "silence field `matchers`: needs at least one",
        ),
        (
            |s| s.ends_at = s.starts_at - Duration::seconds(1),
            "silence field `ends_at`: must be after `starts_at`",
        ),
        // Apart by less than the microsecond the store keeps.
        (
            |s| {
                s.starts_at = t0().trunc_subsecs(6);
                s.ends_at = s.starts_at + Duration::nanoseconds(500);
            },
            "silence field `ends_at`: must be after `starts_at`",
        ),
        (
            |s| s.comment = String::new(),
            "silence field `comment`: must say why",
        ),
    ];
    for (edit, expected) in cases {
        let mut bad = spec(t, t + Duration::hours(1));
        edit(&mut bad);
        match store.create_silence(bad.clone(), "user:ann", now()).await {
            Err(StoreError::Invalid(m)) => assert!(m.starts_with(expected), "{m}"),
            other => panic!("expected Invalid({expected}), got {other:?}"),
        }
        let id = store
            .create_silence(spec(t, t + Duration::hours(1)), "user:ann", now())
            .await
            .unwrap()
            .id;
        let generation = store.silences_generation().await.unwrap();
        match store.update_silence(id, bad, now()).await {
            Err(StoreError::Invalid(m)) => assert!(m.starts_with(expected), "{m}"),
            other => panic!("expected Invalid({expected}), got {other:?}"),
        }
        assert_eq!(store.silences_generation().await.unwrap(), generation);
    }
}

async fn silences_list_by_state_newest_first_in_pages(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let t = t0();
    let hours = Duration::hours;
    let create = async |starts: Duration, ends: Duration| {
        store
            .create_silence(spec(t + starts, t + ends), "user:ann", now())
            .await
            .unwrap()
            .id
    };
    let expired = create(hours(-3), hours(-1)).await;
    let active = create(hours(-1), hours(1)).await;
    let pending = create(hours(1), hours(2)).await;
    let active_from_now = create(hours(0), hours(1)).await;
    let ended_now = create(hours(-1), hours(0)).await;

    let list = |state: Option<SilenceState>, before_id: Option<i64>, limit: u32| {
        let store = store.clone();
        async move {
            store
                .list_silences(&SilenceFilter {
                    state,
                    at: t,
                    before_id,
                    limit,
                })
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(None, None, 0).await,
        [ended_now, active_from_now, pending, active, expired]
    );
    assert_eq!(
        list(Some(SilenceState::Active), None, 0).await,
        [active_from_now, active],
        "starts_at included, ends_at excluded"
    );
    assert_eq!(list(Some(SilenceState::Pending), None, 0).await, [pending]);
    assert_eq!(
        list(Some(SilenceState::Expired), None, 0).await,
        [ended_now, expired]
    );
    assert_eq!(list(None, None, 2).await, [ended_now, active_from_now]);
    assert_eq!(
        list(None, Some(active_from_now), 2).await,
        [pending, active]
    );
    assert_eq!(
        list(Some(SilenceState::Expired), Some(ended_now), 2).await,
        [expired]
    );

    // What the writer loads: not yet ended, oldest first.
    let loaded: Vec<i64> = store
        .silences_ending_after(t)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(loaded, [active, pending, active_from_now]);
}

async fn loaded_silences_suppress_matching_alerts(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    // 2025-03-01 is a Saturday; the spec's window is Sat/Sun 22:00–02:00.
    let saturday = Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap();
    let silence = store
        .create_silence(
            spec(saturday, saturday + Duration::days(2)),
            "user:ann",
            now(),
        )
        .await
        .unwrap();
    let loaded: Vec<Silence> = store.silences_ending_after(saturday).await.unwrap();

    let mut alert = new_alert(ADDON, "fp-1", saturday);
    alert.device_ip = Some("2001:db8::1".to_owned());
    let cases = [
        (saturday + Duration::hours(21), None),
        (saturday + Duration::hours(23), Some(silence.id)),
        (saturday + Duration::hours(25), Some(silence.id)),
        (saturday + Duration::hours(27), None),
        (saturday + Duration::hours(47), Some(silence.id)),
        (saturday + Duration::hours(49), None),
    ];
    for (at, expected) in cases {
        assert_eq!(silencing(&alert, &loaded, at), expected, "{at}");
    }
    let mut other_port = alert.clone();
    other_port
        .fields
        .insert("ifIndex".to_owned(), "8".to_owned());
    assert_eq!(
        silencing(&other_port, &loaded, saturday + Duration::hours(23)),
        None
    );
}
