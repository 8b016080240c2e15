//! Log drains of each app: URL and token. The log router delivers to them;
//! this is only where they are kept. The URL comes sealed (it may carry
//! credentials), with a keyed digest that finds it by its plain text.

use super::{new_id, now, on_unique, Store, StoreResult};

#[derive(Debug, Clone)]
pub struct DrainRow {
    pub id: String,
    pub app_id: String,
    /// Sealed for the app ([`crate::crypto::drain_owner`]).
    pub url: String,
    pub token: String,
    pub created_at: String,
}
from_row!(DrainRow { id, app_id, url, token, created_at });

impl Store {
    pub async fn drains(&self, app_id: &str) -> StoreResult<Vec<DrainRow>> {
        Ok(sqlx::query_as("SELECT id, app_id, url, token, created_at FROM drains WHERE app_id = $1 ORDER BY created_at, id")
            .bind(app_id)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Every drain of every app, with the app's name: (app name, drain).
    pub async fn all_drains(&self) -> StoreResult<Vec<(String, DrainRow)>> {
        let rows: Vec<(String, String, String, String, String, String)> = sqlx::query_as(
            "SELECT a.name, d.id, d.app_id, d.url, d.token, d.created_at FROM drains d JOIN apps a ON a.id = d.app_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, id, app_id, url, token, created_at)| (name, DrainRow { id, app_id, url, token, created_at }))
            .collect())
    }

    /// Adds a drain (its URL sealed, and the URL's digest);
    /// [`super::StoreError::Conflict`] when the app has it.
    pub async fn add_drain(&self, app_id: &str, sealed_url: &str, digest: &str) -> StoreResult<DrainRow> {
        let row = DrainRow {
            id: new_id(),
            app_id: app_id.to_owned(),
            url: sealed_url.to_owned(),
            token: format!("d.{}", new_id()),
            created_at: now(),
        };
        on_unique(
            sqlx::query("INSERT INTO drains (id, app_id, url, token, created_at, url_digest) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&row.id)
                .bind(&row.app_id)
                .bind(&row.url)
                .bind(&row.token)
                .bind(&row.created_at)
                .bind(digest)
                .execute(&self.pool)
                .await,
        )?;
        Ok(row)
    }

    /// Removes a drain by its id or its URL's digest; None when the app has
    /// no such drain.
    pub async fn remove_drain(&self, app_id: &str, id: &str, digest: &str) -> StoreResult<Option<DrainRow>> {
        let by_digest: Option<(String,)> = sqlx::query_as("SELECT id FROM drains WHERE app_id = $1 AND url_digest = $2")
            .bind(app_id)
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        let id = by_digest.map_or_else(|| id.to_owned(), |(id,)| id);
        let found = self.drains(app_id).await?.into_iter().find(|d| d.id == id);
        if let Some(d) = &found {
            sqlx::query("DELETE FROM drains WHERE id = $1").bind(&d.id).execute(&self.pool).await?;
        }
        Ok(found)
    }
}
