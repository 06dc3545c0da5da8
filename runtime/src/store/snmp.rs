//! SNMP trap receiver credentials: v1/v2c communities and SNMPv3 (USM) users, and the
//! generation counter that tells running listeners to reload them.
//!
//! These rows are secrets. Nothing here logs them, and the types do not implement `Serialize`,
//! so no API handler can return them by accident.

use chrono::{DateTime, Utc};

use super::{BUMP_GENERATION_SQL, Context, Store, StoreError, begin_write, now};

/// The setting that counts credential changes, like `addons.generation` for addons.
const GENERATION_KEY: &str = "snmp.credentials_generation";

/// A v1/v2c community the trap receiver accepts, under an operator-chosen label (the label is
/// what listings show; the community itself is the secret).
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SnmpCommunity {
    pub label: String,
    pub community: String,
    pub created_at: DateTime<Utc>,
}

/// An SNMPv3 user. Keys are Ku (RFC 3414 password-to-key), protocols their lowercase names
/// (`md5`, `sha1`, `sha256`…; `des`, `aes128`).
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SnmpUserRecord {
    pub name: String,
    pub auth_protocol: Option<String>,
    pub auth_key: Option<Vec<u8>>,
    pub priv_protocol: Option<String>,
    pub priv_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for SnmpCommunity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnmpCommunity")
            .field("label", &self.label)
            .field("community", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for SnmpUserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnmpUserRecord")
            .field("name", &self.name)
            .field("auth_protocol", &self.auth_protocol)
            .field("priv_protocol", &self.priv_protocol)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Adds a community (or replaces the community under an existing label).
    pub async fn snmp_set_community(&self, label: &str, community: &str) -> Result<(), StoreError> {
        const OP: &str = "writing an SNMP community";
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let at = now();
            sqlx::query(
                "INSERT INTO snmp_communities (label, community, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (label) DO UPDATE SET community = excluded.community",
            )
            .bind(label)
            .bind(community)
            .bind(at)
            .execute(&mut *tx)
            .await
            .context(OP)?;
            sqlx::query(BUMP_GENERATION_SQL)
                .bind(GENERATION_KEY)
                .bind(at)
                .execute(&mut *tx)
                .await
                .context(OP)?;
            tx.commit().await.context(OP)?;
        });
        Ok(())
    }

    /// Removes the community with `label`; [`StoreError::NotFound`] if there is none.
    pub async fn snmp_remove_community(&self, label: &str) -> Result<(), StoreError> {
        self.delete_and_bump("DELETE FROM snmp_communities WHERE label = $1", label)
            .await
    }

    pub async fn snmp_communities(&self) -> Result<Vec<SnmpCommunity>, StoreError> {
        with_pool!(self, read, |pool| {
            sqlx::query_as(
                "SELECT label, community, created_at FROM snmp_communities ORDER BY label",
            )
            .fetch_all(pool)
            .await
            .context("reading SNMP communities")
        })
    }

    /// Adds or replaces an SNMPv3 user.
    pub async fn snmp_set_user(&self, user: &SnmpUserRecord) -> Result<(), StoreError> {
        const OP: &str = "writing an SNMPv3 user";
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let at = now();
            sqlx::query(
                "INSERT INTO snmp_users (name, auth_protocol, auth_key, priv_protocol, priv_key, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
                 ON CONFLICT (name) DO UPDATE SET auth_protocol = excluded.auth_protocol, \
                     auth_key = excluded.auth_key, priv_protocol = excluded.priv_protocol, \
                     priv_key = excluded.priv_key, updated_at = excluded.updated_at",
            )
            .bind(&user.name)
            .bind(&user.auth_protocol)
            .bind(&user.auth_key)
            .bind(&user.priv_protocol)
            .bind(&user.priv_key)
            .bind(at)
            .execute(&mut *tx)
            .await
            .context(OP)?;
            sqlx::query(BUMP_GENERATION_SQL)
                .bind(GENERATION_KEY)
                .bind(at)
                .execute(&mut *tx)
                .await
                .context(OP)?;
            tx.commit().await.context(OP)?;
        });
        Ok(())
    }

    /// Removes an SNMPv3 user; [`StoreError::NotFound`] if there is none.
    pub async fn snmp_remove_user(&self, name: &str) -> Result<(), StoreError> {
        self.delete_and_bump("DELETE FROM snmp_users WHERE name = $1", name)
            .await
    }

    pub async fn snmp_users(&self) -> Result<Vec<SnmpUserRecord>, StoreError> {
        with_pool!(self, read, |pool| {
            sqlx::query_as(
                "SELECT name, auth_protocol, auth_key, priv_protocol, priv_key \
                 FROM snmp_users ORDER BY name",
            )
            .fetch_all(pool)
            .await
            .context("reading SNMPv3 users")
        })
    }

    /// Grows with every credential change (0 before the first); listeners poll it and reload.
    pub async fn snmp_credentials_generation(&self) -> Result<i64, StoreError> {
        self.generation(GENERATION_KEY).await
    }

    async fn delete_and_bump(&self, sql: &'static str, key: &str) -> Result<(), StoreError> {
        const OP: &str = "removing an SNMP credential";
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let removed = sqlx::query(sql)
                .bind(key)
                .execute(&mut *tx)
                .await
                .context(OP)?
                .rows_affected();
            if removed == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(BUMP_GENERATION_SQL)
                .bind(GENERATION_KEY)
                .bind(now())
                .execute(&mut *tx)
                .await
                .context(OP)?;
            tx.commit().await.context(OP)?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn roundtrip(store: Store) {
        assert_eq!(store.snmp_credentials_generation().await.unwrap(), 0);
        store.snmp_set_community("lab", "public").await.unwrap();
        store.snmp_set_community("lab", "private").await.unwrap();
        let communities = store.snmp_communities().await.unwrap();
        assert_eq!(communities.len(), 1);
        assert_eq!(communities[0].community, "private");
        assert!(
            !format!("{communities:?}").contains("private"),
            "Debug leaks the community"
        );

        let user = SnmpUserRecord {
            name: "ops".into(),
            auth_protocol: Some("sha1".into()),
            auth_key: Some(vec![1; 20]),
            priv_protocol: Some("aes128".into()),
            priv_key: Some(vec![2; 20]),
        };
        store.snmp_set_user(&user).await.unwrap();
        assert_eq!(store.snmp_users().await.unwrap(), vec![user.clone()]);
        assert!(
            !format!("{user:?}").contains("[1, 1"),
            "Debug leaks the key"
        );

        let no_auth_but_priv = SnmpUserRecord {
            auth_protocol: None,
            auth_key: None,
            ..user.clone()
        };
        assert!(store.snmp_set_user(&no_auth_but_priv).await.is_err());

        assert_eq!(store.snmp_credentials_generation().await.unwrap(), 3);
        store.snmp_remove_user("ops").await.unwrap();
        store.snmp_remove_community("lab").await.unwrap();
        assert!(matches!(
            store.snmp_remove_user("ops").await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(store.snmp_credentials_generation().await.unwrap(), 5);
    }

    #[tokio::test]
    async fn credentials_roundtrip_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&crate::testing::sqlite_url(dir.path()).await)
            .await
            .unwrap();
        roundtrip(store).await;
    }

    #[tokio::test]
    async fn credentials_roundtrip_postgres() {
        let pg = crate::testing::TestPostgres::create().await.unwrap();
        let store = Store::connect(&pg.url).await.unwrap();
        roundtrip(store.clone()).await;
        store.close().await;
        pg.drop().await;
    }
}
