//! Trap receiver credentials between the store and the SNMP layer: loading them, turning an
//! operator's passwords into stored keys, and reloading running listeners when they change.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::snmp::{AuthProtocol, Credentials, PrivProtocol, Receiver, UsmError, UsmUser};
use crate::store::{SnmpUserRecord, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("SNMPv3 user `{user}`: {message}")]
    BadUser { user: String, message: String },
    #[error(transparent)]
    Usm(#[from] UsmError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the CLI stores for a new user: the passwords become Ku (RFC 3414 password-to-key) here
/// and are not kept.
pub fn user_record(
    name: &str,
    auth: Option<(AuthProtocol, &str)>,
    privacy: Option<(PrivProtocol, &str)>,
) -> Result<SnmpUserRecord, CredentialError> {
    let user = UsmUser::from_passwords(name, auth, privacy)?;
    Ok(SnmpUserRecord {
        name: user.name.clone(),
        auth_protocol: user.auth.as_ref().map(|(p, _)| p.to_string()),
        auth_key: user.auth.map(|(_, key)| key),
        priv_protocol: user.privacy.as_ref().map(|(p, _)| p.to_string()),
        priv_key: user.privacy.map(|(_, key)| key),
    })
}

/// Loads every community and user from the store.
pub async fn load(store: &Store) -> Result<Credentials, CredentialError> {
    let communities = store
        .snmp_communities()
        .await?
        .into_iter()
        .map(|c| c.community)
        .collect();
    let mut users = Vec::new();
    for record in store.snmp_users().await? {
        let bad = |message: String| CredentialError::BadUser {
            user: record.name.clone(),
            message,
        };
        let auth = match (&record.auth_protocol, &record.auth_key) {
            (Some(p), Some(key)) => Some((
                p.parse::<AuthProtocol>().map_err(|e| bad(e.to_string()))?,
                key.clone(),
            )),
            _ => None,
        };
        let privacy = match (&record.priv_protocol, &record.priv_key) {
            (Some(p), Some(key)) => Some((
                p.parse::<PrivProtocol>().map_err(|e| bad(e.to_string()))?,
                key.clone(),
            )),
            _ => None,
        };
        users.push(UsmUser {
            name: record.name.clone(),
            auth,
            privacy,
        });
    }
    Ok(Credentials { communities, users })
}

/// Reloads the receiver's credentials whenever the store's credential generation moves.
pub async fn watch_credentials(
    store: Store,
    receiver: Arc<Receiver>,
    interval: Duration,
    mut seen: i64,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let generation = match store.snmp_credentials_generation().await {
            Ok(g) if g != seen => g,
            Ok(_) => continue,
            Err(error) => {
                warn!(%error, "cannot read SNMP credential generation");
                continue;
            }
        };
        match load(&store).await {
            Ok(credentials) => {
                info!(
                    communities = credentials.communities.len(),
                    users = credentials.users.len(),
                    "SNMP credentials reloaded"
                );
                receiver.set_credentials(credentials);
                seen = generation;
            }
            Err(error) => warn!(%error, "SNMP credentials not reloaded"),
        }
    }
}
