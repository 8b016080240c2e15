//! Secrets sealed by an earlier paas-server, before each was bound to what
//! it belongs to, sealed again in place (the server does it at start, see
//! `server::migrate_secrets`). This is the one statement that updates a
//! release row: it changes the envelope of its config, never the config,
//! and only for a row still in the old envelope.

use super::{DrainRow, Store, StoreResult};

impl Store {
    /// Releases whose config is in the old envelope: (id, app id, config).
    pub async fn legacy_release_configs(&self) -> StoreResult<Vec<(String, String, String)>> {
        Ok(sqlx::query_as("SELECT id, app_id, config FROM releases WHERE config NOT LIKE 'v2.%'").fetch_all(&self.pool).await?)
    }

    /// Puts the same config, sealed for its app, in place of the old one.
    pub async fn reseal_release_config(&self, id: &str, old: &str, new: &str) -> StoreResult<()> {
        sqlx::query("UPDATE releases SET config = $1 WHERE id = $2 AND config = $3").bind(new).bind(id).bind(old).execute(&self.pool).await?;
        Ok(())
    }

    /// Certificate keys in the old envelope: (hostname, app id, sealed key).
    pub async fn legacy_cert_keys(&self) -> StoreResult<Vec<(String, String, String)>> {
        Ok(sqlx::query_as("SELECT hostname, app_id, key_sealed FROM certs WHERE key_sealed NOT LIKE 'v2.%'").fetch_all(&self.pool).await?)
    }

    pub async fn reseal_cert_key(&self, hostname: &str, old: &str, new: &str) -> StoreResult<()> {
        sqlx::query("UPDATE certs SET key_sealed = $1 WHERE hostname = $2 AND key_sealed = $3")
            .bind(new)
            .bind(hostname)
            .bind(old)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Drains whose URL is stored in plain text.
    pub async fn plain_drains(&self) -> StoreResult<Vec<DrainRow>> {
        Ok(sqlx::query_as("SELECT id, app_id, url, token, created_at FROM drains WHERE url NOT LIKE 'v2.%'").fetch_all(&self.pool).await?)
    }

    pub async fn seal_drain(&self, id: &str, sealed_url: &str, digest: &str) -> StoreResult<()> {
        sqlx::query("UPDATE drains SET url = $1, url_digest = $2 WHERE id = $3").bind(sealed_url).bind(digest).bind(id).execute(&self.pool).await?;
        Ok(())
    }
}
