-- Authentication: users, sessions and their refresh tokens, token signing keys, API keys, and
-- the audit log.
--
-- Kept equivalent to migrations/postgres/0004_auth.sql, which explains each table. Booleans are
-- INTEGER 0/1 and timestamps TEXT, as in 0001_init.sql (see there why text order is time order).

CREATE TABLE users (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    username            TEXT    NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 64),
    password_hash       TEXT,
    role                TEXT    NOT NULL
        CHECK (role IN ('admin', 'operator', 'viewer', 'service')),
    source              TEXT    NOT NULL DEFAULT 'local',
    disabled            INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL,
    password_changed_at TEXT,
    last_login_at       TEXT
) STRICT;

CREATE TABLE sessions (
    id             TEXT    NOT NULL PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     TEXT    NOT NULL,
    last_used_at   TEXT    NOT NULL,
    expires_at     TEXT    NOT NULL,
    revoked_at     TEXT,
    revoked_reason TEXT,
    client_ip      TEXT,
    user_agent     TEXT,
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
) STRICT;

CREATE INDEX sessions_user_id ON sessions (user_id, created_at);

CREATE TABLE refresh_tokens (
    token_sha256 TEXT NOT NULL PRIMARY KEY CHECK (length(token_sha256) = 64),
    session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at    TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    used_at      TEXT
) STRICT;

CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

CREATE TABLE signing_keys (
    kid        TEXT NOT NULL PRIMARY KEY CHECK (length(kid) BETWEEN 1 AND 64),
    secret     BLOB NOT NULL CHECK (length(secret) >= 32),
    created_at TEXT NOT NULL,
    retired_at TEXT
) STRICT;

CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((retired_at IS NULL))
    WHERE retired_at IS NULL;

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    prefix       TEXT NOT NULL,
    key_sha256   TEXT NOT NULL UNIQUE CHECK (length(key_sha256) = 64),
    role         TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer', 'service')),
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT
) STRICT;

CREATE UNIQUE INDEX api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    role         TEXT,
    source_ip    TEXT,
    action       TEXT NOT NULL,
    target       TEXT,
    before_state TEXT CHECK (before_state IS NULL OR json_valid(before_state)),
    after_state  TEXT CHECK (after_state IS NULL OR json_valid(after_state)),
    outcome      TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied'))
) STRICT;

CREATE INDEX audit_log_actor_id ON audit_log (actor, id);
CREATE INDEX audit_log_action_id ON audit_log (action, id);
CREATE INDEX audit_log_target_id ON audit_log (target, id);
