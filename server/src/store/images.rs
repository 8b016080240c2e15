//! Release images removed to free disk (see the `gc` module).

use super::{now, on_unique, Store, StoreError, StoreResult};
use std::collections::HashSet;

impl Store {
    /// The images removed so far.
    pub async fn removed_images(&self) -> StoreResult<HashSet<String>> {
        Ok(sqlx::query_scalar("SELECT image FROM removed_images").fetch_all(&self.pool).await?.into_iter().collect())
    }

    /// Whether `image` was removed.
    pub async fn image_removed(&self, image: &str) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM removed_images WHERE image = $1").bind(image).fetch_one(&self.pool).await?;
        Ok(n > 0)
    }

    /// Records that `image` is gone (idempotent).
    pub async fn mark_image_removed(&self, image: &str) -> StoreResult<()> {
        match on_unique(sqlx::query("INSERT INTO removed_images (image, removed_at) VALUES ($1, $2)").bind(image).bind(now()).execute(&self.pool).await) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every app's releases that name an image: (app id, app name,
    /// version, image, build id), newest first within each app.
    pub async fn release_images(&self) -> StoreResult<Vec<(String, String, i64, String, Option<String>)>> {
        Ok(sqlx::query_as(
            "SELECT a.id, a.name, r.version, r.image, r.build_id FROM releases r JOIN apps a ON a.id = r.app_id \
             WHERE r.image IS NOT NULL ORDER BY a.name, r.version DESC",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
