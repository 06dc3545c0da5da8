//! SNMP trap receiver credentials: v1/v2c communities and SNMPv3 (USM) users, and the
//! generation counter that tells running listeners to reload them.
//!
//! These rows are secrets. Nothing here logs them, and the types do not implement `Serialize`,
//! so no API handler can return them by accident.

use chrono::{DateTime, Utc};

use super::secrets::{SNMP_AUTH_KEY, SNMP_COMMUNITY, SNMP_PRIV_KEY};
use super::{BUMP_GENERATION_SQL, Context, Store, StoreError, begin_write, ts};
use crate::snmp::replay::{EngineClock, ReplayChanges, SeenDigest};

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
    pub async fn snmp_set_community(
        &self,
        label: &str,
        community: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "writing an SNMP community";
        if label.is_empty() || label.len() > 64 {
            return Err(StoreError::Invalid(
                "a community's label is 1 to 64 characters".to_owned(),
            ));
        }
        if community.is_empty() || community.len() > 255 {
            return Err(StoreError::Invalid(
                "a community is 1 to 255 characters".to_owned(),
            ));
        }
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            // Sealed communities differ even when equal, so the database cannot hold them
            // unique: the check is here, inside the write transaction.
            let others: Vec<(String, String)> =
                sqlx::query_as("SELECT label, community FROM snmp_communities WHERE label <> $1")
                    .bind(label)
                    .fetch_all(&mut *tx)
                    .await
                    .context(OP)?;
            for (other, stored) in others {
                if self.open_text(SNMP_COMMUNITY, &stored)? == community {
                    return Err(StoreError::Conflict(format!(
                        "that community is already accepted under the label `{other}`"
                    )));
                }
            }
            let at = ts(now);
            sqlx::query(
                "INSERT INTO snmp_communities (label, community, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (label) DO UPDATE SET community = excluded.community",
            )
            .bind(label)
            .bind(self.seal_text(SNMP_COMMUNITY, community))
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
    pub async fn snmp_remove_community(
        &self,
        label: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.delete_and_bump("DELETE FROM snmp_communities WHERE label = $1", label, now)
            .await
    }

    pub async fn snmp_communities(&self) -> Result<Vec<SnmpCommunity>, StoreError> {
        let rows: Vec<SnmpCommunity> = with_pool!(self, read, |pool| {
            sqlx::query_as(
                "SELECT label, community, created_at FROM snmp_communities ORDER BY label",
            )
            .fetch_all(pool)
            .await
            .context("reading SNMP communities")?
        });
        rows.into_iter()
            .map(|mut row| {
                row.community = self.open_text(SNMP_COMMUNITY, &row.community)?;
                Ok(row)
            })
            .collect()
    }

    /// Adds or replaces an SNMPv3 user.
    pub async fn snmp_set_user(
        &self,
        user: &SnmpUserRecord,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "writing an SNMPv3 user";
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let at = ts(now);
            sqlx::query(
                "INSERT INTO snmp_users (name, auth_protocol, auth_key, priv_protocol, priv_key, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
                 ON CONFLICT (name) DO UPDATE SET auth_protocol = excluded.auth_protocol, \
                     auth_key = excluded.auth_key, priv_protocol = excluded.priv_protocol, \
                     priv_key = excluded.priv_key, updated_at = excluded.updated_at",
            )
            .bind(&user.name)
            .bind(&user.auth_protocol)
            .bind(
                user.auth_key
                    .as_ref()
                    .map(|k| self.seal_bytes(SNMP_AUTH_KEY, k)),
            )
            .bind(&user.priv_protocol)
            .bind(
                user.priv_key
                    .as_ref()
                    .map(|k| self.seal_bytes(SNMP_PRIV_KEY, k)),
            )
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
    pub async fn snmp_remove_user(&self, name: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.delete_and_bump("DELETE FROM snmp_users WHERE name = $1", name, now)
            .await
    }

    pub async fn snmp_users(&self) -> Result<Vec<SnmpUserRecord>, StoreError> {
        let rows: Vec<SnmpUserRecord> = with_pool!(self, read, |pool| {
            sqlx::query_as(
                "SELECT name, auth_protocol, auth_key, priv_protocol, priv_key \
                 FROM snmp_users ORDER BY name",
            )
            .fetch_all(pool)
            .await
            .context("reading SNMPv3 users")?
        });
        rows.into_iter()
            .map(|mut row| {
                row.auth_key = row
                    .auth_key
                    .map(|k| self.open_bytes(SNMP_AUTH_KEY, &k))
                    .transpose()?;
                row.priv_key = row
                    .priv_key
                    .map(|k| self.open_bytes(SNMP_PRIV_KEY, &k))
                    .transpose()?;
                Ok(row)
            })
            .collect()
    }

    /// Grows with every credential change (0 before the first); listeners poll it and reload.
    pub async fn snmp_credentials_generation(&self) -> Result<i64, StoreError> {
        self.generation(GENERATION_KEY).await
    }

    async fn delete_and_bump(
        &self,
        sql: &'static str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
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
                .bind(ts(now))
                .execute(&mut *tx)
                .await
                .context(OP)?;
            tx.commit().await.context(OP)?;
        });
        Ok(())
    }
}

/// What the database holds of the trap listener's replay state (snmp/replay.rs) for a node to
/// import, and how far it has read.
#[derive(Debug, Default)]
pub struct ReplayRead {
    pub state: ReplayChanges,
    /// The largest digest id read: the next read starts after it.
    pub last_digest_id: i64,
}

