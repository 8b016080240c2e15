-- Custom domains: a hostname (or `*.example.com`) belongs to one app; the
-- router sends requests for it there.
CREATE TABLE domains (
    hostname TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
CREATE INDEX domains_app ON domains (app_id);
