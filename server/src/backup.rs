//! Platform backup and restore (`paas-server backup FILE`, `paas-server
//! restore FILE`). A backup is one gzipped tar: a consistent copy of the
//! store (SQLite's `VACUUM INTO`, or `pg_dump`), which holds apps,
//! releases, config, formation, domains, certificates and drains, their
//! secrets sealed; the ACME account (sealed); every app's git repo; a
//! manifest (with a check of the key that sealed the secrets, never the
//! key) and a note that the key is needed. A restore goes into an empty
//! data dir only, refuses a key that does not open the backup, and leaves
//! a marker; the next start rebuilds, from its repo, each app's release
//! whose image the engine does not have ([`rebuild_restored`]), before any
//! dyno starts.

use crate::acme::ACCOUNT_FILE as ACME_ACCOUNT;
use crate::builder::Builder;
use crate::crypto::{ConfigCipher, KEY_FILE};
use crate::output::Output;
use crate::release::ReleaseService;
use crate::runtime::Runtime;
use crate::settings::Settings;
use crate::store::Store;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The archive's layout version.
const FORMAT: u32 = 1;
/// Every entry sits under this directory.
const TOP: &str = "paas-backup";
/// Left in the data dir by a restore; read (and removed) at the next start.
pub const RESTORED_MARKER: &str = "restored.json";
const NOTE: &str = "This is a paas platform backup (paas-server backup).\n\n\
Secrets in it (config vars, certificate keys, drain URLs, add-on credentials,\n\
the ACME account) are sealed with the platform's key, which is NOT in it:\n\
restoring needs the same PAAS_SECRET_KEY (or the old data dir's secret.key\n\
copied into the new, empty PAAS_DATA_DIR) beside `paas-server restore FILE`.\n\
Add-ons' data is not in it: back those up with `paas pg:backups:capture`.\n";

/// What the archive says of itself.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub paas_version: String,
    pub created_at: String,
    /// The store's schema (its newest migration).
    pub schema: i64,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// A keyed digest that only the sealing key reproduces.
    pub key_check: String,
    pub apps: Vec<String>,
}

/// What a backup or restore did.
#[derive(Debug)]
pub struct Summary {
    pub apps: Vec<String>,
    pub bytes: u64,
}

