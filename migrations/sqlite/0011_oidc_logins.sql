-- OpenID Connect sign-ins under way (runtime/src/oidc.rs): from the redirect to the identity
-- provider until the browser comes back with a code, at most ten minutes. In the database, not
-- in one node's memory, so that the callback may reach any node of a cluster.
--
-- Kept equivalent to migrations/postgres/0011_oidc_logins.sql.
CREATE TABLE oidc_logins (
    -- SHA-256 (hex) of the `state` parameter; the state itself travels in URLs.
    state_sha256  TEXT NOT NULL PRIMARY KEY,
    nonce         TEXT NOT NULL,
    -- Sealed like every secret column (store/secrets.rs); rows live ten minutes, so a key
    -- rotation does not re-seal them.
    pkce_verifier TEXT NOT NULL,
    expires_at    TEXT NOT NULL
) STRICT;

CREATE INDEX oidc_logins_expires_at ON oidc_logins (expires_at);
