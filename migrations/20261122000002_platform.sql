-- Facts about this installation. `instance_id` labels every container this
-- platform starts, so several platforms (or test servers) can share one
-- Docker engine without touching each other's dynos.
CREATE TABLE platform (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
