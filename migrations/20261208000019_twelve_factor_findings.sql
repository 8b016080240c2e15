-- What the platform observed of an app against the twelve factors: on a
-- build (`scope` is its id: the pushed tree's secrets and dependency pins)
-- or a release (`scope` is its id: its dynos' port binding, boot and
-- shutdown). One row per code and subject within a scope; `ok` rows are
-- evidence that a factor holds. `first_seen` tells the app's log once.
CREATE TABLE twelve_factor_findings (
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    factor BIGINT NOT NULL,
    code TEXT NOT NULL,
    subject TEXT NOT NULL,
    ok BIGINT NOT NULL,
    message TEXT NOT NULL,
    fix TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (app_id, scope, code, subject)
);