fn key_check(cipher: &ConfigCipher) -> String {
    cipher.digest("paas-backup", "the key that sealed this platform's secrets")
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The platform's key, never made anew here: a backup or a restore with
/// a new key would be one nobody can open.
fn existing_key(settings: &Settings, what: &str) -> Result<ConfigCipher> {
    let file = settings.server.data_dir.join(KEY_FILE);
    if settings.server.secret_key.is_none() && !file.exists() {
        bail!(
            "{what} needs the platform's key: set PAAS_SECRET_KEY, or put the platform's secret.key in PAAS_DATA_DIR ({})",
            settings.server.data_dir.display()
        );
    }
    ConfigCipher::load(settings.server.secret_key.as_deref(), &settings.server.data_dir)
}

/// Writes the platform's backup to `file` (through a temporary file beside
/// it, renamed when whole).
pub async fn backup(settings: &Settings, file: &Path) -> Result<Summary> {
    let cipher = existing_key(settings, "a backup")?;
    let url = settings.server.database_url();
    let store = Store::open(&url).await?;
    let apps: Vec<String> = store.list_apps().await?.into_iter().map(|a| a.name).collect();
    std::fs::create_dir_all(settings.scratch_dir())?;
    let staging = tempfile::tempdir_in(settings.scratch_dir())?;
    let (database, db_file) = if is_postgres(&url) {
        let out = staging.path().join("paas.pgdump");
        crate::tools::pg_dump(&url, &out).await?;
        ("postgres", out)
    } else {
        let out = staging.path().join("paas.db");
        store.snapshot_sqlite(&out).await.context("cannot copy the SQLite store")?;
        ("sqlite", out)
    };
    let manifest = Manifest {
        format: FORMAT,
        paas_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        schema: Store::schema(),
        database: database.to_owned(),
        key_check: key_check(&cipher),
        apps: apps.clone(),
    };
    let data_dir = settings.server.data_dir.clone();
    let repos = settings.repos_dir();
    let file = file.to_path_buf();
    let bytes = tokio::task::spawn_blocking(move || write_archive(&file, &manifest, &db_file, &repos, &data_dir.join(ACME_ACCOUNT)))
        .await
        .context("the backup's writer panicked")??;
    Ok(Summary { apps, bytes })
}

fn write_archive(file: &Path, manifest: &Manifest, db_file: &Path, repos: &Path, acme: &Path) -> Result<u64> {
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    {
        let gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(tmp.as_file()), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.follow_symlinks(false);
        let text = |tar: &mut tar::Builder<_>, name: &str, body: &[u8]| -> Result<()> {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o600);
            h.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
            h.set_cksum();
            tar.append_data(&mut h, format!("{TOP}/{name}"), body)?;
            Ok(())
        };
        text(&mut tar, "manifest.json", &serde_json::to_vec_pretty(manifest)?)?;
        text(&mut tar, "README.txt", NOTE.as_bytes())?;
        let db_name = db_file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        tar.append_path_with_name(db_file, format!("{TOP}/{db_name}"))?;
        if acme.exists() {
            tar.append_path_with_name(acme, format!("{TOP}/{ACME_ACCOUNT}"))?;
        }
        if repos.exists() {
            tar.append_dir_all(format!("{TOP}/repos"), repos)?;
        }
        let gz = tar.into_inner()?;
        let mut buf = gz.finish()?;
        std::io::Write::flush(&mut buf)?;
    }
    tmp.as_file().sync_all()?;
    let bytes = tmp.as_file().metadata()?.len();
    tmp.persist(file).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(bytes)
}

/// Restores a backup into an empty `PAAS_DATA_DIR` (and, on PostgreSQL,
/// an empty database): checks the archive and the key before writing
/// anything where the platform will look, then leaves the marker that
/// makes the next start rebuild missing images.
pub async fn restore(settings: &Settings, file: &Path) -> Result<Summary> {
    let data = &settings.server.data_dir;
    std::fs::create_dir_all(data).with_context(|| format!("cannot create PAAS_DATA_DIR {}", data.display()))?;
    let others: Vec<String> = std::fs::read_dir(data)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != KEY_FILE)
        .collect();
    if !others.is_empty() {
        bail!(
            "PAAS_DATA_DIR {} is not empty (it holds {}): restore into a new, empty directory; a restore never writes over a platform",
            data.display(),
            others.join(", ")
        );
    }
    let cipher = existing_key(settings, "a restore")?;
    let bytes = std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?.len();
    let staging = tempfile::Builder::new().prefix(".restoring-").tempdir_in(data)?;
    let archive = file.to_path_buf();
    let into = staging.path().to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let gz = flate2::read::GzDecoder::new(std::io::BufReader::new(std::fs::File::open(&archive)?));
        // `unpack` keeps every entry inside `into` (no `..`, no absolute paths).
        tar::Archive::new(gz).unpack(&into).context("the file is not a paas backup (not a readable .tar.gz)")
    })
    .await
    .context("the restore's reader panicked")??;
    let top = staging.path().join(TOP);
    let manifest: Manifest = serde_json::from_slice(&std::fs::read(top.join("manifest.json")).context("the archive has no paas-backup/manifest.json: it is not a paas backup")?)
        .context("the backup's manifest is damaged")?;
    if manifest.format != FORMAT {
        bail!("the backup's format is {} and this paas-server reads {FORMAT}: restore it with the version that made it ({})", manifest.format, manifest.paas_version);
    }
    if manifest.schema > Store::schema() {
        bail!("the backup was made by a newer paas-server ({}; schema {}): restore it with that version or a newer one", manifest.paas_version, manifest.schema);
    }
    if manifest.key_check != key_check(&cipher) {
        bail!("this key does not open the backup's secrets: set PAAS_SECRET_KEY to the key of the platform that made it (or copy its secret.key into the empty PAAS_DATA_DIR)");
    }
    let url = settings.server.database_url();
    match (manifest.database.as_str(), is_postgres(&url)) {
        ("sqlite", false) => {
            let target = url.trim_start_matches("sqlite://").split('?').next().unwrap_or_default().to_owned();
            std::fs::rename(top.join("paas.db"), &target).with_context(|| format!("cannot put the store at {target}"))?;
        }
        ("postgres", true) => crate::tools::pg_restore(&url, &top.join("paas.pgdump")).await?,
        (made, _) => bail!(
            "the backup's store is {made} and DATABASE_URL is {}: restore into the same kind of database",
            if is_postgres(&url) { "postgres" } else { "sqlite" }
        ),
    }
    for name in ["repos", ACME_ACCOUNT] {
        if top.join(name).exists() {
            std::fs::rename(top.join(name), data.join(name))?;
        }
    }
    // Brings the schema up to this version's.
    let store = Store::open(&url).await?;
    let apps: Vec<String> = store.list_apps().await?.into_iter().map(|a| a.name).collect();
    std::fs::write(data.join(RESTORED_MARKER), serde_json::to_vec(&manifest.apps)?)?;
    Ok(Summary { apps, bytes })
}

