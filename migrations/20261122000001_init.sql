-- The schema is written in the subset of SQL that SQLite and PostgreSQL share:
-- TEXT ids (UUIDs), BIGINT counters, RFC 3339 TEXT timestamps.

CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE builds (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    image TEXT,
    process_types TEXT NOT NULL DEFAULT '{}',
    output TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX builds_app ON builds (app_id, created_at);

-- Append-only: no code path updates a release row. Rollback and config
-- changes insert a new row with the next version.
CREATE TABLE releases (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    build_id TEXT,
    image TEXT,
    process_types TEXT NOT NULL,
    config TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (app_id, version)
);

CREATE TABLE formation (
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    process_type TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    PRIMARY KEY (app_id, process_type)
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
