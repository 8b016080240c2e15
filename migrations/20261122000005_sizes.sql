-- Dyno sizes (memory limits) per process type, as `ps:resize` sets them;
-- types without a row run at the default size (PAAS_DYNO_SIZE).
CREATE TABLE sizes (
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    process_type TEXT NOT NULL,
    size TEXT NOT NULL,
    PRIMARY KEY (app_id, process_type)
);
