DROP TABLE node_credentials;
