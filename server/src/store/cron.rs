//! Cron runs: each time an app's cron entry was due or run by hand, the
//! one-off dyno that ran it and how it ended, or why it was skipped. The
//! cron service writes them; `paas cron` reads the last of each entry. And
//! whether an app's first deploy has come up (Heroku's run-once
//! `scripts.postdeploy` runs then).

use super::{new_id, now, Store, StoreResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronRunRow {
    pub id: String,
    pub app_id: String,
    pub entry_id: String,
    pub release_version: i64,
    /// 1 when run by `paas cron:run`.
    pub manual: i64,
    /// `running`, `finished` or `skipped`.
    pub outcome: String,
    pub dyno: Option<String>,
    pub container_id: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub exit_code: Option<i64>,
    /// Why it was skipped, or how it ended when that is more than a code.
    pub detail: Option<String>,
}
from_row!(CronRunRow { id, app_id, entry_id, release_version, manual, outcome, dyno, container_id, started_at, finished_at, exit_code, detail });

/// A run about to be recorded.
pub struct NewCronRun<'a> {
    pub app_id: &'a str,
    pub entry_id: &'a str,
    pub release_version: i64,
    pub manual: bool,
    pub outcome: &'a str,
    pub dyno: Option<&'a str>,
    pub container_id: Option<&'a str>,
    pub detail: Option<&'a str>,
}

const COLUMNS: &str =
    "id, app_id, entry_id, release_version, manual, outcome, dyno, container_id, started_at, finished_at, exit_code, detail";

/// Runs kept per entry: the oldest go when an entry has more.
const KEPT_PER_ENTRY: i64 = 50;

impl Store {
    pub async fn add_cron_run(&self, new: &NewCronRun<'_>) -> StoreResult<CronRunRow> {
        let id = new_id();
        let finished = (new.outcome != "running").then(now);
        sqlx::query(&format!("INSERT INTO cron_runs ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11)"))
            .bind(&id)
            .bind(new.app_id)
            .bind(new.entry_id)
            .bind(new.release_version)
            .bind(i64::from(new.manual))
            .bind(new.outcome)
            .bind(new.dyno)
            .bind(new.container_id)
            .bind(now())
            .bind(&finished)
            .bind(new.detail)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "DELETE FROM cron_runs WHERE app_id = $1 AND entry_id = $2 AND id NOT IN \
             (SELECT id FROM cron_runs WHERE app_id = $1 AND entry_id = $2 ORDER BY started_at DESC LIMIT $3)",
        )
        .bind(new.app_id)
        .bind(new.entry_id)
        .bind(KEPT_PER_ENTRY)
        .execute(&self.pool)
        .await?;
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM cron_runs WHERE id = $1")).bind(&id).fetch_one(&self.pool).await?)
    }

    /// Records how the run in `container_id` ended; false when no running
    /// run has that container.
    pub async fn finish_cron_run(&self, container_id: &str, exit_code: Option<i64>, detail: Option<&str>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE cron_runs SET outcome = 'finished', finished_at = $1, exit_code = $2, detail = $3 \
             WHERE container_id = $4 AND outcome = 'running'",
        )
        .bind(now())
        .bind(exit_code)
        .bind(detail)
        .bind(container_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The runs of an app still recorded as running.
    pub async fn running_cron_runs(&self, app_id: &str) -> StoreResult<Vec<CronRunRow>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM cron_runs WHERE app_id = $1 AND outcome = 'running' ORDER BY started_at"))
            .bind(app_id)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The newest run of each of an app's entries.
    pub async fn last_cron_runs(&self, app_id: &str) -> StoreResult<Vec<CronRunRow>> {
        let all: Vec<CronRunRow> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM cron_runs WHERE app_id = $1 ORDER BY entry_id, started_at DESC, id"))
                .bind(app_id)
                .fetch_all(&self.pool)
                .await?;
        let mut last: Vec<CronRunRow> = Vec::new();
        for run in all {
            if last.last().is_none_or(|l| l.entry_id != run.entry_id) {
                last.push(run);
            }
        }
        Ok(last)
    }

    /// Marks the app's first deploy as come up, once: true the first
    /// time (Heroku's `scripts.postdeploy` runs then), false ever after.
    pub async fn mark_first_deployed(&self, app_id: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE apps SET first_deployed_at = $1 WHERE id = $2 AND first_deployed_at IS NULL")
            .bind(now())
            .bind(app_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
