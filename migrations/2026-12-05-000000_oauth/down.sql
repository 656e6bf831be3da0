DROP TABLE oauth_flows;
DROP TABLE oauth_accounts;
DROP TABLE oauth_templates;
ALTER TABLE provider_keys DROP COLUMN oauth_template;
