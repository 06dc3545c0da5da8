//! `opsconductor import legacy` against a real PostgreSQL database made with the legacy system's
//! schema (tests/legacy/schema.sql) and 3,000 synthetic alerts, good and bad
//! (tests/legacy/rows.sql), into a SQLite and a PostgreSQL store: the dry run writes nothing,
//! every bad row is refused or noted with its reason, imported open alerts dedupe new events, a
//! second run imports nothing twice, and a batch that fails leaves nothing of itself.

use std::collections::BTreeMap;

use opsconductor::alert::{ActionOutcome, ReportedAlert};
use opsconductor::engine::{AlertRules, evaluate};
use opsconductor::import::{ImportOptions, import_json, import_legacy};
use opsconductor::manifest::AlertSpec;
use opsconductor::store::{ImportKind, LegacySource, Store};
use opsconductor::testing::{Db, TestPostgres, record_bare_addon, secret_keys, sqlite_url};
use sqlx::Connection as _;

/// A fresh PostgreSQL database with the legacy schema and rows.
async fn legacy_database() -> TestPostgres {
    let pg = TestPostgres::create()
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut conn = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("legacy");
    for file in ["schema.sql", "rows.sql"] {
        let sql = std::fs::read_to_string(dir.join(file)).unwrap();
        sqlx::raw_sql(&sql)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    conn.close().await.unwrap();
    pg
}

/// The store to import into, with the addons this system has (not `ghost`).
struct Target {
    store: Store,
    url: String,
    _dir: tempfile::TempDir,
    pg: Option<TestPostgres>,
}

async fn target(db: Db) -> Target {
    let dir = tempfile::tempdir().unwrap();
    let pg = match db {
        Db::Sqlite => None,
        Db::Postgres => Some(TestPostgres::create().await.unwrap()),
    };
    let url = match &pg {
        Some(pg) => pg.url.clone(),
        None => sqlite_url(dir.path()).await,
    };
    let store = Store::connect(&url, secret_keys()).await.unwrap();
    for addon in ["alertmanager", "if-mib"] {
        record_bare_addon(&store, addon).await;
    }
    Target {
        store,
        url,
        _dir: dir,
        pg,
    }
}

impl Target {
    /// Alerts by status (`active`, `resolved`, ...).
    async fn counts(&self) -> BTreeMap<&'static str, i64> {
        self.store
            .count_alerts_by_status()
            .await
            .unwrap()
            .into_iter()
            .map(|(status, n)| (status.as_str(), n))
            .collect()
    }

    async fn close(self) {
        drop(self.store);
        if let Some(pg) = self.pg {
            pg.drop().await;
        }
    }
}

const OPTIONS: ImportOptions = ImportOptions {
    dry_run: false,
    batch: 500,
};

