-- Team access: people, their roles on apps, whose each token is, dashboard
-- sessions that outlive a restart, who made each release, and the audit log.

-- A person. `email` is kept lower-case; `password_hash` is an argon2id PHC
-- string, absent until a password is set (the first admin, made at the
-- first start, signs in with the admin token until then). `admin` is 1 for
-- a platform admin.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    admin BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

-- What a user may do on an app: viewer, developer or admin.
CREATE TABLE app_roles (
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (app_id, user_id)
);
CREATE INDEX app_roles_user ON app_roles (user_id);

-- Whose a token is; a deploy token is also bound to one app.
ALTER TABLE tokens ADD COLUMN user_id TEXT REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE tokens ADD COLUMN app_id TEXT REFERENCES apps (id) ON DELETE CASCADE;
ALTER TABLE tokens ADD COLUMN role TEXT;

-- Dashboard sessions, known by the SHA-256 of the cookie's id. A session
-- signed in with a token ends with it (`token_id`).
CREATE TABLE sessions (
    key_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_id TEXT REFERENCES tokens (id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- Who made a release: a user's email, or a token's description.
ALTER TABLE releases ADD COLUMN actor TEXT;

-- Append-only: the store inserts events and deletes only those older than
-- PAAS_AUDIT_DAYS; no statement updates one.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    user_id TEXT,
    address TEXT,
    action TEXT NOT NULL,
    app TEXT,
    detail TEXT NOT NULL,
    status BIGINT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
