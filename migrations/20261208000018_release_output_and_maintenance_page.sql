-- The release phase's output (the Procfile's `release`, app.json's
-- predeploy), kept with the release it made: `paas releases:output`.
-- Read on its own, never with the release's other columns.
ALTER TABLE releases ADD COLUMN output TEXT;
-- A build's own maintenance page (`maintenance.html` at the root of its
-- source), shown by the router while the app is in maintenance mode.
ALTER TABLE builds ADD COLUMN maintenance_page TEXT;
