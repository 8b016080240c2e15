//! Twelve-factor observations (the report's; see the `twelve` module): one row per app, scope
//! (a build's or a release's id), code and subject.

use super::{now, Store, StoreResult};

/// An observation to record (a twelve-factor `Finding`, by its parts).
pub struct NewFinding<'a> {
    /// 1 to 12.
    pub factor: i64,
    pub code: &'a str,
    pub subject: &'a str,
    pub ok: bool,
    pub message: &'a str,
    pub fix: &'a str,
}

/// A stored observation.
#[derive(Debug, Clone)]
pub struct FindingRow {
    pub scope: String,
    pub factor: i64,
    pub code: String,
    pub subject: String,
    /// 1: evidence the factor holds; 0: a departure.
    pub ok: i64,
    pub message: String,
    pub fix: String,
    pub first_seen: String,
    pub last_seen: String,
}
from_row!(FindingRow { scope, factor, code, subject, ok, message, fix, first_seen, last_seen });

impl Store {
    /// Records an observation; true when the app never had it before (its
    /// code, subject and verdict, in any scope: a committed file found
    /// again by the next build is not news). A repeat in the same scope
    /// updates what was seen.
    pub async fn record_finding(&self, app_id: &str, scope: &str, f: &NewFinding<'_>) -> StoreResult<bool> {
        let at = now();
        let seen: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM twelve_factor_findings WHERE app_id = $1 AND code = $2 AND subject = $3 AND ok = $4",
        )
        .bind(app_id)
        .bind(f.code)
        .bind(f.subject)
        .bind(i64::from(f.ok))
        .fetch_one(&self.pool)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO twelve_factor_findings (app_id, scope, factor, code, subject, ok, message, fix, first_seen, last_seen) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (app_id, scope, code, subject) DO NOTHING",
        )
        .bind(app_id)
        .bind(scope)
        .bind(f.factor)
        .bind(f.code)
        .bind(f.subject)
        .bind(i64::from(f.ok))
        .bind(f.message)
        .bind(f.fix)
        .bind(&at)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0;
        if !inserted {
            sqlx::query(
                "UPDATE twelve_factor_findings SET ok = $1, message = $2, fix = $3, last_seen = $4 \
                 WHERE app_id = $5 AND scope = $6 AND code = $7 AND subject = $8",
            )
            .bind(i64::from(f.ok))
            .bind(f.message)
            .bind(f.fix)
            .bind(&at)
            .bind(app_id)
            .bind(scope)
            .bind(f.code)
            .bind(f.subject)
            .execute(&self.pool)
            .await?;
        }
        Ok(inserted && seen == 0)
    }

    /// The app's observations in these scopes, by factor.
    pub async fn findings(&self, app_id: &str, scopes: &[&str]) -> StoreResult<Vec<FindingRow>> {
        let mut out = Vec::new();
        for scope in scopes {
            let rows: Vec<FindingRow> = sqlx::query_as(
                "SELECT scope, factor, code, subject, ok, message, fix, first_seen, last_seen FROM twelve_factor_findings \
                 WHERE app_id = $1 AND scope = $2 ORDER BY factor, code, subject",
            )
            .bind(app_id)
            .bind(scope)
            .fetch_all(&self.pool)
            .await?;
            out.extend(rows);
        }
        out.sort_by_key(|r| r.factor);
        Ok(out)
    }
}
