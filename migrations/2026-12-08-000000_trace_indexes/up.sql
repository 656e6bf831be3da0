-- Cheaper request-log indexes: every stored trace pays an insert into each
-- (about half of Postgres' ingest time went to these btree inserts).
-- * No request_id tail: a page orders by (started_at_ms, request_id), and
--   the rows sharing one millisecond are few, so both engines sort that tie
--   incrementally while the index gives the time order; a 32-character
--   text tail made each entry and each comparison dearer.
-- * Status: the log filters by status to find failures (one code ≥ 400,
--   4xx, 5xx, "errors"); one partial index holds only failed traces (a few
--   percent) in the log's own order (it is small, so the tie-break costs
--   little there). Successes page through the time index, where they are
--   most rows.
DROP INDEX traces_model_started;
DROP INDEX traces_provider_started;
DROP INDEX traces_status_started;
DROP INDEX traces_region_started;
DROP INDEX traces_node_started;
DROP INDEX traces_key_started;
DROP INDEX traces_key_name_started;
CREATE INDEX traces_model_at ON traces (model, started_at_ms);
CREATE INDEX traces_provider_at ON traces (provider, started_at_ms);
CREATE INDEX traces_region_at ON traces (region, started_at_ms);
CREATE INDEX traces_node_at ON traces (node_id, started_at_ms);
CREATE INDEX traces_key_at ON traces (client_key_id, started_at_ms);
CREATE INDEX traces_key_name_at ON traces (client_key_name, started_at_ms);
-- The predicate is spelled exactly as the query adds it (SQLite matches a
-- partial index's WHERE by its terms, not by implication).
CREATE INDEX traces_failed_at ON traces (started_at_ms, request_id) WHERE status >= 400 OR error IS NOT NULL;
