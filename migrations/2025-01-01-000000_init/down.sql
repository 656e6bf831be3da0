DROP TABLE traces;
DROP TABLE api_tokens;
DROP TABLE client_keys;
DROP TABLE pricing;
DROP TABLE provider_keys;
DROP TABLE providers;
