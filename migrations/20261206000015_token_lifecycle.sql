-- Tokens with a lifecycle: what each is for, when it stops working, when it
-- was last used, and when it was revoked (a revoked token is kept, listed,
-- and refused). `name` stays: the tokens `paas-server token:create NAME`
-- made before have only it.
ALTER TABLE tokens ADD COLUMN description TEXT;
ALTER TABLE tokens ADD COLUMN expires_at TEXT;
ALTER TABLE tokens ADD COLUMN last_used_at TEXT;
ALTER TABLE tokens ADD COLUMN revoked_at TEXT;
