//! The store: the only module that contains SQL. Alerts, addons, addon state, targets,
//! settings, and the state of authentication (users, sessions, API keys, signing keys, the
//! audit log), on SQLite (the embedded default) or PostgreSQL (production, several nodes), with
//! the same behaviour on both.
//!
//! Queries are written once in the SQL both databases accept (`$1` placeholders, `ON CONFLICT`,
//! `RETURNING`) and run through `with_pool!`, which expands one body for whichever pool is
//! active, so every query is type-checked against both backends. Dialects differ only where
//! `Dialect` says so.
//!
//! **Architecture Invariant:** nothing outside this module writes SQL (the test helpers in
//! [`crate::testing`] only create and drop databases); callers see domain types from
//! [`crate::alert`] and the records defined here.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions, Postgres};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Pool, Transaction};

use crate::alert::UnknownVariant;
use crate::identity::Role;

/// Runs `$body` with `$pool` bound to the pool that serves `read`s or `write`s on the active
/// backend. The body is expanded once per backend, so it must compile against both: that is
/// what keeps one SQL text honest for SQLite and PostgreSQL alike.
macro_rules! with_pool {
    ($store:expr, read, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite(pools) => {
                let $pool = &pools.reader;
                $body
            }
            $crate::store::Backend::Postgres(pool) => {
                let $pool = pool;
                $body
            }
        }
    };
    ($store:expr, write, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite(pools) => {
                let $pool = &pools.writer;
                $body
            }
            $crate::store::Backend::Postgres(pool) => {
                let $pool = pool;
                $body
            }
        }
    };
}

mod addons;
mod alerts;
mod api_keys;
mod audit;
mod events;
mod filter_query;
mod import;
mod oidc_logins;
mod schedule;
mod secrets;
mod sessions;
mod signing_keys;
mod silences;
mod snmp;
mod targets;
#[cfg(test)]
mod tests;
mod users;
mod views;

pub use addons::{
    AddonRecord, AddonRollback, AddonRow, AddonVersion, STATE_MAX_KEY_BYTES, STATE_MAX_KEYS,
    STATE_MAX_VALUE_BYTES,
};
pub use alerts::{
    AlertChange, AlertEvent, AlertEventKind, AlertOp, AlertSearch, HistoryPage, LIST_LIMIT_DEFAULT,
    LIST_LIMIT_MAX, MAX_NOTE_LEN, check_note,
};
pub use api_keys::{ApiKeyInfo, NewApiKey};
pub use audit::{AuditEntry, AuditFilter, AuditOutcome, AuditRecord};
pub use events::{EVENTS_CHANNEL, EventListener};
pub use import::{BatchWritten, ImportKind, LegacySource};
pub use oidc_logins::PendingOidcLogin;
pub use schedule::{ClaimedPoll, PinnedHostKey, PollRecord};
pub use sessions::{NewSession, RefreshOutcome, SessionAuth, SessionFilter, SessionInfo};
pub use silences::SilenceFilter;
pub use snmp::{ReplayRead, SnmpCommunity, SnmpUserRecord};
pub use targets::TargetFilter;
pub use users::{DIRECTORY_SOURCE, OIDC_SOURCE, User, UserChange, UserCredentials};
pub use views::{MAX_VIEW_NAME_LEN, MAX_VIEW_QUERY_LEN, NewView, SavedView};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// How long a SQLite connection waits for another connection's (or process's) write lock before
/// it gives up with SQLITE_BUSY. Writes in this process are already serialised by the
/// one-connection writer pool, so this only covers other processes on the same file (the CLI, a
/// second runtime by mistake) and WAL checkpoints; five seconds rides out any of those without
/// letting a wedged peer hang a webhook forever.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read connections to a SQLite file. Under WAL, readers never block the writer or each other,
/// so a few let API reads proceed while the batching writer commits; each is a thread in sqlx,
/// so there is no point in more than the handful of concurrent list queries a node serves.
const SQLITE_READERS: u32 = 4;

/// Connections per node to PostgreSQL. The batching writer uses one or two at a time and the API
/// the rest; several nodes share the server's `max_connections` (100 by default), so this stays
/// well below it.
const POSTGRES_MAX_CONNECTIONS: u32 = 16;

/// How long a caller waits for a pooled connection before the store reports an error. Long
/// enough to queue behind a burst of batches, short enough that a dead database surfaces as an
/// error (and a 5xx to the webhook sender, who will retry) instead of a hung request.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(15);

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

