-- Alert history (who did what to an alert, and when) and silences (maintenance windows).
--
-- Kept equivalent to migrations/postgres/0005_alert_actions.sql.

-- What happened to each alert, one row per change, written by the store in the same transaction
-- as the change: `created` (by its addon, `active` or `suppressed`), operators' `acknowledged`,
-- `unacknowledged`, `resolved` and `note`, clearing events' `resolved`, and a silence's
-- `suppressed` / `unsuppressed`. Repeated occurrences are not rows here: the alert's
-- occurrence_count, first_seen_at and last_seen_at summarise them, so that a flapping device
-- does not add a row per event. `details` holds what a kind needs beyond actor and note (e.g.
-- the silence's id). Rows go with their alert when retention deletes it.
--
-- A plain rowid rather than AUTOINCREMENT: ids order the history and are the paging cursor
-- within one alert, and are never reused while that alert exists, which is all that needs;
-- AUTOINCREMENT would cost a sqlite_sequence write on every alert created.
CREATE TABLE alert_events (
    id       INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at       TEXT    NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind IN ('created', 'acknowledged', 'unacknowledged',
                                              'resolved', 'suppressed', 'unsuppressed', 'note')),
    actor    TEXT    NOT NULL,
    note     TEXT,
    details  TEXT    NOT NULL CHECK (json_type(details) = 'object')
) STRICT;

-- One alert's history in order; also what the cascade from alerts uses.
CREATE INDEX alert_events_alert_id_id ON alert_events (alert_id, id);

-- Silences: alerts raised while one is in force and matches are stored `suppressed`. Matchers
-- are columns (NULL = any) plus a JSON object of field values; the recurrence, when set, is a
-- JSON object {"days": [...], "start": "HH:MM", "end": "HH:MM"} (UTC) that the engine reads.
-- Writers bump the `silences.generation` setting in the same transaction, which is how every
-- node knows to reload the silences it holds in memory.
CREATE TABLE silences (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    match_addon      TEXT,
    match_device     TEXT,
    match_alert_type TEXT,
    match_fields     TEXT NOT NULL CHECK (json_type(match_fields) = 'object'),
    starts_at        TEXT NOT NULL,
    ends_at          TEXT NOT NULL,
    recurrence       TEXT CHECK (recurrence IS NULL OR json_type(recurrence) = 'object'),
    comment          TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    CHECK (ends_at > starts_at)
) STRICT;

-- The writers' cache loads the silences not yet ended; lists filter by state.
CREATE INDEX silences_ends_at ON silences (ends_at);