impl Store {
    /// Records remote engines' clocks (each only moves forward: a later boots, or the same
    /// boots observed later) and the digests of accepted traps, in one transaction.
    pub async fn snmp_record_replay(
        &self,
        changes: &ReplayChanges,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "recording SNMPv3 replay state";
        if changes.is_empty() {
            return Ok(());
        }
        let at = ts(now);
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            for clock in &changes.clocks {
                sqlx::query(
                    "INSERT INTO snmp_engine_clocks (engine_id, boots, engine_time, observed_at) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (engine_id) DO UPDATE SET boots = excluded.boots, \
                         engine_time = excluded.engine_time, observed_at = excluded.observed_at \
                     WHERE excluded.boots > snmp_engine_clocks.boots \
                        OR (excluded.boots = snmp_engine_clocks.boots \
                            AND excluded.observed_at > snmp_engine_clocks.observed_at)",
                )
                .bind(&clock.engine_id)
                .bind(i64::from(clock.boots))
                .bind(i64::from(clock.time))
                .bind(at)
                .execute(&mut *tx)
                .await
                .context(OP)?;
            }
            for seen in &changes.digests {
                let expires_at = at
                    + chrono::Duration::from_std(seen.remaining)
                        .unwrap_or(chrono::Duration::zero());
                sqlx::query(
                    "INSERT INTO snmp_seen_digests (digest, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (digest) DO NOTHING",
                )
                .bind(&seen.digest[..])
                .bind(super::ts(expires_at))
                .execute(&mut *tx)
                .await
                .context(OP)?;
            }
            tx.commit().await.context(OP)?;
        });
        Ok(())
    }

    /// The clocks observed since `clocks_since` and the unexpired digests recorded after the
    /// digest id `after`, as of now: a clock's time moved on by the seconds since it was
    /// observed, a digest with what remains of its time.
    pub async fn snmp_replay_state(
        &self,
        clocks_since: Option<DateTime<Utc>>,
        after: i64,
        now: DateTime<Utc>,
    ) -> Result<ReplayRead, StoreError> {
        const OP: &str = "reading SNMPv3 replay state";
        let at = ts(now);
        let since = clocks_since.unwrap_or(DateTime::UNIX_EPOCH);
        let clocks: Vec<(Vec<u8>, i64, i64, DateTime<Utc>)> = with_pool!(self, read, |pool| {
            sqlx::query_as(
                "SELECT engine_id, boots, engine_time, observed_at FROM snmp_engine_clocks \
                 WHERE observed_at >= $1",
            )
            .bind(super::ts(since))
            .fetch_all(pool)
            .await
            .context(OP)?
        });
        let digests: Vec<(i64, Vec<u8>, DateTime<Utc>)> = with_pool!(self, read, |pool| {
            sqlx::query_as(
                "SELECT id, digest, expires_at FROM snmp_seen_digests \
                 WHERE id > $1 AND expires_at > $2 ORDER BY id",
            )
            .bind(after)
            .bind(at)
            .fetch_all(pool)
            .await
            .context(OP)?
        });
        let mut read = ReplayRead {
            last_digest_id: digests.last().map_or(after, |(id, _, _)| *id),
            ..ReplayRead::default()
        };
        for (engine_id, boots, time, observed_at) in clocks {
            let elapsed = (at - observed_at).num_seconds().max(0);
            read.state.clocks.push(EngineClock {
                engine_id,
                boots: u32::try_from(boots).unwrap_or(u32::MAX),
                time: u32::try_from(time.saturating_add(elapsed)).unwrap_or(u32::MAX),
            });
        }
        for (_, digest, expires_at) in digests {
            let Ok(digest) = <[u8; 16]>::try_from(digest.as_slice()) else {
                continue;
            };
            read.state.digests.push(SeenDigest {
                digest,
                remaining: (expires_at - at).to_std().unwrap_or_default(),
            });
        }
        Ok(read)
    }

    /// Forgets the digests whose time is over; returns how many.
    pub async fn snmp_prune_replay(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        with_pool!(self, write, |pool| {
            Ok(
                sqlx::query("DELETE FROM snmp_seen_digests WHERE expires_at <= $1")
                    .bind(ts(now))
                    .execute(pool)
                    .await
                    .context("forgetting expired SNMPv3 digests")?
                    .rows_affected(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn roundtrip(store: Store) {
        assert_eq!(store.snmp_credentials_generation().await.unwrap(), 0);
        store
            .snmp_set_community("lab", "public", Utc::now())
            .await
            .unwrap();
        store
            .snmp_set_community("lab", "private", Utc::now())
            .await
            .unwrap();
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
        store.snmp_set_user(&user, Utc::now()).await.unwrap();
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
        assert!(
            store
                .snmp_set_user(&no_auth_but_priv, Utc::now())
                .await
                .is_err()
        );

        assert_eq!(store.snmp_credentials_generation().await.unwrap(), 3);
        store.snmp_remove_user("ops", Utc::now()).await.unwrap();
        store
            .snmp_remove_community("lab", Utc::now())
            .await
            .unwrap();
        assert!(matches!(
            store.snmp_remove_user("ops", Utc::now()).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(store.snmp_credentials_generation().await.unwrap(), 5);
    }

    #[tokio::test]
    async fn credentials_roundtrip_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(
            &crate::testing::sqlite_url(dir.path()).await,
            crate::testing::secret_keys(),
        )
        .await
        .unwrap();
        roundtrip(store).await;
    }

    #[tokio::test]
    async fn credentials_roundtrip_postgres() {
        let pg = crate::testing::TestPostgres::create().await.unwrap();
        let store = Store::connect(&pg.url, crate::testing::secret_keys())
            .await
            .unwrap();
        roundtrip(store.clone()).await;
        store.close().await;
        pg.drop().await;
    }
}
