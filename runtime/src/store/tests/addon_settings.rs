//! Addon settings on both databases: read, replace, refused for unknown addons and non-objects,
//! the addon generation moving with every write (and only then), kept across a reinstall, gone
//! with their addon.

use super::*;

on_both!(
    addon_settings_roundtrip_and_move_the_generation,
    addon_settings_survive_reinstall_and_go_with_their_addon,
);

fn hmac_settings(secret: &str) -> serde_json::Value {
    json!({
        "webhook": {
            "auth": { "mode": "hmac", "secret": secret, "tolerance_seconds": 300 },
            "allow_cidrs": ["10.0.0.0/8", "::1/128"]
        }
    })
}

async fn addon_settings_roundtrip_and_move_the_generation(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    install(&store, OTHER_ADDON).await;
    let generation = store.addons_generation().await.unwrap();
    assert_eq!(store.addon_settings(ADDON).await.unwrap(), None);
    assert!(store.all_addon_settings().await.unwrap().is_empty());

    let first = hmac_settings("0123456789abcdef-first");
    store
        .set_addon_settings(ADDON, &first, now())
        .await
        .unwrap();
    assert_eq!(store.addons_generation().await.unwrap(), generation + 1);
    assert_eq!(
        store.addon_settings(ADDON).await.unwrap().as_ref(),
        Some(&first)
    );
    assert_eq!(store.addon_settings(OTHER_ADDON).await.unwrap(), None);

    // A replacement replaces the whole object, unicode included.
    let second =
        json!({ "webhook": { "auth": { "mode": "token", "secret": "größe-✓-0123456789" } } });
    store
        .set_addon_settings(ADDON, &second, now())
        .await
        .unwrap();
    store
        .set_addon_settings(OTHER_ADDON, &json!({}), now())
        .await
        .unwrap();
    assert_eq!(store.addons_generation().await.unwrap(), generation + 3);
    let all = store.all_addon_settings().await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[ADDON], second);
    assert_eq!(all[OTHER_ADDON], json!({}));

    // Refusals change nothing, the generation included.
    assert!(matches!(
        store.set_addon_settings("missing", &first, now()).await,
        Err(StoreError::NotFound)
    ));
    for not_an_object in [json!([1, 2]), json!("text"), json!(null)] {
        assert!(
            matches!(
                store.set_addon_settings(ADDON, &not_an_object, now()).await,
                Err(StoreError::Invalid(_))
            ),
            "{not_an_object}"
        );
    }
    assert_eq!(store.addons_generation().await.unwrap(), generation + 3);
    assert_eq!(
        store.addon_settings(ADDON).await.unwrap().as_ref(),
        Some(&second)
    );

    // `addon` reads one row of what `list_addons` lists.
    let listed = store.list_addons().await.unwrap();
    let one = store.addon(ADDON).await.unwrap().expect("installed");
    assert_eq!(Some(&one), listed.iter().find(|a| a.id == ADDON));
    assert_eq!(store.addon("missing").await.unwrap(), None);
}

async fn addon_settings_survive_reinstall_and_go_with_their_addon(db: TestDb) {
    let store = db.store;
    install(&store, ADDON).await;
    let settings = hmac_settings("0123456789abcdef-kept");
    store
        .set_addon_settings(ADDON, &settings, now())
        .await
        .unwrap();

    // An upgrade rewrites the addon's row, not what the operator set.
    store
        .upsert_addon(&addon(ADDON, "2.0.0", true), now())
        .await
        .unwrap();
    assert_eq!(
        store.addon_settings(ADDON).await.unwrap().as_ref(),
        Some(&settings)
    );

    // Nothing removes addons yet but a hand-run statement; the settings go with the addon.
    with_pool!(store, write, |pool| {
        sqlx::query("DELETE FROM addons WHERE id = $1")
            .bind(ADDON)
            .execute(pool)
            .await
            .unwrap();
    });
    assert_eq!(store.addon_settings(ADDON).await.unwrap(), None);
    assert!(store.all_addon_settings().await.unwrap().is_empty());
}
