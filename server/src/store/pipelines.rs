//! Pipelines and the apps coupled to them, each at a stage.

use super::{new_id, now, on_unique, Store, StoreResult};

#[derive(Debug, Clone)]
pub struct PipelineRow {
    pub id: String,
    pub name: String,
    pub created_by: Option<String>,
    pub created_at: String,
}
from_row!(PipelineRow { id, name, created_by, created_at });

/// An app's place in a pipeline, with the app's name.
#[derive(Debug, Clone)]
pub struct CouplingRow {
    pub id: String,
    pub pipeline_id: String,
    pub app_id: String,
    pub app_name: String,
    pub stage: String,
    pub created_at: String,
}
from_row!(CouplingRow { id, pipeline_id, app_id, app_name, stage, created_at });

const COUPLING: &str = "SELECT c.id, c.pipeline_id, c.app_id, a.name AS app_name, c.stage, c.created_at FROM pipeline_couplings c JOIN apps a ON a.id = c.app_id";

impl Store {
    /// A new pipeline; [`super::StoreError::Conflict`] when the name is taken.
    pub async fn create_pipeline(&self, name: &str, created_by: &str) -> StoreResult<PipelineRow> {
        let row = PipelineRow { id: new_id(), name: name.to_owned(), created_by: Some(created_by.to_owned()), created_at: now() };
        on_unique(
            sqlx::query("INSERT INTO pipelines (id, name, created_by, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&row.id)
                .bind(&row.name)
                .bind(&row.created_by)
                .bind(&row.created_at)
                .execute(&self.pool)
                .await,
        )?;
        Ok(row)
    }

    /// By name or id.
    pub async fn pipeline(&self, name_or_id: &str) -> StoreResult<Option<PipelineRow>> {
        Ok(sqlx::query_as("SELECT id, name, created_by, created_at FROM pipelines WHERE name = $1 OR id = $1")
            .bind(name_or_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn pipelines(&self) -> StoreResult<Vec<PipelineRow>> {
        Ok(sqlx::query_as("SELECT id, name, created_by, created_at FROM pipelines ORDER BY name").fetch_all(&self.pool).await?)
    }

    /// Deletes a pipeline and its couplings (the apps stay).
    pub async fn delete_pipeline(&self, id: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM pipeline_couplings WHERE pipeline_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM pipelines WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Couples an app at a stage; Conflict when it is in a pipeline already.
    pub async fn couple(&self, pipeline_id: &str, app_id: &str, stage: &str) -> StoreResult<String> {
        let id = new_id();
        on_unique(
            sqlx::query("INSERT INTO pipeline_couplings (id, pipeline_id, app_id, stage, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&id)
                .bind(pipeline_id)
                .bind(app_id)
                .bind(stage)
                .bind(now())
                .execute(&self.pool)
                .await,
        )?;
        Ok(id)
    }

    /// Takes the app out of its pipeline; whether it was in one.
    pub async fn uncouple(&self, app_id: &str) -> StoreResult<bool> {
        Ok(sqlx::query("DELETE FROM pipeline_couplings WHERE app_id = $1").bind(app_id).execute(&self.pool).await?.rows_affected() > 0)
    }

    /// The app's coupling, if it is in a pipeline.
    pub async fn coupling_of(&self, app_id: &str) -> StoreResult<Option<CouplingRow>> {
        Ok(sqlx::query_as(&format!("{COUPLING} WHERE c.app_id = $1")).bind(app_id).fetch_optional(&self.pool).await?)
    }

    /// The pipeline's apps, by app name.
    pub async fn couplings(&self, pipeline_id: &str) -> StoreResult<Vec<CouplingRow>> {
        Ok(sqlx::query_as(&format!("{COUPLING} WHERE c.pipeline_id = $1 ORDER BY a.name")).bind(pipeline_id).fetch_all(&self.pool).await?)
    }

    /// Turns the app's maintenance mode on or off.
    pub async fn set_maintenance(&self, app_id: &str, on: bool) -> StoreResult<()> {
        sqlx::query("UPDATE apps SET maintenance = $1 WHERE id = $2").bind(i64::from(on)).bind(app_id).execute(&self.pool).await?;
        Ok(())
    }

    /// Whether the app is in maintenance mode.
    pub async fn in_maintenance(&self, app_id: &str) -> StoreResult<bool> {
        let on: Option<i64> = sqlx::query_scalar("SELECT maintenance FROM apps WHERE id = $1").bind(app_id).fetch_optional(&self.pool).await?;
        Ok(on == Some(1))
    }

    /// The names of the apps in maintenance mode.
    pub async fn apps_in_maintenance(&self) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT name FROM apps WHERE maintenance = 1 ORDER BY name").fetch_all(&self.pool).await?)
    }
}
