//! One-off dynos (`paas run`, `paas run:detached`): twelve-factor admin
//! processes in the image and config of the app's running release, named
//! `run.N`. They are containers of their own kind (`paas.kind=run`), so
//! the scheduler never counts, restarts or stops them as dynos of the
//! formation.
//!
//! An attached one-off dyno belongs to its client's connection: the API
//! handler holds its streams and ends it when the client goes. Its
//! container carries this server run's session id, so after a restart of
//! the server any attached dyno of another session is an orphan and is
//! removed. A detached one is supervised here: its output goes to the
//! app's log, it is stopped at `PAAS_RUN_MAX_SECONDS`, and removed once it
//! ended; a restarted server takes up supervising the detached dynos that
//! still run.

use paas_wire::ErrorId;
use crate::crypto::ConfigCipher;
use crate::logs::LogRouter;
use crate::release::{ReleaseError, ReleaseResult};
use crate::runtime::{Attachment, DynoId, DynoSpec, Exit, OneOff, OneOffSpec, Runtime};
use crate::scheduler::spec_for;
use crate::store::{AppRow, Store};
use paas_wire::{ConfigKey, DynoSize, RunCreate};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{info, warn};

/// The process type of one-off dynos: they are named `run.N`.
pub const RUN_TYPE: &str = "run";
/// The longest command line taken.
const MAX_COMMAND_BYTES: usize = 16 * 1024;
/// SIGTERM-to-SIGKILL grace for a one-off dyno whose client left or whose
/// time is up.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct OneOffs {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    runtime: Arc<dyn Runtime>,
    cipher: ConfigCipher,
    logs: LogRouter,
    default_size: DynoSize,
    max_lifetime: Duration,
    /// This server run. Attached dynos carry it; those of any other run
    /// lost their client when that run ended.
    session: String,
    /// Numbering `run.N` and creating the container happen under it, so
    /// two runs never take the same number.
    numbering: tokio::sync::Mutex<()>,
    /// Detached dynos being supervised (container ids).
    supervised: Mutex<HashSet<DynoId>>,
    /// Every one-off dyno's end, for whoever records them (cron runs).
    ended: tokio::sync::broadcast::Sender<Ended>,
}

/// A one-off dyno ended: its container and how.
#[derive(Debug, Clone)]
pub struct Ended {
    pub app: String,
    pub container_id: String,
    pub exit: Exit,
}

/// A validated run, ready to start.
pub struct Prepared {
    app: AppRow,
    spec: DynoSpec,
    tty: Option<(u16, u16)>,
    /// Its number is the next after this and after those of its type.
    numbered_after: u32,
}

/// A one-off dyno that runs, with its client's streams when attached.
pub struct Started {
    pub one_off: OneOff,
    pub attachment: Option<Attachment>,
}

