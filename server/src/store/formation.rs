//! Formation: how many dynos of each process type an app asked for, and at
//! what size. Only scaled (or resized) types have a row; the scheduler
//! applies the defaults to the rest.

use super::{Store, StoreResult};
use std::collections::BTreeMap;

impl Store {
    /// Explicitly scaled process types. Types never scaled fall back to the
    /// defaults (web=1, others 0), which the scheduler applies.
    pub async fn formation(&self, app_id: &str) -> StoreResult<BTreeMap<String, i64>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT process_type, quantity FROM formation WHERE app_id = $1")
                .bind(app_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().collect())
    }

    pub async fn set_formation(&self, app_id: &str, changes: &BTreeMap<String, i64>) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for (process_type, quantity) in changes {
            sqlx::query(
                "INSERT INTO formation (app_id, process_type, quantity) VALUES ($1, $2, $3) \
                 ON CONFLICT (app_id, process_type) DO UPDATE SET quantity = excluded.quantity",
            )
            .bind(app_id)
            .bind(process_type)
            .bind(*quantity)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Sizes set with `ps:resize`, by process type.
    pub async fn sizes(&self, app_id: &str) -> StoreResult<BTreeMap<String, String>> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT process_type, size FROM sizes WHERE app_id = $1")
            .bind(app_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().collect())
    }

    pub async fn set_sizes(&self, app_id: &str, changes: &BTreeMap<String, String>) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for (process_type, size) in changes {
            sqlx::query(
                "INSERT INTO sizes (app_id, process_type, size) VALUES ($1, $2, $3) \
                 ON CONFLICT (app_id, process_type) DO UPDATE SET size = excluded.size",
            )
            .bind(app_id)
            .bind(process_type)
            .bind(size)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
