//! People and what they may do: users (a lower-case email, an argon2id
//! password hash, whether a platform admin), their roles on apps, the
//! dashboard sessions they signed in with (known by the SHA-256 of the
//! cookie's id), and the append-only audit log (no statement here updates
//! an event; only those past the retention are deleted).

use super::{new_id, now, on_unique, Store, StoreError, StoreResult};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub password_hash: Option<String>,
    /// 1: a platform admin.
    pub admin: i64,
    pub created_at: String,
}
from_row!(UserRow { id, email, password_hash, admin, created_at });

impl UserRow {
    pub fn is_admin(&self) -> bool {
        self.admin != 0
    }
}

/// A user's role on an app, with the user's email.
#[derive(Debug, Clone)]
pub struct RoleRow {
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub created_at: String,
}
from_row!(RoleRow { user_id, email, role, created_at });

/// A dashboard session as stored.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub key_hash: String,
    pub user_id: String,
    pub token_id: Option<String>,
    pub csrf: String,
    pub expires_at: String,
}
from_row!(SessionRow { key_hash, user_id, token_id, csrf, expires_at });

/// One event of the audit log.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: String,
    pub at: String,
    pub actor: String,
    pub user_id: Option<String>,
    pub address: Option<String>,
    pub action: String,
    pub app: Option<String>,
    pub detail: String,
    pub status: i64,
}
from_row!(AuditRow { id, at, actor, user_id, address, action, app, detail, status });

const USER: &str = "id, email, password_hash, admin, created_at";

impl Store {
    /// A new user; [`StoreError::Conflict`] when the email is taken.
    pub async fn create_user(&self, email: &str, password_hash: Option<&str>, admin: bool) -> StoreResult<UserRow> {
        let row = UserRow {
            id: new_id(),
            email: email.to_lowercase(),
            password_hash: password_hash.map(str::to_owned),
            admin: admin.into(),
            created_at: now(),
        };
        on_unique(
            sqlx::query("INSERT INTO users (id, email, password_hash, admin, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&row.id)
                .bind(&row.email)
                .bind(&row.password_hash)
                .bind(row.admin)
                .bind(&row.created_at)
                .execute(&self.pool)
                .await,
        )?;
        Ok(row)
    }

    pub async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRow>> {
        Ok(sqlx::query_as(&format!("SELECT {USER} FROM users WHERE email = $1")).bind(email.to_lowercase()).fetch_optional(&self.pool).await?)
    }

    pub async fn user(&self, id: &str) -> StoreResult<Option<UserRow>> {
        Ok(sqlx::query_as(&format!("SELECT {USER} FROM users WHERE id = $1")).bind(id).fetch_optional(&self.pool).await?)
    }

    pub async fn users(&self) -> StoreResult<Vec<UserRow>> {
        Ok(sqlx::query_as(&format!("SELECT {USER} FROM users ORDER BY email")).fetch_all(&self.pool).await?)
    }

    pub async fn set_password(&self, user_id: &str, hash: &str) -> StoreResult<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2").bind(hash).bind(user_id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn set_platform_admin(&self, user_id: &str, admin: bool) -> StoreResult<()> {
        sqlx::query("UPDATE users SET admin = $1 WHERE id = $2").bind(i64::from(admin)).bind(user_id).execute(&self.pool).await?;
        Ok(())
    }

