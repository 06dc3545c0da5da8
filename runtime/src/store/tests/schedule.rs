//! Scheduling state on both databases: leases make claims disjoint and expire, a lost lease
//! records nothing, renewals keep a lease, maintenance jobs run once per due time, expiry and
//! retention touch only what they should, and SSH host keys pin on first use.

use std::time::Duration as StdDuration;

use serde_json::Map;

use super::*;
use crate::target::{Schedule, TargetSpec};

const POLLER: &str = "poller";

on_both!(
    claims_are_disjoint_and_leases_expire,
    lost_lease_records_nothing_and_renewal_keeps_it,
    concurrent_claims_never_overlap,
    jobs_run_once_per_due_time,
    expiry_resolves_only_stale_alerts_of_the_addon,
    retention_deletes_only_old_resolved_alerts,
    host_keys_pin_on_first_use,
);

const LEASE: StdDuration = StdDuration::from_secs(30);

async fn with_targets(store: &Store, n: usize) -> Vec<i64> {
    let mut record = addon(POLLER, "1.0.0", true);
    record.manifest = json!({
        "id": POLLER, "name": "Poller", "version": "1.0.0",
        "world": "opsconductor:addon/addon@0.2.0",
        "methods": ["snmp_poll"],
        "poll": { "fetch": [{ "name": "x", "kind": "snmp_get", "oids": ["1.3.6.1.2.1.1.3.0"] }] },
    });
    store.upsert_addon(&record, now()).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let spec = TargetSpec {
            name: format!("t{i}"),
            address: format!("192.0.2.{}", i + 1),
            addon_id: POLLER.into(),
            schedule: Some(Schedule::IntervalSeconds(60)),
            enabled: true,
            config: Map::new(),
            credentials: None,
        };
        ids.push(store.create_target(&spec, 60, now()).await.unwrap().id);
    }
    ids
}

/// A time when every target created now is due (first polls start within a minute).
fn all_due() -> DateTime<Utc> {
    Utc::now() + Duration::minutes(2)
}

fn record(next: DateTime<Utc>) -> PollRecord {
    PollRecord {
        started_at: Utc::now(),
        duration_ms: 12,
        status: "ok",
        error: None,
        next_due_at: next,
    }
}

async fn claims_are_disjoint_and_leases_expire(db: TestDb) {
    let store = db.store;
    let ids = with_targets(&store, 10).await;
    let now = all_due();
    let a = store
        .claim_due_targets("node-a", now, LEASE, 4)
        .await
        .unwrap();
    let b = store
        .claim_due_targets("node-b", now, LEASE, 100)
        .await
        .unwrap();
    let c = store
        .claim_due_targets("node-c", now, LEASE, 100)
        .await
        .unwrap();
    assert_eq!((a.len(), b.len(), c.len()), (4, 6, 0));
    let mut claimed: Vec<i64> = a.iter().chain(&b).map(|c| c.target_id).collect();
    claimed.sort();
    assert_eq!(claimed, ids);
    // Oldest due first.
    assert!(a.windows(2).all(|w| w[0].due_at <= w[1].due_at));

    // Nobody finished: once the leases run out, every target is due again, for its old due time.
    let later = now + Duration::seconds(31);
    let retaken = store
        .claim_due_targets("node-c", later, LEASE, 100)
        .await
        .unwrap();
    assert_eq!(retaken.len(), 10);
    for claim in &retaken {
        let before = a
            .iter()
            .chain(&b)
            .find(|c| c.target_id == claim.target_id)
            .unwrap();
        assert_eq!(claim.due_at, before.due_at);
    }

    // A finished poll moves the due time and records the outcome.
    let id = retaken[0].target_id;
    let next = later + Duration::seconds(60);
    assert!(
        store
            .finish_poll(id, "node-c", &record(next))
            .await
            .unwrap()
    );
    let t = store.target(id).await.unwrap().unwrap();
    assert_eq!(t.status.next_due_at, Some(next.trunc_subsecs(6)));
    assert_eq!(t.status.last_poll_status.as_deref(), Some("ok"));
    assert_eq!(t.status.polls_total, 1);
    assert_eq!(t.status.lease_owner, None);
    // Not due again until then, whoever asks.
    let after_lease = later + Duration::seconds(31);
    let due = store
        .claim_due_targets("node-a", after_lease, LEASE, 100)
        .await
        .unwrap();
    assert!(due.iter().all(|c| c.target_id != id));
    assert_eq!(due.len(), 9);
}

