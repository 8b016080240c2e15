-- How each release fared on the dynos, appended as it becomes known
-- (`succeeded`, or `failed` with the reason); release rows never change. The
-- scheduler runs the newest release with a build that has not failed.
CREATE TABLE release_statuses (
    id TEXT PRIMARY KEY,
    release_id TEXT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX release_statuses_release ON release_statuses (release_id, created_at);
