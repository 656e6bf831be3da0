-- How a trace's usage was known, and which budget refused the request
-- (TraceRecord fields 24 and 25, see proto/proto/trace.proto): usage_source
-- is '' when the provider reported the usage, else how it was estimated
-- (estimated_abandoned, estimated_broken, estimated_unreported, ...);
-- refused_by is '<budget id>/<limit>' or ''. Shown on the trace, never
-- filtered on, so no index (each would cost every stored trace an insert).
ALTER TABLE traces ADD COLUMN usage_source TEXT NOT NULL DEFAULT '';
ALTER TABLE traces ADD COLUMN refused_by TEXT NOT NULL DEFAULT '';
