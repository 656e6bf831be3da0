-- The Admin API's identities and history: users with their sessions, API
-- tokens owned by users and scoped to a role, client key ownership and
-- revocation, explicit routes, provider model maps, and the audit log.
-- Portable like the init migration (TEXT ids, BIGINT epoch-ms times, JSON in
-- TEXT); 0 in a *_at_ms column means "never" / "not yet".

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    -- Argon2id PHC string.
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

-- Login sessions: hex SHA-256 of the session token only.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- API tokens get an owner (NULL: made by the bootstrap token), a hint, an
-- expiry and revocation.
ALTER TABLE api_tokens ADD COLUMN user_id TEXT;
ALTER TABLE api_tokens ADD COLUMN token_hint TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN expires_at_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN revoked_at_ms BIGINT NOT NULL DEFAULT 0;

-- Client keys get an owner (NULL: no user, e.g. made by `apply`) and
-- revocation (revoked keys leave the snapshot).
ALTER TABLE client_keys ADD COLUMN owner_user_id TEXT;
ALTER TABLE client_keys ADD COLUMN revoked_at_ms BIGINT NOT NULL DEFAULT 0;
CREATE INDEX client_keys_owner ON client_keys (owner_user_id);

-- JSON object: the app's model name -> the upstream's.
ALTER TABLE providers ADD COLUMN model_map TEXT NOT NULL DEFAULT '{}';

-- Explicit routes: a model glob and the providers tried in order (JSON array
-- of provider names).
CREATE TABLE routes (
    model         TEXT PRIMARY KEY,
    providers     TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

-- Every change made through the Admin API. Never a secret.
CREATE TABLE audit_log (
    id            TEXT PRIMARY KEY,
    at_ms         BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    actor_user_id TEXT,
    action        TEXT NOT NULL,
    object_kind   TEXT NOT NULL,
    object_name   TEXT NOT NULL,
    detail        TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at_ms, id);

-- Trace listing pages by (started_at_ms, request_id).
CREATE INDEX traces_started_request ON traces (started_at_ms, request_id);
