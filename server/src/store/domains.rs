//! Custom domains: which app each hostname belongs to. The router keeps
//! its own copy in memory; this is where they are kept.

use super::{now, on_unique, Store, StoreResult};

impl Store {
    /// An app's custom domains: (hostname, created at).
    pub async fn domains(&self, app_id: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(sqlx::query_as("SELECT hostname, created_at FROM domains WHERE app_id = $1 ORDER BY hostname")
            .bind(app_id)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Every custom domain with its app's name: (hostname, app).
    pub async fn all_domains(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(sqlx::query_as("SELECT d.hostname, a.name FROM domains d JOIN apps a ON a.id = d.app_id")
            .fetch_all(&self.pool)
            .await?)
    }

    /// The app (id) a hostname belongs to, if any.
    pub async fn domain_owner(&self, hostname: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT a.name FROM domains d JOIN apps a ON a.id = d.app_id WHERE d.hostname = $1")
            .bind(hostname)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// Claims a hostname for an app; [`super::StoreError::Conflict`] when
    /// some app has it.
    pub async fn add_domain(&self, app_id: &str, hostname: &str) -> StoreResult<String> {
        let created = now();
        on_unique(
            sqlx::query("INSERT INTO domains (hostname, app_id, created_at) VALUES ($1, $2, $3)")
                .bind(hostname)
                .bind(app_id)
                .bind(&created)
                .execute(&self.pool)
                .await,
        )?;
        Ok(created)
    }

    /// Removes an app's domain; false when the app has no such domain.
    pub async fn remove_domain(&self, app_id: &str, hostname: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM domains WHERE app_id = $1 AND hostname = $2")
            .bind(app_id)
            .bind(hostname)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
