//! Releases: append-only. This file has no UPDATE and no DELETE of a
//! release row; a version is `MAX(version) + 1` per app, taken in one
//! statement, and a unique (app, version) pair catches racing appends.

use super::{new_id, now, on_unique, Store, StoreError, StoreResult};
use std::collections::BTreeMap;

/// A release row. Rows are inserted, never updated.
#[derive(Debug, Clone)]
pub struct ReleaseRow {
    pub id: String,
    pub app_id: String,
    pub version: i64,
    pub build_id: Option<String>,
    pub image: Option<String>,
    pub process_types: String,
    /// Config vars, sealed by [`crate::crypto::ConfigCipher`].
    pub config: String,
    pub description: String,
    pub created_at: String,
    /// app.json's web health check path, if any.
    pub health_path: Option<String>,
    /// app.json's health checks by process type, as JSON.
    pub healthchecks: Option<String>,
    /// app.json's cron entries and deploy scripts, as JSON
    /// ([`crate::appjson::Tasks`]).
    pub tasks: Option<String>,
    /// Who made it: a user's email or a deploy token's description.
    pub actor: Option<String>,
}
from_row!(ReleaseRow { id, app_id, version, build_id, image, process_types, config, description, created_at, health_path, healthchecks, tasks, actor });

impl ReleaseRow {
    pub fn process_types(&self) -> StoreResult<BTreeMap<String, String>> {
        serde_json::from_str(&self.process_types).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

/// What a new release pairs: a build's image and process types with a config.
#[derive(Debug, Clone)]
pub struct NewRelease {
    pub build_id: Option<String>,
    pub image: Option<String>,
    pub process_types: BTreeMap<String, String>,
    pub sealed_config: String,
    pub description: String,
    pub health_path: Option<String>,
    pub healthchecks: Option<String>,
    pub tasks: Option<String>,
    pub actor: Option<String>,
    /// The release phase's output, when one ran.
    pub output: Option<String>,
}

const COLUMNS: &str =
    "id, app_id, version, build_id, image, process_types, config, description, created_at, health_path, healthchecks, tasks, actor";
/// The same columns, qualified by the alias `r`.
pub(super) const COLUMNS_R: &str =
    "r.id, r.app_id, r.version, r.build_id, r.image, r.process_types, r.config, r.description, r.created_at, r.health_path, r.healthchecks, r.tasks, r.actor";

impl Store {
    /// Appends release `v(N+1)` in one statement, so SQLite takes its write
    /// lock up front. Two concurrent appends on PostgreSQL may compute the same
    /// version: the unique (app_id, version) constraint rejects one, and it
    /// retries with the next number.
    pub async fn append_release(&self, app_id: &str, new: &NewRelease) -> StoreResult<ReleaseRow> {
        let types = serde_json::to_string(&new.process_types).expect("a string map always serializes");
        for _ in 0..10 {
            let id = new_id();
            let inserted = on_unique(
                sqlx::query(&format!(
                    "INSERT INTO releases ({COLUMNS}, output) \
                     SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 \
                     FROM releases WHERE app_id = $2"
                ))
                .bind(&id)
                .bind(app_id)
                .bind(&new.build_id)
                .bind(&new.image)
                .bind(&types)
                .bind(&new.sealed_config)
                .bind(&new.description)
                .bind(now())
                .bind(&new.health_path)
                .bind(&new.healthchecks)
                .bind(&new.tasks)
                .bind(&new.actor)
                .bind(&new.output)
                .execute(&self.pool)
                .await,
            );
            match inserted {
                Ok(_) => return self.release_by_id(app_id, &id).await,
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    /// The output of the release phase that made the release, if one ran.
    pub async fn release_output(&self, release_id: &str) -> StoreResult<Option<String>> {
        self.optional_text("SELECT output FROM releases WHERE id = $1", release_id).await
    }

    /// Releases, newest first.
    pub async fn list_releases(&self, app_id: &str) -> StoreResult<Vec<ReleaseRow>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM releases WHERE app_id = $1 ORDER BY version DESC"))
            .bind(app_id)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The current release is the newest one.
    pub async fn current_release(&self, app_id: &str) -> StoreResult<Option<ReleaseRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM releases WHERE app_id = $1 ORDER BY version DESC LIMIT 1"
        ))
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn release_by_version(&self, app_id: &str, version: i64) -> StoreResult<ReleaseRow> {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM releases WHERE app_id = $1 AND version = $2"))
            .bind(app_id)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn release_by_id(&self, app_id: &str, id: &str) -> StoreResult<ReleaseRow> {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM releases WHERE app_id = $1 AND id = $2"))
            .bind(app_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// The ids of the apps some release of which runs `image`.
    pub async fn apps_with_image(&self, image: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT DISTINCT app_id FROM releases WHERE image = $1").bind(image).fetch_all(&self.pool).await?)
    }

    /// Every image some release of some app still references: never to be
    /// garbage-collected.
    pub async fn referenced_images(&self) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT image FROM releases WHERE image IS NOT NULL").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}
