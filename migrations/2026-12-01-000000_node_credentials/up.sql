-- Credentials issued to single data planes, bound to a node id and region
-- (portable like the others: TEXT ids, BIGINT epoch-ms, 0 = never).
CREATE TABLE node_credentials (
    id            TEXT PRIMARY KEY,
    node_id       TEXT NOT NULL UNIQUE,
    region        TEXT NOT NULL,
    -- Hex SHA-256 of the token; the token itself is shown once.
    token_hash    TEXT NOT NULL UNIQUE,
    token_hint    TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT NOT NULL DEFAULT 0
);
