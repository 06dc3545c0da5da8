//! Users: local ones with argon2id password hashes and the ones the directory vouches for,
//! their roles, and being disabled. Every change writes its audit entry in its transaction;
//! the last enabled administrator cannot be demoted or disabled.
//!
//! No record type here carries the password hash except [`UserCredentials`] (for the login
//! check), whose `Debug` leaves it out and which has no `Serialize`.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::Pool;
use sqlx::postgres::Postgres;
use sqlx::sqlite::Sqlite;

use super::audit::insert_audit;
use super::{AuditOutcome, AuditRecord, Context, Store, StoreError, begin_write, parse_role, ts};
use crate::identity::{Actor, Role, action};

/// The columns of [`UserRow`] (a macro so that it can be `concat!`ed into the lock queries).
macro_rules! user_columns {
    () => {
        "id, username, role, source, disabled, password_hash IS NOT NULL AS has_password, \
         created_at, updated_at, password_changed_at, last_login_at"
    };
}

const REVOKE_USER_SESSIONS_SQL: &str = "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
     WHERE user_id = $1 AND revoked_at IS NULL";

const COUNT_ENABLED_ADMINS_SQL: &str =
    "SELECT COUNT(*) FROM users WHERE role = 'admin' AND NOT disabled";

/// The row locks changing a user needs, which only PostgreSQL has to ask for: SQLite's write
/// transactions (`BEGIN IMMEDIATE`) already exclude every other writer.
trait UserLocks: sqlx::Database {
    /// Locks every enabled administrator until the end of the transaction, so that two
    /// concurrent changes cannot each leave "another" administrator that the other one removes.
    const LOCK_ADMINS: &'static str;
    /// Reads one user (`$1` = username) and holds the row until the end of the transaction.
    const LOCK_USER: &'static str;
}

impl UserLocks for Sqlite {
    const LOCK_ADMINS: &'static str = "SELECT id FROM users WHERE role = 'admin' AND NOT disabled";
    const LOCK_USER: &'static str = concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE username = $1"
    );
}

impl UserLocks for Postgres {
    // Ordered, so that every transaction takes these locks in the same order.
    const LOCK_ADMINS: &'static str =
        "SELECT id FROM users WHERE role = 'admin' AND NOT disabled ORDER BY id FOR UPDATE";
    const LOCK_USER: &'static str = concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE username = $1 FOR UPDATE"
    );
}

fn lock_admins_sql<DB: UserLocks>(_: &Pool<DB>) -> &'static str {
    DB::LOCK_ADMINS
}

fn lock_user_sql<DB: UserLocks>(_: &Pool<DB>) -> &'static str {
    DB::LOCK_USER
}

/// The `source` of users the directory (LDAP) vouches for.
pub const DIRECTORY_SOURCE: &str = "ldap";
/// The `source` of users an OpenID Connect provider vouches for.
pub const OIDC_SOURCE: &str = "oidc";

/// A user as listings and the API show it: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// `local` (a password here), [`DIRECTORY_SOURCE`] (signs in through the directory) or
    /// [`OIDC_SOURCE`] (through the OpenID Connect provider).
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

/// One change to a user, for [`Store::change_user`].
#[derive(Debug, Clone, Copy)]
pub enum UserChange<'a> {
    Disabled(bool),
    Role(Role),
    /// An argon2id PHC string; every session of the user is revoked.
    PasswordHash(&'a str),
}

impl Store {
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

    /// Records a user an outside authority vouched for (`source`: [`DIRECTORY_SOURCE`] or
    /// [`OIDC_SOURCE`]), with the role its groups map to now: created on their first login (no
    /// password), their role kept in step afterwards. [`StoreError::Conflict`] when a user of
    /// another source has the name: neither authority ever takes over a local account or the
    /// other's.
    pub async fn sync_external_user(
        &self,
        username: &str,
        source: &str,
        role: Role,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        const OP: &str = "recording a directory or SSO user";
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
                Some(user) if user.source != source => {
                    return Err(StoreError::Conflict(format!(
                        "`{username}` is a {} user; {source} cannot sign them in",
                        user.source
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
                    .after(json!({ "role": role, "source": source }));
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
                    .bind(source)
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
