-- TLS certificates for custom domains, served by the router's HTTPS
-- listener by SNI. The private key is sealed with the platform's secret key
-- (as config vars are).
CREATE TABLE certs (
    hostname TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    chain_pem TEXT NOT NULL,
    key_sealed TEXT NOT NULL,
    created_at TEXT NOT NULL
);
