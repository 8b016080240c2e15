//! Builds: one row per push's build, with its status, image and capped
//! output. Unlike releases, a build row changes once: when the build ends.

use super::{new_id, now, Store, StoreError, StoreResult};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildStatus {
    Pending,
    Succeeded,
    Failed,
}

impl BuildStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct BuildRow {
    pub id: String,
    pub app_id: String,
    pub status: String,
    pub commit_sha: String,
    pub image: Option<String>,
    pub process_types: String,
    pub output: String,
    pub created_at: String,
}
from_row!(BuildRow { id, app_id, status, commit_sha, image, process_types, output, created_at });

impl BuildRow {
    pub fn process_types(&self) -> StoreResult<BTreeMap<String, String>> {
        serde_json::from_str(&self.process_types).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

const COLUMNS: &str = "id, app_id, status, commit_sha, image, process_types, output, created_at";

impl Store {
    pub async fn create_build(&self, app_id: &str, commit_sha: &str) -> StoreResult<BuildRow> {
        let row = BuildRow {
            id: new_id(),
            app_id: app_id.to_owned(),
            status: BuildStatus::Pending.as_str().to_owned(),
            commit_sha: commit_sha.to_owned(),
            image: None,
            process_types: "{}".to_owned(),
            output: String::new(),
            created_at: now(),
        };
        sqlx::query(
            "INSERT INTO builds (id, app_id, status, commit_sha, process_types, output, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.id)
        .bind(&row.app_id)
        .bind(&row.status)
        .bind(&row.commit_sha)
        .bind(&row.process_types)
        .bind(&row.output)
        .bind(&row.created_at)
        .execute(&self.pool)
        .await?;
        Ok(row)
    }

    /// Records how a build ended. Builds, unlike releases, have a lifecycle.
    pub async fn finish_build(
        &self,
        build_id: &str,
        status: BuildStatus,
        image: Option<&str>,
        process_types: &BTreeMap<String, String>,
        output: &str,
    ) -> StoreResult<()> {
        let types = serde_json::to_string(process_types).expect("a string map always serializes");
        sqlx::query("UPDATE builds SET status = $1, image = $2, process_types = $3, output = $4 WHERE id = $5")
            .bind(status.as_str())
            .bind(image)
            .bind(types)
            .bind(output)
            .bind(build_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Keeps the build's own maintenance page (its `maintenance.html`).
    pub async fn set_build_maintenance_page(&self, build_id: &str, page: &str) -> StoreResult<()> {
        sqlx::query("UPDATE builds SET maintenance_page = $1 WHERE id = $2").bind(page).bind(build_id).execute(&self.pool).await?;
        Ok(())
    }

    /// The build's own maintenance page, if it has one.
    pub async fn build_maintenance_page(&self, build_id: &str) -> StoreResult<Option<String>> {
        self.optional_text("SELECT maintenance_page FROM builds WHERE id = $1", build_id).await
    }

    pub async fn list_builds(&self, app_id: &str) -> StoreResult<Vec<BuildRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM builds WHERE app_id = $1 ORDER BY created_at DESC, id"
        ))
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn build(&self, app_id: &str, build_id: &str) -> StoreResult<BuildRow> {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM builds WHERE app_id = $1 AND id = $2"))
            .bind(app_id)
            .bind(build_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// A build by id, of whichever app (a promoted release names its
    /// source app's build).
    pub async fn build_by_id(&self, build_id: &str) -> StoreResult<Option<BuildRow>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM builds WHERE id = $1")).bind(build_id).fetch_optional(&self.pool).await?)
    }

    /// Marks builds left `pending` by a server that died mid-build as failed.
    pub async fn fail_interrupted_builds(&self) -> StoreResult<u64> {
        let r = sqlx::query("UPDATE builds SET status = 'failed', output = output || $1 WHERE status = 'pending'")
            .bind("\nbuild interrupted: the server stopped before it finished\n")
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
