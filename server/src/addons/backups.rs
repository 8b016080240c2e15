//! Backups that are proven: a dump (`pg_dump -Fc`, Redis's RDB over its
//! replication protocol) is streamed from a client container into a
//! temporary file beside its final name, counted and hashed as it comes,
//! synced, and kept only when the dump's exit status is 0, it is not empty
//! and the service's own reader takes it back whole (`pg_restore` into
//! `/dev/null`, `redis-check-rdb`); then renamed into place. Anything else is recorded
//! as a failed backup with its reason, and said in the app's log.
//!
//! A restore checks the archive the same way before touching data (while
//! it takes a safety backup: no safety backup, no restore), and restores in one
//! transaction (`pg_restore --single-transaction`; Redis: the RDB is written
//! beside the data and renamed in while the service is stopped).
//!
//! The schedule: each add-on may have a daily time (UTC) and a number of
//! scheduled backups to keep; one loop takes those that are due, late ones
//! too (said in the log), and prunes beyond the number.

use super::{catalog, refused, AddonError, AddonResult, Addons};
use crate::store::{AddonRow, BackupRow};
use paas_wire::ErrorId;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

/// The CLI's prefix for a service's backup verbs (`pg:backups`).
pub fn prefix(service: &catalog::Service) -> &'static str {
    if service.name == "postgresql" {
        "pg"
    } else {
        "redis"
    }
}

/// `b007` for backup 7.
pub fn backup_id(number: i64) -> String {
    format!("b{number:03}")
}

/// What to restore from.
pub enum RestoreSource {
    /// One of the add-on's backups, by id (`b007`).
    Backup(String),
    /// An archive the client uploaded, in a temporary file.
    Upload(PathBuf),
}

/// Writes through to a file, counting and hashing.
struct Hashing {
    file: tokio::fs::File,
    sha: sha2::Sha256,
    size: u64,
}

impl tokio::io::AsyncWrite for Hashing {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let me = &mut *self;
        match Pin::new(&mut me.file).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                me.sha.update(&buf[..n]);
                me.size += n as u64;
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_shutdown(cx)
    }
}

/// A dump's bytes to its file and to the reader that checks them; a reader
/// that stops early is noted, never the dump's failure.
struct Tee<'a> {
    file: Hashing,
    reader: &'a mut std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    broken: bool,
}

#[async_trait::async_trait]
impl super::Sink for Tee<'_> {
    async fn take(&mut self, data: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.file.write_all(data).await?;
        if !self.broken && self.reader.write_all(data).await.is_err() {
            self.broken = true;
        }
        Ok(())
    }
}

impl Addons {
    fn backups_dir(&self, addon: &AddonRow) -> PathBuf {
        self.dir().join(&addon.name).join("backups")
    }

    /// Where a succeeded backup's file is.
    pub fn backup_path(&self, addon: &AddonRow, number: i64) -> PathBuf {
        self.backups_dir(addon).join(backup_id(number))
    }

    /// A backup of the add-on by id (`b007` or `7`).
    pub async fn find_backup(&self, addon: &AddonRow, id: &str) -> AddonResult<BackupRow> {
        let number: Option<i64> = id.trim_start_matches(['b', 'B']).parse().ok();
        let found = match number {
            Some(n) => self.store().backups(&addon.id).await?.into_iter().find(|b| b.number == n),
            None => None,
        };
        found.ok_or_else(|| {
            AddonError::NotFound(format!(
                "{} has no backup {id:?}: `paas {}:backups {}` lists them",
                addon.name,
                Self::service(addon).map(prefix).unwrap_or("pg"),
                addon.name
            ))
        })
    }

    /// `backups:capture`: a backup, verified before it counts. A failure is
    /// recorded (and returned as [`AddonError::Failed`]).
    pub async fn capture(&self, addon: &AddonRow, kind: &str) -> AddonResult<BackupRow> {
        let lock = self.lock_of(addon);
        let _guard = lock.lock().await;
        self.capture_locked(addon, kind, None).await
    }

