//! Store tests. Every case runs twice, on a SQLite file in a temporary directory and on a fresh
//! PostgreSQL database, because "same behaviour on both" is the store's contract.

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::alert::{
    ActionOutcome, AlertAction, AlertFilter, AlertStatus, ClearAlert, NewAlert, Severity,
};
use crate::testing::{Db, TestPostgres, sqlite_url};

/// The current time as the store records it (truncated to microseconds, see `ts`).
fn now() -> DateTime<Utc> {
    ts(Utc::now())
}

/// What a case gets: a connected store, and the URL it came from for cases that open a second
/// store on the same database.
struct TestDb {
    store: Store,
    url: String,
}

async fn on_sqlite<F, Fut>(case: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    // A subdirectory that does not exist yet: connect must create it.
    let url = sqlite_url(&dir.path().join("data")).await;
    let store = Store::connect(&url, crate::testing::secret_keys())
        .await
        .unwrap();
    assert_eq!(store.kind(), DatabaseKind::Sqlite);
    case(TestDb {
        store: store.clone(),
        url,
    })
    .await;
    store.close().await;
}

async fn on_postgres<F, Fut>(case: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let pg = TestPostgres::create()
        .await
        .unwrap_or_else(|error| panic!("{error:#}"));
    let store = Store::connect(&pg.url, crate::testing::secret_keys())
        .await
        .unwrap();
    assert_eq!(store.kind(), DatabaseKind::Postgres);
    case(TestDb {
        store: store.clone(),
        url: pg.url.clone(),
    })
    .await;
    store.close().await;
    pg.drop().await;
}

/// Connects a store on `db` and runs `case` on it: the runner of [`on_both!`].
async fn on_database<F, Fut>(db: Db, case: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    match db {
        Db::Sqlite => on_sqlite(case).await,
        Db::Postgres => on_postgres(case).await,
    }
}

/// `on_both!(case, ...)`: each case on both databases through [`on_database`] (see
/// [`crate::both_databases!`]), so `cargo test store::tests::<case>` runs both. The case files
/// under `tests/` use it too.
macro_rules! on_both {
    ($($case:ident),+ $(,)?) => {
        crate::both_databases!(via on_database; $($case),+);
    };
}

on_both!(
    settings_roundtrip,
    addon_upsert_list_enable_and_generation,
    addon_state_roundtrip_and_quotas,
    raise_then_duplicate_counts_and_moves_last_seen,
    out_of_order_raise_never_moves_last_seen_back,
    clear_resolves_the_open_alert,
    clear_with_nothing_open_is_unmatched,
    clear_from_another_addon_is_unmatched,
    raise_after_resolve_opens_a_new_alert,
    acknowledged_alert_stays_acknowledged_on_reraise,
    status_changes_record_actor_and_never_reopen,
    same_fingerprint_twice_in_one_batch,
    a_batch_in_one_statement_equals_one_action_at_a_time,
    failed_batch_applies_nothing,
    concurrent_raises_through_one_store_count_every_occurrence,
    concurrent_raises_through_two_stores_count_every_occurrence,
    list_filters_and_keyset_pagination,
    list_limit_is_clamped,
    count_by_status_lists_every_status,
);

const ADDON: &str = "test-addon";
const OTHER_ADDON: &str = "other-addon";

fn addon(id: &str, version: &str, enabled: bool) -> AddonRecord {
    AddonRecord {
        id: id.to_owned(),
        name: format!("{id} name"),
        version: version.to_owned(),
        methods: vec!["webhook".to_owned(), "snmp_trap".to_owned()],
        manifest: json!({ "id": id, "version": version, "nested": { "list": [1, 2, 3] } }),
        wasm: format!("\0asm {id} {version}").into_bytes(),
        wasm_sha256: format!("sha-{id}-{version}"),
        enabled,
    }
}

async fn install(store: &Store, id: &str) {
    store
        .upsert_addon(&addon(id, "1.0.0", true), now())
        .await
        .unwrap();
}

/// A fixed instant with nanoseconds, so that tests also cover truncation to microseconds.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap() + Duration::nanoseconds(123_456_789)
}

fn new_alert(addon_id: &str, fingerprint: &str, at: DateTime<Utc>) -> NewAlert {
    NewAlert {
        addon_id: addon_id.to_owned(),
        fingerprint: fingerprint.to_owned(),
        alert_type: "linkDown".to_owned(),
        device_ip: Some("10.0.0.1".to_owned()),
        device_name: Some("core-sw-1".to_owned()),
        severity: Severity::Major,
        category: "network".to_owned(),
        title: format!("link down ({fingerprint})"),
        message: "interface ge-0/0/1 went down".to_owned(),
        fields: BTreeMap::from([("ifIndex".to_owned(), "7".to_owned())]),
        occurred_at: at - Duration::seconds(2),
        received_at: at,
    }
}

fn raise(fingerprint: &str, at: DateTime<Utc>) -> AlertAction {
    AlertAction::Raise(new_alert(ADDON, fingerprint, at))
}

fn clear_by(addon_id: &str, fingerprint: &str, at: DateTime<Utc>) -> AlertAction {
    AlertAction::Clear(ClearAlert {
        addon_id: addon_id.to_owned(),
        fingerprint: fingerprint.to_owned(),
        alert_type: "linkDown".to_owned(),
        cleared_by: "linkUp".to_owned(),
        received_at: at,
    })
}

fn clear(fingerprint: &str, at: DateTime<Utc>) -> AlertAction {
    clear_by(ADDON, fingerprint, at)
}

fn created_id(outcome: ActionOutcome) -> i64 {
    match outcome {
        ActionOutcome::Created { alert_id } => alert_id,
        other => panic!("expected Created, got {other:?}"),
    }
}

