ALTER TABLE traces DROP COLUMN refused_by;
ALTER TABLE traces DROP COLUMN usage_source;
