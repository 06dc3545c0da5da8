//! Sessions and their refresh tokens: a session per login, each refresh token used once (a
//! second presentation revokes the session), listing and revoking sessions.
//!
//! Refresh tokens are stored only as their SHA-256.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::audit::insert_audit;
use super::filter_query::{Bind, bind_all, build_query};
use super::{AuditOutcome, AuditRecord, Context, Store, StoreError, begin_write, parse_role, ts};
use crate::identity::{Actor, Role, action};

const SESSION_COLUMNS: &str = "s.id, s.user_id, u.username, s.created_at, s.last_used_at, \
     s.expires_at, s.revoked_at, s.revoked_reason, s.client_ip, s.user_agent";

const SESSION_AUTH_SQL: &str = "SELECT s.id AS session_id, s.user_id, u.username, u.role, \
         u.disabled AS user_disabled, s.expires_at, s.revoked_at \
     FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1";

/// A session as listings show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, schemars::JsonSchema)]
pub struct SessionInfo {
    pub id: String,
    pub user_id: i64,
    pub username: String,
    pub created_at: DateTime<Utc>,
    /// The login or the latest refresh (access tokens are not recorded: that would be a write
    /// per request).
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
    /// Where the login came from.
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl SessionInfo {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// What [`Store::sessions`] lists; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    pub user_id: Option<i64>,
    /// Only sessions neither revoked nor expired at this time.
    pub active_at: Option<DateTime<Utc>>,
}

/// A session to create at login, with its first refresh token.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: i64,
    /// For the audit entry.
    pub username: &'a str,
    pub refresh_token_sha256: &'a str,
    pub expires_at: DateTime<Utc>,
    pub client_ip: Option<String>,
    pub user_agent: Option<&'a str>,
}

/// What checking a session needs: its state and its user's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAuth {
    pub session_id: String,
    pub user_id: i64,
    pub username: String,
    /// The user's role now.
    pub role: Role,
    pub user_disabled: bool,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct SessionAuthRow {
    session_id: String,
    user_id: i64,
    username: String,
    role: String,
    user_disabled: bool,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<SessionAuthRow> for SessionAuth {
    type Error = StoreError;

    fn try_from(row: SessionAuthRow) -> Result<SessionAuth, StoreError> {
        Ok(SessionAuth {
            role: parse_role(&row.role, format_args!("user `{}`", row.username))?,
            session_id: row.session_id,
            user_id: row.user_id,
            username: row.username,
            user_disabled: row.user_disabled,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        })
    }
}

/// What presenting a refresh token came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was valid: it is now used, the next one is stored, and the session extended.
    Rotated(SessionAuth),
    /// The token had been used before: the session is now revoked (and the reuse audited).
    Reused(SessionAuth),
    /// No such token (never issued, or deleted after it expired).
    Unknown,
    /// The token expired unused.
    Expired,
    /// The token is valid but its session is revoked or expired, or its user disabled; nothing
    /// was changed.
    Inactive(SessionAuth),
}

