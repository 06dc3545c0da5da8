//! Authentication state: users, sessions and their refresh tokens, token signing keys, API keys,
//! and the audit log.
//!
//! Every change here writes its audit entry in the same transaction, so the log cannot miss a
//! change that happened nor show one that was rolled back. Secrets are stored only as hashes
//! (argon2id for passwords, SHA-256 for refresh tokens and API keys), except signing keys, which
//! must sign; no record type here carries a hash or a secret except [`UserCredentials`] (for
//! the login check) and [`SigningKey`], both with redacting `Debug` and no `Serialize`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Pool;
use sqlx::postgres::Postgres;
use sqlx::sqlite::Sqlite;
use sqlx::types::Json;

use super::{Context, Store, StoreError, begin_write, ts};
use crate::alert::UnknownVariant;
use crate::identity::{Actor, Role, SigningKey, action};

/// The columns of [`UserRow`] (a macro so that it can be `concat!`ed into the lock queries).
macro_rules! user_columns {
    () => {
        "id, username, role, source, disabled, password_hash IS NOT NULL AS has_password, \
         created_at, updated_at, password_changed_at, last_login_at"
    };
}

const API_KEY_COLUMNS: &str =
    "id, name, prefix, role, created_by, created_at, expires_at, revoked_at, last_used_at";

const SESSION_COLUMNS: &str = "s.id, s.user_id, u.username, s.created_at, s.last_used_at, \
     s.expires_at, s.revoked_at, s.revoked_reason, s.client_ip, s.user_agent";

const SESSION_AUTH_SQL: &str = "SELECT s.id AS session_id, s.user_id, u.username, u.role, \
         u.disabled AS user_disabled, s.expires_at, s.revoked_at \
     FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1";

const REVOKE_USER_SESSIONS_SQL: &str = "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
     WHERE user_id = $1 AND revoked_at IS NULL";

const COUNT_ENABLED_ADMINS_SQL: &str =
    "SELECT COUNT(*) FROM users WHERE role = 'admin' AND NOT disabled";

const INSERT_AUDIT_SQL: &str = "INSERT INTO audit_log \
     (at, actor, role, source_ip, action, target, before_state, after_state, outcome) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Appends `$record` (an [`AuditRecord`]) to the audit log through `$executor`, usually the
/// transaction of the change it describes. A macro because the body must compile once per
/// backend, like `with_pool!`'s.
macro_rules! insert_audit {
    ($executor:expr, $record:expr, $at:expr, $op:expr) => {{
        let record: &AuditRecord = $record;
        sqlx::query(INSERT_AUDIT_SQL)
            .bind($at)
            .bind(&record.actor)
            .bind(record.role.map(Role::as_str))
            .bind(record.source_ip.as_deref())
            .bind(&record.action)
            .bind(record.target.as_deref())
            .bind(record.before.as_ref().map(Json))
            .bind(record.after.as_ref().map(Json))
            .bind(record.outcome.as_str())
            .execute($executor)
            .await
            .context($op)?;
    }};
}

/// The row locks this module needs, which only PostgreSQL has to ask for: SQLite's write
/// transactions (`BEGIN IMMEDIATE`) already exclude every other writer.
trait AuthLocks: sqlx::Database {
    /// Locks every enabled administrator until the end of the transaction, so that two
    /// concurrent changes cannot each leave "another" administrator that the other one removes.
    const LOCK_ADMINS: &'static str;
    /// Reads one user (`$1` = username) and holds the row until the end of the transaction.
    const LOCK_USER: &'static str;
}

impl AuthLocks for Sqlite {
    const LOCK_ADMINS: &'static str = "SELECT id FROM users WHERE role = 'admin' AND NOT disabled";
    const LOCK_USER: &'static str = concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE username = $1"
    );
}

impl AuthLocks for Postgres {
    // Ordered, so that every transaction takes these locks in the same order.
    const LOCK_ADMINS: &'static str =
        "SELECT id FROM users WHERE role = 'admin' AND NOT disabled ORDER BY id FOR UPDATE";
    const LOCK_USER: &'static str = concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE username = $1 FOR UPDATE"
    );
}

fn lock_admins_sql<DB: AuthLocks>(_: &Pool<DB>) -> &'static str {
    DB::LOCK_ADMINS
}

