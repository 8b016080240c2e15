-- Drain URLs are sealed like config vars (they carry credentials and
-- tokens). A sealed value differs each time it is sealed, so a keyed
-- digest of the URL is what finds a drain by its URL and keeps an app from
-- adding the same one twice. Rows of earlier versions get theirs when the
-- server starts and seals their URLs.
ALTER TABLE drains ADD COLUMN url_digest TEXT;
CREATE UNIQUE INDEX drains_app_url_digest ON drains (app_id, url_digest);
