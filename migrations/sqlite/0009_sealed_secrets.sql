-- Secrets are sealed at rest (runtime/src/secrets.rs, store/secrets.rs): the columns that hold
-- them keep `enc:v1:…` text, which the runtime writes on its first start after this migration
-- and on every write after it.
--
-- Kept equivalent to migrations/postgres/0009_sealed_secrets.sql.
--
-- A sealed community is longer than the 255 characters a community may have, and two sealings
-- of one community differ (each has its own nonce), so the column can no longer be capped or
-- unique: the store checks that a community is accepted under one label only. SQLite cannot
-- drop a constraint, so the table is rebuilt.
CREATE TABLE snmp_communities_sealed (
    label      TEXT NOT NULL PRIMARY KEY CHECK (length(label) BETWEEN 1 AND 64),
    community  TEXT NOT NULL CHECK (length(community) >= 1),
    created_at TEXT NOT NULL
) STRICT;

INSERT INTO snmp_communities_sealed (label, community, created_at)
    SELECT label, community, created_at FROM snmp_communities;

DROP TABLE snmp_communities;

ALTER TABLE snmp_communities_sealed RENAME TO snmp_communities;
