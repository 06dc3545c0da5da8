//! Our SNMP engine's identity: the engine ID (RFC 3411), generated and persisted on first
//! start unless configured, and the boot counter, incremented at every start. Both matter for
//! SNMPv3 INFORMs, for which the receiver is the authoritative engine.

use std::hash::{BuildHasher, RandomState};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::{Store, StoreError};

const ENGINE_ID_KEY: &str = "snmp.engine_id";
const ENGINE_BOOTS_KEY: &str = "snmp.engine_boots";

#[derive(Debug, thiserror::Error)]
pub enum EngineIdError {
    #[error("snmp engine id `{0}` is not 5 to 32 bytes of hex")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parses an engine ID written as hex, with or without `0x` and `:` separators.
pub fn parse_engine_id(text: &str) -> Result<Vec<u8>, EngineIdError> {
    let cleaned: String = text
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    match hex::decode(&cleaned) {
        Ok(bytes) if (5..=32).contains(&bytes.len()) => Ok(bytes),
        _ => Err(EngineIdError::Invalid(text.to_owned())),
    }
}

/// A new engine ID in RFC 3411 format 5 (administratively assigned octets): the enterprise
/// field with its high bit set, format byte 5, then 8 random bytes. OpsConductor has no IANA
/// enterprise number, so the enterprise field is 0; the random part is what makes it unique.
fn generate_engine_id() -> Vec<u8> {
    let mut id = vec![0x80, 0x00, 0x00, 0x00, 0x05];
    // RandomState is seeded from the OS's randomness per instance; hashing the time with it
    // gives 8 unpredictable bytes without another dependency.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let random = RandomState::new().hash_one((nanos, std::process::id()));
    id.extend_from_slice(&random.to_be_bytes());
    id
}

/// The engine ID to use: the configured one, else the stored one, else a new one (stored).
pub async fn engine_id(store: &Store, configured: Option<&str>) -> Result<Vec<u8>, EngineIdError> {
    if let Some(text) = configured {
        return parse_engine_id(text);
    }
    if let Some(text) = store.get_setting(ENGINE_ID_KEY).await? {
        return parse_engine_id(&text);
    }
    let id = generate_engine_id();
    store
        .set_setting(ENGINE_ID_KEY, &hex::encode(&id), chrono::Utc::now())
        .await?;
    Ok(id)
}

/// Counts one more start and returns it (RFC 3414 snmpEngineBoots, 1 on the first start).
pub async fn next_boots(store: &Store) -> Result<u32, StoreError> {
    let previous: u32 = store
        .get_setting(ENGINE_BOOTS_KEY)
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // 2^31-1 is the RFC's "latched" maximum: an engine that reaches it needs a new engine ID.
    let boots = previous.saturating_add(1).min(i32::MAX as u32);
    store
        .set_setting(ENGINE_BOOTS_KEY, &boots.to_string(), chrono::Utc::now())
        .await?;
    Ok(boots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_ids_parse_in_common_spellings() {
        let want = vec![0x80, 0, 0x1f, 0x88, 0x80, 1];
        for text in ["80001f888001", "0x80001f888001", "80:00:1f:88:80:01"] {
            assert_eq!(parse_engine_id(text).unwrap(), want, "{text}");
        }
        for bad in ["", "8000", "zz", &"00".repeat(33)] {
            assert!(parse_engine_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_ids_are_format_5_and_distinct() {
        let a = generate_engine_id();
        let b = generate_engine_id();
        assert_eq!(a.len(), 13);
        assert_eq!(&a[..5], &[0x80, 0, 0, 0, 5]);
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn engine_id_persists_and_boots_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(
            &crate::testing::sqlite_url(dir.path()).await,
            crate::testing::secret_keys(),
        )
        .await
        .unwrap();
        let first = engine_id(&store, None).await.unwrap();
        assert_eq!(engine_id(&store, None).await.unwrap(), first);
        assert_eq!(
            engine_id(&store, Some("0x8000000001020304")).await.unwrap(),
            vec![0x80, 0, 0, 0, 1, 2, 3, 4]
        );
        assert_eq!(next_boots(&store).await.unwrap(), 1);
        assert_eq!(next_boots(&store).await.unwrap(), 2);
    }
}
