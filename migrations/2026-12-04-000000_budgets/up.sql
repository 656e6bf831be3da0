-- Budgets above keys and beyond a day (portable like the others).
-- Client keys gain the other limit kinds; users belong to a team; users'
-- and teams' limits live in `budgets` by subject ("user:<id>", "team:<id>");
-- the control plane's grants of global budgets to regions, the alerts it
-- has fired, and where it sends them.
ALTER TABLE client_keys ADD COLUMN rps BIGINT;
ALTER TABLE client_keys ADD COLUMN tokens_per_minute BIGINT;
ALTER TABLE client_keys ADD COLUMN cost_per_month DOUBLE PRECISION;
ALTER TABLE client_keys ADD COLUMN concurrent BIGINT;
ALTER TABLE client_keys ADD COLUMN limits_global BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE client_keys ADD COLUMN when_store_down TEXT NOT NULL DEFAULT '';

CREATE TABLE teams (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
ALTER TABLE users ADD COLUMN team_id TEXT;

CREATE TABLE budgets (
    subject           TEXT PRIMARY KEY,
    rps               BIGINT,
    rpm               BIGINT,
    tokens_per_minute BIGINT,
    tokens_per_day    BIGINT,
    cost_per_day      DOUBLE PRECISION,
    cost_per_month    DOUBLE PRECISION,
    concurrent        BIGINT,
    global            BOOLEAN NOT NULL DEFAULT FALSE,
    when_store_down   TEXT NOT NULL DEFAULT '',
    updated_at_ms     BIGINT NOT NULL
);

-- A region's share of a global budget for a period ("d:YYYYMMDD",
-- "mo:YYYYMM"); shares only grow within a period.
CREATE TABLE budget_leases (
    budget        TEXT NOT NULL,
    region        TEXT NOT NULL,
    period        TEXT NOT NULL,
    tokens        BIGINT,
    cost          DOUBLE PRECISION,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (budget, region, period)
);

-- One row per budget, period and threshold (50, 80, 100) crossed: the
-- alert is sent once per period.
CREATE TABLE budget_alerts (
    budget          TEXT NOT NULL,
    period          TEXT NOT NULL,
    threshold       INTEGER NOT NULL,
    fired_at_ms     BIGINT NOT NULL,
    delivered_at_ms BIGINT NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    payload         TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (budget, period, threshold)
);

-- Where alerts go; the signing secret sealed under the master key.
CREATE TABLE webhooks (
    name          TEXT PRIMARY KEY,
    url           TEXT NOT NULL,
    secret_enc    TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