    /// A backup, with a note kept beside a success (`taken late: ...`).
    async fn capture_locked(&self, addon: &AddonRow, kind: &str, note: Option<&str>) -> AddonResult<BackupRow> {
        let row = self.store().start_backup(&addon.id, kind).await?;
        let id = backup_id(row.number);
        let owner = self.store().app_by_id(&addon.app_id).await?.map(|a| a.name).unwrap_or_default();
        match self.dump(addon, row.number).await {
            Ok((size, sha, dumped, checked)) => {
                self.store().finish_backup(&row.id, Ok((size as i64, &sha, note))).await?;
                self.say_to(
                    &owner,
                    format!(
                        "{kind} backup {id} of {}: {size} bytes, verified (dump {:.1} s, check {:.1} s)",
                        addon.name,
                        dumped.as_secs_f64(),
                        checked.as_secs_f64()
                    ),
                );
                Ok(self.find_backup(addon, &id).await?)
            }
            Err(reason) => {
                self.store().finish_backup(&row.id, Err(&reason)).await?;
                self.say_to(&owner, format!("{kind} backup {id} of {} failed: {reason}", addon.name));
                tracing::warn!(addon = %addon.name, backup = %id, %reason, "backup failed");
                Err(AddonError::Failed(format!("backup {id} of {} failed: {reason}", addon.name)))
            }
        }
    }

    /// Dumps into `NUMBER.partial`, checks, renames; the partial file never
    /// outlives a failure.
    async fn dump(&self, addon: &AddonRow, number: i64) -> Result<(u64, String, Duration, Duration), String> {
        let service = Self::service(addon).map_err(|e| e.to_string())?;
        self.check_running(addon).await.map_err(|e| e.to_string())?;
        let dir = self.backups_dir(addon);
        tokio::fs::create_dir_all(&dir).await.map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        let partial = dir.join(format!("{}.partial", backup_id(number)));
        let (cmd, tool) = match service.name {
            "postgresql" => (vec!["pg_dump".into(), "-Fc".into(), "--no-password".into()], "pg_dump"),
            _ => (catalog::sh("exec redis-cli -h \"$REDIS_HOST\" --no-auth-warning --rdb - 2>/tmp/err || { cat /tmp/err >&2; exit 1; }"), "redis-cli --rdb"),
        };
        // The reader that checks the file starts beside the dump, off its path.
        let started = std::time::Instant::now();
        let (dumper, checker) = tokio::join!(self.start_client(addon, cmd, false), self.start_client(addon, reader_cmd(service), false));
        let mut checker = checker.map_err(|e| e.to_string()).map(Some);
        let result = async {
            let dumper = dumper.map_err(|e| e.to_string())?;
            let checker = match checker.as_mut() {
                Ok(c) => c,
                Err(e) => {
                    let e = e.clone();
                    self.abandon_client(dumper).await;
                    return Err(e);
                }
            };
            let file = tokio::fs::File::create(&partial).await.map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
            // Every byte goes to the file and to the reader as it comes:
            // the reader has read it all when the dump ends.
            let mut out = Tee { file: Hashing { file, sha: sha2::Sha256::new(), size: 0 }, reader: &mut checker.as_mut().expect("the reader is there").attachment.input, broken: false };
            let ran = self.finish_client(dumper, None, Some(&mut out)).await.map_err(|e| e.to_string())?;
            let Tee { file: mut out, broken, .. } = out;
            if ran.exit_code != 0 {
                return Err(format!("{tool} exited with status {}: {}", ran.exit_code, last_line(&ran.stderr)));
            }
            use tokio::io::AsyncWriteExt;
            out.flush().await.map_err(|e| format!("cannot write the backup: {e}"))?;
            out.file.sync_all().await.map_err(|e| format!("cannot sync the backup to disk: {e}"))?;
            if out.size == 0 {
                return Err(format!("{tool} wrote nothing"));
            }
            let dumped = started.elapsed();
            let sha = hex::encode(out.sha.finalize());
            let checker = checker.take().expect("the reader is taken once");
            let read = self.finish_client(checker, None, None).await.map_err(|e| e.to_string())?;
            let what = archive_kind(service);
            if read.exit_code != 0 {
                return Err(format!("it does not read back as {what}: {}", last_line(&read.stderr)));
            }
            if broken {
                return Err(format!("it does not read back as {what}: the reader stopped before its end"));
            }
            // The file on disk is the bytes the reader read.
            let on_disk = crate::crypto::sha256_of(&partial).await.map_err(|e| format!("cannot read the backup back: {e:#}"))?;
            if on_disk != sha {
                return Err(format!("the file on disk differs from what was written (SHA-256 {on_disk}, not {sha})"));
            }
            Ok((out.size, sha, dumped, started.elapsed() - dumped))
        }
        .await;
        // A reader the dump's failure left waiting.
        if let Ok(Some(c)) = checker {
            self.abandon_client(c).await;
        }
        match result {
            Ok(done) => {
                let final_path = self.backup_path(addon, number);
                tokio::fs::rename(&partial, &final_path).await.map_err(|e| format!("cannot keep the backup: {e}"))?;
                if let Ok(d) = tokio::fs::File::open(&dir).await {
                    let _ = d.sync_all().await;
                }
                Ok(done)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                Err(e)
            }
        }
    }

