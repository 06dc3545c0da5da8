//! Trap receiver credentials between the store and the SNMP layer: loading them, turning an
//! operator's passwords into stored keys, and reloading running listeners when they change.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tracing::info;

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
/// `loaded` is the generation the receiver's credentials reflect now.
pub async fn watch_credentials(
    store: Store,
    receiver: Arc<Receiver>,
    interval: Duration,
    loaded: i64,
    shutdown: watch::Receiver<bool>,
) {
    let loaded = &AtomicI64::new(loaded);
    let (store, receiver) = (&store, &receiver);
    crate::generation::follow(
        "SNMP credentials",
        interval,
        crate::generation::on_shutdown(shutdown),
        || loaded.load(Ordering::Acquire),
        || store.snmp_credentials_generation(),
        |generation| async move {
            let credentials = load(store).await?;
            info!(
                communities = credentials.communities.len(),
                users = credentials.users.len(),
                "SNMP credentials reloaded"
            );
            receiver.set_credentials(credentials);
            loaded.store(generation, Ordering::Release);
            Ok::<_, CredentialError>(())
        },
    )
    .await;
}
