-- Pipelines: apps in stages (development, staging, production) that the
-- same build is promoted through; and maintenance mode, per app.
CREATE TABLE pipelines (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- The user who made it (they may see and destroy it with no app in it).
    created_by TEXT,
    created_at TEXT NOT NULL
);

-- An app is in at most one pipeline, at one stage.
CREATE TABLE pipeline_couplings (
    id TEXT PRIMARY KEY,
    pipeline_id TEXT NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    app_id TEXT NOT NULL UNIQUE REFERENCES apps (id) ON DELETE CASCADE,
    stage TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX pipeline_couplings_pipeline ON pipeline_couplings (pipeline_id);

-- 1: the router answers the app's web requests with a maintenance page.
ALTER TABLE apps ADD COLUMN maintenance BIGINT NOT NULL DEFAULT 0;
