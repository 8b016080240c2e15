-- Log drains: where an app's log lines are delivered (syslog://,
-- syslog+tls://, https://). The token goes with each HTTPS batch as
-- Logplex-Drain-Token, as Heroku's does.
CREATE TABLE drains (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (app_id, url)
);
