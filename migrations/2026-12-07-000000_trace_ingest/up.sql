-- Every secondary index on traces costs each stored trace an index insert
-- (and its WAL). (started_at_ms) is a prefix of traces_started_request
-- (started_at_ms, request_id), which serves every query it served.
DROP INDEX traces_started_at;