    /// The service's own reader takes the archive back.
    async fn verify(&self, addon: &AddonRow, path: &Path) -> Result<(), String> {
        let service = Self::service(addon).map_err(|e| e.to_string())?;
        let checker = self.start_client(addon, reader_cmd(service), false).await.map_err(|e| e.to_string())?;
        self.verify_with(addon, checker, path).await
    }

    /// [`Self::verify`] with a reader started already.
    async fn verify_with(&self, addon: &AddonRow, checker: super::Client, path: &Path) -> Result<(), String> {
        let service = Self::service(addon).map_err(|e| e.to_string())?;
        let what = archive_kind(service);
        let size = tokio::fs::metadata(path).await.map_err(|e| format!("cannot read the archive: {e}"))?.len();
        if size == 0 {
            let _ = self.finish_client(checker, None, None).await;
            return Err("the archive is empty".into());
        }
        let ran = self.finish_client(checker, Some(path), None).await.map_err(|e| e.to_string())?;
        if ran.exit_code == 0 && ran.unread {
            return Err(format!("it does not read back as {what}: the reader stopped before its end"));
        }
        if ran.exit_code != 0 {
            let said = if ran.stderr.is_empty() { ran.stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_owned() } else { last_line(&ran.stderr) };
            return Err(format!("it does not read back as {what}: {said}"));
        }
        Ok(())
    }

    async fn check_running(&self, addon: &AddonRow) -> AddonResult<()> {
        let running = self.runtime().addon_status(&addon.name).await?.is_some_and(|s| s.running);
        if !running || addon.state != "provisioned" {
            return refused(
                ErrorId::AddonNotRunning,
                format!("the {} service of {} is not running ({}): see `paas addons:info {}`", addon.service, addon.name, addon.state, addon.name),
            );
        }
        Ok(())
    }