fn lock_user_sql<DB: AuthLocks>(_: &Pool<DB>) -> &'static str {
    DB::LOCK_USER
}

fn parse_role(value: &str, whose: impl fmt::Display) -> Result<Role, StoreError> {
    value
        .parse()
        .map_err(|e: UnknownVariant| StoreError::Corrupt(format!("{whose}: {e}")))
}

/// The `source` of users the directory (LDAP) vouches for.
pub const DIRECTORY_SOURCE: &str = "ldap";

/// A user as listings and the API show it: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// `local` (a password here) or [`DIRECTORY_SOURCE`] (signs in through the directory).
    pub source: String,
    pub disabled: bool,
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub password_changed_at: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    role: String,
    source: String,
    disabled: bool,
    has_password: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    password_changed_at: Option<DateTime<Utc>>,
    last_login_at: Option<DateTime<Utc>>,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<User, StoreError> {
        Ok(User {
            role: parse_role(&row.role, format_args!("user `{}`", row.username))?,
            id: row.id,
            username: row.username,
            source: row.source,
            disabled: row.disabled,
            has_password: row.has_password,
            created_at: row.created_at,
            updated_at: row.updated_at,
            password_changed_at: row.password_changed_at,
            last_login_at: row.last_login_at,
        })
    }
}

/// A user with their password hash, for the login check only.
#[derive(Clone)]
pub struct UserCredentials {
    pub user: User,
    /// The argon2id PHC string; `None` when the user has no local password.
    pub password_hash: Option<String>,
}

impl fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserCredentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
struct UserCredentialsRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: Option<String>,
}

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

#[derive(sqlx::FromRow)]
struct SigningKeyRow {
    kid: String,
    secret: Vec<u8>,
    created_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
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

/// An API key as listings show it: never the key or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ApiKeyInfo {
    pub id: i64,
    pub name: String,
    /// The key's first characters, to recognise it by.
    pub prefix: String,
    pub role: Role,
    /// The actor who created it.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Updated at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: i64,
    name: String,
    prefix: String,
    role: String,
    created_by: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

impl TryFrom<ApiKeyRow> for ApiKeyInfo {
    type Error = StoreError;

    fn try_from(row: ApiKeyRow) -> Result<ApiKeyInfo, StoreError> {
        Ok(ApiKeyInfo {
            role: parse_role(&row.role, format_args!("API key `{}`", row.name))?,
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            created_by: row.created_by,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            last_used_at: row.last_used_at,
        })
    }
}

/// An API key to store: its SHA-256, never the key.
#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    pub name: &'a str,
    pub prefix: &'a str,
    pub key_sha256: &'a str,
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    Success,
    /// Refused for bad credentials or tokens (a failed login, a reused refresh token).
    Failure,
    /// Refused for want of permission.
    Denied,
}

impl AuditOutcome {
    pub const ALL: [AuditOutcome; 3] = [
        AuditOutcome::Success,
        AuditOutcome::Failure,
        AuditOutcome::Denied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Failure => "failure",
            AuditOutcome::Denied => "denied",
        }
    }
}

impl FromStr for AuditOutcome {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<AuditOutcome, UnknownVariant> {
        AuditOutcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| UnknownVariant {
                what: "outcome",
                value: s.to_owned(),
                expected: AuditOutcome::ALL.map(AuditOutcome::as_str).join(", "),
            })
    }
}

/// An entry to append to the audit log. `before` and `after` describe the change; they must
/// never hold a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub actor: String,
    pub role: Option<Role>,
    pub source_ip: Option<String>,
    /// `noun.verb`, e.g. [`action::LOGIN`].
    pub action: String,
    /// What was acted on, e.g. `user:alice`, `key:ci-bot`, `session:<id>`.
    pub target: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub outcome: AuditOutcome,
}

impl AuditRecord {
    pub fn new(
        actor: &Actor,
        action: &str,
        target: Option<String>,
        outcome: AuditOutcome,
    ) -> AuditRecord {
        AuditRecord {
            actor: actor.name.clone(),
            role: actor.role,
            source_ip: actor.source_ip.map(|ip| ip.to_string()),
            action: action.to_owned(),
            target,
            before: None,
            after: None,
            outcome,
        }
    }

