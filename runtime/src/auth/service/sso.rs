//! Signing in through an OpenID Connect provider ([`crate::oidc`]): the sign-in's state kept in
//! the store between the redirect and the callback, the person the provider vouched for
//! recorded as a user of source `oidc` with the role their groups map to, and every attempt
//! audited like a password login.

use chrono::Duration;
use serde_json::json;

use super::{Auth, TokenPair};
use crate::auth::{AuthError, MAX_NAME_CHARS, normalize_username};
use crate::identity::{Actor, ClientInfo, Role, action, sha256_hex};
use crate::oidc::{Oidc, OidcError};
use crate::store::{AuditOutcome, AuditRecord, OIDC_SOURCE, PendingOidcLogin, StoreError};

/// What the provider's redirect brought back to the callback.
pub struct ProviderAnswer<'a> {
    /// The `state` parameter.
    pub state: &'a str,
    /// The state this browser was given when it started the sign-in (its cookie).
    pub browser_state: Option<&'a str>,
    pub code: Option<&'a str>,
    /// The provider's `error` parameter when it sent no code (`access_denied`, …).
    pub provider_error: Option<&'a str>,
}

/// How long a person may take at the provider before the sign-in expires.
const SIGN_IN_LIFETIME: Duration = Duration::minutes(10);

impl Auth {
    /// Starts a sign-in: records its state, nonce and PKCE verifier and returns the provider's
    /// authorization URL and the state, which the caller binds to the browser.
    pub async fn begin_oidc(&self, oidc: &Oidc) -> Result<(String, String), AuthError> {
        let begun = oidc.begin().await.map_err(|e| self.provider_error(e))?;
        let now = self.now();
        self.store()
            .put_oidc_login(
                &sha256_hex(&begun.state),
                &PendingOidcLogin {
                    nonce: begun.nonce,
                    pkce_verifier: begun.pkce_verifier,
                },
                now,
                now + SIGN_IN_LIFETIME,
            )
            .await?;
        Ok((begun.authorize_url, begun.state))
    }

    /// Finishes the sign-in that `answer.state` names (once: the state is used up) with the
    /// provider's code: a new session for the person, whose user is created or brought in step
    /// with their groups. A failure is audited with its reason and answers
    /// [`AuthError::InvalidCredentials`], or [`AuthError::Unavailable`] when the provider does
    /// not answer.
    pub async fn login_oidc(
        &self,
        oidc: &Oidc,
        answer: &ProviderAnswer<'_>,
        client: &ClientInfo,
    ) -> Result<TokenPair, AuthError> {
        let now = self.now();
        let failed = |who: &str, reason: String| {
            let who: String = who.chars().take(MAX_NAME_CHARS).collect();
            AuditRecord::new(
                &Actor::anonymous(client.ip),
                action::LOGIN,
                Some(format!("user:{who}")),
                AuditOutcome::Failure,
            )
            .after(json!({ "reason": reason, "via": OIDC_SOURCE }))
        };
        let pending = self
            .store()
            .take_oidc_login(&sha256_hex(answer.state), now)
            .await?;
        let refused = match (&pending, answer.code) {
            (None, _) => Some("unknown, used or expired sign-in state".to_owned()),
            // Login CSRF: a code obtained by someone else, sent to this browser.
            (Some(_), _) if answer.browser_state != Some(answer.state) => {
                Some("the sign-in was started in another browser".to_owned())
            }
            (Some(_), None) => Some(format!(
                "the provider answered `{}`",
                answer.provider_error.unwrap_or("no code")
            )),
            (Some(_), Some(_)) => None,
        };
        let (Some(pending), Some(code), None) = (pending, answer.code, refused.as_ref()) else {
            let reason = refused.unwrap_or_default();
            self.store().append_audit(&failed("", reason), now).await?;
            return Err(AuthError::InvalidCredentials);
        };
        let person = match oidc
            .finish(code, &pending.nonce, &pending.pkce_verifier)
            .await
        {
            Ok(person) => person,
            Err(e) => {
                let who = match &e {
                    OidcError::NoRole { username, .. } => username.clone(),
                    _ => String::new(),
                };
                let reason = match &e {
                    OidcError::NoRole { .. } => "in no group that maps to a role".to_owned(),
                    other => other.to_string(),
                };
                self.store()
                    .append_audit(&failed(&who, reason), now)
                    .await?;
                return Err(self.provider_error(e));
            }
        };
        let Ok(name) = normalize_username(&person.username) else {
            let reason = "the provider's user name is not a valid user name".to_owned();
            let record = failed(&person.username, reason);
            self.store().append_audit(&record, now).await?;
            return Err(AuthError::InvalidCredentials);
        };
        let role: Role = person
            .role
            .parse()
            .map_err(|e| AuthError::Config(format!("oidc group_roles: {e}")))?;
        let user = match self
            .store()
            .sync_external_user(&name, OIDC_SOURCE, role, &Actor::system(), now)
            .await
        {
            Ok(user) => user,
            Err(StoreError::Conflict(_)) => {
                let reason = "a user of another source has this name".to_owned();
                self.store()
                    .append_audit(&failed(&name, reason), now)
                    .await?;
                return Err(AuthError::InvalidCredentials);
            }
            Err(e) => return Err(e.into()),
        };
        if user.disabled {
            let reason = "user disabled".to_owned();
            self.store()
                .append_audit(&failed(&name, reason), now)
                .await?;
            return Err(AuthError::InvalidCredentials);
        }
        self.start_session(user, client, now).await
    }

    /// What a provider failure means to the caller; the details go to the log.
    fn provider_error(&self, e: OidcError) -> AuthError {
        match e {
            OidcError::Unavailable(why) => {
                tracing::error!(error = %why, "oidc sign-in: the identity provider is unavailable");
                AuthError::Unavailable(
                    "the identity provider is unavailable; try again later".to_owned(),
                )
            }
            OidcError::Config(why) => {
                tracing::error!(error = %why, "oidc sign-in: configuration");
                AuthError::Config(why)
            }
            OidcError::Rejected(why) => {
                tracing::warn!(error = %why, "oidc sign-in refused");
                AuthError::InvalidCredentials
            }
            OidcError::NoRole { .. } => AuthError::InvalidCredentials,
        }
    }
}