/// After a restore (the marker is there): each app whose newest built
/// release names an image the engine does not have is built again from
/// its repo at that release's commit, with that release's config, and
/// released (`Rebuild`), before any dyno starts; the old image is recorded
/// as removed (a rollback to it says so). An app whose build came from an
/// uploaded archive or an image cannot be rebuilt and is named in the log.
pub async fn rebuild_restored(settings: &Settings, store: &Store, runtime: &dyn Runtime, builder: &Builder, releases: &ReleaseService) -> Result<()> {
    let marker = settings.server.data_dir.join(RESTORED_MARKER);
    if !marker.exists() {
        return Ok(());
    }
    for app in store.list_apps().await? {
        if let Err(e) = rebuild_one(settings, store, runtime, builder, releases, &app).await {
            tracing::warn!(app = %app.name, error = %format!("{e:#}"), "cannot rebuild the app after the restore: deploy it again");
        }
    }
    std::fs::remove_file(&marker)?;
    Ok(())
}

async fn rebuild_one(settings: &Settings, store: &Store, runtime: &dyn Runtime, builder: &Builder, releases: &ReleaseService, app: &crate::store::AppRow) -> Result<()> {
    let Some(release) = store.list_releases(&app.id).await?.into_iter().find(|r| r.build_id.is_some() && r.image.is_some()) else {
        return Ok(());
    };
    let image = release.image.clone().unwrap_or_default();
    if runtime.image_exists(&image).await? {
        return Ok(());
    }
    let build = store.build_by_id(release.build_id.as_deref().unwrap_or_default()).await?.context("its build is not in the store")?;
    let commit = build.commit_sha;
    let repo: PathBuf = settings.repo_path(&app.name);
    if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("v{} was built from an uploaded archive or deployed as an image ({commit}), which the backup does not hold", release.version);
    }
    tracing::info!(app = %app.name, version = release.version, commit = %commit, "rebuilding after the restore");
    let mut git = crate::tools::git_archive_in(&repo, &commit)?;
    let stdout = git.stdout.take().context("git archive has no output")?;
    let source = crate::source::SourceFile::receive(&settings.scratch_dir(), tokio_util::io::ReaderStream::new(stdout), settings.builds.max_push_bytes).await?;
    if !git.wait().await?.success() {
        bail!("git archive of {commit} failed: the repo does not hold the commit");
    }
    let config = releases.config(app).await?;
    let out = Output::collect();
    let built = builder.build(app, &commit, source, &config, &out).await.map_err(|e| anyhow::anyhow!("{e:#}\n{}", out.text()))?;
    let made = releases.deploy(app, crate::git::deployable(built), &out).await.map_err(|e| anyhow::anyhow!("{e}\n{}", out.text()))?;
    store.mark_image_removed(&image).await?;
    tracing::info!(app = %app.name, from = release.version, to = made.version, "rebuilt after the restore");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use paas_wire::AppName;

    /// A platform's data dir with its key, a store at `url` (SQLite in the
    /// dir when None) holding one app, and that app's repo.
    async fn platform(url: Option<String>) -> (tempfile::TempDir, Settings) {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::local(dir.path());
        if let Some(url) = url {
            settings.server.set_database_url(url);
        }
        ConfigCipher::load(None, dir.path()).unwrap();
        let store = Store::open(&settings.server.database_url()).await.unwrap();
        store.create_app(&AppName::parse("kept").unwrap()).await.unwrap();
        std::fs::create_dir_all(settings.repo_path("kept")).unwrap();
        std::fs::write(settings.repo_path("kept").join("HEAD"), "ref: refs/heads/main\n").unwrap();
        (dir, settings)
    }

    /// A new data dir holding only `from`'s key, and settings for it.
    fn fresh_beside(from: &Settings, url: Option<String>) -> (tempfile::TempDir, Settings) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(from.server.data_dir.join(KEY_FILE), dir.path().join(KEY_FILE)).unwrap();
        let mut settings = Settings::local(dir.path());
        if let Some(url) = url {
            settings.server.set_database_url(url);
        }
        (dir, settings)
    }

    async fn round_trip(old: &Settings, new: &Settings) {
        let archive = tempfile::tempdir().unwrap();
        let file = archive.path().join("b.tar.gz");
        let made = backup(old, &file).await.unwrap();
        assert_eq!(made.apps, ["kept"]);
        let done = restore(new, &file).await.unwrap();
        assert_eq!(done.apps, ["kept"]);
        let store = Store::open(&new.server.database_url()).await.unwrap();
        assert_eq!(store.list_apps().await.unwrap().len(), 1);
        assert!(new.repo_path("kept").join("HEAD").exists());
        assert!(new.server.data_dir.join(RESTORED_MARKER).exists());
        // Again into the same dir: refused, nothing changed.
        let e = restore(new, &file).await.unwrap_err().to_string();
        assert!(e.contains("is not empty"), "{e}");
    }

    #[tokio::test]
    async fn a_sqlite_platform_comes_back_and_a_wrong_key_is_refused_before_anything_is_written() {
        let (_old_dir, old) = platform(None).await;
        let (_new_dir, new) = fresh_beside(&old, None);
        let archive = tempfile::tempdir().unwrap();
        let file = archive.path().join("b.tar.gz");
        backup(&old, &file).await.unwrap();
        let wrong_dir = tempfile::tempdir().unwrap();
        let mut wrong = Settings::local(wrong_dir.path());
        wrong.server.secret_key = Some("f".repeat(64));
        let e = restore(&wrong, &file).await.unwrap_err().to_string();
        assert!(e.contains("does not open the backup's secrets"), "{e}");
        assert_eq!(std::fs::read_dir(wrong_dir.path()).unwrap().count(), 0, "nothing left behind");
        let keyless = tempfile::tempdir().unwrap();
        let e = restore(&Settings::local(keyless.path()), &file).await.unwrap_err().to_string();
        assert!(e.contains("needs the platform's key"), "{e}");
        round_trip(&old, &new).await;
    }

    #[tokio::test]
    async fn a_postgres_platform_comes_back_through_pg_dump_and_pg_restore() {
        let Some(admin) = crate::settings::test_postgres_url() else { return };
        let from = crate::store::create_test_database(&admin).await.unwrap();
        let into = crate::store::create_test_database(&admin).await.unwrap();
        let (_old_dir, old) = platform(Some(from)).await;
        let (_new_dir, new) = fresh_beside(&old, Some(into));
        round_trip(&old, &new).await;
    }
}
