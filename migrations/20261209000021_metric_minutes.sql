-- Each app's metrics by minute (requests, errors, the service-time
-- histogram, memory and CPU by process type), as JSON: kept across a
-- restart, a day at most.
CREATE TABLE metric_minutes (
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    minute BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (app_id, minute)
);
