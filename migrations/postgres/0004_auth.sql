-- Authentication: users, sessions and their refresh tokens, token signing keys, API keys, and
-- the audit log.
--
-- Kept equivalent to migrations/sqlite/0004_auth.sql.
--
-- No secret is stored in a form that lets it be used: passwords as argon2id hashes, refresh
-- tokens and API keys as SHA-256 (they are 256 random bits, so a fast hash is enough). The
-- exception is signing_keys.secret, which must sign; it is read only by the auth service.

-- Users who sign in. `password_hash` is an argon2id PHC string; NULL for users authenticated
-- elsewhere (`source` other than 'local', e.g. LDAP later), who cannot use a password here.
-- Usernames are stored lowercased, so the unique constraint is case-insensitive in effect.
CREATE TABLE users (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username            VARCHAR(64) NOT NULL UNIQUE CHECK (username <> ''),
    password_hash       TEXT,
    role                TEXT        NOT NULL
        CHECK (role IN ('admin', 'operator', 'viewer', 'service')),
    source              TEXT        NOT NULL DEFAULT 'local',
    disabled            BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    password_changed_at TIMESTAMPTZ,
    last_login_at       TIMESTAMPTZ
);

-- One per login. The id is random (it travels in access tokens as `sid` and names the session
-- in the API), not a sequence. `expires_at` moves with every refresh: it is the expiry of the
-- newest refresh token. Access tokens are checked against this row on every request, so
-- setting `revoked_at` ends the session at once, not when its access token expires.
CREATE TABLE sessions (
    id             TEXT        NOT NULL PRIMARY KEY,
    user_id        BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     TIMESTAMPTZ NOT NULL,
    last_used_at   TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    revoked_at     TIMESTAMPTZ,
    revoked_reason TEXT,
    client_ip      TEXT,
    user_agent     TEXT,
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);

CREATE INDEX sessions_user_id ON sessions (user_id, created_at);

-- Every refresh token a session was given. Using one sets `used_at` and issues the next; one
-- presented again after that (`used_at` set) was copied, so the whole session is revoked. Used
-- tokens are kept until they expire for exactly that check.
CREATE TABLE refresh_tokens (
    token_sha256 CHAR(64)    NOT NULL PRIMARY KEY,
    session_id   TEXT        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at    TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    used_at      TIMESTAMPTZ
);

CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

-- HMAC keys that sign access tokens, when the configuration does not give one. Exactly one is
-- active (`retired_at` NULL; the unique index makes that a database fact, so two nodes starting
-- at once cannot both create one); retired keys still verify for an access token's lifetime.
CREATE TABLE signing_keys (
    kid        VARCHAR(64) NOT NULL PRIMARY KEY CHECK (kid <> ''),
    secret     BYTEA       NOT NULL CHECK (length(secret) >= 32),
    created_at TIMESTAMPTZ NOT NULL,
    retired_at TIMESTAMPTZ
);

CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((retired_at IS NULL))
    WHERE retired_at IS NULL;

-- Keys for integrations. `prefix` (the first characters of the key) is what listings show so
-- that a leaked key can be recognised; the key itself was shown once, at creation. A name is
-- unique among keys not revoked, so a revoked key's name can be reused.
CREATE TABLE api_keys (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         VARCHAR(64) NOT NULL CHECK (name <> ''),
    prefix       TEXT        NOT NULL,
    key_sha256   CHAR(64)    NOT NULL UNIQUE,
    role         TEXT        NOT NULL CHECK (role IN ('admin', 'operator', 'viewer', 'service')),
    created_by   TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ
);

CREATE UNIQUE INDEX api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;

-- Who did what, append-only. `actor` is `user:<name>`, `key:<name>`, `cli:<login>`, `system`
-- or `anonymous`; `role` the actor's role at the time. `before_state` / `after_state` describe
-- the change and never hold secrets.
CREATE TABLE audit_log (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL,
    actor        TEXT        NOT NULL,
    role         TEXT,
    source_ip    TEXT,
    action       TEXT        NOT NULL,
    target       TEXT,
    before_state JSONB,
    after_state  JSONB,
    outcome      TEXT        NOT NULL CHECK (outcome IN ('success', 'failure', 'denied'))
);

-- Filters of the audit listing, each ending in id for "newest first, before this id" paging.
CREATE INDEX audit_log_actor_id ON audit_log (actor, id);
CREATE INDEX audit_log_action_id ON audit_log (action, id);
CREATE INDEX audit_log_target_id ON audit_log (target, id);