    pub fn before(mut self, before: Value) -> AuditRecord {
        self.before = Some(before);
        self
    }

    pub fn after(mut self, after: Value) -> AuditRecord {
        self.after = Some(after);
        self
    }
}

/// An entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub role: Option<Role>,
    pub source_ip: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub outcome: AuditOutcome,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: DateTime<Utc>,
    actor: String,
    role: Option<String>,
    source_ip: Option<String>,
    action: String,
    target: Option<String>,
    before_state: Option<Json<Value>>,
    after_state: Option<Json<Value>>,
    outcome: String,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;

    fn try_from(row: AuditRow) -> Result<AuditEntry, StoreError> {
        let whose = format_args!("audit entry {}", row.id);
        Ok(AuditEntry {
            role: row.role.map(|r| parse_role(&r, whose)).transpose()?,
            outcome: row
                .outcome
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("{whose}: {e}")))?,
            id: row.id,
            at: row.at,
            actor: row.actor,
            source_ip: row.source_ip,
            action: row.action,
            target: row.target,
            before: row.before_state.map(|j| j.0),
            after: row.after_state.map(|j| j.0),
        })
    }
}

/// What [`Store::audit_log`] lists, newest first; `None` fields do not filter. Page with
/// `before_id` (the smallest id of the previous page). The limit is clamped to
/// 1..=[`super::LIST_LIMIT_MAX`], and 0 means [`super::LIST_LIMIT_DEFAULT`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub outcome: Option<AuditOutcome>,
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// A value bound to a dynamically built query.
enum Bind {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
}

/// `SELECT {select} WHERE <the conditions given> {tail}`, numbering the placeholders, like
/// the alert list (see `alerts::list_query` for why not `($1 IS NULL OR …)`).
fn build_query(
    select: &str,
    conditions: Vec<(&str, Bind)>,
    tail: &str,
    tail_binds: Vec<Bind>,
) -> (String, Vec<Bind>) {
    let mut sql = select.to_owned();
    let mut binds = Vec::new();
    for (i, (condition, bind)) in conditions.into_iter().enumerate() {
        binds.push(bind);
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        sql.push_str(&condition.replace('?', &format!("${}", binds.len())));
    }
    let mut tail = tail.to_owned();
    for bind in tail_binds {
        binds.push(bind);
        tail = tail.replacen('?', &format!("${}", binds.len()), 1);
    }
    sql.push(' ');
    sql.push_str(&tail);
    (sql, binds)
}

/// Binds `$binds` to `$query` in order.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                Bind::Text(text) => query.bind(text),
                Bind::Int(int) => query.bind(int),
                Bind::Time(time) => query.bind(time),
            };
        }
        query
    }};
}

/// Inserts a local user inside the write transaction `$tx`, evaluating to the new [`User`], or
/// `None` when the username is taken (`DO NOTHING` rather than catching the unique violation:
/// the loser of two concurrent inserts waits for the winner and then simply gets no row).
macro_rules! insert_user {
    ($tx:ident, $username:expr, $role:expr, $password_hash:expr, $at:expr, $op:expr) => {{
        let password_hash: Option<&str> = $password_hash;
        let row: Option<UserRow> = sqlx::query_as(concat!(
            "INSERT INTO users (username, password_hash, role, source, disabled, created_at, \
                 updated_at, password_changed_at) \
             VALUES ($1, $2, $3, 'local', FALSE, $4, $4, $5) \
             ON CONFLICT (username) DO NOTHING RETURNING ",
            user_columns!()
        ))
        .bind($username)
        .bind(password_hash)
        .bind($role.as_str())
        .bind($at)
        .bind(password_hash.map(|_| $at))
        .fetch_optional(&mut *$tx)
        .await
        .context($op)?;
        row.map(User::try_from).transpose()?
    }};
}

/// One change [`Store::change_user`] makes.
/// One change to a user, for [`Store::change_user`].
#[derive(Debug, Clone, Copy)]
pub enum UserChange<'a> {
    Disabled(bool),
    Role(Role),
    /// An argon2id PHC string; every session of the user is revoked.
    PasswordHash(&'a str),
}

impl Store {
    // ---- users ----

