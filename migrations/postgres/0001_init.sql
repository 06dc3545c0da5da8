-- Initial schema for PostgreSQL, the production and multi-node database.
--
-- Kept equivalent to migrations/sqlite/0001_init.sql: the store runs the same queries and the
-- same tests on both databases, so whatever is added here is added there too. Constraints that
-- SQLite expresses with CHECKs (lengths, non-empty ids) are spelled the same way here so that
-- both refuse the same rows.
--
-- The store binds every timestamp itself (no now() defaults), so both databases hold the time
-- the runtime saw, truncated to microseconds.

-- Installed addons. The wasm component is stored with its manifest so that every node loads
-- the same bytes from the database; list queries never select it (it is TOASTed out of line).
CREATE TABLE addons (
    id           VARCHAR(64) PRIMARY KEY CHECK (id <> ''),
    name         TEXT        NOT NULL,
    version      TEXT        NOT NULL,
    methods      JSONB       NOT NULL CHECK (jsonb_typeof(methods) = 'array'),
    manifest     JSONB       NOT NULL,
    wasm         BYTEA       NOT NULL,
    wasm_sha256  TEXT        NOT NULL,
    enabled      BOOLEAN     NOT NULL,
    installed_at TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- Alerts, open and resolved, in one table. The identity column is never reused, which API
-- clients rely on: they page with `before_id` and cache alerts by id.
CREATE TABLE alerts (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    addon_id         VARCHAR(64) NOT NULL REFERENCES addons (id),
    fingerprint      VARCHAR(64) NOT NULL CHECK (fingerprint <> ''),
    alert_type       TEXT        NOT NULL,
    device_ip        TEXT,
    device_name      TEXT,
    severity         TEXT        NOT NULL
        CHECK (severity IN ('critical', 'major', 'minor', 'warning', 'info')),
    category         TEXT        NOT NULL,
    title            TEXT        NOT NULL,
    message          TEXT        NOT NULL,
    status           TEXT        NOT NULL
        CHECK (status IN ('active', 'acknowledged', 'suppressed', 'resolved')),
    -- A JSON object whose values are strings (identity and extra fields).
    fields           JSONB       NOT NULL CHECK (jsonb_typeof(fields) = 'object'),
    occurrence_count BIGINT      NOT NULL CHECK (occurrence_count >= 1),
    occurred_at      TIMESTAMPTZ NOT NULL,
    first_seen_at    TIMESTAMPTZ NOT NULL,
    last_seen_at     TIMESTAMPTZ NOT NULL,
    acknowledged_at  TIMESTAMPTZ,
    acknowledged_by  TEXT,
    resolved_at      TIMESTAMPTZ,
    resolved_by      TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);

-- Dedupe is enforced here, not in application code: at most one open alert per fingerprint.
-- Raises use this index as their ON CONFLICT target, so the guarantee holds across connections
-- and nodes (a concurrent insert of the same fingerprint waits for the first to commit, then
-- takes the DO UPDATE path). Resolved alerts are outside the index, which is what lets a
-- recurrence after resolution open a new row.
CREATE UNIQUE INDEX alerts_open_fingerprint ON alerts (fingerprint) WHERE status <> 'resolved';

-- Filters used by the alert list, each ending in id so that "filter, newest first, before this
-- id" is one index range scan (a plain index on the filter column would return equal keys in
-- heap order and need a sort).
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
    key        TEXT        PRIMARY KEY,
    value      TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Devices to poll, each with the addon that polls it and its schedule (an interval, or a cron
-- expression when set). Credentials are never stored here, only a reference to them.
CREATE TABLE targets (
    id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                  TEXT        NOT NULL UNIQUE,
    address               TEXT        NOT NULL,
    addon_id              VARCHAR(64) NOT NULL REFERENCES addons (id),
    poll_interval_seconds BIGINT      NOT NULL DEFAULT 300 CHECK (poll_interval_seconds > 0),
    cron                  TEXT,
    enabled               BOOLEAN     NOT NULL DEFAULT TRUE,
    config                JSONB       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    credentials_ref       TEXT,
    last_poll_at          TIMESTAMPTZ,
    last_poll_status      TEXT,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);

CREATE INDEX targets_addon_id ON targets (addon_id);

-- Per-addon key/value storage behind the addons' state host import. Quotas (key and value size,
-- number of keys) are enforced by the store, which can explain a refusal; the state goes when
-- its addon goes.
CREATE TABLE addon_state (
    addon_id   VARCHAR(64) NOT NULL REFERENCES addons (id) ON DELETE CASCADE,
    key        TEXT        NOT NULL,
    value      BYTEA       NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (addon_id, key)
);