    /// The first platform admin (the oldest), made with `email` when there
    /// is no user at all; tokens of no one (made before users existed)
    /// become theirs.
    pub async fn first_admin(&self, email: &str) -> StoreResult<UserRow> {
        let first: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER} FROM users WHERE admin = 1 ORDER BY created_at, id LIMIT 1")).fetch_optional(&self.pool).await?;
        let admin = match first {
            Some(u) => u,
            None => match self.create_user(email, None, true).await {
                Ok(u) => u,
                // Made by another start at the same moment, or a user of that
                // email who is not an admin yet: make them one.
                Err(StoreError::Conflict) => {
                    let u = self.user_by_email(email).await?.ok_or(StoreError::NotFound)?;
                    self.set_platform_admin(&u.id, true).await?;
                    UserRow { admin: 1, ..u }
                }
                Err(e) => return Err(e),
            },
        };
        sqlx::query("UPDATE tokens SET user_id = $1 WHERE user_id IS NULL").bind(&admin.id).execute(&self.pool).await?;
        Ok(admin)
    }

    /// Removes a user with their roles, tokens and sessions, in one transaction.
    pub async fn delete_user(&self, user_id: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for (table, column) in [("sessions", "user_id"), ("app_roles", "user_id"), ("tokens", "user_id"), ("users", "id")] {
            sqlx::query(&format!("DELETE FROM {table} WHERE {column} = $1")).bind(user_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- roles on apps

    /// The app by name with the user's role on it (none without one), in
    /// one query, as every request to an app's route makes it.
    pub async fn app_with_role(&self, name: &str, user_id: &str) -> StoreResult<Option<(super::AppRow, Option<String>)>> {
        let row: Option<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT a.id, a.name, a.created_at, r.role FROM apps a LEFT JOIN app_roles r ON r.app_id = a.id AND r.user_id = $2 WHERE a.name = $1",
        )
        .bind(name)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id, name, created_at, role)| (super::AppRow { id, name, created_at }, role)))
    }

    /// The user's role on the app, if any.
    pub async fn app_role(&self, app_id: &str, user_id: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT role FROM app_roles WHERE app_id = $1 AND user_id = $2")
            .bind(app_id)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Sets (adds or changes) the user's role on the app.
    pub async fn set_app_role(&self, app_id: &str, user_id: &str, role: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM app_roles WHERE app_id = $1 AND user_id = $2").bind(app_id).bind(user_id).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO app_roles (app_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
            .bind(app_id)
            .bind(user_id)
            .bind(role)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn remove_app_role(&self, app_id: &str, user_id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM app_roles WHERE app_id = $1 AND user_id = $2").bind(app_id).bind(user_id).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Everyone with a role on the app, by email.
    pub async fn app_roles(&self, app_id: &str) -> StoreResult<Vec<RoleRow>> {
        Ok(sqlx::query_as(
            "SELECT r.user_id, u.email, r.role, r.created_at FROM app_roles r JOIN users u ON u.id = r.user_id WHERE r.app_id = $1 ORDER BY u.email",
        )
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The ids of the apps the user has a role on.
    pub async fn apps_of_user(&self, user_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT app_id FROM app_roles WHERE user_id = $1").bind(user_id).fetch_all(&self.pool).await?)
    }

    /// The apps on which the user is the only admin.
    pub async fn apps_only_admin_of(&self, user_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT a.name FROM app_roles r JOIN apps a ON a.id = r.app_id WHERE r.user_id = $1 AND r.role = 'admin' \
             AND NOT EXISTS (SELECT 1 FROM app_roles o WHERE o.app_id = r.app_id AND o.role = 'admin' AND o.user_id <> r.user_id) ORDER BY a.name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    // ---- dashboard sessions

    pub async fn create_session(&self, key_hash: &str, user_id: &str, token_id: Option<&str>, csrf: &str, expires_at: &str) -> StoreResult<()> {
        // Sessions past their time go as new ones come.
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(now()).execute(&self.pool).await?;
        sqlx::query("INSERT INTO sessions (key_hash, user_id, token_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(key_hash)
            .bind(user_id)
            .bind(token_id)
            .bind(csrf)
            .bind(now())
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The session, if it has not expired.
    pub async fn session(&self, key_hash: &str) -> StoreResult<Option<SessionRow>> {
        Ok(sqlx::query_as("SELECT key_hash, user_id, token_id, csrf, expires_at FROM sessions WHERE key_hash = $1 AND expires_at > $2")
            .bind(key_hash)
            .bind(now())
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn delete_session(&self, key_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE key_hash = $1").bind(key_hash).execute(&self.pool).await?;
        Ok(())
    }

    // ---- the audit log

    pub async fn append_audit(&self, event: &AuditRow) -> StoreResult<()> {
        sqlx::query("INSERT INTO audit_events (id, at, actor, user_id, address, action, app, detail, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(&event.id)
            .bind(&event.at)
            .bind(&event.actor)
            .bind(&event.user_id)
            .bind(&event.address)
            .bind(&event.action)
            .bind(&event.app)
            .bind(&event.detail)
            .bind(event.status)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest `limit` events, of one app when `app` is given, newest first.
    pub async fn audit(&self, app: Option<&str>, limit: i64) -> StoreResult<Vec<AuditRow>> {
        const COLUMNS: &str = "id, at, actor, user_id, address, action, app, detail, status";
        let rows = match app {
            Some(app) => {
                sqlx::query_as(&format!("SELECT {COLUMNS} FROM audit_events WHERE app = $1 ORDER BY at DESC, id DESC LIMIT $2"))
                    .bind(app)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => sqlx::query_as(&format!("SELECT {COLUMNS} FROM audit_events ORDER BY at DESC, id DESC LIMIT $1")).bind(limit).fetch_all(&self.pool).await?,
        };
        Ok(rows)
    }

    /// Deletes the events older than `before` (RFC 3339); how many went.
    pub async fn prune_audit(&self, before: &str) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM audit_events WHERE at < $1").bind(before).execute(&self.pool).await?.rows_affected())
    }
}