async fn lost_lease_records_nothing_and_renewal_keeps_it(db: TestDb) {
    let store = db.store;
    with_targets(&store, 2).await;
    let now = all_due();
    let a = store
        .claim_due_targets("node-a", now, LEASE, 1)
        .await
        .unwrap();
    let b = store
        .claim_due_targets("node-b", now, LEASE, 1)
        .await
        .unwrap();
    let (ta, tb) = (a[0].target_id, b[0].target_id);

    // node-b renews, node-a does not: past the first lease only node-a's target is free.
    assert_eq!(
        store
            .renew_poll_leases("node-b", now + Duration::seconds(20), LEASE)
            .await
            .unwrap(),
        1
    );
    let later = now + Duration::seconds(40);
    let c = store
        .claim_due_targets("node-c", later, LEASE, 100)
        .await
        .unwrap();
    assert_eq!(c.iter().map(|c| c.target_id).collect::<Vec<_>>(), vec![ta]);

    // node-a comes back from its pause: its outcome is refused, node-c's counts.
    assert!(
        !store
            .finish_poll(ta, "node-a", &record(later))
            .await
            .unwrap()
    );
    let t = store.target(ta).await.unwrap().unwrap();
    assert_eq!(t.status.polls_total, 0);
    assert_eq!(t.status.lease_owner.as_deref(), Some("node-c"));
    assert!(
        store
            .finish_poll(ta, "node-c", &record(later))
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_poll(tb, "node-b", &record(later))
            .await
            .unwrap()
    );

    // A released lease leaves the target due.
    let d = store
        .claim_due_targets("node-d", later + Duration::seconds(1), LEASE, 100)
        .await
        .unwrap();
    assert_eq!(d.len(), 2);
    store.release_poll(d[0].target_id, "node-d").await.unwrap();
    let e = store
        .claim_due_targets("node-e", later + Duration::seconds(2), LEASE, 100)
        .await
        .unwrap();
    assert_eq!(
        e.iter().map(|c| c.target_id).collect::<Vec<_>>(),
        vec![d[0].target_id]
    );
}

async fn concurrent_claims_never_overlap(db: TestDb) {
    // Two stores on one database, like two nodes, each claiming from several tasks at once.
    let ids = with_targets(&db.store, 40).await;
    let other = Store::connect(&db.url, crate::testing::secret_keys())
        .await
        .unwrap();
    let now = all_due();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = if i % 2 == 0 {
            db.store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            store
                .claim_due_targets(&format!("node-{i}"), now, LEASE, 7)
                .await
                .unwrap()
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap().into_iter().map(|c| c.target_id));
    }
    claimed.sort();
    let before = claimed.len();
    claimed.dedup();
    assert_eq!(before, claimed.len(), "a target was claimed twice");
    assert_eq!(claimed, ids, "every due target was claimed");
    other.close().await;
}

