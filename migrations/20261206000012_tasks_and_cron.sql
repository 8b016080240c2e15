-- What a release runs besides its dynos (app.json `cron` and `scripts`),
-- as JSON; NULL when it runs nothing else.
ALTER TABLE releases ADD COLUMN tasks TEXT;

-- Each time a cron entry was due or run by hand: the one-off dyno that ran
-- it and how it ended, or why it was skipped. `outcome` is running,
-- finished or skipped.
CREATE TABLE cron_runs (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    entry_id TEXT NOT NULL,
    release_version BIGINT NOT NULL,
    manual BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    dyno TEXT,
    container_id TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    exit_code BIGINT,
    detail TEXT
);
CREATE INDEX cron_runs_entry ON cron_runs (app_id, entry_id, started_at);
CREATE INDEX cron_runs_container ON cron_runs (container_id);

-- When the app's first deploy came up: Heroku's scripts.postdeploy runs
-- then and never again. Apps deployed before this column came have had
-- their first deploy.
ALTER TABLE apps ADD COLUMN first_deployed_at TEXT;
UPDATE apps SET first_deployed_at = created_at
    WHERE id IN (SELECT app_id FROM releases WHERE image IS NOT NULL);
