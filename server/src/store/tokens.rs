//! API tokens: stored as SHA-256 hashes only, checked in constant time,
//! each with a description, an optional expiry, its last use (written at
//! most once a minute per token) and, once revoked, when.

use super::{new_id, now, Store, StoreResult};
use crate::crypto;

/// A token as it is listed: never its value.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl TokenRow {
    /// What it is for: its description, else the name it was made with.
    pub fn what(&self) -> &str {
        self.description.as_deref().filter(|d| !d.is_empty()).unwrap_or(&self.name)
    }

    /// Whether it may be used at `now` (RFC 3339): not revoked, not expired.
    pub fn active_at(&self, now: &str) -> bool {
        self.revoked_at.is_none() && self.expires_at.as_deref().is_none_or(|e| later(e, now))
    }
}

/// Whether RFC 3339 time `a` is after `b` (parsed: the store keeps them
/// in one format, but compare the instants).
fn later(a: &str, b: &str) -> bool {
    match (chrono::DateTime::parse_from_rfc3339(a), chrono::DateTime::parse_from_rfc3339(b)) {
        (Ok(a), Ok(b)) => a > b,
        _ => false,
    }
}

const COLUMNS: &str = "id, name, description, created_at, expires_at, last_used_at, revoked_at";

impl Store {
    /// Creates a token and returns its only plain-text copy; the store keeps
    /// its SHA-256.
    pub async fn create_token(&self, name: &str) -> StoreResult<String> {
        Ok(self.create_token_with(name, None, None).await?.1)
    }

    /// Creates a token with a description and an expiry (RFC 3339); returns
    /// its row and its only plain-text copy.
    pub async fn create_token_with(&self, name: &str, description: Option<&str>, expires_at: Option<&str>) -> StoreResult<(TokenRow, String)> {
        let token = crypto::new_token();
        let row = TokenRow {
            id: new_id(),
            name: name.to_owned(),
            description: description.map(str::to_owned),
            created_at: now(),
            expires_at: expires_at.map(str::to_owned),
            last_used_at: None,
            revoked_at: None,
        };
        sqlx::query("INSERT INTO tokens (id, name, token_hash, created_at, description, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&row.id)
            .bind(&row.name)
            .bind(crypto::hash_token(&token))
            .bind(&row.created_at)
            .bind(&row.description)
            .bind(&row.expires_at)
            .execute(&self.pool)
            .await?;
        Ok((row, token))
    }

    /// The token, if it is valid now (not revoked, not expired). The lookup
    /// is by hash, and the stored hash is compared again in constant time.
    pub async fn verify_token(&self, token: &str) -> StoreResult<Option<TokenRow>> {
        let hash = crypto::hash_token(token);
        let row: Option<(String, String, Option<String>, String, Option<String>, Option<String>, Option<String>, String)> = sqlx::query_as(&format!(
            "SELECT {COLUMNS}, token_hash FROM tokens WHERE token_hash = $1"
        ))
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, name, description, created_at, expires_at, last_used_at, revoked_at, stored)) = row else { return Ok(None) };
        if !crypto::constant_time_eq(&stored, &hash) {
            return Ok(None);
        }
        let row = TokenRow { id, name, description, created_at, expires_at, last_used_at, revoked_at };
        Ok(row.active_at(&now()).then_some(row))
    }

    /// The token by id, if it is valid now (a dashboard session's token).
    pub async fn token_active(&self, id: &str) -> StoreResult<bool> {
        let row: Option<TokenRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM tokens WHERE id = $1")).bind(id).fetch_optional(&self.pool).await?;
        Ok(row.is_some_and(|r| r.active_at(&now())))
    }

    /// Every token, newest first.
    pub async fn tokens(&self) -> StoreResult<Vec<TokenRow>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM tokens ORDER BY created_at DESC, id")).fetch_all(&self.pool).await?)
    }

    /// Revokes a token by id; None when there is none, the row as it now is
    /// otherwise (revoking twice keeps the first time).
    pub async fn revoke_token(&self, id: &str) -> StoreResult<Option<TokenRow>> {
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL").bind(now()).bind(id).execute(&self.pool).await?;
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM tokens WHERE id = $1")).bind(id).fetch_optional(&self.pool).await?)
    }

    /// Records a token's use now.
    pub async fn touch_token(&self, id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2").bind(now()).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn token_count(&self) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM tokens").fetch_one(&self.pool).await?;
        Ok(n)
    }
}
