//! Targets and credentials on both databases: CRUD, references and validation, due times,
//! secrets that never show, and credential deletion racing target creation.

use serde_json::Map;

use super::*;
use crate::snmp::{AuthProtocol, PrivProtocol, UsmUser};
use crate::target::{CredentialSecret, Schedule, Target, TargetSpec};

on_both!(
    targets_create_read_list_delete,
    target_references_and_validation_are_checked,
    update_keeps_status_and_phase_unless_schedule_changes,
    enable_and_disable_move_the_due_time,
    credentials_roundtrip_without_showing_secrets,
    credential_in_use_cannot_be_deleted,
    concurrent_reference_and_delete_never_dangle,
);

const POLLER: &str = "poller";
const WEBHOOK_ONLY: &str = "hooks";

/// Installs a polling addon (default interval 120 s) and one that does not poll.
async fn install_addons(store: &Store) {
    for (id, manifest) in [
        (
            POLLER,
            json!({
                "id": POLLER, "name": "Poller", "version": "1.0.0",
                "world": "opsconductor:addon/addon@0.2.0",
                "methods": ["snmp_poll"],
                "poll": { "default_interval_seconds": 120 },
            }),
        ),
        (
            WEBHOOK_ONLY,
            json!({
                "id": WEBHOOK_ONLY, "name": "Hooks", "version": "1.0.0",
                "world": "opsconductor:addon/addon@0.1.0",
                "methods": ["webhook"],
                "webhook": { "path": "hooks" },
            }),
        ),
    ] {
        store
            .upsert_addon(
                &AddonRecord {
                    id: id.to_owned(),
                    name: id.to_owned(),
                    version: "1.0.0".to_owned(),
                    methods: vec![],
                    manifest,
                    wasm: b"\0asm".to_vec(),
                    wasm_sha256: format!("sha-{id}"),
                    enabled: true,
                },
                now(),
            )
            .await
            .unwrap();
    }
}

fn spec(name: &str) -> TargetSpec {
    TargetSpec {
        name: name.to_owned(),
        address: "192.0.2.10:161".to_owned(),
        addon_id: POLLER.to_owned(),
        schedule: None,
        enabled: true,
        config: Map::new(),
        credentials: None,
    }
}

fn community(s: &str) -> CredentialSecret {
    CredentialSecret::SnmpCommunity {
        community: s.to_owned(),
    }
}

async fn default_interval(store: &Store) -> u32 {
    store
        .addon_poll_spec(POLLER)
        .await
        .unwrap()
        .default_interval_seconds
}