async fn imports_once_and_reports_every_bad_row(db: Db) {
    let legacy = legacy_database().await;
    let source = LegacySource::connect(&legacy.url).await.unwrap();
    let t = target(db).await;

    // A dry run reports what would happen and writes nothing.
    let dry = import_legacy(
        &t.store,
        &source,
        ImportOptions {
            dry_run: true,
            ..OPTIONS
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (dry.alerts.read, dry.alerts.imported, dry.alerts.refused),
        (3000, 2880, 120)
    );
    assert_eq!(
        t.counts().await.values().sum::<i64>(),
        0,
        "a dry run wrote alerts"
    );
    assert!(
        t.store
            .imported_ids(ImportKind::Alert)
            .await
            .unwrap()
            .is_empty()
    );

    let report = import_legacy(&t.store, &source, OPTIONS).await.unwrap();
    assert_eq!(
        (
            report.alerts.read,
            report.alerts.imported,
            report.alerts.refused
        ),
        (3000, 2880, 120),
        "{:?}",
        report.alerts
    );
    assert_eq!(report.batches, 6);
    assert_eq!(report.missing_addons.iter().collect::<Vec<_>>(), ["ghost"]);
    // Every refusal says why; every changed value says what became of it.
    let notes = |text: &str| {
        report
            .notes
            .iter()
            .filter(|n| n.to_string().contains(text))
            .count()
    };
    assert_eq!(notes("addon `ghost` is not installed here"), 100 + 1);
    assert_eq!(notes("refused): no addon"), 20);
    assert_eq!(notes("is not an IP address: kept as the device name"), 50);
    assert_eq!(notes("no status: imported as active"), 20);
    assert_eq!(notes("severity `high` is not"), 10);
    assert_eq!(notes("the same problem as the newer open alert"), 150);
    assert_eq!(notes("imported disabled"), 9);
    assert_eq!(notes("a key this system keeps for itself"), 1);

    let counts = t.counts().await;
    assert_eq!(counts.get("active"), Some(&730), "{counts:?}");
    assert_eq!(counts.get("resolved"), Some(&2150), "{counts:?}");
    assert_eq!((report.targets.imported, report.targets.refused), (9, 1));
    let targets = t.store.targets(&Default::default()).await.unwrap();
    assert_eq!(targets.len(), 9);
    assert!(
        targets.iter().all(|t| !t.enabled),
        "imported targets start disabled"
    );
    assert_eq!((report.settings.imported, report.settings.refused), (2, 1));
    assert_eq!(
        t.store.get_setting("smtp_host").await.unwrap().as_deref(),
        Some("mail.example.net")
    );

    // A new event for an imported open problem counts on the imported alert.
    let rules = AlertRules::new("alertmanager", &AlertSpec::default());
    let reported = ReportedAlert {
        alert_type: "HighLoad".into(),
        device_ip: Some("10.1.8.1".into()), // legacy alert 2001
        device_name: None,
        title: "load high".into(),
        message: String::new(),
        severity: None,
        clears: false,
        identity: Vec::new(),
        fields: Vec::new(),
        occurred_at: None,
    };
    let actions = evaluate(&rules, reported, chrono::Utc::now()).unwrap();
    let outcome = t.store.apply_batch(&actions).await.unwrap();
    assert!(
        matches!(
            outcome[0],
            ActionOutcome::Updated {
                occurrence_count: 4,
                ..
            }
        ),
        "{outcome:?}"
    );

    // Again: nothing twice.
    let again = import_legacy(&t.store, &source, OPTIONS).await.unwrap();
    assert_eq!(
        (again.alerts.imported, again.alerts.imported_before),
        (0, 2880),
        "{:?}",
        again.alerts
    );
    assert_eq!(again.targets.imported + again.settings.imported, 0);
    assert_eq!(t.counts().await, counts);

    drop(source);
    t.close().await;
    legacy.drop().await;
}
opsconductor::both_databases!(imports_once, imports_once_and_reports_every_bad_row);

/// The target database refuses one alert of the second batch (a trigger, as a constraint or a
/// full disk would): the first batch is imported, nothing of the second, and the error says so.
/// A second run, once the cause is gone, imports the rest and nothing twice.
async fn a_failed_batch_leaves_nothing_of_itself(db: Db) {
    let legacy = legacy_database().await;
    let mut conn = sqlx::PgConnection::connect(&legacy.url).await.unwrap();
    sqlx::query("UPDATE alerts SET title = 'poison' WHERE id = legacy_id(700)")
        .execute(&mut conn)
        .await
        .unwrap();
    let source = LegacySource::connect(&legacy.url).await.unwrap();
    let t = target(db).await;
    let (create, remove) = match db {
        Db::Sqlite => (
            vec![
                "CREATE TRIGGER poison BEFORE INSERT ON alerts WHEN NEW.title = 'poison' \
                  BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
            ],
            "DROP TRIGGER poison",
        ),
        Db::Postgres => (
            vec![
                "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN \
                 IF NEW.title = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER poison BEFORE INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION poison()",
            ],
            "DROP TRIGGER poison ON alerts",
        ),
    };
    let run = async |sql: &str| match db {
        Db::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        }
        Db::Postgres => {
            let mut c = sqlx::PgConnection::connect(&t.url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        }
    };
    for sql in create {
        run(sql).await;
    }

    let err = import_legacy(&t.store, &source, OPTIONS).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("alert batch 2 failed, and nothing of it was imported (500 alerts in 1 earlier batches were)"),
        "{message}"
    );
    let counts: i64 = t.counts().await.values().sum();
    assert_eq!(counts, 500, "only the first batch");
    assert_eq!(
        t.store.imported_ids(ImportKind::Alert).await.unwrap().len(),
        500
    );

    run(remove).await;
    let rest = import_legacy(&t.store, &source, OPTIONS).await.unwrap();
    assert_eq!(
        (rest.alerts.imported, rest.alerts.imported_before),
        (2380, 500)
    );
    let counts: i64 = t.counts().await.values().sum();
    assert_eq!(counts, 2880);

    conn.close().await.unwrap();
    drop(source);
    t.close().await;
    legacy.drop().await;
}
opsconductor::both_databases!(failed_batch, a_failed_batch_leaves_nothing_of_itself);

