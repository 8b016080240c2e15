-- Apps with automatic certificates (`certs:auto:enable`): each of their
-- custom domains gets a certificate over ACME, renewed before it expires.
-- Certificates record how they came (`manual` or `auto`).
CREATE TABLE acme_apps (
    app_id TEXT PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
ALTER TABLE certs ADD COLUMN source TEXT NOT NULL DEFAULT 'manual';