impl Store {
    /// Records a successful login: the session, its first refresh token, the user's last login
    /// time and the audit entry. Also deletes the user's sessions that ended (expired or were
    /// revoked) before `forget_ended_before`, so that they do not pile up.
    pub async fn create_session(
        &self,
        session: &NewSession<'_>,
        actor: &Actor,
        now: DateTime<Utc>,
        forget_ended_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "creating a session";
        let at = ts(now);
        let record = AuditRecord::new(
            actor,
            action::LOGIN,
            Some(format!("user:{}", session.username)),
            AuditOutcome::Success,
        )
        .after(json!({ "session": session.id }));
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            sqlx::query(
                "DELETE FROM sessions WHERE user_id = $1 AND (expires_at < $2 OR revoked_at < $2)",
            )
            .bind(session.user_id)
            .bind(ts(forget_ended_before))
            .execute(&mut *tx)
            .await
            .context(OP)?;
            sqlx::query(
                "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, \
                     client_ip, user_agent) VALUES ($1, $2, $3, $3, $4, $5, $6)",
            )
            .bind(session.id)
            .bind(session.user_id)
            .bind(at)
            .bind(ts(session.expires_at))
            .bind(session.client_ip.as_deref())
            .bind(session.user_agent)
            .execute(&mut *tx)
            .await
            .context(OP)?;
            sqlx::query(
                "INSERT INTO refresh_tokens (token_sha256, session_id, issued_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(session.refresh_token_sha256)
            .bind(session.id)
            .bind(at)
            .bind(ts(session.expires_at))
            .execute(&mut *tx)
            .await
            .context(OP)?;
            sqlx::query("UPDATE users SET last_login_at = $2 WHERE id = $1")
                .bind(session.user_id)
                .bind(at)
                .execute(&mut *tx)
                .await
                .context(OP)?;
            insert_audit!(&mut *tx, &record, at, OP);
            tx.commit().await.context(OP)?;
        });
        Ok(())
    }

    /// Whether a refresh token with this digest exists (used or not), read without a write
    /// transaction.
    pub async fn refresh_token_known(&self, token_sha256: &str) -> Result<bool, StoreError> {
        let found: Option<String> = with_pool!(self, read, |pool| {
            sqlx::query_scalar("SELECT session_id FROM refresh_tokens WHERE token_sha256 = $1")
                .bind(token_sha256)
                .fetch_optional(pool)
                .await
                .context("looking up a refresh token")?
        });
        Ok(found.is_some())
    }

    /// Uses the refresh token whose SHA-256 is `presented`: marks it used, stores the next one
    /// (`next`, valid until `next_expires_at`, which the session's expiry follows) and returns
    /// the session. A token presented after it was used means it was copied: the session is
    /// revoked and the reuse audited as done by `actor`.
    ///
    /// The claim is one conditional `UPDATE`, so of two concurrent presentations of one token
    /// exactly one rotates it and the other sees it used, on both databases.
    ///
    /// `session_lifetime` bounds the session from its creation: the new token and the session
    /// expire at `next_expires_at` or then, whichever is earlier, and a session past it is not
    /// refreshed.
    pub async fn rotate_refresh_token(
        &self,
        presented: &str,
        next: &str,
        next_expires_at: DateTime<Utc>,
        session_lifetime: chrono::Duration,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<RefreshOutcome, StoreError> {
        const OP: &str = "rotating a refresh token";
        let at = ts(now);
        let mut next_expires_at = ts(next_expires_at);
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let claimed: Option<String> = sqlx::query_scalar(
                "UPDATE refresh_tokens SET used_at = $2 \
                 WHERE token_sha256 = $1 AND used_at IS NULL AND expires_at > $2 \
                 RETURNING session_id",
            )
            .bind(presented)
            .bind(at)
            .fetch_optional(&mut *tx)
            .await
            .context(OP)?;
            let Some(session_id) = claimed else {
                let found: Option<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
                    "SELECT session_id, used_at FROM refresh_tokens WHERE token_sha256 = $1",
                )
                .bind(presented)
                .fetch_optional(&mut *tx)
                .await
                .context(OP)?;
                let session_id = match found {
                    None => return Ok(RefreshOutcome::Unknown),
                    Some((_, None)) => return Ok(RefreshOutcome::Expired),
                    Some((session_id, Some(_used))) => session_id,
                };
                sqlx::query(
                    "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
                     WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(&session_id)
                .bind(at)
                .bind("refresh token reuse")
                .execute(&mut *tx)
                .await
                .context(OP)?;
                let row: SessionAuthRow = sqlx::query_as(SESSION_AUTH_SQL)
                    .bind(&session_id)
                    .fetch_one(&mut *tx)
                    .await
                    .context(OP)?;
                let session = SessionAuth::try_from(row)?;
                let record = AuditRecord::new(
                    actor,
                    action::REFRESH_REUSE,
                    Some(format!("session:{session_id}")),
                    AuditOutcome::Failure,
                )
                .after(json!({ "user": session.username, "session_revoked": true }));
                insert_audit!(&mut *tx, &record, at, OP);
                tx.commit().await.context(OP)?;
                return Ok(RefreshOutcome::Reused(session));
            };
            let row: SessionAuthRow = sqlx::query_as(SESSION_AUTH_SQL)
                .bind(&session_id)
                .fetch_one(&mut *tx)
                .await
                .context(OP)?;
            let mut session = SessionAuth::try_from(row)?;
            let created_at: DateTime<Utc> =
                sqlx::query_scalar("SELECT created_at FROM sessions WHERE id = $1")
                    .bind(&session_id)
                    .fetch_one(&mut *tx)
                    .await
                    .context(OP)?;
            next_expires_at = next_expires_at.min(ts(created_at + session_lifetime));
            if next_expires_at <= at {
                // Past its absolute lifetime: the session ends here.
                session.expires_at = next_expires_at;
                return Ok(RefreshOutcome::Inactive(session));
            }
            if session.revoked_at.is_some() || session.expires_at <= at || session.user_disabled {
                // Dropping the transaction leaves the token unused.
                return Ok(RefreshOutcome::Inactive(session));
            }
            sqlx::query(
                "INSERT INTO refresh_tokens (token_sha256, session_id, issued_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(next)
            .bind(&session_id)
            .bind(at)
            .bind(next_expires_at)
            .execute(&mut *tx)
            .await
            .context(OP)?;
            sqlx::query("UPDATE sessions SET last_used_at = $2, expires_at = $3 WHERE id = $1")
                .bind(&session_id)
                .bind(at)
                .bind(next_expires_at)
                .execute(&mut *tx)
                .await
                .context(OP)?;
            // Expired tokens can no longer be presented usefully, so reuse of them need not be
            // detected: keeping only live ones bounds the table per session.
            sqlx::query("DELETE FROM refresh_tokens WHERE session_id = $1 AND expires_at <= $2")
                .bind(&session_id)
                .bind(at)
                .execute(&mut *tx)
                .await
                .context(OP)?;
            tx.commit().await.context(OP)?;
            session.expires_at = next_expires_at;
            Ok(RefreshOutcome::Rotated(session))
        })
    }

    /// A session and its user's state, for checking an access token.
    pub async fn session_auth(&self, session_id: &str) -> Result<Option<SessionAuth>, StoreError> {
        let row: Option<SessionAuthRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(SESSION_AUTH_SQL)
                .bind(session_id)
                .fetch_optional(pool)
                .await
                .context("reading a session")?
        });
        row.map(SessionAuth::try_from).transpose()
    }

    /// One session.
    pub async fn session(&self, session_id: &str) -> Result<Option<SessionInfo>, StoreError> {
        with_pool!(self, read, |pool| {
            sqlx::query_as(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.id = $1"
            ))
            .bind(session_id)
            .fetch_optional(pool)
            .await
            .context("reading a session")
        })
    }

    /// Sessions matching `filter`, newest first.
    pub async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionInfo>, StoreError> {
        let mut conditions = Vec::new();
        if let Some(user_id) = filter.user_id {
            conditions.push(("s.user_id = ?", Bind::Int(user_id)));
        }
        if let Some(at) = filter.active_at {
            conditions.push((
                "s.revoked_at IS NULL AND s.expires_at > ?",
                Bind::Time(ts(at)),
            ));
        }
        let (sql, binds) = build_query(
            &format!("SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id"),
            conditions,
            "ORDER BY s.created_at DESC, s.id",
            vec![],
        );
        with_pool!(self, read, |pool| {
            bind_all!(sqlx::query_as(&sql), binds)
                .fetch_all(pool)
                .await
                .context("listing sessions")
        })
    }

    /// Revokes a session (`reason` is recorded on it, `action` names the audit entry). Returns
    /// false, changing nothing, when it was already revoked; [`StoreError::NotFound`] if there
    /// is no such session.
    pub async fn revoke_session(
        &self,
        session_id: &str,
        reason: &str,
        action: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const OP: &str = "revoking a session";
        let at = ts(now);
        let record = AuditRecord::new(
            actor,
            action,
            Some(format!("session:{session_id}")),
            AuditOutcome::Success,
        )
        .after(json!({ "reason": reason }));
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let revoked: Option<i64> = sqlx::query_scalar(
                "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
                 WHERE id = $1 AND revoked_at IS NULL RETURNING user_id",
            )
            .bind(session_id)
            .bind(at)
            .bind(reason)
            .fetch_optional(&mut *tx)
            .await
            .context(OP)?;
            if revoked.is_none() {
                let exists: Option<String> =
                    sqlx::query_scalar("SELECT id FROM sessions WHERE id = $1")
                        .bind(session_id)
                        .fetch_optional(&mut *tx)
                        .await
                        .context(OP)?;
                return exists.map(|_| false).ok_or(StoreError::NotFound);
            }
            insert_audit!(&mut *tx, &record, at, OP);
            tx.commit().await.context(OP)?;
            Ok(true)
        })
    }
}