impl OneOffs {
    pub fn new(
        store: Store,
        runtime: Arc<dyn Runtime>,
        cipher: ConfigCipher,
        logs: LogRouter,
        default_size: DynoSize,
        max_lifetime: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                runtime,
                cipher,
                logs,
                default_size,
                max_lifetime,
                session: uuid::Uuid::new_v4().simple().to_string(),
                numbering: tokio::sync::Mutex::new(()),
                supervised: Mutex::default(),
                ended: tokio::sync::broadcast::channel(1024).0,
            }),
        }
    }

    /// Checks a run request against the app's running release: a command,
    /// config keys, a size, a release with a build. Nothing starts yet.
    pub async fn prepare(&self, app: &AppRow, req: &RunCreate, tty: bool) -> ReleaseResult<Prepared> {
        self.prepare_as(app, req, tty, RUN_TYPE, 0).await
    }

    /// [`Self::prepare`] for a detached dyno named `{process_type}.N`, N
    /// above `numbered_after`: the cron service's `scheduler.1001` and up,
    /// which no formation dyno (at most [`crate::release::MAX_QUANTITY`] of
    /// a type) is named, even when the Procfile has a `scheduler` type.
    pub async fn prepare_as(
        &self,
        app: &AppRow,
        req: &RunCreate,
        tty: bool,
        process_type: &str,
        numbered_after: u32,
    ) -> ReleaseResult<Prepared> {
        let command = req.command.trim();
        if command.is_empty() {
            return Err(ReleaseError::Invalid(ErrorId::InvalidCommand, "give a command to run: `paas run bash`".into()));
        }
        if req.command.len() > MAX_COMMAND_BYTES || req.command.contains('\0') {
            return Err(ReleaseError::Invalid(
                ErrorId::InvalidCommand,
                format!("the command must be text of at most {MAX_COMMAND_BYTES} bytes: put a long script in the app's code"),
            ));
        }
        for key in req.env.keys() {
            ConfigKey::parse(key)?;
        }
        let size = match req.size.as_deref() {
            Some(s) => DynoSize::parse(s)?,
            None => self.inner.default_size,
        };
        let release = self.inner.store.desired_release(&app.id).await?.ok_or_else(|| {
            ReleaseError::NoImage(format!(
                "{} has no release to run yet: deploy it first with `git push paas main`",
                app.name
            ))
        })?;
        let mut env: BTreeMap<String, String> = self.inner.cipher.open(&crate::crypto::config_owner(&release.app_id), &release.config)?;
        env.extend(req.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let tty = tty.then(|| (req.cols.unwrap_or(80).max(1), req.rows.unwrap_or(24).max(1)));
        if tty.is_some() {
            // No COLUMNS or LINES: busybox prefers them to the terminal's
            // real size, which would then never follow a resize. The
            // engine sizes the terminal as soon as the process runs.
            env.entry("TERM".into()).or_insert_with(|| "xterm".into());
        }
        // A dyno like the formation's (DYNO, PAAS_APP, PAAS_RELEASE); its
        // number, and so DYNO, is given when it starts.
        let command = by_process_type(&release.process_types()?, command);
        let spec = spec_for(&app.name, &release, process_type, 0, &command, &env, size.bytes());
        Ok(Prepared { app: app.clone(), spec, tty, numbered_after })
    }

    /// Starts a prepared run as `run.N`: attached (its streams handed
    /// back; the caller must call [`Self::finish`]) or detached (supervised
    /// here, its output to the app's log).
    pub async fn start(&self, prepared: Prepared, attached: bool) -> anyhow::Result<Started> {
        let inner = &self.inner;
        let Prepared { app, mut spec, tty, numbered_after } = prepared;
        let (one_off, attachment) = {
            let _numbering = inner.numbering.lock().await;
            let taken = inner.runtime.list_one_offs(Some(&app.name)).await?;
            let same_type = taken.iter().filter(|o| o.dyno.process_type == spec.process_type);
            spec.index = same_type.map(|o| o.dyno.index).max().unwrap_or(0).max(numbered_after) + 1;
            spec.env.insert("DYNO".into(), format!("{}.{}", spec.process_type, spec.index));
            let one_off = OneOffSpec {
                dyno: spec.clone(),
                tty,
                session: attached.then(|| inner.session.clone()),
                expires_at: crate::unix_secs() + inner.max_lifetime.as_secs() as i64,
            };
            inner.runtime.start_one_off(&one_off).await?
        };
        let name = one_off.dyno.name();
        let how = if attached { "attached" } else { "detached" };
        info!(app = %app.name, dyno = %name, how, "one-off dyno started");
        inner.logs.event(&app.name, "api", format!("Starting process with command `{}` ({how}) as {name}", spec.command));
        inner.logs.event(&app.name, &name, "State changed from starting to up");
        if !attached {
            self.supervise(one_off.clone());
        }
        Ok(Started { one_off, attachment })
    }

    /// Ends a one-off dyno and removes it: see [`Self::stop_and_log`].
    pub async fn finish(&self, app: &str, name: &str, id: &DynoId, why: Option<&str>) -> Exit {
        let exit = self.stop_and_log(app, name, id, why).await;
        self.remove(app, name, id).await;
        exit
    }

    /// After an attached dyno's output ended, its client left (`why`) or
    /// its time is up (`why`): stops it if it still runs and logs how it
    /// ended. The container stays until [`Self::remove`], so its client
    /// hears the exit code first.
    pub async fn stop_and_log(&self, app: &str, name: &str, id: &DynoId, why: Option<&str>) -> Exit {
        let inner = &self.inner;
        let mut why = why.map(str::to_owned);
        if why.is_none() {
            // Its output ended: the process is ending (the engine lists it
            // as exited a moment later).
            if let Ok(Ok(exit)) = tokio::time::timeout(Duration::from_secs(10), inner.runtime.wait_exit(id)).await {
                return self.ended(app, name, id, exit);
            }
            why = Some("its output ended but it kept running".into());
        }
        let running = inner.runtime.exit_of(id).await.map(|(r, _)| r).unwrap_or(false);
        if running {
            let why = why.unwrap_or_default();
            inner.logs.event(app, name, format!("Stopping process with SIGTERM: {why}"));
            if let Err(e) = inner.runtime.halt_dyno(id, STOP_GRACE).await {
                warn!(app, dyno = name, error = %format!("{e:#}"), "cannot stop one-off dyno");
            }
        }
        let exit = inner.runtime.exit_of(id).await.map(|(_, e)| e).unwrap_or_default();
        self.ended(app, name, id, exit)
    }

    fn ended(&self, app: &str, name: &str, id: &DynoId, exit: Exit) -> Exit {
        self.inner.logs.event(app, name, format!("Process {exit}"));
        self.inner.logs.event(app, name, "State changed from up to complete");
        // Nobody listening is fine.
        let _ = self.inner.ended.send(Ended { app: app.to_owned(), container_id: id.to_string(), exit: exit.clone() });
        exit
    }

    /// Hears of every one-off dyno's end from now on.
    pub fn subscribe_ended(&self) -> tokio::sync::broadcast::Receiver<Ended> {
        self.inner.ended.subscribe()
    }

    /// Sets an attached dyno's terminal size.
    pub async fn resize(&self, id: &DynoId, cols: u16, rows: u16) -> anyhow::Result<()> {
        self.inner.runtime.resize_tty(id, cols.max(1), rows.max(1)).await
    }

    /// Sends an attached dyno's process a signal its client asked for.
    pub async fn signal(&self, id: &DynoId, signal: &str) -> anyhow::Result<()> {
        self.inner.runtime.signal(id, signal).await
    }

    /// Removes an ended one-off dyno (idempotent).
    pub async fn remove(&self, app: &str, name: &str, id: &DynoId) {
        // Its last lines (detached) are taken in before the container goes.
        self.inner.logs.drained(id.as_str(), Duration::from_secs(2)).await;
        if let Err(e) = self.inner.runtime.stop_dyno(id, Duration::ZERO).await {
            warn!(app, dyno = name, error = %format!("{e:#}"), "cannot remove one-off dyno");
        }
        self.inner.supervised.lock().expect("supervised poisoned").remove(id);
    }

    /// Follows a detached dyno's output into the log and removes it when
    /// it ends, stopping it at its expiry (once per container).
    fn supervise(&self, one_off: OneOff) {
        let id = one_off.dyno.id.clone();
        if !self.inner.supervised.lock().expect("supervised poisoned").insert(id.clone()) {
            return;
        }
        self.inner.logs.follow(&one_off.dyno);
        let this = self.clone();
        tokio::spawn(async move {
            let (app, name) = (one_off.dyno.app.clone(), one_off.dyno.name());
            let left = Duration::from_secs((one_off.expires_at - crate::unix_secs()).max(0) as u64);
            let why = match tokio::time::timeout(left, this.inner.runtime.wait_exit(&id)).await {
                Ok(Ok(exit)) => {
                    this.ended(&app, &name, &id, exit);
                    this.remove(&app, &name, &id).await;
                    return;
                }
                Ok(Err(_)) => None,
                Err(_) => Some(format!("it reached the longest a one-off dyno may run ({} s)", this.inner.max_lifetime.as_secs())),
            };
            this.finish(&app, &name, &id, why.as_deref()).await;
        });
    }

    /// The app's one-off dynos that run.
    pub async fn list(&self, app: &AppRow) -> anyhow::Result<Vec<OneOff>> {
        let all = self.inner.runtime.list_one_offs(Some(&app.name)).await?;
        Ok(all.into_iter().filter(|o| o.dyno.running).collect())
    }

    /// Stops one (`run.3`); its client, if attached, is told how it ended.
    /// False when no such dyno runs.
    pub async fn stop(&self, app: &AppRow, name: &str) -> anyhow::Result<bool> {
        let Some(o) = self.list(app).await?.into_iter().find(|o| o.dyno.name() == name) else {
            return Ok(false);
        };
        self.inner.logs.event(&app.name, name, "Stopping process with SIGTERM: `paas ps:stop`");
        // Whoever holds it (its client's handler, or its supervisor when
        // detached) sees it end, logs the exit and removes it.
        self.inner.runtime.halt_dyno(&o.dyno.id, STOP_GRACE).await?;
        Ok(true)
    }

    /// The longest a one-off dyno may run.
    pub fn max_lifetime(&self) -> Duration {
        self.inner.max_lifetime
    }

    /// One sweep: removes one-off dynos of deleted apps and attached ones
    /// of earlier server runs (their clients are gone), and supervises the
    /// detached ones nobody supervises (after a restart).
    pub async fn sweep(&self) -> anyhow::Result<()> {
        let apps: HashSet<String> = self.inner.store.list_apps().await?.into_iter().map(|a| a.name).collect();
        for o in self.inner.runtime.list_one_offs(None).await? {
            let (app, name, id) = (o.dyno.app.clone(), o.dyno.name(), o.dyno.id.clone());
            let orphan = !apps.contains(&app);
            match &o.session {
                _ if orphan => {
                    info!(app = %app, dyno = %name, "removing one-off dyno of a deleted app");
                    self.inner.runtime.stop_dyno(&id, Duration::ZERO).await?;
                }
                Some(s) if *s != self.inner.session => {
                    info!(app = %app, dyno = %name, "removing attached one-off dyno of an earlier server run");
                    self.finish(&app, &name, &id, Some("its client's connection ended with the server's restart")).await;
                }
                Some(_) => {}
                None => self.supervise(o),
            }
        }
        Ok(())
    }

    /// The server is stopping: its attached dynos lose their clients, so
    /// they are stopped and removed now rather than at the next start.
    pub async fn end_session(&self) {
        let Ok(all) = self.inner.runtime.list_one_offs(None).await else { return };
        let ours = all.into_iter().filter(|o| o.session.as_deref() == Some(self.inner.session.as_str()));
        let ends = ours.map(|o| async move {
            let (app, name, id) = (o.dyno.app.clone(), o.dyno.name(), o.dyno.id.clone());
            self.finish(&app, &name, &id, Some("the server is stopping")).await;
        });
        futures_util::future::join_all(ends).await;
    }

    /// Sweeps at start and then every `every`.
    pub fn spawn_sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = this.sweep().await {
                    warn!(error = %format!("{e:#}"), "one-off dyno sweep failed");
                }
            }
        })
    }
}

