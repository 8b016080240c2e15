//! TLS certificates of custom domains: the chain (PEM) and the private key
//! sealed by the caller. The router serves them by SNI.

use super::{now, Store, StoreResult};

#[derive(Debug, Clone)]
pub struct CertRow {
    pub hostname: String,
    pub app_id: String,
    pub chain_pem: String,
    pub key_sealed: String,
    pub created_at: String,
    /// `manual` (certs:add) or `auto` (ACME).
    pub source: String,
}
from_row!(CertRow { hostname, app_id, chain_pem, key_sealed, created_at, source });

const COLUMNS: &str = "hostname, app_id, chain_pem, key_sealed, created_at, source";

impl Store {
    pub async fn certs(&self, app_id: &str) -> StoreResult<Vec<CertRow>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM certs WHERE app_id = $1 ORDER BY hostname"))
            .bind(app_id)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn all_certs(&self) -> StoreResult<Vec<CertRow>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM certs")).fetch_all(&self.pool).await?)
    }

    /// Sets the certificate of an app's hostname, replacing one it had.
    pub async fn put_cert(&self, app_id: &str, hostname: &str, chain_pem: &str, key_sealed: &str, source: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM certs WHERE hostname = $1").bind(hostname).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO certs (hostname, app_id, chain_pem, key_sealed, created_at, source) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(hostname)
            .bind(app_id)
            .bind(chain_pem)
            .bind(key_sealed)
            .bind(now())
            .bind(source)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn remove_cert(&self, app_id: &str, hostname: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM certs WHERE app_id = $1 AND hostname = $2")
            .bind(app_id)
            .bind(hostname)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

impl Store {
    /// Turns automatic certificates on or off for an app.
    pub async fn set_acme(&self, app_id: &str, on: bool) -> StoreResult<()> {
        sqlx::query("DELETE FROM acme_apps WHERE app_id = $1").bind(app_id).execute(&self.pool).await?;
        if on {
            sqlx::query("INSERT INTO acme_apps (app_id, created_at) VALUES ($1, $2)")
                .bind(app_id)
                .bind(now())
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Ids of the apps with automatic certificates.
    pub async fn acme_apps(&self) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT app_id FROM acme_apps").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}
