//! A consistent copy of a SQLite store for a platform backup (`VACUUM
//! INTO`: one read transaction, so writes during it are either all in the
//! copy or not at all).

use super::{Store, StoreResult};

impl Store {
    /// Writes a consistent copy of this SQLite database to `path` (which
    /// must not exist).
    pub async fn snapshot_sqlite(&self, path: &std::path::Path) -> StoreResult<()> {
        sqlx::query("VACUUM INTO $1").bind(path.to_string_lossy().into_owned()).execute(&self.pool).await?;
        Ok(())
    }
}
