//! Add-ons, their attachments to apps and their backups. Credentials come
//! sealed; the add-on service (`addons/`) decides, this only keeps.

use super::{new_id, now, on_unique, Store, StoreResult};

#[derive(Debug, Clone)]
pub struct AddonRow {
    pub id: String,
    pub name: String,
    /// The app that created it (and destroys it with itself).
    pub app_id: String,
    pub service: String,
    pub major: String,
    /// provisioning, provisioned, failed or stopped.
    pub state: String,
    pub reason: Option<String>,
    /// Sealed for the add-on ([`crate::crypto::addon_owner`]).
    pub credentials: String,
    /// Daily backup time (HH:MM, UTC), and how many scheduled ones to keep.
    pub backup_at: Option<String>,
    pub backup_retain: Option<i64>,
    /// When the schedule was set.
    pub backup_since: Option<String>,
    pub created_at: String,
}
from_row!(AddonRow { id, name, app_id, service, major, state, reason, credentials, backup_at, backup_retain, backup_since, created_at });

/// An add-on attached to an app: the app's config has `{name}_URL`.
#[derive(Debug, Clone)]
pub struct AttachmentRow {
    pub addon_id: String,
    pub app_id: String,
    /// The app's name, for listings.
    pub app_name: String,
    pub name: String,
    pub created_at: String,
}
from_row!(AttachmentRow { addon_id, app_id, app_name, name, created_at });

#[derive(Debug, Clone)]
pub struct BackupRow {
    pub id: String,
    pub addon_id: String,
    pub number: i64,
    /// manual, scheduled or safety.
    pub kind: String,
    /// running, succeeded or failed.
    pub state: String,
    pub reason: Option<String>,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
}
from_row!(BackupRow { id, addon_id, number, kind, state, reason, size, sha256, started_at, finished_at });

const ADDON_COLUMNS: &str = "id, name, app_id, service, major, state, reason, credentials, backup_at, backup_retain, backup_since, created_at";
const BACKUP_COLUMNS: &str = "id, addon_id, number, kind, state, reason, size, sha256, started_at, finished_at";

