-- The version of each addon that its last upgrade replaced, kept for one-step rollback.
--
-- Kept equivalent to migrations/sqlite/0007_addon_versions.sql, which explains the table.

CREATE TABLE addon_versions (
    addon_id     VARCHAR(64) PRIMARY KEY REFERENCES addons (id) ON DELETE CASCADE,
    name         TEXT        NOT NULL,
    version      TEXT        NOT NULL,
    methods      JSONB       NOT NULL CHECK (jsonb_typeof(methods) = 'array'),
    manifest     JSONB       NOT NULL,
    wasm         BYTEA       NOT NULL,
    wasm_sha256  TEXT        NOT NULL,
    replaced_at  TIMESTAMPTZ NOT NULL
);
