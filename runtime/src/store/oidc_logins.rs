//! OpenID Connect sign-ins under way: kept from the redirect to the provider until the browser
//! returns, and taken exactly once. The PKCE verifier is sealed like every secret column.

use chrono::{DateTime, Utc};

use super::{Context, Store, StoreError, begin_write, ts};

/// The associated data of the sealed verifier.
const PKCE_VERIFIER: &str = "oidc_logins.pkce_verifier";

/// What [`Store::take_oidc_login`] gives back.
pub struct PendingOidcLogin {
    pub nonce: String,
    pub pkce_verifier: String,
}

impl Store {
    /// Records a sign-in named by `state_sha256` until `expires_at`, and forgets the expired
    /// ones (sign-ins abandoned at the provider).
    pub async fn put_oidc_login(
        &self,
        state_sha256: &str,
        login: &PendingOidcLogin,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "recording a sign-in";
        let verifier = self.seal_text(PKCE_VERIFIER, &login.pkce_verifier);
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            sqlx::query("DELETE FROM oidc_logins WHERE expires_at <= $1")
                .bind(ts(now))
                .execute(&mut *tx)
                .await
                .context(OP)?;
            sqlx::query(
                "INSERT INTO oidc_logins (state_sha256, nonce, pkce_verifier, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(state_sha256)
            .bind(&login.nonce)
            .bind(&verifier)
            .bind(ts(expires_at))
            .execute(&mut *tx)
            .await
            .context(OP)?;
            tx.commit().await.context(OP)?;
        });
        Ok(())
    }

    /// The sign-in named by `state_sha256`, removed so that it cannot be finished twice;
    /// `None` when there is none or it expired.
    pub async fn take_oidc_login(
        &self,
        state_sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingOidcLogin>, StoreError> {
        const OP: &str = "finishing a sign-in";
        let row: Option<(String, String)> = with_pool!(self, write, |pool| {
            sqlx::query_as(
                "DELETE FROM oidc_logins WHERE state_sha256 = $1 AND expires_at > $2 \
                 RETURNING nonce, pkce_verifier",
            )
            .bind(state_sha256)
            .bind(ts(now))
            .fetch_optional(pool)
            .await
            .context(OP)?
        });
        row.map(|(nonce, sealed)| {
            Ok(PendingOidcLogin {
                nonce,
                pkce_verifier: self.open_text(PKCE_VERIFIER, &sealed)?,
            })
        })
        .transpose()
    }
}
