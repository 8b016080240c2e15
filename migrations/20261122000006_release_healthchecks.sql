-- app.json's health checks of every process type, as JSON, recorded with
-- each new release (NULL for releases made before).
ALTER TABLE releases ADD COLUMN healthchecks TEXT;