impl DatabaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseKind::Sqlite => "sqlite",
            DatabaseKind::Postgres => "postgres",
        }
    }
}

impl fmt::Display for DatabaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a store operation failed. Messages say what the store was doing; the database's own
/// text is only in the [`source`](std::error::Error::source) chain, so an API error built from
/// the `Display` form never leaks SQL or schema details to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "unsupported database url (expected `sqlite://PATH`, `sqlite::memory:` or `postgres://...`)"
    )]
    UnsupportedUrl,
    #[error("invalid {kind} database url")]
    InvalidUrl {
        kind: DatabaseKind,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot create {path} (mode 0700 directory, 0600 file) for the sqlite database")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to the {kind} database")]
    Connect {
        kind: DatabaseKind,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot migrate the {kind} database")]
    Migrate {
        kind: DatabaseKind,
        #[source]
        source: MigrateError,
    },
    #[error("database error while {op}")]
    Database {
        op: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The addon or alert the operation names does not exist (or, for alert status changes, is
    /// no longer open).
    #[error("not found")]
    NotFound,
    /// An addon's state exceeded one of its limits; the message says which.
    #[error("quota exceeded: {0}")]
    Quota(String),
    /// A stored value that the schema allows but the code cannot interpret (e.g. a setting that
    /// should be a number). Only hand-edited databases produce this.
    /// A backup could not be made; the message says why (an existing file, a PostgreSQL
    /// database, which `pg_dump` copies).
    #[error("backup: {0}")]
    Backup(String),
    #[error("invalid stored data: {0}")]
    Corrupt(String),
    /// The request would break a uniqueness or reference rule (a target name taken, a
    /// credential still in use); the message names what and who, never SQL.
    #[error("{0}")]
    Conflict(String),
    /// What the caller asked to store is not valid (a bad field, a reference to an addon or
    /// credential that does not exist); the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// A sealed secret that the secrets key cannot open: another key sealed it, or the value
    /// was altered.
    #[error("secrets at rest: {0}")]
    Secrets(#[from] crate::secrets::SecretsError),
}

impl StoreError {
    /// Whether retrying the whole transaction may succeed: a lock the busy timeout did not
    /// outlast (SQLite), a deadlock or serialization failure (PostgreSQL). Each of these rolled
    /// the transaction back, so a retry cannot apply anything twice.
    pub fn is_transient(&self) -> bool {
        let StoreError::Database {
            source: sqlx::Error::Database(db),
            ..
        } = self
        else {
            return false;
        };
        let Some(code) = db.code() else {
            return false;
        };
        if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
            // SQLite reports extended result codes; the primary code is the low byte.
            // 5 = SQLITE_BUSY, 6 = SQLITE_LOCKED.
            return code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
        }
        // 40001 = serialization_failure, 40P01 = deadlock_detected.
        matches!(&*code, "40001" | "40P01")
    }
}

/// Attaches what the store was doing to a sqlx error.
trait Context<T> {
    fn context(self, op: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database { op, source })
    }
}

/// The few places where the two SQL dialects really differ.
trait Dialect: sqlx::Database {
    /// Opens a transaction that will write.
    const BEGIN_WRITE: &'static str;
    /// Locks one addon row (`$1` = id) until the end of the transaction, returning its id, so
    /// that concurrent writers of the same addon's state take turns.
    const LOCK_ADDON: &'static str;
    /// Leases due targets to a node: `$1` node, `$2` lease end, `$3` now, `$4` how many.
    const CLAIM_TARGETS: &'static str;
}

impl Dialect for Sqlite {
    // IMMEDIATE takes the write lock at BEGIN, where the busy timeout applies. A deferred
    // transaction that reads first and writes later can fail with SQLITE_BUSY at once, without
    // waiting, when another connection committed in between.
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    // The IMMEDIATE transaction already excludes every other writer to the file.
    const LOCK_ADDON: &'static str = "SELECT id FROM addons WHERE id = $1";
    // One writer at a time: the UPDATE's subquery cannot race another claim.
    const CLAIM_TARGETS: &'static str = schedule::CLAIM_TARGETS_SQLITE;
}

impl Dialect for Postgres {
    const BEGIN_WRITE: &'static str = "BEGIN";
    // NO KEY UPDATE rather than UPDATE: it still excludes other state writers of this addon,
    // but not the KEY SHARE locks that foreign-key checks take, so alert inserts for the addon
    // are never held up by it.
    const LOCK_ADDON: &'static str = "SELECT id FROM addons WHERE id = $1 FOR NO KEY UPDATE";
    // SKIP LOCKED: nodes claiming at the same moment each take different rows instead of
    // queueing behind one another; a row one node holds is simply not due for the others.
    const CLAIM_TARGETS: &'static str = schedule::CLAIM_TARGETS_POSTGRES;
}

async fn begin_write<DB: Dialect>(
    pool: &Pool<DB>,
) -> Result<Transaction<'static, DB>, sqlx::Error> {
    pool.begin_with(DB::BEGIN_WRITE).await
}