    /// `backups:restore ID|FILE --confirm APP`.
    pub async fn restore(&self, addon: &AddonRow, source: RestoreSource, confirm: Option<&str>) -> AddonResult<(Option<BackupRow>, BackupRow)> {
        let service = Self::service(addon)?;
        let owner = self.store().app_by_id(&addon.app_id).await?.map(|a| a.name).unwrap_or_default();
        if confirm != Some(owner.as_str()) {
            return refused(
                ErrorId::ConfirmMismatch,
                format!("restoring replaces the data of {}: run again with --confirm {owner}", addon.name),
            );
        }
        let lock = self.lock_of(addon);
        let _guard = lock.lock().await;
        let (from, path) = match &source {
            RestoreSource::Backup(id) => {
                let b = self.find_backup(addon, id).await?;
                if b.state != "succeeded" {
                    return refused(ErrorId::InvalidBackup, format!("backup {} {}, so there is nothing to restore from it", backup_id(b.number), b.state));
                }
                let path = self.backup_path(addon, b.number);
                let sha = crate::crypto::sha256_of(&path).await.map_err(|e| AddonError::Refused(ErrorId::InvalidBackup, format!("backup {}'s file: {e:#}", backup_id(b.number))))?;
                if Some(&sha) != b.sha256.as_ref() {
                    return refused(ErrorId::InvalidBackup, format!("backup {}'s file changed since it was taken (its SHA-256 differs): it is not restored", backup_id(b.number)));
                }
                (Some(b), path)
            }
            RestoreSource::Upload(path) => (None, path.clone()),
        };
        self.check_running(addon).await?;
        // The archive is checked while the safety backup is taken: neither
        // touches the data, and a restore waits for both.
        let started = std::time::Instant::now();
        let check = async {
            let checked = self.verify(addon, &path).await;
            (checked, started.elapsed())
        };
        let ((checked, check_took), safety) = tokio::join!(check, self.capture_locked(addon, "safety", None));
        if let Err(e) = checked {
            // Taken for a restore that does not happen: it goes.
            if let Ok(b) = &safety {
                let _ = tokio::fs::remove_file(self.backup_path(addon, b.number)).await;
                self.store().delete_backup(&b.id).await?;
            }
            return refused(ErrorId::InvalidBackup, format!("the archive is not restored: {e}"));
        }
        let safety = match safety {
            Ok(b) => b,
            Err(e) => return Err(AddonError::Failed(format!("{e}; so nothing was restored"))),
        };
        let saved = started.elapsed();
        let what = from.as_ref().map_or("an uploaded archive".to_owned(), |b| format!("backup {}", backup_id(b.number)));
        self.say_to(&owner, format!("Restoring {} from {what} (safety backup {} first)", addon.name, backup_id(safety.number)));
        match service.name {
            "postgresql" => {
                let cmd = ["pg_restore", "--clean", "--if-exists", "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges", "--no-password", "-d"]
                    .iter()
                    .map(|s| s.to_string())
                    .chain([self.credentials(addon)?.database])
                    .collect();
                let ran = self.client(addon, cmd, Some(&path), None, false).await?;
                if ran.exit_code != 0 {
                    let why = format!(
                        "pg_restore failed (exit {}), and its transaction was rolled back: the data is as it was. {}",
                        ran.exit_code,
                        last_line(&ran.stderr)
                    );
                    self.say_to(&owner, format!("Restore of {} failed: {why}", addon.name));
                    return Err(AddonError::Failed(why));
                }
            }
            _ => {
                self.runtime().stop_addon(&addon.name, service.stop_grace).await?;
                let data = catalog::DATA_PATH;
                let script = format!(
                    "set -e; cat > {data}/restore.partial; sync {data}/restore.partial; rm -rf {data}/appendonlydir; mv {data}/restore.partial {data}/dump.rdb; sync {data}"
                );
                let ran = self.client(addon, catalog::sh(&script), Some(&path), None, true).await;
                // The service comes back whatever happened: on the new data, or the old.
                self.runtime().run_addon(&self.current_spec(addon).await?).await?;
                let waited = self.wait_ready(addon, &addon.major, super::READY_TIMEOUT).await;
                let ran = ran?;
                if ran.exit_code != 0 {
                    return Err(AddonError::Failed(format!("writing the RDB file failed (exit {}): {}; the data is as it was", ran.exit_code, last_line(&ran.stderr))));
                }
                waited?;
            }
        }
        let took = started.elapsed();
        self.say_to(
            &owner,
            format!(
                "Restored {} from {what} in {:.1} s (archive checked in {:.1} s beside the safety backup's {:.1} s, restore in {:.1} s)",
                addon.name,
                took.as_secs_f64(),
                check_took.as_secs_f64(),
                saved.as_secs_f64(),
                (took - saved).as_secs_f64()
            ),
        );
        Ok((from, safety))
    }

    /// `backups:schedule --at HH:MM --retain N`, or None to stop it.
    pub async fn set_schedule(&self, addon: &AddonRow, schedule: Option<(&str, i64)>) -> AddonResult<()> {
        match schedule {
            Some((at, retain)) => {
                let at = parse_hhmm(at).ok_or_else(|| {
                    AddonError::Refused(ErrorId::BadRequest, format!("{at:?} is not a time of day: give --at HH:MM (24-hour, UTC), like 02:30"))
                })?;
                if !(1..=90).contains(&retain) {
                    return refused(ErrorId::BadRequest, format!("--retain {retain} is out of range: keep from 1 to 90 scheduled backups"));
                }
                let at = format!("{:02}:{:02}", at.0, at.1);
                self.store().set_backup_schedule(&addon.id, Some(&at), Some(retain)).await?;
            }
            None => self.store().set_backup_schedule(&addon.id, None, None).await?,
        }
        Ok(())
    }

