-- What stops a captured SNMPv3 trap from being accepted twice, across restarts and nodes
-- (runtime/src/snmp/replay.rs, inbound/trap/replay.rs).
--
-- Kept equivalent to migrations/postgres/0010_snmp_replay.sql.

-- The last clock of every remote authoritative engine (a v3 trap sender), RFC 3414 § 2.3:
-- its boots and time as of `observed_at`. Only ever moves forward.
CREATE TABLE snmp_engine_clocks (
    engine_id   BLOB    NOT NULL PRIMARY KEY,
    boots       INTEGER NOT NULL,
    engine_time INTEGER NOT NULL,
    observed_at TEXT    NOT NULL
) STRICT;

-- The digests (snmp/replay.rs: SHA-256 of engine id and HMAC, 16 bytes) of the traps accepted
-- within the time window, until they expire. `id` orders them for the nodes that read what
-- the others recorded.
CREATE TABLE snmp_seen_digests (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    digest     BLOB    NOT NULL UNIQUE CHECK (length(digest) = 16),
    expires_at TEXT    NOT NULL
) STRICT;

CREATE INDEX snmp_seen_digests_expires_at ON snmp_seen_digests (expires_at);
