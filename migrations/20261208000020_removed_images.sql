-- Release images removed to free disk (`PAAS_KEEP_RELEASES`, `paas-server
-- gc`): the releases that name them say so, and a rollback to one is
-- refused with what to do.
CREATE TABLE removed_images (
    image TEXT PRIMARY KEY,
    removed_at TEXT NOT NULL
);