/// Alerts from elsewhere as a JSON file: imported with their fields, bad entries refused by
/// index, and a second run imports nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_file_of_alerts() {
    let t = target(Db::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts.json");
    std::fs::write(
        &file,
        serde_json::json!({"alerts": [
            {"id": "a-1", "addon_id": "alertmanager", "alert_type": "DiskFull", "device_name": "db-1",
             "severity": "critical", "title": "disk full", "status": "active",
             "occurred_at": "2026-11-30T10:00:00Z", "fields": {"mount": "/var"}},
            {"addon_id": "alertmanager", "alert_type": "DiskFull", "device_ip": "192.0.2.4",
             "severity": "minor", "title": "disk filling", "status": "resolved",
             "occurred_at": "2026-11-29T10:00:00Z"},
            {"addon_id": "alertmanager", "alert_type": 7},
            {"addon_id": "nagios", "alert_type": "HostDown", "device_name": "x"}
        ]})
        .to_string(),
    )
    .unwrap();
    // The problem of `a-1` is open here already: it stays the open one, and `a-1` comes in
    // resolved.
    let rules = AlertRules::new("alertmanager", &AlertSpec::default());
    let ours = ReportedAlert {
        alert_type: "DiskFull".into(),
        device_ip: None,
        device_name: Some("db-1".into()),
        title: "disk full here".into(),
        message: String::new(),
        severity: None,
        clears: false,
        identity: Vec::new(),
        fields: Vec::new(),
        occurred_at: None,
    };
    let actions = evaluate(&rules, ours, chrono::Utc::now()).unwrap();
    t.store.apply_batch(&actions).await.unwrap();

    let report = import_json(&t.store, &file, OPTIONS).await.unwrap();
    assert_eq!(
        (
            report.alerts.read,
            report.alerts.imported,
            report.alerts.refused
        ),
        (4, 2, 2),
        "{report:?}"
    );
    assert!(
        report.notes.iter().any(|n| n.record == "alert [2]"),
        "{report:?}"
    );
    assert_eq!(report.alerts.kept_ours, 1, "{report:?}");
    let counts = t.counts().await;
    assert_eq!(
        (counts.get("active"), counts.get("resolved")),
        (Some(&1), Some(&2)),
        "ours open, both imported resolved: {counts:?}"
    );
    let again = import_json(&t.store, &file, OPTIONS).await.unwrap();
    assert_eq!(
        (again.alerts.imported, again.alerts.imported_before),
        (0, 2)
    );
    let counts: i64 = t.counts().await.values().sum();
    assert_eq!(counts, 3);
    t.close().await;
}