async fn apply_one(store: &Store, action: AlertAction) -> ActionOutcome {
    let outcomes = store.apply_batch(&[action]).await.unwrap();
    assert_eq!(outcomes.len(), 1);
    outcomes[0]
}

async fn alert(store: &Store, id: i64) -> crate::alert::StoredAlert {
    store.get_alert(id).await.unwrap().expect("alert exists")
}

async fn settings_roundtrip(db: TestDb) {
    let store = db.store;
    assert_eq!(store.get_setting("ui.title").await.unwrap(), None);
    store.set_setting("ui.title", "NOC", now()).await.unwrap();
    assert_eq!(
        store.get_setting("ui.title").await.unwrap().as_deref(),
        Some("NOC")
    );
    store
        .set_setting("ui.title", "Network Operations", now())
        .await
        .unwrap();
    assert_eq!(
        store.get_setting("ui.title").await.unwrap().as_deref(),
        Some("Network Operations")
    );
    // Unicode and the empty string survive unchanged.
    store.set_setting("empty", "", now()).await.unwrap();
    store
        .set_setting("unicode", "größe ✓", now())
        .await
        .unwrap();
    assert_eq!(
        store.get_setting("empty").await.unwrap().as_deref(),
        Some("")
    );
    assert_eq!(
        store.get_setting("unicode").await.unwrap().as_deref(),
        Some("größe ✓")
    );
    store.ping().await.unwrap();
}

async fn addon_upsert_list_enable_and_generation(db: TestDb) {
    let store = db.store;
    assert_eq!(store.addons_generation().await.unwrap(), 0);
    assert!(store.list_addons().await.unwrap().is_empty());

    let installed = now();
    let first = addon("siklu", "1.0.0", true);
    store.upsert_addon(&first, installed).await.unwrap();
    store
        .upsert_addon(&addon("alertmanager", "2.1.0", false), installed)
        .await
        .unwrap();
    assert_eq!(store.addons_generation().await.unwrap(), 2);

    let listed = store.list_addons().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["alertmanager", "siklu"], "listed by id");
    let siklu = &listed[1];
    assert_eq!(siklu.name, first.name);
    assert_eq!(siklu.version, "1.0.0");
    assert_eq!(siklu.methods, first.methods);
    assert_eq!(siklu.manifest, first.manifest);
    assert_eq!(siklu.wasm_sha256, first.wasm_sha256);
    assert!(siklu.enabled);
    assert!(!listed[0].enabled);
    assert_eq!(siklu.installed_at, siklu.updated_at);
    assert_eq!(
        store.addon_wasm("siklu").await.unwrap(),
        Some(first.wasm.clone())
    );
    assert_eq!(store.addon_wasm("missing").await.unwrap(), None);

    // An upgrade replaces everything but the first install time.
    let upgrade = AddonRecord {
        methods: vec!["snmp_poll".to_owned()],
        ..addon("siklu", "1.1.0", false)
    };
    let upgraded_at = installed + chrono::Duration::milliseconds(5);
    store.upsert_addon(&upgrade, upgraded_at).await.unwrap();
    assert_eq!(store.addons_generation().await.unwrap(), 3);
    let listed = store.list_addons().await.unwrap();
    let upgraded = listed.iter().find(|a| a.id == "siklu").unwrap();
    assert_eq!(upgraded.version, "1.1.0");
    assert_eq!(upgraded.methods, ["snmp_poll"]);
    assert_eq!(upgraded.manifest, upgrade.manifest);
    assert!(!upgraded.enabled);
    assert_eq!(upgraded.installed_at, siklu.installed_at);
    assert_eq!(upgraded.updated_at, upgraded_at.trunc_subsecs(6));
    assert_eq!(store.addon_wasm("siklu").await.unwrap(), Some(upgrade.wasm));

    store.set_addon_enabled("siklu", true, now()).await.unwrap();
    assert_eq!(store.addons_generation().await.unwrap(), 4);
    let listed = store.list_addons().await.unwrap();
    assert!(listed.iter().find(|a| a.id == "siklu").unwrap().enabled);
    store
        .set_addon_enabled("siklu", false, now())
        .await
        .unwrap();
    assert_eq!(store.addons_generation().await.unwrap(), 5);

    // An unknown addon changes nothing, the generation included.
    assert!(matches!(
        store.set_addon_enabled("missing", true, now()).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.addons_generation().await.unwrap(), 5);
}

