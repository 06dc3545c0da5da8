-- The version of each addon that its last upgrade replaced, kept for one-step rollback
-- (`opsconductor addon rollback`, `POST /api/v1/addons/{id}/rollback`).
--
-- Kept equivalent to migrations/postgres/0007_addon_versions.sql.

-- At most one row per addon: an upgrade (any install that changes the addon's manifest or wasm)
-- copies the row it replaces here in the same transaction, overwriting what was kept before; a
-- rollback copies it back into `addons` and deletes it, so a second rollback is refused rather
-- than rolling forward. The enabled flag and the operator's settings are the addon's, not a
-- version's, and stay as they are. Goes with its addon.
CREATE TABLE addon_versions (
    addon_id     TEXT NOT NULL PRIMARY KEY REFERENCES addons (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    methods      TEXT NOT NULL CHECK (json_type(methods) = 'array'),
    manifest     TEXT NOT NULL CHECK (json_valid(manifest)),
    wasm         BLOB NOT NULL,
    wasm_sha256  TEXT NOT NULL,
    replaced_at  TEXT NOT NULL
) STRICT;
