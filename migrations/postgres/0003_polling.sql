-- Polling: target schedules and leases, poll credentials, pinned SSH host keys, maintenance jobs.
--
-- Kept equivalent to migrations/sqlite/0003_polling.sql.
--
-- Scheduling state lives on the target row itself so that claiming a due poll is one
-- `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)`: a node takes a lease (`lease_owner`,
-- `lease_until`) and moves `next_due_at` one period on; a node that dies leaves a lease that
-- expires, and the row becomes claimable again.

ALTER TABLE targets ADD COLUMN next_due_at           TIMESTAMPTZ;
ALTER TABLE targets ADD COLUMN lease_owner           TEXT;
ALTER TABLE targets ADD COLUMN lease_until           TIMESTAMPTZ;
ALTER TABLE targets ADD COLUMN last_poll_duration_ms BIGINT;
ALTER TABLE targets ADD COLUMN last_poll_error       TEXT;
ALTER TABLE targets ADD COLUMN last_success_at       TIMESTAMPTZ;
ALTER TABLE targets ADD COLUMN polls_total           BIGINT NOT NULL DEFAULT 0;
ALTER TABLE targets ADD COLUMN poll_failures         BIGINT NOT NULL DEFAULT 0;

CREATE INDEX targets_due ON targets (next_due_at) WHERE enabled;

-- Secrets to poll with: an SNMP community or USM user (keys stored as Ku, as for trap users),
-- HTTP basic/bearer/header credentials, an SSH password or private key. `public` holds what may
-- be shown (user names, protocols); `secret` is read only by the poller and never returned.
CREATE TABLE credentials (
    name       VARCHAR(64) NOT NULL PRIMARY KEY CHECK (length(name) >= 1),
    kind       TEXT        NOT NULL,
    public     JSONB       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(public) = 'object'),
    secret     BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- SSH host keys pinned on first use, per `host:port`. A different key later is refused.
CREATE TABLE ssh_host_keys (
    endpoint      TEXT        NOT NULL PRIMARY KEY,
    key_type      TEXT        NOT NULL,
    public_key    TEXT        NOT NULL,
    fingerprint   TEXT        NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at  TIMESTAMPTZ NOT NULL
);

-- Maintenance jobs (retention, expiry) on cron schedules, leased like polls.
CREATE TABLE scheduled_jobs (
    name             TEXT        NOT NULL PRIMARY KEY,
    next_due_at      TIMESTAMPTZ NOT NULL,
    lease_owner      TEXT,
    lease_until      TIMESTAMPTZ,
    last_run_at      TIMESTAMPTZ,
    last_status      TEXT,
    last_duration_ms BIGINT
);