fn lock_addon_sql<DB: Dialect>(_: &Pool<DB>) -> &'static str {
    DB::LOCK_ADDON
}

fn claim_targets_sql<DB: Dialect>(_: &Pool<DB>) -> &'static str {
    DB::CLAIM_TARGETS
}

/// Counts one more change of a kind (`$1` names its generation setting), inside the
/// transaction that makes the change, so that a reader that sees the new number also sees the
/// change. Running servers poll these numbers to reload addons and credentials without a
/// restart. The value is kept as text like every setting.
const BUMP_GENERATION_SQL: &str = "INSERT INTO system_settings (key, value, updated_at) \
     VALUES ($1, '1', $2) \
     ON CONFLICT (key) DO UPDATE \
     SET value = CAST(CAST(system_settings.value AS BIGINT) + 1 AS TEXT), \
         updated_at = excluded.updated_at";

/// A timestamp from a caller as the store records it. Every method that records a time takes
/// it as `now` (so tests choose it and never sleep to tell two writes apart). Truncated to
/// microseconds because that is what PostgreSQL keeps: SQLite then stores the same instant,
/// and a value read back equals the value written on both backends.
fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// A role as stored (users, API keys, audit entries), or [`StoreError::Corrupt`] naming whose
/// it is.
fn parse_role(value: &str, whose: impl fmt::Display) -> Result<Role, StoreError> {
    value
        .parse()
        .map_err(|e: UnknownVariant| StoreError::Corrupt(format!("{whose}: {e}")))
}

/// A handle on the database. Cheap to clone: it holds connection pools.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// Seals the secret columns on write and opens them on read (store/secrets.rs).
    secrets: std::sync::Arc<crate::secrets::SecretKeys>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("kind", &self.kind()).finish()
    }
}

#[derive(Clone)]
enum Backend {
    Sqlite(SqlitePools),
    Postgres(PgPool),
}

/// SQLite allows one writer at a time per file. Rather than let several pooled connections race
/// for the write lock (and sleep in SQLite's busy handler, which backs off up to 100 ms per try),
/// every write goes through a pool of exactly one connection, so writers in this process queue
/// fairly in the pool instead. Reads use their own connections, which WAL lets run beside the
/// writer.
#[derive(Clone)]
struct SqlitePools {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl Store {
    /// Opens the database at `url` and brings its schema up to date.
    ///
    /// `sqlite://PATH` creates the file (and its directory) on first use; `sqlite::memory:` is a
    /// private in-memory database that lives as long as the store. `postgres://…` (or
    /// `postgresql://…`) connects to an existing database; migrations take an advisory lock, so
    /// several nodes may start at once.
    ///
    /// `secrets` seals the secret columns; connecting seals any secret still in clear (rows
    /// written before sealing existed) or sealed with a key other than the sealing one (a
    /// rotation), see [`Store::seal_secrets`].
    pub async fn connect(
        url: &str,
        secrets: std::sync::Arc<crate::secrets::SecretKeys>,
    ) -> Result<Store, StoreError> {
        let backend = match kind_of_url(url)? {
            DatabaseKind::Sqlite => Backend::Sqlite(connect_sqlite(url).await?),
            DatabaseKind::Postgres => Backend::Postgres(connect_postgres(url).await?),
        };
        let store = Store { backend, secrets };
        store.seal_secrets().await?;
        Ok(store)
    }

