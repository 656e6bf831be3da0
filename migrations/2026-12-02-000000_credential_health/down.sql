DROP TABLE credential_checks;
DROP TABLE credential_health;
ALTER TABLE providers DROP COLUMN affinity;
ALTER TABLE providers DROP COLUMN health_interval_secs;
