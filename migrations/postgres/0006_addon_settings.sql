-- Per-addon settings that the operator configures (webhook authentication, the client address
-- allow list).
--
-- Kept equivalent to migrations/sqlite/0006_addon_settings.sql, which explains the table.

CREATE TABLE addon_settings (
    addon_id   VARCHAR(64) PRIMARY KEY REFERENCES addons (id) ON DELETE CASCADE,
    settings   JSONB       NOT NULL CHECK (jsonb_typeof(settings) = 'object'),
    updated_at TIMESTAMPTZ NOT NULL
);
