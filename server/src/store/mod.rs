//! The store: the only module that speaks SQL. SQLite in the data dir by
//! default, PostgreSQL when `DATABASE_URL` says `postgres://`; both through
//! sqlx's `Any` driver so one set of queries serves both.
//!
//! It must not know about Docker, git or HTTP. Releases are append-only: this
//! module has no statement that updates a release row.

/// `sqlx::FromRow` for a row struct, each field read from the column of its
/// name (what `#[derive(sqlx::FromRow)]` wrote, without compiling sqlx's
/// macros). The struct literal names every field, so the compiler refuses
/// a list that misses one.
macro_rules! from_row {
    ($name:ident { $($field:ident),* $(,)? }) => {
        impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for $name {
            fn from_row(row: &'r sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row as _;
                Ok(Self { $($field: row.try_get(stringify!($field))?),* })
            }
        }
    };
}

mod addons;
mod backup;
mod apps;
mod builds;
mod certs;
mod cron;
mod domains;
mod drains;
mod findings;
mod formation;
mod images;
mod metrics;
mod pipelines;
mod platform;
mod releases;
mod reseal;
mod statuses;
mod tokens;
mod users;

pub use addons::{AddonRow, AttachmentRow, BackupRow};
pub use apps::AppRow;
pub use builds::{BuildRow, BuildStatus};
pub use certs::CertRow;
pub use cron::{CronRunRow, NewCronRun};
pub use drains::DrainRow;
pub use findings::{FindingRow, NewFinding};
pub use pipelines::{CouplingRow, PipelineRow};
pub use releases::{NewRelease, ReleaseRow};
pub use statuses::ReleaseStatus;
pub use tokens::{NewToken, TokenRow};
pub use users::{AuditRow, RoleRow, SessionRow, UserRow};

use sqlx::any::AnyPoolOptions;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::AnyPool;
use std::time::Duration;

/// The files in `migrations/` as (version, file name, SQL), embedded by
/// `build.rs` (which refuses a name without a `VERSION_` prefix), sorted
/// by version.
const MIGRATIONS: &[(i64, &str, &str)] = include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// [`MIGRATIONS`] as sqlx reads a migrations folder (`VERSION_description.sql`,
/// the checksum of the SQL as written), so a store an earlier server
/// migrated with `sqlx::migrate!` validates unchanged.
#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> futures_util::future::BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        let migrations = MIGRATIONS.iter().map(|&(version, name, sql)| {
            let rest = name.split_once('_').map_or(name, |(_, rest)| rest);
            let kind = MigrationType::from_filename(rest);
            let description = rest.trim_end_matches(kind.suffix()).replace('_', " ");
            Migration::new(version, description.into(), kind, sql.into(), sql.starts_with("-- no-transaction"))
        });
        Box::pin(std::future::ready(Ok(migrations.collect())))
    }
}


#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    Conflict,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl Store {
    /// One nullable text column of one row, by `sql` with the id as `$1`;
    /// None for no row or a NULL.
    async fn optional_text(&self, sql: &'static str, id: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar::<_, Option<String>>(sql).bind(id).fetch_optional(&self.pool).await?.flatten())
    }
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`].
fn on_unique<T>(r: Result<T, sqlx::Error>) -> StoreResult<T> {
    match r {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict),
        other => Ok(other?),
    }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// The names of the apps there are, kept in step with the `apps` table.
    known: crate::known::KnownApps,
}

impl Store {
    /// Connects without running migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or_default();
            if let Some(dir) = std::path::Path::new(path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)?;
                }
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if url.starts_with("sqlite:") { 4 } else { 10 })
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the database at DATABASE_URL: {e}"))?;
        Ok(Self { pool, known: Default::default() })
    }

    /// Connects and brings the schema up to date.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        let names = store.list_apps().await?.into_iter().map(|a| a.name);
        store.known.replace_all(names);
        Ok(store)
    }

    /// The names of the apps there are, in memory (see [`crate::known`]).
    pub fn known_apps(&self) -> crate::known::KnownApps {
        self.known.clone()
    }

    /// The newest migration this server knows (its store schema).
    pub fn schema() -> i64 {
        MIGRATIONS.last().map_or(0, |&(version, ..)| version)
    }

    /// Brings the schema up to date; refuses a store a newer server
    /// migrated (this server would misread it).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        // No table yet: a new store.
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations").fetch_one(&self.pool).await.ok().flatten();
        if let Some(applied) = applied.filter(|a| *a > Self::schema()) {
            anyhow::bail!(
                "the database was migrated by a newer paas-server (schema {applied}; this one knows up to {}): run that version or a newer one, or restore a backup made before the upgrade",
                Self::schema()
            );
        }
        Migrator::new(Embedded)
            .await
            .map_err(|e| anyhow::anyhow!("the embedded migrations: {e}"))?
            .run(&self.pool)
            .await
            .map_err(|e| anyhow::anyhow!("database migration failed: {e}"))
    }
}

/// Makes a new, empty database on the PostgreSQL server at `admin_url` and
/// returns its URL; for tests, each of which gets a database of its own.
pub async fn create_test_database(admin_url: &str) -> anyhow::Result<String> {
    sqlx::any::install_default_drivers();
    let name = format!("paas_test_{}", uuid::Uuid::new_v4().simple());
    let admin = AnyPool::connect(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await?;
    admin.close().await;
    let (base, _) = admin_url.rsplit_once('/').ok_or_else(|| anyhow::anyhow!("{admin_url} names no database"))?;
    Ok(format!("{base}/{name}"))
}

#[cfg(test)]
pub(crate) mod tests;
