//! Facts about this installation, such as its instance ID, which labels
//! every container it starts.

use super::{new_id, Store, StoreResult};

impl Store {
    /// This installation's ID, made on first use.
    pub async fn instance_id(&self) -> StoreResult<String> {
        sqlx::query("INSERT INTO platform (name, value) VALUES ('instance_id', $1) ON CONFLICT (name) DO NOTHING")
            .bind(new_id())
            .execute(&self.pool)
            .await?;
        let (id,): (String,) = sqlx::query_as("SELECT value FROM platform WHERE name = 'instance_id'")
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }
}
