//! Apps: one row per app, named by the allow-listed `AppName`. Deleting an
//! app cascades to its builds, releases and formation.

use super::{new_id, now, on_unique, Store, StoreError, StoreResult};
use paas_wire::AppName;

#[derive(Debug, Clone)]
pub struct AppRow {
    pub id: String,
    pub name: String,
    pub created_at: String,
}
from_row!(AppRow { id, name, created_at });

impl Store {
    /// The app's own Swarm placement constraints (`paas apps:constraints`).
    pub async fn app_constraints(&self, app_id: &str) -> StoreResult<Vec<String>> {
        let json: Option<Option<String>> =
            sqlx::query_scalar("SELECT constraints FROM apps WHERE id = $1").bind(app_id).fetch_optional(&self.pool).await?;
        Ok(json.flatten().and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default())
    }

    /// Replaces the app's placement constraints (none: empty).
    pub async fn set_app_constraints(&self, app_id: &str, constraints: &[String]) -> StoreResult<()> {
        let json = (!constraints.is_empty()).then(|| serde_json::to_string(constraints).expect("strings serialize"));
        sqlx::query("UPDATE apps SET constraints = $1 WHERE id = $2").bind(json).bind(app_id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn create_app(&self, name: &AppName) -> StoreResult<AppRow> {
        let row = AppRow { id: new_id(), name: name.to_string(), created_at: now() };
        on_unique(
            sqlx::query("INSERT INTO apps (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(&row.id)
                .bind(&row.name)
                .bind(&row.created_at)
                .execute(&self.pool)
                .await,
        )?;
        self.known.insert(&row.name);
        Ok(row)
    }

    /// Gives the app a new name (`apps:rename`); everything else keeps its
    /// id. Conflict when the name is taken. The old name is unknown from
    /// this moment (the router and the log router answer nothing for it).
    pub async fn rename_app(&self, app: &AppRow, new: &AppName) -> StoreResult<AppRow> {
        on_unique(sqlx::query("UPDATE apps SET name = $1 WHERE id = $2").bind(new.as_str()).bind(&app.id).execute(&self.pool).await)?;
        self.known.insert(new.as_str());
        self.known.remove(&app.name);
        Ok(AppRow { name: new.to_string(), ..app.clone() })
    }

    pub async fn list_apps(&self) -> StoreResult<Vec<AppRow>> {
        Ok(sqlx::query_as("SELECT id, name, created_at FROM apps ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn app(&self, name: &AppName) -> StoreResult<AppRow> {
        sqlx::query_as("SELECT id, name, created_at FROM apps WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn app_by_id(&self, id: &str) -> StoreResult<Option<AppRow>> {
        Ok(sqlx::query_as("SELECT id, name, created_at FROM apps WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Deletes the app and everything it owns, in one transaction.
    pub async fn delete_app(&self, app: &AppRow) -> StoreResult<()> {
        let app_id = app.id.as_str();
        let mut tx = self.pool.begin().await?;
        for table in ["release_statuses", "releases", "builds", "formation", "sizes", "drains", "certs", "acme_apps", "domains", "cron_runs", "addon_attachments", "app_roles", "pipeline_couplings", "twelve_factor_findings"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE app_id = $1"))
                .bind(app_id)
                .execute(&mut *tx)
                .await?;
        }
        // Its deploy tokens go with it, and any session signed in with one.
        sqlx::query("DELETE FROM sessions WHERE token_id IN (SELECT id FROM tokens WHERE app_id = $1)").bind(app_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM tokens WHERE app_id = $1").bind(app_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM apps WHERE id = $1").bind(app_id).execute(&mut *tx).await?;
        tx.commit().await?;
        self.known.remove(&app.name);
        Ok(())
    }
}