fn invalid_message(result: Result<Target, StoreError>) -> String {
    match result {
        Err(StoreError::Invalid(message)) => message,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

async fn targets_create_read_list_delete(db: TestDb) {
    let store = db.store;
    install_addons(&store).await;
    let default = default_interval(&store).await;
    assert_eq!(default, 120);

    let before = now();
    let mut s = spec("sw-b");
    s.config = json!({ "ifindex": [1, 2], "label": "core" })
        .as_object()
        .unwrap()
        .clone();
    let b = store.create_target(&s, default, now()).await.unwrap();
    assert_eq!(b.schedule, Schedule::IntervalSeconds(120));
    assert_eq!(b.config["ifindex"], json!([1, 2]));
    assert!(b.enabled);
    assert_eq!(b.status.polls_total, 0);
    assert_eq!(b.status.last_poll_status, None);
    // Spread over at most the first minute (see `first_due`).
    let due = b.status.next_due_at.expect("an enabled target is due");
    assert!(
        due >= before && due <= now() + Duration::seconds(60),
        "{due}"
    );

    let mut s = spec("sw-a");
    s.schedule = Some(Schedule::Cron("*/5 * * * *".into()));
    s.enabled = false;
    let a = store.create_target(&s, default, now()).await.unwrap();
    assert_eq!(a.schedule, Schedule::Cron("*/5 * * * *".into()));
    assert_eq!(a.status.next_due_at, None, "a disabled target is not due");

    let mut s = spec("sw-c");
    s.schedule = Some(Schedule::IntervalSeconds(30));
    let c = store.create_target(&s, default, now()).await.unwrap();
    assert_eq!(c.schedule, Schedule::IntervalSeconds(30));

    // Read back exactly what was returned, by id and by name.
    assert_eq!(store.target(b.id).await.unwrap().as_ref(), Some(&b));
    assert_eq!(
        store.target_by_name("sw-a").await.unwrap().as_ref(),
        Some(&a)
    );
    assert_eq!(store.target(999_999).await.unwrap(), None);
    assert_eq!(store.target_by_name("nope").await.unwrap(), None);

    let names = |ts: Vec<Target>| ts.into_iter().map(|t| t.name).collect::<Vec<_>>();
    let all = store.targets(&TargetFilter::default()).await.unwrap();
    assert_eq!(names(all), ["sw-a", "sw-b", "sw-c"]);
    let enabled = TargetFilter {
        enabled: Some(true),
        ..TargetFilter::default()
    };
    assert_eq!(
        names(store.targets(&enabled).await.unwrap()),
        ["sw-b", "sw-c"]
    );
    let disabled = TargetFilter {
        addon_id: Some(POLLER.into()),
        enabled: Some(false),
    };
    assert_eq!(names(store.targets(&disabled).await.unwrap()), ["sw-a"]);
    let other = TargetFilter {
        addon_id: Some(WEBHOOK_ONLY.into()),
        enabled: None,
    };
    assert!(store.targets(&other).await.unwrap().is_empty());

    // The name is unique.
    match store.create_target(&spec("sw-a"), default, now()).await {
        Err(StoreError::Conflict(m)) => {
            assert_eq!(m, "a target named `sw-a` already exists")
        }
        other => panic!("{other:?}"),
    }

    store.delete_target(a.id).await.unwrap();
    assert!(matches!(
        store.delete_target(a.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.target(a.id).await.unwrap(), None);
    // A deleted name can be used again.
    store
        .create_target(&spec("sw-a"), default, now())
        .await
        .unwrap();
}

async fn target_references_and_validation_are_checked(db: TestDb) {
    let store = db.store;
    install_addons(&store).await;

    let mut s = spec("t1");
    s.addon_id = WEBHOOK_ONLY.into();
    let m = invalid_message(store.create_target(&s, 60, now()).await);
    assert_eq!(m, "target field `addon_id`: addon `hooks` does not poll");
    assert!(matches!(
        store.addon_poll_spec(WEBHOOK_ONLY).await,
        Err(StoreError::Invalid(_))
    ));

    s.addon_id = "missing".into();
    let m = invalid_message(store.create_target(&s, 60, now()).await);
    assert_eq!(
        m,
        "target field `addon_id`: no addon `missing` is installed"
    );

    let mut s = spec("t1");
    s.credentials = Some("lab".into());
    let m = invalid_message(store.create_target(&s, 60, now()).await);
    assert_eq!(m, "target field `credentials`: no credential named `lab`");
    store
        .set_credential("lab", &community("c0mm"), now())
        .await
        .unwrap();
    let t = store.create_target(&s, 60, now()).await.unwrap();
    assert_eq!(t.credentials.as_deref(), Some("lab"));

    // What TargetSpec::validate refuses, the store refuses, naming the field.
    let mut s = spec("bad name");
    assert!(invalid_message(store.create_target(&s, 60, now()).await).contains("`name`"));
    s = spec("t2");
    s.address = "not an address".into();
    assert!(invalid_message(store.create_target(&s, 60, now()).await).contains("`address`"));
    s = spec("t2");
    s.schedule = Some(Schedule::Cron("every day".into()));
    assert!(invalid_message(store.create_target(&s, 60, now()).await).contains("`schedule`"));
    // A zero default interval is refused too, not turned into a busy loop.
    let m = invalid_message(store.create_target(&spec("t2"), 0, now()).await);
    assert!(m.contains("`schedule`"), "{m}");

    // Updates check the same things, after finding the target.
    let mut s = spec("t1");
    s.addon_id = WEBHOOK_ONLY.into();
    assert!(
        invalid_message(store.update_target(t.id, &s, 60, now()).await).contains("does not poll")
    );
    assert!(matches!(
        store.update_target(999_999, &spec("t1"), 60, now()).await,
        Err(StoreError::NotFound)
    ));
    // Nothing half-written.
    assert_eq!(
        store.targets(&TargetFilter::default()).await.unwrap(),
        vec![t]
    );
}

/// Writes poll results directly, standing in for the scheduler.
async fn record_polls(store: &Store, id: i64) {
    let at = now();
    with_pool!(store, write, |pool| {
        sqlx::query(
            "UPDATE targets SET last_poll_at = $2, last_poll_status = 'ok', \
                 last_poll_duration_ms = 12, last_success_at = $2, polls_total = 3, \
                 poll_failures = 1 WHERE id = $1",
        )
        .bind(id)
        .bind(at)
        .execute(pool)
        .await
        .unwrap();
    });
}

async fn update_keeps_status_and_phase_unless_schedule_changes(db: TestDb) {
    let store = db.store;
    install_addons(&store).await;
    store
        .set_credential("lab", &community("c0mm"), now())
        .await
        .unwrap();
    let original = store
        .create_target(&spec("edge-1"), 120, now())
        .await
        .unwrap();
    record_polls(&store, original.id).await;
    let polled = store.target(original.id).await.unwrap().unwrap();
    assert_eq!(polled.status.polls_total, 3);

    // Same schedule, other fields: due time and poll status stay.
    let mut s = spec("edge-1-renamed");
    s.address = "https://edge-1.example.net/api".into();
    s.config = json!({ "k": "v" }).as_object().unwrap().clone();
    s.credentials = Some("lab".into());
    let updated = store
        .update_target(original.id, &s, 120, now())
        .await
        .unwrap();
    assert_eq!(updated.name, "edge-1-renamed");
    assert_eq!(updated.address, s.address);
    assert_eq!(updated.config, s.config);
    assert_eq!(updated.credentials.as_deref(), Some("lab"));
    assert_eq!(updated.status, polled.status);
    assert_eq!(updated.created_at, original.created_at);
    assert!(updated.updated_at >= original.updated_at);

    // A new schedule moves the due time; the status stays.
    s.schedule = Some(Schedule::Cron("0 3 * * *".into()));
    let cron = store
        .update_target(original.id, &s, 120, now())
        .await
        .unwrap();
    assert_eq!(cron.schedule, Schedule::Cron("0 3 * * *".into()));
    let due = cron.status.next_due_at.unwrap();
    assert_eq!(
        due,
        Schedule::Cron("0 3 * * *".into()).next_after(due - Duration::days(1))
    );
    assert_eq!(cron.status.polls_total, 3);
    assert_eq!(cron.status.last_poll_status.as_deref(), Some("ok"));

    // PUT semantics: leaving the schedule out means the addon's default again.
    s.schedule = None;
    s.credentials = None;
    let back = store
        .update_target(original.id, &s, 120, now())
        .await
        .unwrap();
    assert_eq!(back.schedule, Schedule::IntervalSeconds(120));
    assert_eq!(back.credentials, None);

    // Renaming onto another target's name is a conflict and changes nothing.
    let other = store
        .create_target(&spec("edge-2"), 120, now())
        .await
        .unwrap();
    match store.update_target(other.id, &s, 120, now()).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("`edge-1-renamed`"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.target(other.id).await.unwrap().unwrap(), other);
}

async fn enable_and_disable_move_the_due_time(db: TestDb) {
    let store = db.store;
    install_addons(&store).await;
    let t = store.create_target(&spec("r1"), 120, now()).await.unwrap();
    record_polls(&store, t.id).await;

    let off = store.set_target_enabled(t.id, false, now()).await.unwrap();
    assert!(!off.enabled);
    assert_eq!(off.status.next_due_at, None);
    assert_eq!(off.status.polls_total, 3, "poll status survives");
    // Disabling again is harmless.
    assert_eq!(
        store
            .set_target_enabled(t.id, false, now())
            .await
            .unwrap()
            .status,
        off.status
    );

    let before = now();
    let on = store.set_target_enabled(t.id, true, now()).await.unwrap();
    assert!(on.enabled);
    let due = on.status.next_due_at.unwrap();
    assert!(
        due >= before && due <= now() + Duration::seconds(60),
        "{due}"
    );
    // Enabling an enabled target keeps its phase.
    let again = store.set_target_enabled(t.id, true, now()).await.unwrap();
    assert_eq!(again.status.next_due_at, Some(due));

    // Re-enabling through a full update schedules it as well.
    let mut s = spec("r1");
    s.enabled = false;
    assert_eq!(
        store
            .update_target(t.id, &s, 120, now())
            .await
            .unwrap()
            .status
            .next_due_at,
        None
    );
    s.enabled = true;
    assert!(
        store
            .update_target(t.id, &s, 120, now())
            .await
            .unwrap()
            .status
            .next_due_at
            .is_some()
    );

    assert!(matches!(
        store.set_target_enabled(999_999, true, now()).await,
        Err(StoreError::NotFound)
    ));
}

/// One credential of each kind, with secrets that all contain `s3cret`.
fn every_kind() -> Vec<(&'static str, CredentialSecret)> {
    let user = UsmUser::from_passwords(
        "poller",
        Some((AuthProtocol::Sha256, "s3cret-auth")),
        Some((PrivProtocol::Aes128, "s3cret-priv")),
    )
    .unwrap();
    vec![
        ("community", community("s3cret-community")),
        ("usm", CredentialSecret::SnmpUsm { user }),
        (
            "basic",
            CredentialSecret::HttpBasic {
                username: "api".into(),
                password: "s3cret-pw".into(),
            },
        ),
        (
            "bearer",
            CredentialSecret::HttpBearer {
                token: "s3cret-token".into(),
            },
        ),
        (
            "header",
            CredentialSecret::HttpHeader {
                name: "X-Api-Key".into(),
                value: "s3cret-key".into(),
            },
        ),
        (
            "ssh-pw",
            CredentialSecret::SshPassword {
                username: "ops".into(),
                password: "s3cret-ssh".into(),
            },
        ),
        (
            "ssh-key",
            CredentialSecret::SshKey {
                username: "ops".into(),
                private_key: "-----BEGIN OPENSSH PRIVATE KEY----- s3cret".into(),
                passphrase: Some("s3cret-phrase".into()),
            },
        ),
    ]
}

async fn credentials_roundtrip_without_showing_secrets(db: TestDb) {
    let store = db.store;
    let kinds = every_kind();
    for (name, secret) in &kinds {
        let summary = store.set_credential(name, secret, now()).await.unwrap();
        assert_eq!(summary.name, *name);
        assert_eq!(summary.kind, secret.kind());
        assert_eq!(summary.public, secret.public());
        assert_eq!(summary.created_at, summary.updated_at);
    }
    let listed = store.credentials().await.unwrap();
    let mut names: Vec<&str> = kinds.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    assert_eq!(
        listed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        names
    );
    let shown = format!("{listed:?} {}", serde_json::to_string(&listed).unwrap());
    assert!(!shown.contains("s3cret"), "{shown}");
    let usm = store.credential("usm").await.unwrap().unwrap();
    assert_eq!(
        usm.public,
        json!({ "user": "poller", "auth_protocol": "sha256", "priv_protocol": "aes128" })
    );

    for (name, secret) in &kinds {
        assert_eq!(
            store.credential_secret(name).await.unwrap().as_ref(),
            Some(secret)
        );
    }
    assert_eq!(store.credential("nope").await.unwrap(), None);
    assert_eq!(store.credential_secret("nope").await.unwrap(), None);

    // Replacing keeps created_at, moves updated_at, and may change the kind.
    let first = store.credential("community").await.unwrap().unwrap();
    let bearer = CredentialSecret::HttpBearer {
        token: "rotated".into(),
    };
    let replaced = store
        .set_credential("community", &bearer, now())
        .await
        .unwrap();
    assert_eq!(replaced.kind, "http_bearer");
    assert_eq!(replaced.created_at, first.created_at);
    assert!(replaced.updated_at > first.updated_at);
    assert_eq!(
        store.credential_secret("community").await.unwrap(),
        Some(bearer)
    );

    match store
        .set_credential("has space", &community("x"), now())
        .await
    {
        Err(StoreError::Invalid(m)) => assert!(m.starts_with("credential field `name`"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.delete_credential("nope").await,
        Err(StoreError::NotFound)
    ));
}

async fn credential_in_use_cannot_be_deleted(db: TestDb) {
    let store = db.store;
    install_addons(&store).await;
    store
        .set_credential("shared", &community("c"), now())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..12 {
        let mut s = spec(&format!("dev-{i:02}"));
        s.credentials = Some("shared".into());
        ids.push(store.create_target(&s, 60, now()).await.unwrap().id);
    }
    match store.delete_credential("shared").await {
        Err(StoreError::Conflict(m)) => assert_eq!(
            m,
            "credential `shared` is used by targets `dev-00`, `dev-01`, `dev-02`, `dev-03`, \
             `dev-04`, `dev-05`, `dev-06`, `dev-07`, `dev-08`, `dev-09` and 2 more; point \
             them at another credential or remove them first"
        ),
        other => panic!("{other:?}"),
    }
    assert!(
        store.credential("shared").await.unwrap().is_some(),
        "rolled back"
    );
    for id in &ids[1..] {
        store.delete_target(*id).await.unwrap();
    }
    match store.delete_credential("shared").await {
        Err(StoreError::Conflict(m)) => {
            assert_eq!(
                m,
                "credential `shared` is used by target `dev-00`; point it at another \
                 credential or remove it first"
            )
        }
        other => panic!("{other:?}"),
    }
    store.delete_target(ids[0]).await.unwrap();
    store.delete_credential("shared").await.unwrap();
    assert_eq!(store.credential("shared").await.unwrap(), None);
}

/// Creating targets that use a credential while deleting it, from several tasks: whatever
/// order the database picks, no target ends up naming a credential that is gone.
async fn concurrent_reference_and_delete_never_dangle(db: TestDb) {
    let store = db.store;
    install_addons(&store).await;
    for round in 0..20 {
        let cred = format!("c{round}");
        store
            .set_credential(&cred, &community("x"), now())
            .await
            .unwrap();
        let creates = (0..4).map(|i| {
            let store = store.clone();
            let mut s = spec(&format!("r{round}-t{i}"));
            s.credentials = Some(cred.clone());
            tokio::spawn(async move { store.create_target(&s, 60, now()).await })
        });
        let delete = {
            let store = store.clone();
            let cred = cred.clone();
            tokio::spawn(async move { store.delete_credential(&cred).await })
        };
        let created: Vec<_> = futures_join(creates.collect()).await;
        let deleted = delete.await.unwrap();
        let made = created.iter().filter(|r| r.is_ok()).count();
        for r in &created {
            match r {
                Ok(_) | Err(StoreError::Invalid(_)) => {}
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        match deleted {
            Ok(()) => assert_eq!(made, 0, "round {round}: deleted while in use"),
            Err(StoreError::Conflict(_)) => {
                assert!(made > 0, "round {round}: refused with no users");
                assert!(store.credential(&cred).await.unwrap().is_some());
            }
            Err(e) => panic!("round {round}: {e:?}"),
        }
    }
}

async fn futures_join<T: Send + 'static>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