impl Store {
    /// Records a new add-on in state `provisioning`;
    /// [`super::StoreError::Conflict`] when the name is taken.
    pub async fn create_addon(&self, name: &str, app_id: &str, service: &str, major: &str, credentials: &str) -> StoreResult<AddonRow> {
        let row = AddonRow {
            id: new_id(),
            name: name.to_owned(),
            app_id: app_id.to_owned(),
            service: service.to_owned(),
            major: major.to_owned(),
            state: "provisioning".into(),
            reason: None,
            credentials: credentials.to_owned(),
            backup_at: None,
            backup_retain: None,
            backup_since: None,
            created_at: now(),
        };
        on_unique(
            sqlx::query(
                "INSERT INTO addons (id, name, app_id, service, major, state, credentials, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&row.id)
            .bind(&row.name)
            .bind(&row.app_id)
            .bind(&row.service)
            .bind(&row.major)
            .bind(&row.state)
            .bind(&row.credentials)
            .bind(&row.created_at)
            .execute(&self.pool)
            .await,
        )?;
        Ok(row)
    }

    pub async fn addon(&self, name: &str) -> StoreResult<Option<AddonRow>> {
        Ok(sqlx::query_as(&format!("SELECT {ADDON_COLUMNS} FROM addons WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn addon_by_id(&self, id: &str) -> StoreResult<Option<AddonRow>> {
        Ok(sqlx::query_as(&format!("SELECT {ADDON_COLUMNS} FROM addons WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn all_addons(&self) -> StoreResult<Vec<AddonRow>> {
        Ok(sqlx::query_as(&format!("SELECT {ADDON_COLUMNS} FROM addons ORDER BY created_at, name"))
            .fetch_all(&self.pool)
            .await?)
    }

    /// The add-ons an app owns or has attached, oldest first.
    pub async fn app_addons(&self, app_id: &str) -> StoreResult<Vec<AddonRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {ADDON_COLUMNS} FROM addons WHERE app_id = $1 OR id IN (SELECT addon_id FROM addon_attachments WHERE app_id = $1) ORDER BY created_at, name"
        ))
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn set_addon_state(&self, id: &str, state: &str, reason: Option<&str>) -> StoreResult<()> {
        sqlx::query("UPDATE addons SET state = $1, reason = $2 WHERE id = $3")
            .bind(state)
            .bind(reason)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_addon_credentials(&self, id: &str, sealed: &str) -> StoreResult<()> {
        sqlx::query("UPDATE addons SET credentials = $1 WHERE id = $2").bind(sealed).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn set_addon_major(&self, id: &str, major: &str) -> StoreResult<()> {
        sqlx::query("UPDATE addons SET major = $1 WHERE id = $2").bind(major).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn set_backup_schedule(&self, id: &str, at: Option<&str>, retain: Option<i64>) -> StoreResult<()> {
        sqlx::query("UPDATE addons SET backup_at = $1, backup_retain = $2, backup_since = $3 WHERE id = $4")
            .bind(at)
            .bind(retain)
            .bind(at.map(|_| now()))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_addon(&self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM addon_backups WHERE addon_id = $1").bind(id).execute(&self.pool).await?;
        sqlx::query("DELETE FROM addon_attachments WHERE addon_id = $1").bind(id).execute(&self.pool).await?;
        sqlx::query("DELETE FROM addons WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Attaches; [`super::StoreError::Conflict`] when the app already has
    /// the name or the add-on.
    pub async fn attach_addon(&self, addon_id: &str, app_id: &str, name: &str) -> StoreResult<()> {
        on_unique(
            sqlx::query("INSERT INTO addon_attachments (addon_id, app_id, name, created_at) VALUES ($1, $2, $3, $4)")
                .bind(addon_id)
                .bind(app_id)
                .bind(name)
                .bind(now())
                .execute(&self.pool)
                .await,
        )?;
        Ok(())
    }

    pub async fn detach_addon(&self, addon_id: &str, app_id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM addon_attachments WHERE addon_id = $1 AND app_id = $2")
            .bind(addon_id)
            .bind(app_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The apps an add-on is attached to.
    pub async fn attachments_of_addon(&self, addon_id: &str) -> StoreResult<Vec<AttachmentRow>> {
        self.attachments_where("t.addon_id = $1 ORDER BY t.created_at, a.name", addon_id).await
    }

    /// The add-ons attached to an app.
    pub async fn attachments_of_app(&self, app_id: &str) -> StoreResult<Vec<AttachmentRow>> {
        self.attachments_where("t.app_id = $1 ORDER BY t.created_at, t.name", app_id).await
    }

    /// Attachments with their app's name, by a fixed condition on one id.
    async fn attachments_where(&self, condition: &'static str, id: &str) -> StoreResult<Vec<AttachmentRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT t.addon_id, t.app_id, a.name AS app_name, t.name, t.created_at FROM addon_attachments t JOIN apps a ON a.id = t.app_id WHERE {condition}"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Starts a backup record numbered after the add-on's last.
    pub async fn start_backup(&self, addon_id: &str, kind: &str) -> StoreResult<BackupRow> {
        let (last,): (Option<i64>,) = sqlx::query_as("SELECT MAX(number) FROM addon_backups WHERE addon_id = $1")
            .bind(addon_id)
            .fetch_one(&self.pool)
            .await?;
        let row = BackupRow {
            id: new_id(),
            addon_id: addon_id.to_owned(),
            number: last.unwrap_or(0) + 1,
            kind: kind.to_owned(),
            state: "running".into(),
            reason: None,
            size: None,
            sha256: None,
            started_at: now(),
            finished_at: None,
        };
        on_unique(
            sqlx::query("INSERT INTO addon_backups (id, addon_id, number, kind, state, started_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&row.id)
                .bind(&row.addon_id)
                .bind(row.number)
                .bind(&row.kind)
                .bind(&row.state)
                .bind(&row.started_at)
                .execute(&self.pool)
                .await,
        )?;
        Ok(row)
    }

    /// Ends a backup: succeeded with its size, digest and a note (a
    /// scheduled one taken late), or failed with why.
    pub async fn finish_backup(&self, id: &str, outcome: Result<(i64, &str, Option<&str>), &str>) -> StoreResult<()> {
        let (state, reason, size, sha) = match outcome {
            Ok((size, sha, note)) => ("succeeded", note, Some(size), Some(sha)),
            Err(reason) => ("failed", Some(reason), None, None),
        };
        sqlx::query("UPDATE addon_backups SET state = $1, reason = $2, size = $3, sha256 = $4, finished_at = $5 WHERE id = $6")
            .bind(state)
            .bind(reason)
            .bind(size)
            .bind(sha)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// An add-on's backups, newest first.
    pub async fn backups(&self, addon_id: &str) -> StoreResult<Vec<BackupRow>> {
        Ok(sqlx::query_as(&format!("SELECT {BACKUP_COLUMNS} FROM addon_backups WHERE addon_id = $1 ORDER BY number DESC"))
            .bind(addon_id)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn delete_backup(&self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM addon_backups WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Backups left `running` by a server that stopped: failed, as they are.
    pub async fn fail_unfinished_backups(&self) -> StoreResult<u64> {
        Ok(sqlx::query("UPDATE addon_backups SET state = 'failed', reason = 'the server stopped during the backup', finished_at = $1 WHERE state = 'running'")
            .bind(now())
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
