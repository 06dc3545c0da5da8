-- What `opsconductor import legacy` / `import json` brought over, one row per source record
-- (`kind` alert, target or setting, and its id in the source: the legacy UUID, target id or
-- settings key). A record is imported in the same transaction that writes this row, so a second
-- run skips what the first brought over and a failed batch leaves neither.
--
-- Kept equivalent to migrations/sqlite/0013_legacy_imports.sql.
CREATE TABLE legacy_imports (
    kind        TEXT        NOT NULL CHECK (kind IN ('alert', 'target', 'setting')),
    source_id   TEXT        NOT NULL,
    -- Where it went: the new alert's or target's id, the settings key.
    imported_as TEXT        NOT NULL,
    imported_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, source_id)
);
