-- SNMP trap receiver credentials: v1/v2c communities and SNMPv3 (USM) users.
--
-- Kept equivalent to migrations/postgres/0002_snmp_credentials.sql.
--
-- USM keys are stored as Ku, the RFC 3414 password-to-key result (a hash of the password
-- expanded to 1 MiB), never as the password: Ku is what the receiver needs to localize keys to
-- each sending engine, and storing it keeps the operator's password itself out of the database.
-- Communities are credentials too; nothing outside the store and the trap receiver reads them.

CREATE TABLE snmp_communities (
    label      TEXT NOT NULL PRIMARY KEY CHECK (length(label) BETWEEN 1 AND 64),
    community  TEXT NOT NULL UNIQUE CHECK (length(community) BETWEEN 1 AND 255),
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE snmp_users (
    name          TEXT NOT NULL PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 32),
    auth_protocol TEXT,
    auth_key      BLOB,
    priv_protocol TEXT,
    priv_key      BLOB,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    CHECK ((auth_protocol IS NULL) = (auth_key IS NULL)),
    CHECK ((priv_protocol IS NULL) = (priv_key IS NULL)),
    -- USM has no privacy without authentication.
    CHECK (priv_protocol IS NULL OR auth_protocol IS NOT NULL)
) STRICT;
