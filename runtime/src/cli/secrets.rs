//! `opsconductor secrets …`: the key that seals the database's secrets.

use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Replaces the secrets key: generates a new key, re-seals every secret in the database
    /// with it and removes the old key from the key file. Stop every node first, and give
    /// them the new key file before starting them again.
    RotateKey,
}

/// `secrets rotate-key`. The key file holds the new key and the old one while the store
/// re-seals (connecting re-seals whatever another key sealed), and the new one alone after:
/// a crash at any step leaves a key file that opens every secret in the database.
pub(super) async fn rotate_secrets_key(config: &Config) -> anyhow::Result<()> {
    use crate::secrets::{KeySource, SecretKeys, write_key_file};
    let path = match config.secrets_key_source() {
        KeySource::File(path) => path,
        KeySource::Env(_) => anyhow::bail!(
            "the secrets key comes from {}: rotate it by setting the new key there (the old one \
             can then no longer open the database), or unset it to use a key file",
            crate::secrets::KEY_ENV
        ),
    };
    if !path.exists() {
        anyhow::bail!(
            "no secrets key file at {}: nothing to rotate",
            path.display()
        );
    }
    let old = KeySource::File(path.clone()).load()?;
    let old_ids = old.ids().join(", ");
    let both = old.rotated_to(SecretKeys::generate());
    write_key_file(&path, &both)?;
    let new_id = both.current_id().to_owned();
    let new_only = both.clone().current_only();
    let store = crate::store::Store::connect(&config.database_url, std::sync::Arc::new(both))
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", crate::server::redact_url(&config.database_url)))?;
    store.close().await;
    write_key_file(&path, &new_only)?;
    println!(
        "secrets key rotated: every secret is sealed with key {new_id}; key {old_ids} is gone \
         from {}. Give every node this file before starting it.",
        path.display()
    );
    Ok(())
}
