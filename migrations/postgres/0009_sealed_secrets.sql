-- Secrets are sealed at rest (runtime/src/secrets.rs, store/secrets.rs): the columns that hold
-- them keep `enc:v1:…` text, which the runtime writes on its first start after this migration
-- and on every write after it.
--
-- Kept equivalent to migrations/sqlite/0009_sealed_secrets.sql.
--
-- A sealed community is longer than the 255 characters a community may have, and two sealings
-- of one community differ (each has its own nonce), so the column can no longer be capped or
-- unique: the store checks that a community is accepted under one label only.
ALTER TABLE snmp_communities DROP CONSTRAINT IF EXISTS snmp_communities_community_key;
ALTER TABLE snmp_communities ALTER COLUMN community TYPE TEXT;
