//! API tokens: stored as SHA-256 hashes only, checked in constant time,
//! each with a description, an optional expiry, its last use (written at
//! most once a minute per token) and, once revoked, when.

use super::{new_id, now, Store, StoreResult};
use crate::crypto;
use sqlx::Row as _;

/// A token as it is listed: never its value.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// Whose it is (every token is someone's once the server has started).
    pub user_id: Option<String>,
    /// A deploy token's one app.
    pub app_id: Option<String>,
    /// `deploy` for a deploy token; none for a user's own.
    pub role: Option<String>,
}
from_row!(TokenRow { id, name, description, created_at, expires_at, last_used_at, revoked_at, user_id, app_id, role });

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

/// What a new token is: whose, for what, until when.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewToken<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    /// RFC 3339.
    pub expires_at: Option<&'a str>,
    pub user_id: Option<&'a str>,
    /// A deploy token's app, with `role: Some("deploy")`.
    pub app_id: Option<&'a str>,
    pub role: Option<&'a str>,
}

/// A row with its stored hash, as the check reads it.
struct Hashed {
    row: TokenRow,
    token_hash: String,
}
impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for Hashed {
    fn from_row(row: &'r sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self { row: TokenRow::from_row(row)?, token_hash: row.try_get("token_hash")? })
    }
}

/// A token row with its hash and its user's columns (none without a user).
struct WithUser {
    hashed: Hashed,
    u_email: Option<String>,
    u_password_hash: Option<String>,
    u_admin: Option<i64>,
    u_created_at: Option<String>,
}
impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for WithUser {
    fn from_row(row: &'r sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            hashed: Hashed::from_row(row)?,
            u_email: row.try_get("u_email")?,
            u_password_hash: row.try_get("u_password_hash")?,
            u_admin: row.try_get("u_admin")?,
            u_created_at: row.try_get("u_created_at")?,
        })
    }
}

const COLUMNS: &str = "id, name, description, created_at, expires_at, last_used_at, revoked_at, user_id, app_id, role";

impl Store {
    /// Creates a token of the first platform admin (of no one yet before
    /// the first start, which gives it to them) and returns its only
    /// plain-text copy; the store keeps its SHA-256.
    pub async fn create_token(&self, name: &str) -> StoreResult<String> {
        let admin: Option<String> =
            sqlx::query_scalar("SELECT id FROM users WHERE admin = 1 ORDER BY created_at, id LIMIT 1").fetch_optional(&self.pool).await?;
        let new = NewToken { name, user_id: admin.as_deref(), ..NewToken::default() };
        Ok(self.create_token_with(&new).await?.1)
    }

    /// Creates a token; returns its row and its only plain-text copy.
    pub async fn create_token_with(&self, new: &NewToken<'_>) -> StoreResult<(TokenRow, String)> {
        let NewToken { name, description, expires_at, user_id, app_id, role } = *new;
        let token = crypto::new_token();
        let row = TokenRow {
            id: new_id(),
            name: name.to_owned(),
            description: description.map(str::to_owned),
            created_at: now(),
            expires_at: expires_at.map(str::to_owned),
            last_used_at: None,
            revoked_at: None,
            user_id: user_id.map(str::to_owned),
            app_id: app_id.map(str::to_owned),
            role: role.map(str::to_owned),
        };
        sqlx::query(
            "INSERT INTO tokens (id, name, token_hash, created_at, description, expires_at, user_id, app_id, role) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
            .bind(&row.id)
            .bind(&row.name)
            .bind(crypto::hash_token(&token))
            .bind(&row.created_at)
            .bind(&row.description)
            .bind(&row.expires_at)
            .bind(&row.user_id)
            .bind(&row.app_id)
            .bind(&row.role)
            .execute(&self.pool)
            .await?;
        Ok((row, token))
    }

    /// The token, if it is valid now (not revoked, not expired).
    pub async fn verify_token(&self, token: &str) -> StoreResult<Option<TokenRow>> {
        Ok(self.verify_token_user(token).await?.map(|(row, _)| row))
    }

    /// The token, if it is valid now, with its user (none for a token of no
    /// one, made before the first start): one query, as every request makes
    /// it. The lookup is by hash, and the stored hash is compared again in
    /// constant time.
    pub async fn verify_token_user(&self, token: &str) -> StoreResult<Option<(TokenRow, Option<super::UserRow>)>> {
        let hash = crypto::hash_token(token);
        let row: Option<WithUser> = sqlx::query_as(
            "SELECT t.id, t.name, t.description, t.created_at, t.expires_at, t.last_used_at, t.revoked_at, t.user_id, t.app_id, t.role, t.token_hash, \
             u.email AS u_email, u.password_hash AS u_password_hash, u.admin AS u_admin, u.created_at AS u_created_at \
             FROM tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(WithUser { hashed: Hashed { row, token_hash }, u_email, u_password_hash, u_admin, u_created_at }) = row else { return Ok(None) };
        if !crypto::constant_time_eq(&token_hash, &hash) || !row.active_at(&now()) {
            return Ok(None);
        }
        let user = match (row.user_id.clone(), u_email, u_admin, u_created_at) {
            (Some(id), Some(email), Some(admin), Some(created_at)) => Some(super::UserRow { id, email, password_hash: u_password_hash, admin, created_at }),
            _ => None,
        };
        Ok(Some((row, user)))
    }

    /// Every token (of one user, when given), newest first.
    pub async fn tokens(&self, user_id: Option<&str>) -> StoreResult<Vec<TokenRow>> {
        Ok(match user_id {
            Some(u) => sqlx::query_as(&format!("SELECT {COLUMNS} FROM tokens WHERE user_id = $1 ORDER BY created_at DESC, id")).bind(u).fetch_all(&self.pool).await?,
            None => sqlx::query_as(&format!("SELECT {COLUMNS} FROM tokens ORDER BY created_at DESC, id")).fetch_all(&self.pool).await?,
        })
    }

    /// The token by id, whatever its state.
    pub async fn token(&self, id: &str) -> StoreResult<Option<TokenRow>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM tokens WHERE id = $1")).bind(id).fetch_optional(&self.pool).await?)
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