/// Inserts `n` state keys (`fill-0` …) for an addon in one transaction: reaching the key quota
/// through `state_set` would cost one commit, and one fsync, per key.
async fn fill_state(store: &Store, addon_id: &str, n: usize) {
    with_pool!(store, write, |pool| {
        let mut tx = pool.begin().await.unwrap();
        for i in 0..n {
            sqlx::query(
                "INSERT INTO addon_state (addon_id, key, value, updated_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(addon_id)
            .bind(format!("fill-{i}"))
            .bind(vec![1u8])
            .bind(now())
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    });
}

async fn addon_state_roundtrip_and_quotas(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    install(&store, OTHER_ADDON).await;

    assert_eq!(store.state_get(ADDON, "cursor").await.unwrap(), None);
    store
        .state_set(ADDON, "cursor", b"42", now())
        .await
        .unwrap();
    store
        .state_set(OTHER_ADDON, "cursor", b"other", now())
        .await
        .unwrap();
    assert_eq!(
        store.state_get(ADDON, "cursor").await.unwrap(),
        Some(b"42".to_vec())
    );
    store
        .state_set(ADDON, "cursor", &[0, 255, 0], now())
        .await
        .unwrap();
    assert_eq!(
        store.state_get(ADDON, "cursor").await.unwrap(),
        Some(vec![0, 255, 0])
    );
    // State is per addon.
    assert_eq!(
        store.state_get(OTHER_ADDON, "cursor").await.unwrap(),
        Some(b"other".to_vec())
    );
    store.state_delete(ADDON, "cursor").await.unwrap();
    assert_eq!(store.state_get(ADDON, "cursor").await.unwrap(), None);
    store.state_delete(ADDON, "cursor").await.unwrap();

    // Size limits: exactly at the limit is allowed, one byte over is not.
    let max_key = "k".repeat(STATE_MAX_KEY_BYTES);
    store.state_set(ADDON, &max_key, b"v", now()).await.unwrap();
    let err = store
        .state_set(ADDON, &format!("{max_key}k"), b"v", now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Quota(m) if m.contains("key") && m.contains("256")),
        "{err}"
    );
    store
        .state_set(ADDON, "big", &vec![7; STATE_MAX_VALUE_BYTES], now())
        .await
        .unwrap();
    assert_eq!(
        store
            .state_get(ADDON, "big")
            .await
            .unwrap()
            .map(|v| v.len()),
        Some(STATE_MAX_VALUE_BYTES)
    );
    let err = store
        .state_set(ADDON, "big", &vec![7; STATE_MAX_VALUE_BYTES + 1], now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Quota(m) if m.contains("value") && m.contains("65536")),
        "{err}"
    );
    store.state_delete(ADDON, &max_key).await.unwrap();
    store.state_delete(ADDON, "big").await.unwrap();

    // The key count: room for exactly STATE_MAX_KEYS.
    fill_state(&store, ADDON, STATE_MAX_KEYS as usize - 1).await;
    store
        .state_set(ADDON, "last", b"fits", now())
        .await
        .unwrap();
    let err = store
        .state_set(ADDON, "one-too-many", b"x", now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Quota(m) if m.contains("1024")),
        "{err}"
    );
    assert_eq!(store.state_get(ADDON, "one-too-many").await.unwrap(), None);
    // Overwriting an existing key at full quota is fine, and deleting makes room again.
    store
        .state_set(ADDON, "last", b"overwritten", now())
        .await
        .unwrap();
    store.state_delete(ADDON, "fill-0").await.unwrap();
    store
        .state_set(ADDON, "one-too-many", b"now fits", now())
        .await
        .unwrap();
    // Another addon's quota is its own.
    store
        .state_set(OTHER_ADDON, "new", b"x", now())
        .await
        .unwrap();

    assert!(matches!(
        store.state_set("not-installed", "k", b"v", now()).await,
        Err(StoreError::NotFound)
    ));
}

