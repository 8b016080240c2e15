-- The HTTP path a release's web dynos must answer with 2xx/3xx before they
-- get traffic (app.json healthchecks); NULL means any HTTP answer on `/`.
ALTER TABLE releases ADD COLUMN health_path TEXT;
