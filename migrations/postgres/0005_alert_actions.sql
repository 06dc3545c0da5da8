-- Alert history (who did what to an alert, and when) and silences (maintenance windows).
--
-- Kept equivalent to migrations/sqlite/0005_alert_actions.sql, which explains both tables.

CREATE TABLE alert_events (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id BIGINT      NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at       TIMESTAMPTZ NOT NULL,
    kind     TEXT        NOT NULL CHECK (kind IN ('created', 'acknowledged',
                                     'unacknowledged', 'resolved', 'suppressed',
                                     'unsuppressed', 'note')),
    actor    TEXT        NOT NULL,
    note     TEXT,
    details  JSONB       NOT NULL CHECK (jsonb_typeof(details) = 'object')
);

-- One alert's history in order; also what the cascade from alerts uses (PostgreSQL does not
-- index referencing columns by itself, and retention would scan the table per deleted alert).
CREATE INDEX alert_events_alert_id_id ON alert_events (alert_id, id);

CREATE TABLE silences (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    match_addon      TEXT,
    match_device     TEXT,
    match_alert_type TEXT,
    match_fields     JSONB       NOT NULL CHECK (jsonb_typeof(match_fields) = 'object'),
    starts_at        TIMESTAMPTZ NOT NULL,
    ends_at          TIMESTAMPTZ NOT NULL,
    recurrence       JSONB CHECK (recurrence IS NULL OR jsonb_typeof(recurrence) = 'object'),
    comment          TEXT        NOT NULL,
    created_by       TEXT        NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    CHECK (ends_at > starts_at)
);

CREATE INDEX silences_ends_at ON silences (ends_at);
