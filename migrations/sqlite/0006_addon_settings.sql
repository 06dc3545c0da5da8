-- Per-addon settings that the operator configures (today: webhook authentication and the
-- client address allow list), apart from the manifest that the addon's author ships.
--
-- Kept equivalent to migrations/postgres/0006_addon_settings.sql.

-- One JSON object per addon, validated by the runtime before it is written
-- (inbound/webhook_auth.rs) and read by every node's registry when it loads the addon, never
-- per request. A separate table rather than a column of `addons` so that reinstalling or
-- upgrading a bundle, which rewrites the addon's row, cannot lose what the operator set.
-- Writers bump the `addons.generation` setting in the same transaction, so that every node
-- reloads the addon with its new settings. The object holds webhook secrets in clear, like the
-- poll credentials: the API and the CLI show only whether a secret is set. Settings go with
-- their addon.
CREATE TABLE addon_settings (
    addon_id   TEXT NOT NULL PRIMARY KEY REFERENCES addons (id) ON DELETE CASCADE,
    settings   TEXT NOT NULL CHECK (json_type(settings) = 'object'),
    updated_at TEXT NOT NULL
) STRICT;
