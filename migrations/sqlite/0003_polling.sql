-- Polling: target schedules and leases, poll credentials, pinned SSH host keys, maintenance jobs.
--
-- Kept equivalent to migrations/postgres/0003_polling.sql, which explains the lease columns.
-- SQLite has one writer, so a claim there is a plain UPDATE; the columns are the same so that
-- the store's code and the tests are too.

ALTER TABLE targets ADD COLUMN next_due_at           TEXT;
ALTER TABLE targets ADD COLUMN lease_owner           TEXT;
ALTER TABLE targets ADD COLUMN lease_until           TEXT;
ALTER TABLE targets ADD COLUMN last_poll_duration_ms INTEGER;
ALTER TABLE targets ADD COLUMN last_poll_error       TEXT;
ALTER TABLE targets ADD COLUMN last_success_at       TEXT;
ALTER TABLE targets ADD COLUMN polls_total           INTEGER NOT NULL DEFAULT 0;
ALTER TABLE targets ADD COLUMN poll_failures         INTEGER NOT NULL DEFAULT 0;

CREATE INDEX targets_due ON targets (next_due_at) WHERE enabled;

CREATE TABLE credentials (
    name       TEXT NOT NULL PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    kind       TEXT NOT NULL,
    public     TEXT NOT NULL DEFAULT '{}' CHECK (json_type(public) = 'object'),
    secret     BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE ssh_host_keys (
    endpoint      TEXT NOT NULL PRIMARY KEY,
    key_type      TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL
) STRICT;

CREATE TABLE scheduled_jobs (
    name             TEXT NOT NULL PRIMARY KEY,
    next_due_at      TEXT NOT NULL,
    lease_owner      TEXT,
    lease_until      TEXT,
    last_run_at      TEXT,
    last_status      TEXT,
    last_duration_ms INTEGER
) STRICT;
