-- What stops a captured SNMPv3 trap from being accepted twice, across restarts and nodes
-- (runtime/src/snmp/replay.rs, inbound/trap/replay.rs).
--
-- Kept equivalent to migrations/sqlite/0010_snmp_replay.sql, which explains the tables.
CREATE TABLE snmp_engine_clocks (
    engine_id   BYTEA       NOT NULL PRIMARY KEY,
    boots       BIGINT      NOT NULL,
    engine_time BIGINT      NOT NULL,
    observed_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE snmp_seen_digests (
    id         BIGSERIAL   PRIMARY KEY,
    digest     BYTEA       NOT NULL UNIQUE CHECK (length(digest) = 16),
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX snmp_seen_digests_expires_at ON snmp_seen_digests (expires_at);
