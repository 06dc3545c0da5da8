//! Helpers for tests that need a real database: a SQLite URL inside a temporary directory, a
//! throwaway PostgreSQL database per test, and [`both_databases!`](crate::both_databases),
//! which declares a test once per database. Compiled into the library (not `#[cfg(test)]`) so
//! that the end-to-end test crate uses the same helpers as the unit tests.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

use anyhow::{Context as _, anyhow};
use sqlx::{Connection, Executor, PgConnection};

/// The environment variable naming the PostgreSQL server (any database on it; the user must be
/// allowed to create databases) that tests create their databases on.
pub const PG_URL_ENV: &str = "OPSCONDUCTOR_TEST_PG_URL";

/// The server used when [`PG_URL_ENV`] is unset: a local PostgreSQL with trust authentication.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The secrets key of this test process: every store a test opens on a database shares it, as
/// the nodes of a cluster share their key file.
pub fn secret_keys() -> std::sync::Arc<crate::secrets::SecretKeys> {
    static KEYS: std::sync::LazyLock<std::sync::Arc<crate::secrets::SecretKeys>> =
        std::sync::LazyLock::new(|| std::sync::Arc::new(crate::secrets::SecretKeys::generate()));
    KEYS.clone()
}

/// Records an addon called `id` with no component, enough for alerts to reference it: for
/// tests and benchmarks of the write path, which never call the addon.
pub async fn record_bare_addon(store: &crate::store::Store, id: &str) {
    store
        .upsert_addon(
            &crate::store::AddonRecord {
                id: id.into(),
                name: id.into(),
                version: "0.1.0".into(),
                methods: vec!["webhook".into()],
                manifest: serde_json::json!({}),
                wasm: Vec::new(),
                wasm_sha256: String::new(),
                enabled: true,
            },
            chrono::Utc::now(),
        )
        .await
        .expect("the addon is recorded");
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Declares a test once per database, because "the same behaviour on SQLite and PostgreSQL" is
/// the store's contract: a module named after the test holding a `sqlite` and a `postgres` test
/// (so `cargo test <name>` runs both). The runtimes are multi-threaded, so that the concurrency
/// cases really run tasks in parallel.
///
/// - `both_databases!(name, body)`: `name::sqlite` and `name::postgres` call `body(Db)`;
/// - `both_databases!(via run; case, ...)`: for each case function, `case::sqlite` and
///   `case::postgres` call `run(Db, case)`, for cases that take what `run` prepares (the store's
///   tests take a connected store).
///
/// `body`, `run` and the cases are functions of the module that invokes the macro.
#[macro_export]
macro_rules! both_databases {
    ($name:ident, $body:ident) => {
        $crate::both_databases!(@tests $name, |db| super::$body(db));
    };
    (via $run:ident; $($case:ident),+ $(,)?) => {$(
        $crate::both_databases!(@tests $case, |db| super::$run(db, super::$case));
    )+};
    (@tests $name:ident, |$db:ident| $call:expr) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let $db = $crate::testing::Db::Sqlite;
                $call.await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let $db = $crate::testing::Db::Postgres;
                $call.await
            }
        }
    };
}

/// A `sqlite://` URL for a database file in `dir` (created on first connect).
pub async fn sqlite_url(dir: &Path) -> String {
    // sqlx percent-decodes the path and splits off a query at `?`, so those characters must be
    // escaped to name a file; temporary directories rarely contain them, but some CI ones do.
    let path = dir.join("opsconductor.db").display().to_string();
    let path = path
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23");
    format!("sqlite://{path}")
}

/// A PostgreSQL database that exists for one test. Tests run in parallel, each on its own
/// database, so they never see each other's rows.
///
/// Call [`TestPostgres::drop`] at the end of the test. If the test panics first, dropping the
/// value removes the database anyway (from a helper thread, since `Drop` cannot await).
#[derive(Debug)]
pub struct TestPostgres {
    /// The URL of the new database, for `Store::connect`.
    pub url: String,
    name: String,
    admin_url: String,
    dropped: bool,
}