async fn raise_then_duplicate_counts_and_moves_last_seen(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let t0 = t0();
    let id = created_id(apply_one(&store, raise("fp-1", t0)).await);
    let first = alert(&store, id).await;
    assert_eq!(first.status, AlertStatus::Active);
    assert_eq!(first.occurrence_count, 1);
    // Stored to the microsecond, identically on both backends.
    let t0_micros = t0 - Duration::nanoseconds(789);
    assert_eq!(first.first_seen_at, t0_micros);
    assert_eq!(first.last_seen_at, t0_micros);
    assert_eq!(first.occurred_at, t0_micros - Duration::seconds(2));
    assert_eq!(first.fields.get("ifIndex").map(String::as_str), Some("7"));
    assert_eq!(first.device_ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(first.device_name.as_deref(), Some("core-sw-1"));
    assert_eq!(first.acknowledged_at, None);
    assert_eq!(first.resolved_at, None);

    // The duplicate carries newer text, which replaces the old; first-seen times stay.
    let t1 = t0 + Duration::milliseconds(1500);
    let t1_micros = t1 - Duration::nanoseconds(789);
    let mut again = new_alert(ADDON, "fp-1", t1);
    again.severity = Severity::Critical;
    again.title = "link down again".to_owned();
    again.message = "still down".to_owned();
    again.fields.insert("reason".to_owned(), "flap".to_owned());
    assert_eq!(
        apply_one(&store, AlertAction::Raise(again)).await,
        ActionOutcome::Updated {
            alert_id: id,
            occurrence_count: 2
        }
    );
    let second = alert(&store, id).await;
    assert_eq!(second.occurrence_count, 2);
    assert_eq!(second.last_seen_at, t1_micros);
    assert_eq!(second.first_seen_at, first.first_seen_at);
    assert_eq!(second.occurred_at, first.occurred_at);
    assert_eq!(second.severity, Severity::Critical);
    assert_eq!(second.title, "link down again");
    assert_eq!(second.message, "still down");
    assert_eq!(
        second.fields.get("reason").map(String::as_str),
        Some("flap")
    );
    assert_eq!(second.status, AlertStatus::Active);
}

async fn out_of_order_raise_never_moves_last_seen_back(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    // Whole seconds, then milliseconds, then microseconds: on SQLite these are stored as text
    // with 0, 3 and 6 fractional digits, and must still compare as instants.
    let base = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
    let id = created_id(apply_one(&store, raise("fp-1", base)).await);
    let later = base + Duration::microseconds(500_001);
    apply_one(&store, raise("fp-1", later)).await;
    assert_eq!(alert(&store, id).await.last_seen_at, later);
    for earlier in [
        base + Duration::milliseconds(500),
        base + Duration::microseconds(499_999),
        base,
        base - Duration::seconds(30),
    ] {
        apply_one(&store, raise("fp-1", earlier)).await;
        assert_eq!(
            alert(&store, id).await.last_seen_at,
            later,
            "after {earlier}"
        );
    }
    let latest = base + Duration::seconds(1);
    apply_one(&store, raise("fp-1", latest)).await;
    let stored = alert(&store, id).await;
    assert_eq!(stored.last_seen_at, latest);
    assert_eq!(stored.occurrence_count, 7);
}

async fn clear_resolves_the_open_alert(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let id = created_id(apply_one(&store, raise("fp-1", t0())).await);
    let at = t0() + Duration::seconds(60);
    assert_eq!(
        apply_one(&store, clear("fp-1", at)).await,
        ActionOutcome::Resolved { alert_id: id }
    );
    let resolved = alert(&store, id).await;
    assert_eq!(resolved.status, AlertStatus::Resolved);
    assert_eq!(resolved.resolved_by.as_deref(), Some("clear:linkUp"));
    assert_eq!(resolved.resolved_at, Some(at - Duration::nanoseconds(789)));
    assert_eq!(resolved.occurrence_count, 1);
    // A second clear finds nothing open.
    assert_eq!(
        apply_one(&store, clear("fp-1", at)).await,
        ActionOutcome::ClearUnmatched
    );
}

async fn clear_with_nothing_open_is_unmatched(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    assert_eq!(
        apply_one(&store, clear("never-raised", t0())).await,
        ActionOutcome::ClearUnmatched
    );
    assert!(
        store
            .list_alerts(&AlertFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn clear_from_another_addon_is_unmatched(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    install(&store, OTHER_ADDON).await;
    let id = created_id(apply_one(&store, raise("fp-1", t0())).await);
    assert_eq!(
        apply_one(&store, clear_by(OTHER_ADDON, "fp-1", t0())).await,
        ActionOutcome::ClearUnmatched
    );
    assert_eq!(alert(&store, id).await.status, AlertStatus::Active);
}

async fn raise_after_resolve_opens_a_new_alert(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let first = created_id(apply_one(&store, raise("fp-1", t0())).await);
    apply_one(&store, clear("fp-1", t0() + Duration::seconds(1))).await;
    let second = created_id(apply_one(&store, raise("fp-1", t0() + Duration::seconds(2))).await);
    assert!(second > first);
    assert_eq!(alert(&store, first).await.status, AlertStatus::Resolved);
    let reopened = alert(&store, second).await;
    assert_eq!(reopened.status, AlertStatus::Active);
    assert_eq!(reopened.occurrence_count, 1);
    // The new alert, not the resolved one, takes the next duplicate.
    assert_eq!(
        apply_one(&store, raise("fp-1", t0() + Duration::seconds(3))).await,
        ActionOutcome::Updated {
            alert_id: second,
            occurrence_count: 2
        }
    );
}

async fn acknowledged_alert_stays_acknowledged_on_reraise(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let id = created_id(apply_one(&store, raise("fp-1", t0())).await);
    let acked = store
        .set_alert_status(id, AlertStatus::Acknowledged, "user:alice", now())
        .await
        .unwrap();
    assert_eq!(acked.status, AlertStatus::Acknowledged);
    assert_eq!(
        apply_one(&store, raise("fp-1", t0() + Duration::seconds(5))).await,
        ActionOutcome::Updated {
            alert_id: id,
            occurrence_count: 2
        }
    );
    let after = alert(&store, id).await;
    assert_eq!(after.status, AlertStatus::Acknowledged);
    assert_eq!(after.acknowledged_by.as_deref(), Some("user:alice"));
    assert_eq!(after.acknowledged_at, acked.acknowledged_at);

    // Suppressed alerts likewise stay suppressed, and a clear still resolves them.
    store
        .set_alert_status(id, AlertStatus::Suppressed, "user:alice", now())
        .await
        .unwrap();
    apply_one(&store, raise("fp-1", t0() + Duration::seconds(6))).await;
    assert_eq!(alert(&store, id).await.status, AlertStatus::Suppressed);
    assert_eq!(
        apply_one(&store, clear("fp-1", t0() + Duration::seconds(7))).await,
        ActionOutcome::Resolved { alert_id: id }
    );
}

async fn status_changes_record_actor_and_never_reopen(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let id = created_id(apply_one(&store, raise("fp-1", t0())).await);

    let acked = store
        .set_alert_status(id, AlertStatus::Acknowledged, "user:bob", now())
        .await
        .unwrap();
    assert_eq!(acked.acknowledged_by.as_deref(), Some("user:bob"));
    assert!(acked.acknowledged_at.is_some());
    let unacked = store
        .set_alert_status(id, AlertStatus::Active, "user:bob", now())
        .await
        .unwrap();
    assert_eq!(unacked.status, AlertStatus::Active);
    assert_eq!(unacked.acknowledged_at, None);
    assert_eq!(unacked.acknowledged_by, None);

    let resolved = store
        .set_alert_status(id, AlertStatus::Resolved, "user:bob", now())
        .await
        .unwrap();
    assert_eq!(resolved.status, AlertStatus::Resolved);
    assert_eq!(resolved.resolved_by.as_deref(), Some("user:bob"));
    assert!(resolved.resolved_at.is_some());
    for status in AlertStatus::ALL {
        assert!(
            matches!(
                store.set_alert_status(id, status, "user:bob", now()).await,
                Err(StoreError::NotFound)
            ),
            "{status} on a resolved alert"
        );
    }
    assert!(matches!(
        store
            .set_alert_status(999_999, AlertStatus::Acknowledged, "user:bob", now())
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.get_alert(999_999).await.unwrap(), None);
}

async fn same_fingerprint_twice_in_one_batch(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let t = t0();
    let outcomes = store
        .apply_batch(&[
            raise("fp-1", t),
            raise("fp-1", t + Duration::seconds(1)),
            clear("fp-1", t + Duration::seconds(2)),
            raise("fp-1", t + Duration::seconds(3)),
        ])
        .await
        .unwrap();
    let first = created_id(outcomes[0]);
    assert_eq!(
        outcomes[1..3],
        [
            ActionOutcome::Updated {
                alert_id: first,
                occurrence_count: 2
            },
            ActionOutcome::Resolved { alert_id: first },
        ]
    );
    let second = created_id(outcomes[3]);
    assert_ne!(first, second);
    assert_eq!(outcomes.len(), 4);
    assert!(store.apply_batch(&[]).await.unwrap().is_empty());
}

/// Runs of raises with different fingerprints go to the database as one statement (see
/// `store/alerts/batch.rs`); the same actions applied one per batch take the one-row statement.
/// Both must leave the same alerts, outcomes and history: new and deduplicated raises, a clear
/// and a reopen in the middle, a second occurrence within the batch, a device without an
/// address, text that needs escaping in JSON, and silences starting and ending.
async fn a_batch_in_one_statement_equals_one_action_at_a_time(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let t0 = t0();
    let alert = |prefix: &str, name: &str, at| {
        let mut alert = new_alert(ADDON, &format!("{prefix}-{name}"), at);
        alert.title = format!("link down ({name}) \"quoted\" \\ naïve ✓\n");
        if name == "no-ip" {
            alert.device_ip = None;
            alert
                .fields
                .insert("note".into(), "tab\there, \u{1} control".into());
        }
        AlertAction::Raise(alert)
    };
    let clear = |prefix: &str, name: &str, at| clear(&format!("{prefix}-{name}"), at);
    let critical = |action: AlertAction| match action {
        AlertAction::Raise(mut alert) => {
            alert.severity = Severity::Critical;
            alert.title.push_str(" (worse)");
            AlertAction::Raise(alert)
        }
        clear => clear,
    };
    // (action, silence covering it)
    let batch = |prefix: &str| {
        vec![
            (alert(prefix, "a", t0), None),
            (alert(prefix, "no-ip", t0), None),
            (alert(prefix, "silenced", t0), Some(7)),
            (alert(prefix, "was-active", t0), Some(8)),
            (alert(prefix, "was-suppressed", t0), None),
            // Repeats within the run: folded into one row each.
            (alert(prefix, "a", t0 + Duration::milliseconds(500)), None),
            (
                alert(prefix, "was-active", t0 + Duration::seconds(1)),
                Some(8),
            ),
            (
                alert(prefix, "silenced", t0 + Duration::seconds(1)),
                Some(7),
            ),
            // A repeat under a different silence decision ends the run.
            (alert(prefix, "was-active", t0 + Duration::seconds(2)), None),
            // A run of clears: one statement; the repeat and the unknown match nothing.
            (clear(prefix, "a", t0), None),
            (clear(prefix, "a", t0), None),
            (clear(prefix, "no-ip", t0 + Duration::milliseconds(1)), None),
            (clear(prefix, "never-raised", t0), None),
            (alert(prefix, "a", t0 + Duration::seconds(1)), None),
            (alert(prefix, "no-ip", t0 + Duration::seconds(1)), None),
            (alert(prefix, "b", t0 + Duration::seconds(1)), None),
            // The last occurrence's text wins; the latest receipt is when it was last seen.
            (
                critical(alert(prefix, "b", t0 + Duration::seconds(3))),
                None,
            ),
            (alert(prefix, "b", t0 + Duration::seconds(2)), None),
            (
                critical(alert(prefix, "no-ip", t0 + Duration::seconds(2))),
                None,
            ),
        ]
    };
    // Runs longer than one SQLite statement (256 rows): 300 alerts, every seventh raised twice
    // with the repeat in a later statement, then a run of 300 clears with the 100 unknown.
    let bulk = |prefix: &str| {
        let mut actions = Vec::new();
        for i in 0..300 {
            actions.push((alert(prefix, &format!("bulk-{i}"), t0), None));
        }
        for i in (0..300).step_by(7) {
            let at = t0 + Duration::seconds(1);
            actions.push((critical(alert(prefix, &format!("bulk-{i}"), at)), None));
        }
        for i in 100..400 {
            actions.push((clear(prefix, &format!("bulk-{i}"), t0), None));
        }
        actions
    };
    let batch = |prefix: &str| [batch(prefix), bulk(prefix)].concat();
    let setup = |prefix: &str| {
        vec![
            (alert(prefix, "was-active", t0 - Duration::seconds(5)), None),
            (
                alert(prefix, "was-suppressed", t0 - Duration::seconds(5)),
                Some(9),
            ),
        ]
    };
    let apply = async |actions: Vec<(AlertAction, Option<i64>)>, whole: bool| {
        let mut outcomes = Vec::new();
        if whole {
            let (actions, silenced): (Vec<_>, Vec<_>) = actions.into_iter().unzip();
            outcomes = store
                .apply_batch_silenced(&actions, &silenced)
                .await
                .unwrap();
        } else {
            for (action, silence) in actions {
                outcomes.extend(
                    store
                        .apply_batch_silenced(&[action], &[silence])
                        .await
                        .unwrap(),
                );
            }
        }
        outcomes
    };
    apply(setup("one"), false).await;
    apply(setup("many"), false).await;
    let one = apply(batch("one"), false).await;
    let many = apply(batch("many"), true).await;
    assert_eq!(one.len(), many.len());

    /// An outcome without its alert id, and what its alert and history show, ids and
    /// fingerprints left out.
    async fn seen(store: &Store, outcome: &ActionOutcome) -> serde_json::Value {
        let (kind, id, count) = match outcome {
            ActionOutcome::Created { alert_id } => ("created", *alert_id, 1),
            ActionOutcome::Updated {
                alert_id,
                occurrence_count,
            } => ("updated", *alert_id, *occurrence_count),
            ActionOutcome::Resolved { alert_id } => ("resolved", *alert_id, 0),
            ActionOutcome::ClearUnmatched => return json!("unmatched"),
        };
        let page = store.alert_history(id, None, 100).await.unwrap().unwrap();
        let mut alert = serde_json::to_value(&page.alert).unwrap();
        for key in ["id", "fingerprint"] {
            alert.as_object_mut().unwrap().remove(key);
        }
        // Not in the API's view of an alert, but written by every raise and clear.
        let (created_at, updated_at): (DateTime<Utc>, DateTime<Utc>) =
            with_pool!(store, read, |pool| {
                sqlx::query_as("SELECT created_at, updated_at FROM alerts WHERE id = $1")
                    .bind(id)
                    .fetch_one(pool)
                    .await
                    .unwrap()
            });
        alert["created_at"] = json!(created_at);
        alert["updated_at"] = json!(updated_at);
        let history: Vec<_> = page
            .items
            .iter()
            .map(|e| (e.at, e.kind, e.actor.clone(), e.details.clone()))
            .collect();
        json!({"outcome": kind, "count": count, "alert": alert, "history": format!("{history:?}")})
    }
    for (a, b) in one.iter().zip(&many) {
        assert_eq!(seen(&store, a).await, seen(&store, b).await);
    }
}

async fn failed_batch_applies_nothing(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let before = created_id(apply_one(&store, raise("fp-0", t0())).await);
    // The third action names an addon that is not installed: the foreign key refuses it, and
    // the whole batch, including the raises before it, must roll back.
    let err = store
        .apply_batch(&[
            raise("fp-1", t0()),
            raise("fp-0", t0()),
            AlertAction::Raise(new_alert("not-installed", "fp-2", t0())),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database { .. }), "{err}");
    assert!(!err.is_transient());
    let all = store.list_alerts(&AlertFilter::default()).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, before);
    assert_eq!(all[0].occurrence_count, 1);
}

/// Raises `per_task` single-action batches of one fingerprint from each store in `stores`
/// (one task each), all at once, and returns every outcome.
async fn raise_concurrently(stores: Vec<Store>, per_task: usize) -> Vec<ActionOutcome> {
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(stores.len()));
    let tasks: Vec<_> = stores
        .into_iter()
        .map(|store| {
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                let mut outcomes = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    outcomes.extend(
                        store
                            .apply_batch(&[raise("hot", Utc::now())])
                            .await
                            .unwrap(),
                    );
                }
                outcomes
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.unwrap());
    }
    outcomes
}

fn assert_one_alert_counted(outcomes: &[ActionOutcome], total: i64) -> i64 {
    let created: Vec<i64> = outcomes
        .iter()
        .filter_map(|o| match o {
            ActionOutcome::Created { alert_id } => Some(*alert_id),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 1, "exactly one raise creates the alert");
    let mut counts: Vec<i64> = outcomes
        .iter()
        .filter_map(|o| match o {
            ActionOutcome::Updated {
                alert_id,
                occurrence_count,
            } => {
                assert_eq!(*alert_id, created[0]);
                Some(*occurrence_count)
            }
            _ => None,
        })
        .collect();
    counts.sort_unstable();
    // Every raise saw a distinct count: no two increments were lost or merged.
    assert_eq!(counts, (2..=total).collect::<Vec<_>>());
    created[0]
}

async fn concurrent_raises_through_one_store_count_every_occurrence(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let outcomes = raise_concurrently(vec![store.clone(); 8], 100).await;
    let id = assert_one_alert_counted(&outcomes, 800);
    let open = store
        .list_alerts(&AlertFilter {
            status: Some(AlertStatus::Active),
            ..AlertFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, id);
    assert_eq!(open[0].occurrence_count, 800);
}

/// Two stores on one database stand for two processes (SQLite) or two nodes (PostgreSQL): here
/// the writers do not queue in one pool, and dedupe rests on the database alone (the write lock
/// and busy timeout on SQLite, the unique index on PostgreSQL).
async fn concurrent_raises_through_two_stores_count_every_occurrence(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let second = Store::connect(&db.url, crate::testing::secret_keys())
        .await
        .unwrap();
    let mut stores = vec![store.clone(); 4];
    stores.extend(vec![second.clone(); 4]);
    let outcomes = raise_concurrently(stores, 100).await;
    let id = assert_one_alert_counted(&outcomes, 800);
    assert_eq!(alert(&second, id).await.occurrence_count, 800);
    second.close().await;
}

async fn list_filters_and_keyset_pagination(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    install(&store, OTHER_ADDON).await;
    let t = t0();
    let mut actions = Vec::new();
    for i in 0..10 {
        let mut a = new_alert(
            if i % 2 == 0 { ADDON } else { OTHER_ADDON },
            &format!("fp-{i}"),
            t + Duration::seconds(i),
        );
        a.severity = if i < 3 {
            Severity::Critical
        } else {
            Severity::Warning
        };
        a.device_ip = Some(format!("10.0.0.{}", i % 3));
        if i == 9 {
            a.device_name = Some("10.0.0.0".to_owned());
        }
        actions.push(AlertAction::Raise(a));
    }
    let ids: Vec<i64> = store
        .apply_batch(&actions)
        .await
        .unwrap()
        .into_iter()
        .map(created_id)
        .collect();
    store
        .set_alert_status(ids[4], AlertStatus::Acknowledged, "user:carol", now())
        .await
        .unwrap();
    store
        .apply_batch(&[clear("fp-0", t), clear("fp-2", t)])
        .await
        .unwrap();

    let list = |filter: AlertFilter| {
        let store = store.clone();
        async move {
            store
                .list_alerts(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|a| a.id)
                .collect::<Vec<_>>()
        }
    };
    let pick = |indexes: &[usize]| indexes.iter().map(|&i| ids[i]).collect::<Vec<_>>();

    // Newest first.
    assert_eq!(
        list(AlertFilter::default()).await,
        pick(&[9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    );
    assert_eq!(
        list(AlertFilter {
            status: Some(AlertStatus::Resolved),
            ..AlertFilter::default()
        })
        .await,
        pick(&[2, 0])
    );
    assert_eq!(
        list(AlertFilter {
            status: Some(AlertStatus::Acknowledged),
            ..AlertFilter::default()
        })
        .await,
        pick(&[4])
    );
    assert_eq!(
        list(AlertFilter {
            severity: Some(Severity::Critical),
            ..AlertFilter::default()
        })
        .await,
        pick(&[2, 1, 0])
    );
    assert_eq!(
        list(AlertFilter {
            addon_id: Some(OTHER_ADDON.to_owned()),
            ..AlertFilter::default()
        })
        .await,
        pick(&[9, 7, 5, 3, 1])
    );
    // The device filter matches the IP or the name (alert 9 is named like 0's IP).
    assert_eq!(
        list(AlertFilter {
            device: Some("10.0.0.0".to_owned()),
            ..AlertFilter::default()
        })
        .await,
        pick(&[9, 6, 3, 0])
    );
    assert_eq!(
        list(AlertFilter {
            device: Some("core-sw-1".to_owned()),
            ..AlertFilter::default()
        })
        .await,
        pick(&[8, 7, 6, 5, 4, 3, 2, 1, 0])
    );
    // Filters combine.
    assert_eq!(
        list(AlertFilter {
            status: Some(AlertStatus::Active),
            severity: Some(Severity::Warning),
            addon_id: Some(ADDON.to_owned()),
            device: Some("10.0.0.0".to_owned()),
            ..AlertFilter::default()
        })
        .await,
        pick(&[6])
    );
    assert!(
        list(AlertFilter {
            addon_id: Some("nobody".to_owned()),
            ..AlertFilter::default()
        })
        .await
        .is_empty()
    );

    // Keyset pagination, three at a time, with a filter: pages follow each other without gaps
    // or repeats, and an alert raised meanwhile does not shift them.
    let mut pages = Vec::new();
    let mut before_id = None;
    loop {
        let page = list(AlertFilter {
            severity: Some(Severity::Warning),
            before_id,
            limit: 3,
            ..AlertFilter::default()
        })
        .await;
        if page.is_empty() {
            break;
        }
        if pages.is_empty() {
            apply_one(&store, raise("fp-new", t)).await;
        }
        before_id = page.last().copied();
        pages.push(page);
    }
    assert_eq!(pages, [pick(&[9, 8, 7]), pick(&[6, 5, 4]), pick(&[3])]);
}

async fn list_limit_is_clamped(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let actions: Vec<AlertAction> = (0..LIST_LIMIT_MAX + 1)
        .map(|i| raise(&format!("fp-{i}"), t0()))
        .collect();
    store.apply_batch(&actions).await.unwrap();
    let count = |limit: u32| {
        let store = store.clone();
        async move {
            store
                .list_alerts(&AlertFilter {
                    limit,
                    ..AlertFilter::default()
                })
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(count(0).await, LIST_LIMIT_DEFAULT as usize);
    assert_eq!(count(1).await, 1);
    assert_eq!(count(LIST_LIMIT_MAX).await, LIST_LIMIT_MAX as usize);
    assert_eq!(count(u32::MAX).await, LIST_LIMIT_MAX as usize);
}

async fn count_by_status_lists_every_status(db: TestDb) {
    let store = db.store;
    let zero: Vec<_> = AlertStatus::ALL.iter().map(|&s| (s, 0)).collect();
    assert_eq!(store.count_alerts_by_status().await.unwrap(), zero);
    install(&store, ADDON).await;
    let outcomes = store
        .apply_batch(&[
            raise("a", t0()),
            raise("b", t0()),
            raise("c", t0()),
            raise("a", t0()),
            clear("c", t0()),
        ])
        .await
        .unwrap();
    store
        .set_alert_status(
            created_id(outcomes[1]),
            AlertStatus::Acknowledged,
            "user:dan",
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.count_alerts_by_status().await.unwrap(),
        [
            (AlertStatus::Active, 1),
            (AlertStatus::Acknowledged, 1),
            (AlertStatus::Suppressed, 0),
            (AlertStatus::Resolved, 1),
        ]
    );
}

// SQLite-only behaviour: how the file is opened and where it lives.

/// A backup leaves the reader it used as it found it (refusing writes), and is SQLite's alone:
/// a PostgreSQL store says to use `pg_dump` and writes no file.
#[tokio::test]
async fn backup_keeps_readers_read_only_and_is_sqlite_only() {
    on_sqlite(|db: TestDb| async move {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy.db");
        db.store.backup_to(&copy).await.unwrap();
        assert!(std::fs::metadata(&copy).unwrap().len() > 0);
        let Backend::Sqlite(pools) = &db.store.backend else {
            unreachable!()
        };
        // Every reader, the one the backup used among them, still refuses to write.
        let mut readers = Vec::new();
        for _ in 0..super::SQLITE_READERS {
            readers.push(pools.reader.acquire().await.unwrap());
        }
        for reader in &mut readers {
            let err = sqlx::query("INSERT INTO system_settings VALUES ('k', 'v', 'now')")
                .execute(&mut **reader)
                .await
                .unwrap_err();
            assert!(err.to_string().contains("readonly"), "{err}");
        }
    })
    .await;
    on_postgres(|db: TestDb| async move {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy.db");
        let err = db.store.backup_to(&copy).await.unwrap_err().to_string();
        assert!(err.contains("pg_dump"), "{err}");
        assert!(!copy.exists());
    })
    .await;
}

/// The durability the ingestion contract relies on ("accepted means stored"): WAL with a full
/// sync on every commit, and foreign keys enforced, on the connection that writes.
/// The minute's expiry job reads open alerts only: through the partial index, not the addon's
/// whole history (a soak showed it stalling the writer once a minute as the history grew).
#[tokio::test]
async fn expiry_reads_only_open_alerts() {
    on_sqlite(|db: TestDb| async move {
        let Backend::Sqlite(pools) = &db.store.backend else {
            unreachable!()
        };
        // EXPLAIN QUERY PLAN rows: id, parent, notused, detail.
        let plan: Vec<String> = sqlx::query_as::<_, (i64, i64, i64, String)>(&format!(
            "EXPLAIN QUERY PLAN {}",
            super::schedule::EXPIRE_ALERTS
        ))
        .bind("a")
        .bind("2026-01-01")
        .bind("2026-01-02")
        .fetch_all(&pools.writer)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.3)
        .collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("USING INDEX alerts_open_addon_last_seen")),
            "{plan:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn sqlite_writer_is_durable_and_enforces_foreign_keys() {
    on_sqlite(|db: TestDb| async move {
        let Backend::Sqlite(pools) = &db.store.backend else {
            unreachable!()
        };
        let writer = &pools.writer;
        let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(writer)
            .await
            .unwrap();
        assert_eq!(journal_mode, "wal");
        let pragma = |name: &'static str| async move {
            sqlx::query_scalar::<_, i64>(&format!("PRAGMA {name}"))
                .fetch_one(writer)
                .await
                .unwrap()
        };
        assert_eq!(pragma("synchronous").await, 2, "2 = FULL");
        assert_eq!(pragma("foreign_keys").await, 1);
        assert_eq!(pragma("busy_timeout").await, 5000);
        // Readers refuse to write.
        let err = sqlx::query("INSERT INTO system_settings VALUES ('k', 'v', 'now')")
            .execute(&pools.reader)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("readonly"), "{err}");
        assert!(db.url.ends_with("/data/opsconductor.db"), "{}", db.url);
    })
    .await;
}

#[tokio::test]
async fn sqlite_memory_database_works() {
    let store = Store::connect("sqlite::memory:", crate::testing::secret_keys())
        .await
        .unwrap();
    store.set_setting("k", "v", now()).await.unwrap();
    assert_eq!(store.get_setting("k").await.unwrap().as_deref(), Some("v"));
    install(&store, ADDON).await;
    let id = created_id(apply_one(&store, raise("fp", t0())).await);
    assert_eq!(alert(&store, id).await.occurrence_count, 1);
    store.close().await;
}

#[tokio::test]
async fn sqlite_reopen_keeps_data_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path()).await;
    let store = Store::connect(&url, crate::testing::secret_keys())
        .await
        .unwrap();
    store.set_setting("k", "v", now()).await.unwrap();
    store.close().await;
    let store = Store::connect(&url, crate::testing::secret_keys())
        .await
        .unwrap();
    assert_eq!(store.get_setting("k").await.unwrap().as_deref(), Some("v"));
    store.close().await;
}

#[tokio::test]
async fn unsupported_url_is_refused() {
    for url in ["mysql://localhost/db", "", "/var/lib/opsconductor.db"] {
        assert!(
            matches!(
                Store::connect(url, crate::testing::secret_keys()).await,
                Err(StoreError::UnsupportedUrl)
            ),
            "{url}"
        );
    }
}

// The retry in `apply_batch` depends on recognising transient errors; these produce real ones.

#[tokio::test]
async fn sqlite_busy_is_transient() {
    on_sqlite(|db: TestDb| async move {
        use sqlx::Connection;
        let Backend::Sqlite(pools) = &db.store.backend else {
            unreachable!()
        };
        let holder = pools.writer.begin_with("BEGIN IMMEDIATE").await.unwrap();
        // A second writer on the file that does not wait at all, like one whose busy timeout
        // ran out.
        let options = SqliteConnectOptions::from_str(&db.url)
            .unwrap()
            .busy_timeout(std::time::Duration::ZERO);
        let mut other = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        let busy = sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .context("testing")
            .unwrap_err();
        assert!(busy.is_transient(), "{busy:?}");
        holder.rollback().await.unwrap();
        other.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn postgres_deadlock_is_transient() {
    on_postgres(|db: TestDb| async move {
        use sqlx::Connection;
        db.store.set_setting("a", "0", now()).await.unwrap();
        db.store.set_setting("b", "0", now()).await.unwrap();
        let mut one = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let mut two = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let mut one = one.begin().await.unwrap();
        let mut two = two.begin().await.unwrap();
        let update = "UPDATE system_settings SET value = '1' WHERE key = $1";
        sqlx::query(update)
            .bind("a")
            .execute(&mut *one)
            .await
            .unwrap();
        sqlx::query(update)
            .bind("b")
            .execute(&mut *two)
            .await
            .unwrap();
        // Each now waits for the other's row: PostgreSQL aborts one of them after
        // deadlock_timeout (1 s by default).
        let (first, second) = tokio::join!(
            sqlx::query(update).bind("b").execute(&mut *one),
            sqlx::query(update).bind("a").execute(&mut *two),
        );
        let error = match (first, second) {
            (Err(error), Ok(_)) | (Ok(_), Err(error)) => error,
            other => panic!("expected exactly one deadlock victim, got {other:?}"),
        };
        let error = Err::<(), _>(error).context("testing").unwrap_err();
        assert!(error.is_transient(), "{error:?}");
    })
    .await;
}

mod addon_settings;
mod alert_actions;
mod auth;
mod events;
mod schedule;
mod secrets;
mod silences;
mod targets;
