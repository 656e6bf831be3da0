ALTER TABLE traces DROP COLUMN dropped_fields;
ALTER TABLE routes DROP COLUMN alias_of;
ALTER TABLE routes DROP COLUMN strict;
