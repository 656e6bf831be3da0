-- OAuth accounts (portable: TEXT, BIGINT epoch-ms). See docs/oauth.md.

-- A key with a template is an OAuth account: its secret_enc stays empty
-- and its tokens live in oauth_accounts.
ALTER TABLE provider_keys ADD COLUMN oauth_template TEXT NOT NULL DEFAULT '';

-- Templates admins added (or built-in ones they override), by name. The
-- spec is JSON without the client secret, which is sealed apart.
CREATE TABLE oauth_templates (
    name              TEXT PRIMARY KEY,
    spec              TEXT NOT NULL,
    client_secret_enc TEXT NOT NULL,
    created_at_ms     BIGINT NOT NULL,
    updated_at_ms     BIGINT NOT NULL
);

-- One row per connected account, by provider and key name (as the
-- configuration and the data planes know a key). Both tokens are sealed
-- under the master key; `claims` holds the non-secret parts of the token
-- response and ID token that request headers may name.
CREATE TABLE oauth_accounts (
    provider        TEXT NOT NULL,
    key_name        TEXT NOT NULL,
    template        TEXT NOT NULL,
    access_enc      TEXT NOT NULL,
    refresh_enc     TEXT NOT NULL,
    expires_at_ms   BIGINT NOT NULL,
    refresh_at_ms   BIGINT NOT NULL,
    claims          TEXT NOT NULL,
    status          TEXT NOT NULL,
    last_error      TEXT NOT NULL,
    failures        INTEGER NOT NULL,
    last_refresh_ms BIGINT NOT NULL,
    connected_at_ms BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL,
    PRIMARY KEY (provider, key_name)
);

-- Connections under way: one row per state (stored as its SHA-256), used
-- once, expiring. The PKCE verifier and the device code are sealed.
CREATE TABLE oauth_flows (
    state_hash       TEXT PRIMARY KEY,
    provider         TEXT NOT NULL,
    key_name         TEXT NOT NULL,
    template         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    secret_enc       TEXT NOT NULL,
    redirect_uri     TEXT NOT NULL,
    params           TEXT NOT NULL,
    interval_secs    INTEGER NOT NULL,
    next_poll_at_ms  BIGINT NOT NULL,
    expires_at_ms    BIGINT NOT NULL,
    created_at_ms    BIGINT NOT NULL
);