    /// Writes a consistent copy of the SQLite database to `path` while it is in use: `VACUUM
    /// INTO` reads one snapshot in one read transaction (writers go on beside it, WAL mode) and
    /// writes a compact, self-contained database file, mode 0600 (it holds sealed secrets and
    /// password hashes). `path` must not exist or be empty. PostgreSQL is copied with `pg_dump`.
    pub async fn backup_to(&self, path: &std::path::Path) -> Result<(), StoreError> {
        let Backend::Sqlite(pools) = &self.backend else {
            return Err(StoreError::Backup(
                "a PostgreSQL database is backed up with pg_dump (docs/operations.md)".into(),
            ));
        };
        if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            return Err(StoreError::Backup(format!(
                "{} exists; choose a new file",
                path.display()
            )));
        }
        let target = path
            .to_str()
            .ok_or_else(|| StoreError::Backup(format!("{} is not a UTF-8 path", path.display())))?;
        private_file(path).map_err(|source| StoreError::CreateDir {
            path: path.to_owned(),
            source,
        })?;
        // A reader connection, so that the writer goes on writing; readers are `query_only`,
        // which would refuse to write the copy, so it is lifted for the copy and put back.
        let mut conn = pools
            .reader
            .acquire()
            .await
            .context("opening a connection for the backup")?;
        let (query_only,): (i64,) = sqlx::query_as("PRAGMA query_only")
            .fetch_one(&mut *conn)
            .await
            .context("reading the connection's mode")?;
        sqlx::query("PRAGMA query_only = OFF")
            .execute(&mut *conn)
            .await
            .context("preparing the backup")?;
        let copied = sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&mut *conn)
            .await;
        let restored = sqlx::query(if query_only == 1 {
            "PRAGMA query_only = ON"
        } else {
            "PRAGMA query_only = OFF"
        })
        .execute(&mut *conn)
        .await;
        if restored.is_err() {
            // Never hand a reader that may write back to the pool.
            drop(conn.detach());
        }
        copied.context("copying the database")?;
        Ok(())
    }

    /// Whether `url` is a database URL [`Store::connect`] understands, without connecting:
    /// for `opsconductor config check`.
    pub fn check_url(url: &str) -> Result<(), StoreError> {
        let kind = kind_of_url(url)?;
        let parsed = match kind {
            DatabaseKind::Sqlite => SqliteConnectOptions::from_str(url).map(drop),
            DatabaseKind::Postgres => sqlx::postgres::PgConnectOptions::from_str(url).map(drop),
        };
        parsed.map_err(|source| StoreError::InvalidUrl { kind, source })
    }

    pub fn kind(&self) -> DatabaseKind {
        match self.backend {
            Backend::Sqlite(_) => DatabaseKind::Sqlite,
            Backend::Postgres(_) => DatabaseKind::Postgres,
        }
    }

    /// The connections of each pool now: `(pool, open, idle)`, pools named `writer` and
    /// `reader` on SQLite, `main` on PostgreSQL.
    pub fn pool_use(&self) -> Vec<(&'static str, u32, u32)> {
        let of = |name, size: u32, idle: usize| (name, size, idle as u32);
        match &self.backend {
            Backend::Sqlite(pools) => vec![
                of("writer", pools.writer.size(), pools.writer.num_idle()),
                of("reader", pools.reader.size(), pools.reader.num_idle()),
            ],
            Backend::Postgres(pool) => vec![of("main", pool.size(), pool.num_idle())],
        }
    }

    /// Checks that the database answers (for health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, read, |pool| {
            sqlx::query("SELECT 1")
                .execute(pool)
                .await
                .context("pinging the database")?;
        });
        Ok(())
    }

    /// Closes every connection, waiting for queries in flight. Later calls fail.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(pools) => {
                pools.reader.close().await;
                pools.writer.close().await;
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// A setting's value, if it was ever set.
    pub async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        with_pool!(self, read, |pool| {
            sqlx::query_scalar("SELECT value FROM system_settings WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await
                .context("reading a setting")
        })
    }

    /// The number a generation setting holds (0 before the first change); see
    /// [`BUMP_GENERATION_SQL`].
    async fn generation(&self, key: &str) -> Result<i64, StoreError> {
        match self.get_setting(key).await? {
            None => Ok(0),
            Some(value) => value.parse().map_err(|_| {
                StoreError::Corrupt(format!("setting `{key}` is `{value}`, not an integer"))
            }),
        }
    }

    /// Every setting with its last change, by key.
    pub async fn list_settings(&self) -> Result<Vec<(String, String, DateTime<Utc>)>, StoreError> {
        with_pool!(self, read, |pool| {
            sqlx::query_as("SELECT key, value, updated_at FROM system_settings ORDER BY key")
                .fetch_all(pool)
                .await
                .context("listing settings")
        })
    }

    /// Removes a setting; false when there was none.
    pub async fn delete_setting(&self, key: &str) -> Result<bool, StoreError> {
        let deleted = with_pool!(self, write, |pool| {
            sqlx::query("DELETE FROM system_settings WHERE key = $1")
                .bind(key)
                .execute(pool)
                .await
                .context("deleting a setting")?
                .rows_affected()
        });
        Ok(deleted > 0)
    }

    /// Sets a setting, creating or replacing it.
    pub async fn set_setting(
        &self,
        key: &str,
        value: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO system_settings (key, value, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE \
                 SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(key)
            .bind(value)
            .bind(ts(now))
            .execute(pool)
            .await
            .context("writing a setting")?;
        });
        Ok(())
    }
}

