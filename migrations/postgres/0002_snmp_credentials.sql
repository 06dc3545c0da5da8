-- SNMP trap receiver credentials: v1/v2c communities and SNMPv3 (USM) users.
--
-- Kept equivalent to migrations/sqlite/0002_snmp_credentials.sql, which explains why USM keys
-- are stored as Ku rather than as passwords.

CREATE TABLE snmp_communities (
    label      VARCHAR(64)  NOT NULL PRIMARY KEY CHECK (length(label) >= 1),
    community  VARCHAR(255) NOT NULL UNIQUE CHECK (length(community) >= 1),
    created_at TIMESTAMPTZ  NOT NULL
);

CREATE TABLE snmp_users (
    name          VARCHAR(32) NOT NULL PRIMARY KEY CHECK (length(name) >= 1),
    auth_protocol TEXT,
    auth_key      BYTEA,
    priv_protocol TEXT,
    priv_key      BYTEA,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    CHECK ((auth_protocol IS NULL) = (auth_key IS NULL)),
    CHECK ((priv_protocol IS NULL) = (priv_key IS NULL)),
    CHECK (priv_protocol IS NULL OR auth_protocol IS NOT NULL)
);
