CREATE INDEX traces_started_at ON traces (started_at_ms);
