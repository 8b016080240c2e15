-- Add-ons: PostgreSQL and Redis services of the platform, each owned by
-- the app that created it. `credentials` is sealed for the add-on
-- (crypto::addon_owner): user, password, database. `state` is
-- provisioning, provisioned, failed or stopped; `reason` says why when
-- failed. `backup_at` (HH:MM, UTC) and `backup_retain` are its backup
-- schedule, NULL without one; `backup_since` when it was set (a time that
-- came before is not a missed backup).
CREATE TABLE addons (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL,
    service TEXT NOT NULL,
    major TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    credentials TEXT NOT NULL,
    backup_at TEXT,
    backup_retain BIGINT,
    backup_since TEXT,
    created_at TEXT NOT NULL
);

-- Which apps an add-on is attached to, under which name: the app's config
-- has NAME_URL. One attachment per add-on and app; one name per app.
CREATE TABLE addon_attachments (
    addon_id TEXT NOT NULL REFERENCES addons (id) ON DELETE CASCADE,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (addon_id, app_id),
    UNIQUE (app_id, name)
);

-- Backups of an add-on, numbered per add-on (b001 ...). `state` is running,
-- succeeded or failed (with `reason`; a succeeded one may have a note
-- there, `taken late: ...`); only succeeded ones have a file
-- (PAAS_DATA_DIR/addons/NAME/backups/NUMBER), whose size and SHA-256 are
-- kept. `kind` is manual, scheduled or safety (taken before a restore).
CREATE TABLE addon_backups (
    id TEXT PRIMARY KEY,
    addon_id TEXT NOT NULL REFERENCES addons (id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    size BIGINT,
    sha256 TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    UNIQUE (addon_id, number)
);