    /// Creates a local user (`password_hash` an argon2id PHC string, or `None` for a user who
    /// cannot sign in with a password yet). `username` must already be normalized.
    /// [`StoreError::Conflict`] when the name is taken.
    pub async fn create_user(
        &self,
        username: &str,
        role: Role,
        password_hash: Option<&str>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        const OP: &str = "creating a user";
        let at = ts(now);
        let user = with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let Some(user) = insert_user!(tx, username, role, password_hash, at, OP) else {
                return Err(StoreError::Conflict(format!(
                    "a user named `{username}` already exists"
                )));
            };
            insert_audit!(&mut *tx, &user_created(actor, &user), at, OP);
            tx.commit().await.context(OP)?;
            user
        });
        Ok(user)
    }

    /// Creates `username` as an administrator if, and only if, there is no user at all yet;
    /// `None` when there was one (including when another node bootstrapped at the same time).
    pub async fn bootstrap_user(
        &self,
        username: &str,
        password_hash: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, StoreError> {
        const OP: &str = "creating the first user";
        let at = ts(now);
        let user = with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(&mut *tx)
                .await
                .context(OP)?;
            if users > 0 {
                return Ok(None);
            }
            // Two nodes may both have counted none (PostgreSQL); the unique username lets one
            // of them insert and the other find nothing inserted.
            let inserted = insert_user!(tx, username, Role::Admin, Some(password_hash), at, OP);
            if let Some(user) = &inserted {
                insert_audit!(&mut *tx, &user_created(actor, user), at, OP);
                tx.commit().await.context(OP)?;
            }
            inserted
        });
        Ok(user)
    }

    /// Records a user the directory vouched for, with the role its groups map to now: created
    /// on their first login (source `ldap`, no password), their role kept in step afterwards.
    /// [`StoreError::Conflict`] when a local user has the name: the directory never takes over
    /// a local account.
    pub async fn sync_directory_user(
        &self,
        username: &str,
        role: Role,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        const OP: &str = "recording a directory user";
        let at = ts(now);
        let user = with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let existing: Option<UserRow> = sqlx::query_as(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE username = $1"
            ))
            .bind(username)
            .fetch_optional(&mut *tx)
            .await
            .context(OP)?;
            let user = match existing.map(User::try_from).transpose()? {
                Some(user) if user.source != DIRECTORY_SOURCE => {
                    return Err(StoreError::Conflict(format!(
                        "`{username}` is a local user; the directory cannot sign them in"
                    )));
                }
                Some(user) if user.role == role => user,
                Some(user) => {
                    let row: UserRow = sqlx::query_as(concat!(
                        "UPDATE users SET role = $2, updated_at = $3 WHERE id = $1 RETURNING ",
                        user_columns!()
                    ))
                    .bind(user.id)
                    .bind(role.as_str())
                    .bind(at)
                    .fetch_one(&mut *tx)
                    .await
                    .context(OP)?;
                    let record = AuditRecord::new(
                        actor,
                        action::USER_SET_ROLE,
                        Some(format!("user:{username}")),
                        AuditOutcome::Success,
                    )
                    .before(json!({ "role": user.role }))
                    .after(json!({ "role": role, "source": DIRECTORY_SOURCE }));
                    insert_audit!(&mut *tx, &record, at, OP);
                    User::try_from(row)?
                }
                None => {
                    let row: UserRow = sqlx::query_as(concat!(
                        "INSERT INTO users (username, password_hash, role, source, disabled, \
                             created_at, updated_at) \
                         VALUES ($1, NULL, $2, $3, FALSE, $4, $4) RETURNING ",
                        user_columns!()
                    ))
                    .bind(username)
                    .bind(role.as_str())
                    .bind(DIRECTORY_SOURCE)
                    .bind(at)
                    .fetch_one(&mut *tx)
                    .await
                    .context(OP)?;
                    let user = User::try_from(row)?;
                    insert_audit!(&mut *tx, &user_created(actor, &user), at, OP);
                    user
                }
            };
            tx.commit().await.context(OP)?;
            user
        });
        Ok(user)
    }

    /// How many users exist (disabled ones included).
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        with_pool!(self, read, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(pool)
                .await
                .context("counting users")
        })
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows: Vec<UserRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users ORDER BY username"
            ))
            .fetch_all(pool)
            .await
            .context("listing users")?
        });
        rows.into_iter().map(User::try_from).collect()
    }

    /// The user named `username` (normalized), if any.
    pub async fn user(&self, username: &str) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE username = $1"
            ))
            .bind(username)
            .fetch_optional(pool)
            .await
            .context("reading a user")?
        });
        row.map(User::try_from).transpose()
    }

    /// The user named `username` with their password hash, for a login.
    pub async fn user_credentials(
        &self,
        username: &str,
    ) -> Result<Option<UserCredentials>, StoreError> {
        let row: Option<UserCredentialsRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                user_columns!(),
                ", password_hash FROM users WHERE username = $1"
            ))
            .bind(username)
            .fetch_optional(pool)
            .await
            .context("reading a user's credentials")?
        });
        row.map(|row| {
            Ok(UserCredentials {
                user: row.user.try_into()?,
                password_hash: row.password_hash,
            })
        })
        .transpose()
    }

    /// Disables (revoking every session of the user) or enables a user. Unchanged, and not
    /// audited, when the user already is so. [`StoreError::NotFound`] if there is no such user;
    /// [`StoreError::Conflict`] when disabling the last enabled administrator.
    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        self.change_user(username, &[UserChange::Disabled(disabled)], actor, now)
            .await
    }

    /// Changes a user's role (effective at their next request). [`StoreError::NotFound`] if
    /// there is no such user; [`StoreError::Conflict`] when demoting the last enabled
    /// administrator.
    pub async fn set_user_role(
        &self,
        username: &str,
        role: Role,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        self.change_user(username, &[UserChange::Role(role)], actor, now)
            .await
    }

    /// Replaces a user's password hash and revokes all their sessions (whoever knew the old
    /// password is signed out). [`StoreError::NotFound`] if there is no such user.
    pub async fn set_user_password(
        &self,
        username: &str,
        password_hash: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        self.change_user(
            username,
            &[UserChange::PasswordHash(password_hash)],
            actor,
            now,
        )
        .await
    }

    /// Changes several things about one user at once (an API `PUT` may set role, disabled
    /// and password together): one transaction, so that either all of them happen or none
    /// does — a refused demotion does not leave the password changed. One audit entry per
    /// change that changed something.
    pub async fn change_user(
        &self,
        username: &str,
        changes: &[UserChange<'_>],
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        const OP: &str = "changing a user";
        let at = ts(now);
        let target = Some(format!("user:{username}"));
        let user = with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            // Administrators first, then the user: one lock order for every change.
            sqlx::query(lock_admins_sql(pool))
                .fetch_all(&mut *tx)
                .await
                .context(OP)?;
            let current: Option<UserRow> = sqlx::query_as(lock_user_sql(pool))
                .bind(username)
                .fetch_optional(&mut *tx)
                .await
                .context(OP)?;
            let current = User::try_from(current.ok_or(StoreError::NotFound)?)?;
            let mut user = current.clone();
            let mut records = Vec::new();
            let mut revoke = None;
            for change in changes {
                let (update, reason, record) = match *change {
                    UserChange::Disabled(disabled) => {
                        if user.disabled == disabled {
                            continue;
                        }
                        let update = sqlx::query_as::<_, UserRow>(concat!(
                            "UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1 \
                             RETURNING ",
                            user_columns!()
                        ))
                        .bind(user.id)
                        .bind(disabled)
                        .bind(at);
                        let verb = if disabled {
                            action::USER_DISABLE
                        } else {
                            action::USER_ENABLE
                        };
                        let record =
                            AuditRecord::new(actor, verb, target.clone(), AuditOutcome::Success)
                                .before(json!({ "disabled": user.disabled }))
                                .after(json!({ "disabled": disabled }));
                        (update, disabled.then_some("user disabled"), record)
                    }
                    UserChange::Role(role) => {
                        if user.role == role {
                            continue;
                        }
                        let update = sqlx::query_as::<_, UserRow>(concat!(
                            "UPDATE users SET role = $2, updated_at = $3 WHERE id = $1 RETURNING ",
                            user_columns!()
                        ))
                        .bind(user.id)
                        .bind(role.as_str())
                        .bind(at);
                        let record = AuditRecord::new(
                            actor,
                            action::USER_SET_ROLE,
                            target.clone(),
                            AuditOutcome::Success,
                        )
                        .before(json!({ "role": user.role }))
                        .after(json!({ "role": role }));
                        (update, None, record)
                    }
                    UserChange::PasswordHash(hash) => {
                        let update = sqlx::query_as::<_, UserRow>(concat!(
                            "UPDATE users SET password_hash = $2, password_changed_at = $3, \
                                 updated_at = $3 WHERE id = $1 RETURNING ",
                            user_columns!()
                        ))
                        .bind(user.id)
                        .bind(hash)
                        .bind(at);
                        let record = AuditRecord::new(
                            actor,
                            action::USER_SET_PASSWORD,
                            target.clone(),
                            AuditOutcome::Success,
                        );
                        (update, Some("password changed"), record)
                    }
                };
                user = User::try_from(update.fetch_one(&mut *tx).await.context(OP)?)?;
                revoke = revoke.or(reason);
                records.push(record);
            }
            if records.is_empty() {
                return Ok(current);
            }
            if let Some(reason) = revoke {
                sqlx::query(REVOKE_USER_SESSIONS_SQL)
                    .bind(user.id)
                    .bind(at)
                    .bind(reason)
                    .execute(&mut *tx)
                    .await
                    .context(OP)?;
            }
            let was_admin = current.role == Role::Admin && !current.disabled;
            let is_admin = user.role == Role::Admin && !user.disabled;
            if was_admin && !is_admin {
                let admins: i64 = sqlx::query_scalar(COUNT_ENABLED_ADMINS_SQL)
                    .fetch_one(&mut *tx)
                    .await
                    .context(OP)?;
                if admins == 0 {
                    // Dropping the transaction rolls every change back.
                    return Err(StoreError::Conflict(format!(
                        "`{username}` is the last enabled admin; make another user admin first"
                    )));
                }
            }
            for record in &records {
                insert_audit!(&mut *tx, record, at, OP);
            }
            tx.commit().await.context(OP)?;
            user
        });
        Ok(user)
    }

    // ---- sessions ----

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

    /// Uses the refresh token whose SHA-256 is `presented`: marks it used, stores the next one
    /// (`next`, valid until `next_expires_at`, which the session's expiry follows) and returns
    /// the session. A token presented after it was used means it was copied: the session is
    /// revoked and the reuse audited as done by `actor`.
    ///
    /// The claim is one conditional `UPDATE`, so of two concurrent presentations of one token
    /// exactly one rotates it and the other sees it used, on both databases.
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

    // ---- signing keys ----

    /// Every stored signing key, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        let rows: Vec<SigningKeyRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(
                "SELECT kid, secret, created_at, retired_at FROM signing_keys \
                 ORDER BY created_at DESC, kid",
            )
            .fetch_all(pool)
            .await
            .context("reading signing keys")?
        });
        rows.into_iter()
            .map(|row| {
                let secret = self.open_bytes(super::secrets::SIGNING_KEY_SECRET, &row.secret)?;
                Ok(SigningKey::new(
                    row.kid,
                    secret,
                    row.created_at,
                    row.retired_at,
                ))
            })
            .collect()
    }

    /// Stores `key` as the active signing key unless there already is one (another node may
    /// have just created it); returns whether it was stored.
    pub async fn create_first_signing_key(
        &self,
        key: &SigningKey,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const OP: &str = "creating the first signing key";
        let at = ts(now);
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            // The conflict is with the one-active-key index.
            let inserted: Option<String> = sqlx::query_scalar(
                "INSERT INTO signing_keys (kid, secret, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING RETURNING kid",
            )
            .bind(&key.kid)
            .bind(self.seal_bytes(super::secrets::SIGNING_KEY_SECRET, key.secret()))
            .bind(at)
            .fetch_optional(&mut *tx)
            .await
            .context(OP)?;
            if inserted.is_none() {
                return Ok(false);
            }
            let record = AuditRecord::new(
                actor,
                action::SIGNING_KEY_CREATE,
                Some(format!("signing_key:{}", key.kid)),
                AuditOutcome::Success,
            );
            insert_audit!(&mut *tx, &record, at, OP);
            tx.commit().await.context(OP)?;
            Ok(true)
        })
    }

    /// Retires the active signing key, makes `key` the active one, and deletes keys retired
    /// before `forget_retired_before` (no token they signed can still be valid). Returns the id
    /// of the key retired now, if there was one. [`StoreError::Conflict`] when another
    /// rotation committed in between.
    pub async fn rotate_signing_key(
        &self,
        key: &SigningKey,
        forget_retired_before: DateTime<Utc>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        const OP: &str = "rotating the signing key";
        let at = ts(now);
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let retired: Option<String> = sqlx::query_scalar(
                "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL RETURNING kid",
            )
            .bind(at)
            .fetch_optional(&mut *tx)
            .await
            .context(OP)?;
            let inserted: Option<String> = sqlx::query_scalar(
                "INSERT INTO signing_keys (kid, secret, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING RETURNING kid",
            )
            .bind(&key.kid)
            .bind(self.seal_bytes(super::secrets::SIGNING_KEY_SECRET, key.secret()))
            .bind(at)
            .fetch_optional(&mut *tx)
            .await
            .context(OP)?;
            if inserted.is_none() {
                return Err(StoreError::Conflict(
                    "another signing key rotation happened at the same time; try again".to_owned(),
                ));
            }
            let forgotten = sqlx::query("DELETE FROM signing_keys WHERE retired_at < $1")
                .bind(ts(forget_retired_before))
                .execute(&mut *tx)
                .await
                .context(OP)?
                .rows_affected();
            let record = AuditRecord::new(
                actor,
                action::SIGNING_KEY_ROTATE,
                Some(format!("signing_key:{}", key.kid)),
                AuditOutcome::Success,
            )
            .before(json!({ "active": retired }))
            .after(json!({ "active": key.kid, "deleted_retired_keys": forgotten }));
            insert_audit!(&mut *tx, &record, at, OP);
            tx.commit().await.context(OP)?;
            Ok(retired)
        })
    }

    // ---- API keys ----

    /// Stores a new API key. [`StoreError::Conflict`] when a key that is not revoked has the
    /// same name.
    pub async fn create_api_key(
        &self,
        key: &NewApiKey<'_>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyInfo, StoreError> {
        const OP: &str = "creating an API key";
        let at = ts(now);
        let expires_at = key.expires_at.map(ts);
        let row: ApiKeyRow = with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let row: Option<ApiKeyRow> = sqlx::query_as(&format!(
                "INSERT INTO api_keys (name, prefix, key_sha256, role, created_by, created_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT DO NOTHING RETURNING {API_KEY_COLUMNS}"
            ))
            .bind(key.name)
            .bind(key.prefix)
            .bind(key.key_sha256)
            .bind(key.role.as_str())
            .bind(&actor.name)
            .bind(at)
            .bind(expires_at)
            .fetch_optional(&mut *tx)
            .await
            .context(OP)?;
            let Some(row) = row else {
                return Err(StoreError::Conflict(format!(
                    "an API key named `{}` already exists (revoke it first)",
                    key.name
                )));
            };
            let record = AuditRecord::new(
                actor,
                action::API_KEY_CREATE,
                Some(format!("key:{}", key.name)),
                AuditOutcome::Success,
            )
            .after(json!({
                "id": row.id,
                "role": key.role,
                "prefix": key.prefix,
                "expires_at": expires_at,
            }));
            insert_audit!(&mut *tx, &record, at, OP);
            tx.commit().await.context(OP)?;
            row
        });
        row.try_into()
    }

    /// The API key whose SHA-256 is `key_sha256`, revoked and expired ones included.
    pub async fn api_key_by_sha256(
        &self,
        key_sha256: &str,
    ) -> Result<Option<ApiKeyInfo>, StoreError> {
        self.one_api_key("key_sha256 = $1", key_sha256).await
    }

    /// The API key named `name` that is not revoked, if any.
    pub async fn live_api_key(&self, name: &str) -> Result<Option<ApiKeyInfo>, StoreError> {
        self.one_api_key("name = $1 AND revoked_at IS NULL", name)
            .await
    }

    async fn one_api_key(
        &self,
        condition: &str,
        value: &str,
    ) -> Result<Option<ApiKeyInfo>, StoreError> {
        let row: Option<ApiKeyRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(&format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE {condition}"
            ))
            .bind(value)
            .fetch_optional(pool)
            .await
            .context("reading an API key")?
        });
        row.map(ApiKeyInfo::try_from).transpose()
    }

    /// Every API key (revoked ones included), oldest first.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>, StoreError> {
        let rows: Vec<ApiKeyRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(&format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY id"
            ))
            .fetch_all(pool)
            .await
            .context("listing API keys")?
        });
        rows.into_iter().map(ApiKeyInfo::try_from).collect()
    }

    /// Records that an API key was used at `now`, unless that was already recorded at or
    /// after `unless_used_since` (which keeps this to one write per key per interval, even
    /// with several nodes).
    pub async fn touch_api_key(
        &self,
        id: i64,
        now: DateTime<Utc>,
        unless_used_since: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, write, |pool| {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $2 \
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(id)
            .bind(ts(now))
            .bind(ts(unless_used_since))
            .execute(pool)
            .await
            .context("recording an API key's use")?;
        });
        Ok(())
    }

    /// Revokes an API key (at once: the next request with it is refused). Returns it unchanged,
    /// and writes no audit entry, when it was already revoked; [`StoreError::NotFound`] if there
    /// is no such key.
    pub async fn revoke_api_key(
        &self,
        id: i64,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyInfo, StoreError> {
        const OP: &str = "revoking an API key";
        let at = ts(now);
        let row: ApiKeyRow = with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let revoked: Option<ApiKeyRow> = sqlx::query_as(&format!(
                "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL \
                 RETURNING {API_KEY_COLUMNS}"
            ))
            .bind(id)
            .bind(at)
            .fetch_optional(&mut *tx)
            .await
            .context(OP)?;
            let Some(row) = revoked else {
                let existing: Option<ApiKeyRow> = sqlx::query_as(&format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .context(OP)?;
                return existing
                    .ok_or(StoreError::NotFound)
                    .and_then(ApiKeyInfo::try_from);
            };
            let record = AuditRecord::new(
                actor,
                action::API_KEY_REVOKE,
                Some(format!("key:{}", row.name)),
                AuditOutcome::Success,
            )
            .after(json!({ "id": row.id, "prefix": row.prefix }));
            insert_audit!(&mut *tx, &record, at, OP);
            tx.commit().await.context(OP)?;
            row
        });
        row.try_into()
    }

    // ---- audit log ----

    /// Appends an entry to the audit log on its own (changes made here write theirs in their
    /// own transaction).
    pub async fn append_audit(
        &self,
        record: &AuditRecord,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "writing an audit entry";
        with_pool!(self, write, |pool| {
            insert_audit!(pool, record, ts(now), OP);
        });
        Ok(())
    }

    /// Audit entries matching `filter`, newest first.
    pub async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let mut conditions = Vec::new();
        if let Some(actor) = &filter.actor {
            conditions.push(("actor = ?", Bind::Text(actor.clone())));
        }
        if let Some(action) = &filter.action {
            conditions.push(("action = ?", Bind::Text(action.clone())));
        }
        if let Some(target) = &filter.target {
            conditions.push(("target = ?", Bind::Text(target.clone())));
        }
        if let Some(outcome) = filter.outcome {
            conditions.push(("outcome = ?", Bind::Text(outcome.as_str().to_owned())));
        }
        if let Some(before) = filter.before_id {
            conditions.push(("id < ?", Bind::Int(before)));
        }
        let limit = match filter.limit {
            0 => super::LIST_LIMIT_DEFAULT,
            n => n.min(super::LIST_LIMIT_MAX),
        };
        let (sql, binds) = build_query(
            "SELECT id, at, actor, role, source_ip, action, target, before_state, after_state, \
                 outcome FROM audit_log",
            conditions,
            "ORDER BY id DESC LIMIT ?",
            vec![Bind::Int(i64::from(limit))],
        );
        let rows: Vec<AuditRow> = with_pool!(self, read, |pool| {
            bind_all!(sqlx::query_as(&sql), binds)
                .fetch_all(pool)
                .await
                .context("reading the audit log")?
        });
        rows.into_iter().map(AuditEntry::try_from).collect()
    }
}

/// The audit entry of a new user.
fn user_created(actor: &Actor, user: &User) -> AuditRecord {
    AuditRecord::new(
        actor,
        action::USER_CREATE,
        Some(format!("user:{}", user.username)),
        AuditOutcome::Success,
    )
    .after(json!({
        "id": user.id,
        "role": user.role,
        "source": user.source,
        "has_password": user.has_password,
    }))
}
