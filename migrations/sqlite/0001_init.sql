-- Initial schema for SQLite, the embedded default database.
--
-- Kept equivalent to migrations/postgres/0001_init.sql: the store runs the same queries and the
-- same tests on both databases, so whatever is added here is added there too.
--
-- Tables are STRICT so that SQLite refuses a value of the wrong type, as PostgreSQL does, instead
-- of storing it with whatever affinity it happens to get.
--
-- Timestamps are TEXT holding exactly what sqlx writes for chrono's DateTime<Utc>: RFC 3339 in
-- UTC with a fixed "+00:00" suffix and 0, 3 or 6 fractional digits (the store truncates to
-- microseconds, as PostgreSQL does). Because the suffix is fixed and '+' sorts before '.' and
-- before every digit, text order is time order, so comparisons, max() and ORDER BY work on the
-- stored text. For the same reason there is no CURRENT_TIMESTAMP default anywhere: its format
-- ("YYYY-MM-DD HH:MM:SS") would not compare correctly with the rest; the store binds every
-- timestamp itself.
--
-- JSON columns are TEXT checked with SQLite's JSON functions; booleans are INTEGER 0/1.

-- Installed addons. The wasm component is stored with its manifest so that every node loads
-- the same bytes from the database; list queries never select it.
CREATE TABLE addons (
    id           TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    name         TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    methods      TEXT    NOT NULL CHECK (json_type(methods) = 'array'),
    manifest     TEXT    NOT NULL CHECK (json_valid(manifest)),
    wasm         BLOB    NOT NULL,
    wasm_sha256  TEXT    NOT NULL,
    enabled      INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    installed_at TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL
) STRICT;

-- Alerts, open and resolved, in one table. AUTOINCREMENT (rather than a plain rowid alias) so
-- that an id is never reused after the newest rows are deleted by retention: API clients page
-- with `before_id` and cache alerts by id.
CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    addon_id         TEXT    NOT NULL REFERENCES addons (id),
    fingerprint      TEXT    NOT NULL CHECK (length(fingerprint) BETWEEN 1 AND 64),
    alert_type       TEXT    NOT NULL,
    device_ip        TEXT,
    device_name      TEXT,
    severity         TEXT    NOT NULL
        CHECK (severity IN ('critical', 'major', 'minor', 'warning', 'info')),
    category         TEXT    NOT NULL,
    title            TEXT    NOT NULL,
    message          TEXT    NOT NULL,
    status           TEXT    NOT NULL
        CHECK (status IN ('active', 'acknowledged', 'suppressed', 'resolved')),
    -- A JSON object whose values are strings (identity and extra fields).
    fields           TEXT    NOT NULL CHECK (json_type(fields) = 'object'),
    occurrence_count INTEGER NOT NULL CHECK (occurrence_count >= 1),
    occurred_at      TEXT    NOT NULL,
    first_seen_at    TEXT    NOT NULL,
    last_seen_at     TEXT    NOT NULL,
    acknowledged_at  TEXT,
    acknowledged_by  TEXT,
    resolved_at      TEXT,
    resolved_by      TEXT,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL
) STRICT;

-- Dedupe is enforced here, not in application code: at most one open alert per fingerprint.
-- Raises use this index as their ON CONFLICT target, so the guarantee holds across connections,
-- processes and (on PostgreSQL) nodes. Resolved alerts are outside the index, which is what
-- lets a recurrence after resolution open a new row.
CREATE UNIQUE INDEX alerts_open_fingerprint ON alerts (fingerprint) WHERE status <> 'resolved';

-- Filters used by the alert list, each ending in id so that "filter, newest first, before this
-- id" is one index range scan. (SQLite appends the rowid to every index anyway; the explicit
-- column keeps the definition identical to PostgreSQL's, where it matters.)
CREATE INDEX alerts_status_id ON alerts (status, id);
CREATE INDEX alerts_addon_id_id ON alerts (addon_id, id);
CREATE INDEX alerts_device_ip_id ON alerts (device_ip, id);
CREATE INDEX alerts_device_name_id ON alerts (device_name, id);
-- Time ranges for expiry and retention jobs.
CREATE INDEX alerts_last_seen_at ON alerts (last_seen_at);
CREATE INDEX alerts_occurred_at ON alerts (occurred_at);

-- Configuration that lives in the database (one value per key), including the addon registry's
-- generation counter `addons.generation`.
CREATE TABLE system_settings (
    key        TEXT NOT NULL PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

-- Devices to poll, each with the addon that polls it and its schedule (an interval, or a cron
-- expression when set). Credentials are never stored here, only a reference to them.
CREATE TABLE targets (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    name                  TEXT    NOT NULL UNIQUE,
    address               TEXT    NOT NULL,
    addon_id              TEXT    NOT NULL REFERENCES addons (id),
    poll_interval_seconds INTEGER NOT NULL DEFAULT 300 CHECK (poll_interval_seconds > 0),
    cron                  TEXT,
    enabled               INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    config                TEXT    NOT NULL DEFAULT '{}' CHECK (json_type(config) = 'object'),
    credentials_ref       TEXT,
    last_poll_at          TEXT,
    last_poll_status      TEXT,
    created_at            TEXT    NOT NULL,
    updated_at            TEXT    NOT NULL
) STRICT;

CREATE INDEX targets_addon_id ON targets (addon_id);

-- Per-addon key/value storage behind the addons' state host import. Quotas (key and value size,
-- number of keys) are enforced by the store, which can explain a refusal; the state goes when
-- its addon goes.
CREATE TABLE addon_state (
    addon_id   TEXT NOT NULL REFERENCES addons (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      BLOB NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (addon_id, key)
) STRICT;
