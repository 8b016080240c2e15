//! TLS certificates of custom domains: the chain (PEM) and the private key
//! sealed by the caller. The router serves them by SNI.

use super::{now, Store, StoreResult};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CertRow {
    pub hostname: String,
    pub app_id: String,
    pub chain_pem: String,
    pub key_sealed: String,
    pub created_at: String,
}

const COLUMNS: &str = "hostname, app_id, chain_pem, key_sealed, created_at";

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
    pub async fn put_cert(&self, app_id: &str, hostname: &str, chain_pem: &str, key_sealed: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM certs WHERE hostname = $1").bind(hostname).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO certs (hostname, app_id, chain_pem, key_sealed, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(hostname)
            .bind(app_id)
            .bind(chain_pem)
            .bind(key_sealed)
            .bind(now())
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
