//! Secrets at rest, on both databases: rows written in clear (before sealing existed) are
//! sealed when a store connects, every secret reads back through the store as written, a
//! rotation re-seals everything with the new key, and a wrong key or an altered value fails
//! loudly instead of reading as something else.

use std::sync::Arc;

use sqlx::types::Json;

use super::*;
use crate::secrets::{SecretKeys, SecretsError, is_sealed};
use crate::target::CredentialSecret;

on_both!(secrets_in_clear_are_sealed_and_keys_rotate);

/// Every value of the secret columns, as stored, as text.
async fn stored_secrets(store: &Store) -> Vec<String> {
    let blobs: Vec<Option<Vec<u8>>> = with_pool!(store, read, |pool| {
        sqlx::query_scalar(
            "SELECT secret FROM credentials UNION ALL SELECT secret FROM signing_keys \
             UNION ALL SELECT auth_key FROM snmp_users UNION ALL SELECT priv_key FROM snmp_users",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    });
    let communities: Vec<String> = with_pool!(store, read, |pool| {
        sqlx::query_scalar("SELECT community FROM snmp_communities")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    let settings: Vec<Json<serde_json::Value>> = with_pool!(store, read, |pool| {
        sqlx::query_scalar("SELECT settings FROM addon_settings")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    blobs
        .into_iter()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .chain(communities)
        .chain(settings.into_iter().map(|Json(v)| {
            v.get("sealed")
                .and_then(|s| s.as_str())
                .map_or_else(|| v.to_string(), str::to_owned)
        }))
        .collect()
}

async fn secrets_in_clear_are_sealed_and_keys_rotate(db: TestDb) {
    let store = &db.store;
    install(store, ADDON).await;
    let credential = CredentialSecret::SnmpCommunity {
        community: "poll-community".into(),
    };
    store
        .set_credential("c1", &credential, now())
        .await
        .unwrap();
    store
        .snmp_set_community("lab", "trap-community", now())
        .await
        .unwrap();
    let user = crate::inbound::trap::credentials::user_record(
        "u1",
        Some(("sha".parse().unwrap(), "auth-password")),
        None,
    )
    .unwrap();
    store.snmp_set_user(&user, now()).await.unwrap();
    let settings = serde_json::json!({"webhook": {"auth": {"mode": "token", "secret": "tok"}}});
    store
        .set_addon_settings(ADDON, &settings, now())
        .await
        .unwrap();
    let signing_key = vec![7u8; 32];
    // Put everything back in clear, as an older version wrote it.
    with_pool!(store, write, |pool| {
        sqlx::query("UPDATE credentials SET secret = $1")
            .bind(credential.to_stored())
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("UPDATE snmp_communities SET community = 'trap-community'")
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("UPDATE snmp_users SET auth_key = $1")
            .bind(user.auth_key.clone())
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("UPDATE addon_settings SET settings = $1")
            .bind(Json(&settings))
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO signing_keys (kid, secret, created_at) VALUES ('k1', $1, $2)")
            .bind(&signing_key)
            .bind(now())
            .execute(pool)
            .await
            .unwrap();
    });
    assert!(stored_secrets(store).await.iter().all(|s| !is_sealed(s)));

    // Rows in clear read as they are until sealed; sealing writes each once.
    assert_eq!(store.seal_secrets().await.unwrap(), 5);
    assert_eq!(store.seal_secrets().await.unwrap(), 0);
    let stored = stored_secrets(store).await;
    assert!(stored.iter().all(|s| is_sealed(s)), "{stored:?}");
    if let Some(path) = db.url.strip_prefix("sqlite://") {
        // No copy in clear is left in the file's free pages or the WAL (sealing vacuums).
        let mut bytes = std::fs::read(path).unwrap();
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        for secret in ["trap-community", "poll-community"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "`{secret}` is still in the SQLite file"
            );
        }
    }
    let reads_back = async |store: &Store| {
        assert_eq!(
            store.credential_secret("c1").await.unwrap(),
            Some(credential.clone())
        );
        assert_eq!(
            store.snmp_communities().await.unwrap()[0].community,
            "trap-community"
        );
        assert_eq!(store.snmp_users().await.unwrap()[0].auth_key, user.auth_key);
        assert_eq!(
            store.addon_settings(ADDON).await.unwrap(),
            Some(settings.clone())
        );
        assert_eq!(
            store.signing_keys().await.unwrap()[0].secret(),
            &signing_key[..]
        );
    };
    reads_back(store).await;

    // A community is accepted under one label only, sealed or not.
    assert!(matches!(
        store
            .snmp_set_community("other", "trap-community", now())
            .await,
        Err(StoreError::Conflict(_))
    ));

    // A rotation: connecting with the new key first and the old one second re-seals
    // everything; the new key alone then reads everything, the old one nothing.
    let old = crate::testing::secret_keys();
    let both = (*old).clone().rotated_to(SecretKeys::generate());
    let new_id = both.current_id().to_owned();
    let rotating = Store::connect(&db.url, Arc::new(both.clone()))
        .await
        .unwrap();
    rotating.close().await;
    let rotated = Store::connect(&db.url, Arc::new(both.current_only()))
        .await
        .unwrap();
    let stored = stored_secrets(&rotated).await;
    assert!(
        stored
            .iter()
            .all(|s| s.starts_with(&format!("enc:v1:{new_id}:"))),
        "{stored:?}"
    );
    reads_back(&rotated).await;
    match Store::connect(&db.url, old).await {
        Err(StoreError::Secrets(SecretsError::UnknownKey { kid, .. })) => assert_eq!(kid, new_id),
        other => panic!("the old key alone opened the database: {other:?}"),
    }

    // A sealed value moved to another column does not open there.
    with_pool!(rotated, write, |pool| {
        sqlx::query("UPDATE credentials SET secret = (SELECT secret FROM signing_keys)")
            .execute(pool)
            .await
            .unwrap();
    });
    assert!(matches!(
        rotated.credential_secret("c1").await,
        Err(StoreError::Secrets(SecretsError::Malformed(_)))
    ));
    rotated.close().await;
}
