//! Apps' metrics by minute (see the `metrics` module), each minute's figures
//! as JSON text the store does not read.

use super::{Store, StoreResult};

impl Store {
    /// Writes (or rewrites) an app's minutes: (Unix seconds, JSON).
    pub async fn save_metric_minutes(&self, app_id: &str, minutes: &[(i64, String)]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for (minute, data) in minutes {
            sqlx::query(
                "INSERT INTO metric_minutes (app_id, minute, data) VALUES ($1, $2, $3) \
                 ON CONFLICT (app_id, minute) DO UPDATE SET data = excluded.data",
            )
            .bind(app_id)
            .bind(minute)
            .bind(data)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every app's minutes from `since` (Unix seconds) on, as (app name,
    /// minute, JSON).
    pub async fn metric_minutes_since(&self, since: i64) -> StoreResult<Vec<(String, i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT apps.name, m.minute, m.data FROM metric_minutes m JOIN apps ON apps.id = m.app_id \
             WHERE m.minute >= $1 ORDER BY apps.name, m.minute",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Removes minutes older than `before` (Unix seconds).
    pub async fn prune_metric_minutes(&self, before: i64) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM metric_minutes WHERE minute < $1").bind(before).execute(&self.pool).await?.rows_affected())
    }
}
