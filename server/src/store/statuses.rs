//! Release statuses: how each release fared on the dynos, as rows of their
//! own, appended (never updated), so release rows stay immutable. A release
//! without a status is pending; `failed` is final: a new attempt is a new
//! release.

use super::{new_id, now, ReleaseRow, Store, StoreResult};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseStatus {
    Succeeded,
    Failed,
}

impl ReleaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

impl Store {
    pub async fn record_release_status(
        &self,
        release: &ReleaseRow,
        status: ReleaseStatus,
        detail: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO release_statuses (id, release_id, app_id, status, detail, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new_id())
        .bind(&release.id)
        .bind(&release.app_id)
        .bind(status.as_str())
        .bind(detail)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest status of each release of an app that has one:
    /// release id -> (status, detail).
    pub async fn release_statuses(&self, app_id: &str) -> StoreResult<HashMap<String, (String, String)>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT release_id, status, detail FROM release_statuses WHERE app_id = $1 ORDER BY created_at, id",
        )
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(r, s, d)| (r, (s, d))).collect())
    }

    /// The release the dynos should run: the newest one with a build that
    /// has not failed.
    pub async fn desired_release(&self, app_id: &str) -> StoreResult<Option<ReleaseRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {} FROM releases r WHERE r.app_id = $1 AND r.image IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM release_statuses s WHERE s.release_id = r.id AND s.status = 'failed') \
             ORDER BY r.version DESC LIMIT 1",
            super::releases::COLUMNS_R
        ))
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await?)
    }
}