impl TestPostgres {
    /// Creates a database named `opsconductor_test_<pid>_<counter>_<random>` on the server that
    /// [`PG_URL_ENV`] names (default [`DEFAULT_PG_URL`]).
    pub async fn create() -> anyhow::Result<TestPostgres> {
        let admin_url = std::env::var(PG_URL_ENV).unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
        let mut admin = admin_connect(&admin_url).await?;
        let name = unique_name();
        admin
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .with_context(|| format!("cannot create test database {name}"))?;
        admin.close().await.ok();
        Ok(TestPostgres {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
            dropped: false,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database, disconnecting whoever is still connected. A failure is reported on
    /// stderr rather than returned: cleanup must not fail a test that passed, and the message
    /// names the database to remove by hand.
    pub async fn drop(mut self) {
        self.dropped = true;
        if let Err(error) = drop_database(&self.admin_url, &self.name).await {
            eprintln!("warning: {error:#}");
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Reached when a test panicked before calling `drop().await`. A fresh thread with its
        // own runtime, because this may run inside an async runtime, where blocking on a
        // future is not allowed.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(drop_database(&admin_url, &name))
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("warning: {error:#}"),
            Err(_) => eprintln!("warning: cleanup of test database {} panicked", self.name),
        }
    }
}

async fn admin_connect(admin_url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect(admin_url).await.map_err(|error| {
        anyhow!(
            "cannot connect to PostgreSQL for tests at {} ({error}); start it with \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
             or set {PG_URL_ENV} to a server where this user may create databases",
            redact(admin_url)
        )
    })
}

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut admin = admin_connect(admin_url).await?;
    // FORCE (PostgreSQL 13+) disconnects pools the test left open, e.g. after a panic.
    admin
        .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
        .await
        .with_context(|| format!("cannot drop test database {name}"))?;
    admin.close().await.ok();
    Ok(())
}

/// A database name no other test run uses: the process id separates concurrent test binaries,
/// the counter the tests within one, and the random part runs whose process ids repeat (e.g.
/// in containers) and left a database behind.
fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // RandomState is seeded randomly per process; hashing the time with it gives a random
    // enough suffix without another dependency.
    let random = RandomState::new().hash_one((pid, n, SystemTime::now())) as u32;
    format!("opsconductor_test_{pid}_{n}_{random:08x}")
}

/// `url` with its database (the path) replaced by `name`, keeping user, host and parameters.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[authority_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| authority_start + i);
    let authority = &url[authority_start..authority_end];
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!(
                "{}{user}:***@{host}{}",
                &url[..authority_start],
                &url[authority_end..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// One SNMPv2c linkDown trap (community `public`) per interface index `1..=distinct`, encoded
/// once up front, for tests and benchmarks that send many.
pub fn link_down_traps(distinct: u32) -> Vec<Vec<u8>> {
    use crate::event::{SnmpValue, Varbind};
    const LINK_DOWN: &str = "1.3.6.1.6.3.1.1.5.3";
    (1..=distinct)
        .map(|index| {
            let varbinds = [
                (format!("1.3.6.1.2.1.2.2.1.1.{index}"), index as i32),
                (format!("1.3.6.1.2.1.2.2.1.7.{index}"), 1),
                (format!("1.3.6.1.2.1.2.2.1.8.{index}"), 2),
            ]
            .map(|(oid, v)| Varbind {
                oid,
                value: SnmpValue::Integer(v),
            });
            crate::snmp::encode_v2c_trap("public", index as i32, 4242, LINK_DOWN, &varbinds)
                .expect("trap encodes")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_path() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/t",
            ),
            (
                "postgres://u:p@h/db?sslmode=disable",
                "postgres://u:p@h/t?sslmode=disable",
            ),
            ("postgres://h:5432", "postgres://h:5432/t"),
            (
                "postgres:///postgres?host=/run/postgresql",
                "postgres:///t?host=/run/postgresql",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(with_database(url, "t"), expected, "{url}");
        }
    }

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn unique_names_are_valid_unquoted_identifiers_and_differ() {
        let (a, b) = (unique_name(), unique_name());
        assert_ne!(a, b);
        assert!(
            a.len() < 63,
            "postgres truncates identifiers at 63 bytes: {a}"
        );
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
    }
}