/// Creates `dir` (and its parents) when missing, mode 0700, and takes group and other access
/// away from it when it exists: it holds the database and keys.
pub fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    restrict(dir, 0o700)
}

/// Creates the SQLite file empty (which SQLite takes as a new database) with mode 0600 when
/// missing, and takes group and other access away when it exists. SQLite gives its `-wal` and
/// `-shm` files the database file's permissions.
fn private_file(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
    }
    restrict(path, 0o600)
}

/// Removes the permission bits `path` has beyond `mode`, saying so when there were any.
fn restrict(path: &std::path::Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if current & !mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & mode))?;
        tracing::warn!(
            path = %path.display(),
            was = format!("{current:o}"),
            now = format!("{:o}", current & mode),
            "took group and other access away from a file that holds secrets"
        );
    }
    Ok(())
}

async fn connect_sqlite(url: &str) -> Result<SqlitePools, StoreError> {
    let kind = DatabaseKind::Sqlite;
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|source| StoreError::InvalidUrl { kind, source })?
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true)
        // FULL syncs the WAL on every commit: an accepted webhook must survive power loss, not
        // only a crash of the process (NORMAL, the usual WAL choice, may lose the last commits).
        .synchronous(SqliteSynchronous::Full);
    // sqlx's URL parser knows an in-memory database but does not expose it; match its spellings.
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if !in_memory {
        let file = options.get_filename();
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_dir(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        private_file(file).map_err(|source| StoreError::CreateDir {
            path: file.to_owned(),
            source,
        })?;
    }

    let writer_options = options
        .clone()
        .create_if_missing(true)
        // WAL lets readers work beside the writer and is persistent in the file, so only the
        // writer sets it.
        .journal_mode(SqliteJournalMode::Wal);
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        // The writer connection is never closed for idleness: it keeps an in-memory database
        // alive and spares the hot path a reconnect.
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        // A connection to a local file does not go stale: no ping before each use, which is
        // a round trip to sqlx's worker thread per transaction on the hot path.
        .test_before_acquire(false)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(writer_options)
        .await
        .map_err(|source| StoreError::Connect { kind, source })?;
    SQLITE_MIGRATIONS
        .run(&writer)
        .await
        .map_err(|source| StoreError::Migrate { kind, source })?;

    let reader = if in_memory {
        // A shared-cache in-memory database locks whole tables between connections (and those
        // locks ignore the busy timeout), so reads share the single writer connection.
        writer.clone()
    } else {
        SqlitePoolOptions::new()
            .max_connections(SQLITE_READERS)
            .test_before_acquire(false)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // query_only makes an accidental write through a reader fail loudly instead of
            // racing the writer for the lock.
            .connect_with(options.pragma("query_only", "ON"))
            .await
            .map_err(|source| StoreError::Connect { kind, source })?
    };
    Ok(SqlitePools { writer, reader })
}

/// Which database a URL names, by its scheme: what [`Store::connect`] and
/// [`Store::check_url`] both go by.
fn kind_of_url(url: &str) -> Result<DatabaseKind, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(DatabaseKind::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(DatabaseKind::Postgres)
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

async fn connect_postgres(url: &str) -> Result<PgPool, StoreError> {
    let kind = DatabaseKind::Postgres;
    let pool = PgPoolOptions::new()
        .max_connections(POSTGRES_MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect(url)
        .await
        .map_err(|source| StoreError::Connect { kind, source })?;
    POSTGRES_MIGRATIONS
        .run(&pool)
        .await
        .map_err(|source| StoreError::Migrate { kind, source })?;
    Ok(pool)
}
