//! API tokens: stored as SHA-256 hashes only, checked in constant time.

use super::{new_id, now, Store, StoreResult};
use crate::crypto;

impl Store {
    /// Creates a token and returns its only plain-text copy; the store keeps
    /// its SHA-256.
    pub async fn create_token(&self, name: &str) -> StoreResult<String> {
        let token = crypto::new_token();
        sqlx::query("INSERT INTO tokens (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(new_id())
            .bind(name)
            .bind(crypto::hash_token(&token))
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(token)
    }

    /// The name of the token, if it is valid. The lookup is by hash, and the
    /// stored hash is compared again in constant time.
    pub async fn verify_token(&self, token: &str) -> StoreResult<Option<String>> {
        let hash = crypto::hash_token(token);
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT name, token_hash FROM tokens WHERE token_hash = $1")
                .bind(&hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.filter(|(_, stored)| crypto::constant_time_eq(stored, &hash)).map(|(name, _)| name))
    }

    pub async fn token_count(&self) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM tokens").fetch_one(&self.pool).await?;
        Ok(n)
    }
}