    /// One look at every schedule: takes what is due, prunes beyond each
    /// add-on's number. The loop in [`Self::run_schedules`] calls it.
    pub async fn scheduled_pass(&self, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<()> {
        for addon in self.store().all_addons().await? {
            let (Some(at), Some(retain)) = (addon.backup_at.as_deref(), addon.backup_retain) else { continue };
            let backups = self.store().backups(&addon.id).await?;
            let last = backups.iter().find(|b| b.kind == "scheduled").and_then(|b| time_of(&b.started_at));
            let since = time_of(addon.backup_since.as_deref().unwrap_or(&addon.created_at));
            let Some(due) = due_now(at, since, last, now) else { continue };
            let owner = self.store().app_by_id(&addon.app_id).await?.map(|a| a.name).unwrap_or_default();
            let note = due.missed.then(|| format!("taken late: the one due at {at} UTC was missed (the server was not running then)"));
            if due.missed {
                self.say_to(
                    &owner,
                    format!("the scheduled backup of {} due at {at} UTC was missed (the server was not running then); taking it now", addon.name),
                );
            }
            let lock = self.lock_of(&addon);
            let taken = {
                let _guard = lock.lock().await;
                self.capture_locked(&addon, "scheduled", note.as_deref()).await
            };
            match taken {
                Ok(_) => self.prune(&addon, retain).await?,
                Err(e) => tracing::warn!(addon = %addon.name, error = %e, "scheduled backup failed"),
            }
        }
        Ok(())
    }

    /// Keeps the newest `retain` scheduled backups.
    async fn prune(&self, addon: &AddonRow, retain: i64) -> anyhow::Result<()> {
        let lock = self.lock_of(addon);
        let _guard = lock.lock().await;
        let backups = self.store().backups(&addon.id).await?;
        for old in beyond_retention(&backups, retain) {
            let _ = tokio::fs::remove_file(self.backup_path(addon, old.number)).await;
            self.store().delete_backup(&old.id).await?;
        }
        Ok(())
    }

    /// Looks at the schedules every `every` while the server runs.
    pub fn run_schedules(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = me.scheduled_pass(chrono::Utc::now()).await {
                    tracing::warn!(error = %format!("{e:#}"), "backup schedule pass failed");
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}

/// The service's reader of a whole archive on its stdin: `pg_restore`
/// into `/dev/null` decompresses and reads every table's data (`--list`
/// alone reads only the table of contents at the start: a cut file would
/// pass); `redis-check-rdb` reads the RDB.
fn reader_cmd(service: &catalog::Service) -> Vec<String> {
    match service.name {
        "postgresql" => vec!["pg_restore".into(), "--file=/dev/null".into()],
        _ => catalog::sh("f=$(mktemp) && cat > \"$f\" && redis-check-rdb \"$f\"; s=$?; rm -f \"$f\"; exit $s"),
    }
}

/// What a service's backups are, as refusals name them.
fn archive_kind(service: &catalog::Service) -> &'static str {
    match service.name {
        "postgresql" => "a PostgreSQL archive (pg_dump -Fc)",
        _ => "a Redis RDB file",
    }
}

/// A scheduled backup to take now.
#[derive(Debug, PartialEq, Eq)]
struct Due {
    /// Taken later than the schedule's loop would have (the server was
    /// down at its time): said in the app's log.
    missed: bool,
}

/// How late a scheduled backup may be taken before it counts as missed:
/// the loop looks every 30 s.
const MISSED_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Whether a daily backup at `at` is due at `now`: its last time came
/// after the schedule was set (`since`) and no scheduled backup started
/// since then (`last`).
fn due_now(
    at: &str,
    since: Option<chrono::DateTime<chrono::Utc>>,
    last: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Due> {
    let due = last_due(at, now)?;
    if since.is_some_and(|t| t > due) || last.is_some_and(|t| t >= due) {
        return None;
    }
    Some(Due { missed: now - due > MISSED_AFTER })
}

/// The scheduled backups beyond the newest `retain` (newest first in
/// `backups`); other kinds are never pruned.
fn beyond_retention(backups: &[BackupRow], retain: i64) -> Vec<&BackupRow> {
    backups.iter().filter(|b| b.kind == "scheduled").skip(retain.max(1) as usize).collect()
}

fn time_of(rfc3339: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).ok().map(|t| t.to_utc())
}

/// The last line of a tool's complaint.
fn last_line(text: &str) -> String {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(it said nothing)").trim().to_owned()
}

fn parse_hhmm(at: &str) -> Option<(u32, u32)> {
    let (h, m) = at.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && at.trim().len() <= 5).then_some((h, m))
}

/// When a daily `HH:MM` (UTC) time last came, at or before `now`.
fn last_due(at: &str, now: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> {
    let (h, m) = parse_hhmm(at)?;
    let today = now.date_naive().and_hms_opt(h, m, 0)?.and_utc();
    Some(if today <= now { today } else { today - chrono::Duration::days(1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daily_time_last_came_today_or_yesterday() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z").unwrap().to_utc();
        assert_eq!(last_due("02:30", now).unwrap().to_rfc3339(), "2026-12-06T02:30:00+00:00");
        assert_eq!(last_due("23:00", now).unwrap().to_rfc3339(), "2026-12-05T23:00:00+00:00");
        assert_eq!(last_due("10:00", now).unwrap().to_rfc3339(), "2026-12-06T10:00:00+00:00");
        for bad in ["24:00", "2:60", "noon", "02:30:00", ""] {
            assert!(last_due(bad, now).is_none(), "{bad}");
        }
    }

    fn at(t: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc()
    }

    #[test]
    fn a_daily_backup_is_due_once_after_its_time_and_missed_when_late() {
        let set = Some(at("2026-12-01T12:00:00Z"));
        // Due at 02:30; none taken yet: due, on time within a minute.
        assert_eq!(due_now("02:30", set, None, at("2026-12-06T02:30:20Z")), Some(Due { missed: false }));
        // The server was down at 02:30: taken late, and said so.
        assert_eq!(due_now("02:30", set, None, at("2026-12-06T09:00:00Z")), Some(Due { missed: true }));
        // Taken today already: not again until tomorrow.
        assert_eq!(due_now("02:30", set, Some(at("2026-12-06T02:30:01Z")), at("2026-12-06T23:59:00Z")), None);
        // Yesterday's taken, today's not come yet.
        assert_eq!(due_now("02:30", set, Some(at("2026-12-05T02:30:01Z")), at("2026-12-06T01:00:00Z")), None);
        // A schedule set after today's time starts tomorrow.
        assert_eq!(due_now("02:30", Some(at("2026-12-06T03:00:00Z")), None, at("2026-12-06T04:00:00Z")), None);
        assert_eq!(due_now("02:30", Some(at("2026-12-06T03:00:00Z")), None, at("2026-12-07T02:30:05Z")), Some(Due { missed: false }));
        assert_eq!(due_now("25:00", set, None, at("2026-12-06T04:00:00Z")), None);
    }

    #[test]
    fn retention_prunes_only_scheduled_backups_beyond_the_newest_n() {
        let b = |number: i64, kind: &str| BackupRow {
            id: number.to_string(),
            addon_id: "a".into(),
            number,
            kind: kind.into(),
            state: "succeeded".into(),
            reason: None,
            size: Some(1),
            sha256: None,
            started_at: String::new(),
            finished_at: None,
        };
        // Newest first, as the store lists them.
        let list = [b(6, "scheduled"), b(5, "manual"), b(4, "scheduled"), b(3, "safety"), b(2, "scheduled"), b(1, "scheduled")];
        let pruned: Vec<i64> = beyond_retention(&list, 2).iter().map(|b| b.number).collect();
        assert_eq!(pruned, [2, 1]);
        assert!(beyond_retention(&list, 90).is_empty());
    }

    #[test]
    fn backups_are_named_by_number() {
        assert_eq!(backup_id(7), "b007");
        assert_eq!(backup_id(1234), "b1234");
    }
}
