-- Health checks of provider credentials (portable: TEXT, BIGINT epoch-ms).
-- Providers choose how often their credentials are checked (0: only when a
-- data plane saw one fail) and whether requests sharing a prompt cache
-- stick to one credential.
ALTER TABLE providers ADD COLUMN health_interval_secs INTEGER NOT NULL DEFAULT 60;
ALTER TABLE providers ADD COLUMN affinity TEXT NOT NULL DEFAULT '';

-- The last check of each credential, by provider and key name (the names
-- are what the configuration and the data planes know a key by).
CREATE TABLE credential_health (
    provider      TEXT NOT NULL,
    key_name      TEXT NOT NULL,
    status        TEXT NOT NULL,
    http_status   INTEGER NOT NULL,
    latency_us    BIGINT NOT NULL,
    detail        TEXT NOT NULL,
    checked_at_ms BIGINT NOT NULL,
    retry_at_ms   BIGINT NOT NULL,
    trigger_kind  TEXT NOT NULL,
    PRIMARY KEY (provider, key_name)
);

-- Recent checks, kept bounded per credential by the checker.
CREATE TABLE credential_checks (
    id            TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    key_name      TEXT NOT NULL,
    status        TEXT NOT NULL,
    http_status   INTEGER NOT NULL,
    latency_us    BIGINT NOT NULL,
    detail        TEXT NOT NULL,
    checked_at_ms BIGINT NOT NULL,
    trigger_kind  TEXT NOT NULL
);
CREATE INDEX credential_checks_key ON credential_checks (provider, key_name, checked_at_ms);
