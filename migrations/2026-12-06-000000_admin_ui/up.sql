-- What the admin UI needs at scale, and OpenID Connect sign-in. Portable
-- like the earlier migrations.

-- Usage rollups, kept at ingest in the trace batch's transaction (only for
-- traces stored for the first time, so they count each request once). One
-- row per time bucket (span_ms: 5 minutes, an hour or a day) and
-- (client key, provider, model, region); level 1 rows hold the totals of a
-- bucket over every dimension (all four columns empty), for the unfiltered
-- overview. *_hist are sparse log-scale histograms of microseconds
-- ("index:count,..."; see control-plane/src/rollup/histogram.rs).
CREATE TABLE usage_rollups (
    level            INTEGER NOT NULL,
    span_ms          BIGINT NOT NULL,
    bucket_start_ms  BIGINT NOT NULL,
    client_key_id    TEXT NOT NULL,
    provider         TEXT NOT NULL,
    model            TEXT NOT NULL,
    region           TEXT NOT NULL,
    client_key_name  TEXT NOT NULL,
    requests         BIGINT NOT NULL,
    errors           BIGINT NOT NULL,
    input_tokens     BIGINT NOT NULL,
    output_tokens    BIGINT NOT NULL,
    cached_tokens    BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    cost             DOUBLE PRECISION NOT NULL,
    latency_hist     TEXT NOT NULL,
    ttfb_hist        TEXT NOT NULL,
    overhead_hist    TEXT NOT NULL,
    PRIMARY KEY (level, span_ms, bucket_start_ms, client_key_id, provider, model, region)
);
-- A member's overview reads their keys' rows.
CREATE INDEX usage_rollups_key ON usage_rollups (client_key_id, span_ms, bucket_start_ms);

-- The request log filtered by one column pages through that column's index
-- in (started_at_ms, request_id) order, never through the whole table.
CREATE INDEX traces_model_started ON traces (model, started_at_ms, request_id);
CREATE INDEX traces_provider_started ON traces (provider, started_at_ms, request_id);
CREATE INDEX traces_status_started ON traces (status, started_at_ms, request_id);
CREATE INDEX traces_region_started ON traces (region, started_at_ms, request_id);
CREATE INDEX traces_node_started ON traces (node_id, started_at_ms, request_id);
-- Replaces (client_key_id, started_at_ms), which left the tie-break to a sort.
DROP INDEX traces_client_key;
CREATE INDEX traces_key_started ON traces (client_key_id, started_at_ms, request_id);
CREATE INDEX traces_key_name_started ON traces (client_key_name, started_at_ms, request_id);

-- The identity provider for OpenID Connect sign-in (one row, id 'default').
-- client_secret_enc is sealed under AIGW_MASTER_KEY like provider secrets.
CREATE TABLE oidc_settings (
    id                TEXT PRIMARY KEY,
    enabled           BOOLEAN NOT NULL,
    issuer            TEXT NOT NULL,
    client_id         TEXT NOT NULL,
    client_secret_enc TEXT NOT NULL,
    default_role      TEXT NOT NULL,
    redirect_url      TEXT NOT NULL,
    display_name      TEXT NOT NULL,
    scopes            TEXT NOT NULL,
    updated_at_ms     BIGINT NOT NULL
);

-- Which user an identity provider's subject signs in as ("ISSUER SUB").
CREATE TABLE oidc_identities (
    subject       TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    last_login_ms BIGINT NOT NULL
);
CREATE INDEX oidc_identities_user ON oidc_identities (user_id);