/// A run's command as Heroku and Dokku read it: when its first word is a
/// process type of the release (`paas run console`, `paas run worker
/// --once`), that type's Procfile command with the rest appended;
/// otherwise the command as typed.
pub fn by_process_type(types: &BTreeMap<String, String>, command: &str) -> String {
    let command = command.trim();
    let (first, rest) = command.split_once(char::is_whitespace).map_or((command, ""), |(f, r)| (f, r.trim_start()));
    match types.get(first) {
        Some(procfile) if rest.is_empty() => procfile.clone(),
        Some(procfile) => format!("{procfile} {rest}"),
        None => command.to_owned(),
    }
}

#[cfg(test)]
mod by_type_tests {
    use super::by_process_type;
    use std::collections::BTreeMap;

    #[test]
    fn a_process_type_runs_its_procfile_command_with_the_arguments_after_it() {
        let types = BTreeMap::from([("console".to_owned(), "python3 console.py".to_owned()), ("web".to_owned(), "gunicorn app".to_owned())]);
        assert_eq!(by_process_type(&types, "console"), "python3 console.py");
        assert_eq!(by_process_type(&types, "  console --quiet  x"), "python3 console.py --quiet  x");
        assert_eq!(by_process_type(&types, "consoles"), "consoles");
        assert_eq!(by_process_type(&types, "echo console"), "echo console");
        assert_eq!(by_process_type(&BTreeMap::new(), "bash"), "bash");
    }
}