async fn jobs_run_once_per_due_time(db: TestDb) {
    let store = db.store;
    let now = t0();
    let first = now - Duration::seconds(1);
    let due = store
        .claim_job("expiry", "node-a", now, LEASE, first)
        .await
        .unwrap();
    assert_eq!(due, Some(first.trunc_subsecs(6)));
    assert_eq!(
        store
            .claim_job("expiry", "node-b", now, LEASE, first)
            .await
            .unwrap(),
        None
    );
    let next = now + Duration::seconds(60);
    store
        .finish_job("expiry", "node-a", now, 5, "ok: 0 alerts expired", next)
        .await
        .unwrap();
    let soon = now + Duration::seconds(59);
    assert_eq!(
        store
            .claim_job("expiry", "node-b", soon, LEASE, soon)
            .await
            .unwrap(),
        None
    );
    let then = now + Duration::seconds(61);
    assert!(
        store
            .claim_job("expiry", "node-b", then, LEASE, then)
            .await
            .unwrap()
            .is_some()
    );
    // Another job is independent.
    assert!(
        store
            .claim_job("retention", "node-a", now, LEASE, first)
            .await
            .unwrap()
            .is_some()
    );
}

async fn expiry_resolves_only_stale_alerts_of_the_addon(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    install(&store, OTHER_ADDON).await;
    let old = t0();
    let recent = t0() + Duration::hours(2);
    let stale = created_id(apply_one(&store, raise("stale", old)).await);
    let fresh = created_id(apply_one(&store, raise("fresh", recent)).await);
    let other =
        created_id(apply_one(&store, AlertAction::Raise(new_alert(OTHER_ADDON, "o", old))).await);
    let cutoff = t0() + Duration::hours(1);
    let now = t0() + Duration::hours(3);
    assert_eq!(store.expire_alerts(ADDON, cutoff, now).await.unwrap(), 1);
    let a = alert(&store, stale).await;
    assert_eq!(a.status, AlertStatus::Resolved);
    assert_eq!(a.resolved_by.as_deref(), Some("system:expiry"));
    assert_eq!(alert(&store, fresh).await.status, AlertStatus::Active);
    assert_eq!(alert(&store, other).await.status, AlertStatus::Active);
    // Idempotent.
    assert_eq!(store.expire_alerts(ADDON, cutoff, now).await.unwrap(), 0);
}

async fn retention_deletes_only_old_resolved_alerts(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let old_resolved = created_id(apply_one(&store, raise("a", t0())).await);
    apply_one(&store, clear("a", t0() + Duration::minutes(1))).await;
    let new_resolved = created_id(apply_one(&store, raise("b", t0())).await);
    apply_one(&store, clear("b", t0() + Duration::days(10))).await;
    let open_old = created_id(apply_one(&store, raise("c", t0())).await);
    let n = store
        .delete_resolved_before(t0() + Duration::days(5))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(store.get_alert(old_resolved).await.unwrap().is_none());
    assert!(store.get_alert(new_resolved).await.unwrap().is_some());
    assert!(store.get_alert(open_old).await.unwrap().is_some());
}

async fn host_keys_pin_on_first_use(db: TestDb) {
    let store = db.store;
    let ep = "192.0.2.9:22";
    assert_eq!(store.ssh_host_key(ep).await.unwrap(), None);
    let first = store
        .pin_ssh_host_key(ep, "ssh-ed25519", "ssh-ed25519 AAAA1", "SHA256:one", now())
        .await
        .unwrap();
    assert_eq!(first.fingerprint, "SHA256:one");
    // A different key does not replace the pin: the caller learns what is pinned.
    let second = store
        .pin_ssh_host_key(ep, "ssh-ed25519", "ssh-ed25519 AAAA2", "SHA256:two", now())
        .await
        .unwrap();
    assert_eq!(second.fingerprint, "SHA256:one");
    assert_eq!(second.public_key, "ssh-ed25519 AAAA1");
    assert_eq!(store.ssh_host_keys().await.unwrap().len(), 1);
    assert!(store.forget_ssh_host_key(ep).await.unwrap());
    assert!(!store.forget_ssh_host_key(ep).await.unwrap());
    let third = store
        .pin_ssh_host_key(ep, "ssh-ed25519", "ssh-ed25519 AAAA2", "SHA256:two", now())
        .await
        .unwrap();
    assert_eq!(third.fingerprint, "SHA256:two");
}
