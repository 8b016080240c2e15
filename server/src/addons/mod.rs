//! **Add-ons**: PostgreSQL and Redis as attached resources (twelve-factor
//! IV). An add-on is a service of the platform (`catalog.rs`: what is
//! offered and how its image is made) run through the runtime's
//! [`AddonHost`](crate::runtime::AddonHost) role: one container with a
//! volume the platform owns, reachable only from the networks of the apps
//! it is attached to, by its name. Attaching makes a release on the app
//! with `{NAME}_URL` through the release service, as any config change;
//! `config:set` cannot touch that var. `backups.rs`: backups verified
//! before they count, restores checked first and preceded by a safety
//! backup, and the daily schedule.
//!
//! Every operation here takes the add-on's lock, so a backup, a restore,
//! an upgrade and a destroy of one add-on never overlap.

pub mod backups;
pub mod catalog;

use crate::locks::KeyedLocks;
use crate::release::{ReleaseError, ReleaseService};
use crate::runtime::{AddonClientSpec, AddonSpec, Runtime};
use crate::store::{AddonRow, AppRow, ReleaseRow, Store, StoreError};
use anyhow::{anyhow, Context};
use catalog::Service;
use paas_wire::ErrorId;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// How long a new or restarted service has to answer.
pub const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Why an add-on operation was refused or failed. Every message says what
/// to do.
#[derive(Debug, thiserror::Error)]
pub enum AddonError {
    #[error("{0}")]
    NotFound(String),
    /// A request that cannot be done, with its stable id.
    #[error("{1}")]
    Refused(ErrorId, String),
    /// The operation ran and failed; the reason is recorded where it
    /// belongs (the add-on's state, the backup's record).
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type AddonResult<T> = Result<T, AddonError>;

fn refused<T>(id: ErrorId, message: impl Into<String>) -> AddonResult<T> {
    Err(AddonError::Refused(id, message.into()))
}

/// An add-on's credentials, sealed in the store for the add-on.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    pub database: String,
}

#[derive(Clone)]
pub struct Addons {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    cipher: crate::crypto::ConfigCipher,
    runtime: Arc<dyn Runtime>,
    releases: ReleaseService,
    logs: crate::logs::LogRouter,
    stack: crate::stack::Stack,
    /// `PAAS_DATA_DIR/addons`: each add-on's backups.
    dir: PathBuf,
    /// One operation at a time per add-on (by id).
    locks: KeyedLocks,
    /// One image build at a time.
    building: tokio::sync::Mutex<()>,
}

impl Addons {
    pub fn new(
        store: Store,
        cipher: crate::crypto::ConfigCipher,
        runtime: Arc<dyn Runtime>,
        releases: ReleaseService,
        logs: crate::logs::LogRouter,
        stack: crate::stack::Stack,
        data_dir: &std::path::Path,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                cipher,
                runtime,
                releases,
                logs,
                stack,
                dir: data_dir.join("addons"),
                locks: KeyedLocks::default(),
                building: Default::default(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The add-on by name, or a 404 that says where to look.
    pub async fn find(&self, name: &str) -> AddonResult<AddonRow> {
        self.inner
            .store
            .addon(name)
            .await?
            .ok_or_else(|| AddonError::NotFound(format!("there is no add-on {name:?}: `paas addons -a APP` lists an app's add-ons")))
    }

    /// The add-on by name, when `app` owns it or has it attached (what an
    /// app's routes may reach).
    pub async fn find_for(&self, app: &AppRow, name: &str) -> AddonResult<AddonRow> {
        let addon = self.find(name).await?;
        if addon.app_id == app.id || self.inner.store.attachments_of_addon(&addon.id).await?.iter().any(|a| a.app_id == app.id) {
            Ok(addon)
        } else {
            Err(AddonError::NotFound(format!("{} has no add-on {name:?}: `paas addons -a {}` lists its add-ons", app.name, app.name)))
        }
    }

    /// The add-on by name, when `app` owns it: what changes the add-on
    /// itself (destroying, upgrading, its backup schedule) is its owner's,
    /// not an app it is only attached to.
    pub async fn find_owned(&self, app: &AppRow, name: &str) -> AddonResult<AddonRow> {
        let addon = self.find_for(app, name).await?;
        if addon.app_id == app.id {
            return Ok(addon);
        }
        let owner = self.inner.store.app_by_id(&addon.app_id).await?.map(|a| a.name).unwrap_or_default();
        refused(
            ErrorId::AddonAttached,
            format!("{name} is {owner}'s add-on, only attached to {}: destroying, upgrading or scheduling it is done on {owner} (-a {owner})", app.name),
        )
    }

    pub fn credentials(&self, addon: &AddonRow) -> AddonResult<Credentials> {
        let vars = self.inner.cipher.open(&crate::crypto::addon_owner(&addon.id), &addon.credentials)?;
        let get = |k: &str| vars.get(k).cloned().ok_or_else(|| AddonError::Other(anyhow!("add-on {} has no {k} in its credentials", addon.name)));
        Ok(Credentials { user: get("user")?, password: get("password")?, database: get("database")? })
    }

    pub fn service(addon: &AddonRow) -> AddonResult<&'static Service> {
        catalog::by_name(&addon.service)
            .ok_or_else(|| AddonError::Other(anyhow!("add-on {} is of service {}, which this version does not know", addon.name, addon.service)))
    }

    /// The URL attached apps get.
    pub fn url(&self, addon: &AddonRow) -> AddonResult<String> {
        let c = self.credentials(addon)?;
        Ok(Self::service(addon)?.url(&addon.name, &c.user, &c.password, &c.database))
    }

    fn spec(&self, addon: &AddonRow, major: &str) -> AddonResult<AddonSpec> {
        let service = Self::service(addon)?;
        let c = self.credentials(addon)?;
        let mut env = BTreeMap::new();
        env.insert("PAAS_ADDON_USER".to_owned(), c.user);
        env.insert("PAAS_ADDON_PASSWORD".to_owned(), c.password);
        env.insert("PAAS_ADDON_DATABASE".to_owned(), c.database);
        Ok(AddonSpec {
            name: addon.name.clone(),
            image: service.image(major),
            env,
            data_path: catalog::DATA_PATH.to_owned(),
            stop_signal: service.stop_signal.to_owned(),
            stop_grace: service.stop_grace,
        })
    }

    /// The spec of the service as it runs now: its image even when this
    /// version makes a newer one (moving to that is `addons:upgrade`'s).
    pub(crate) async fn current_spec(&self, addon: &AddonRow) -> AddonResult<AddonSpec> {
        let mut spec = self.spec(addon, &addon.major)?;
        spec.image = self.running_image(addon).await?;
        Ok(spec)
    }

    /// The image the add-on's container runs; without a container, this
    /// version's image of its major.
    async fn running_image(&self, addon: &AddonRow) -> AddonResult<String> {
        Ok(match self.inner.runtime.addon_status(&addon.name).await? {
            Some(status) => status.image,
            None => Self::service(addon)?.image(&addon.major),
        })
    }

    /// The image of `service`'s `major`, built from Debian packages when
    /// missing (the stack's base image must be there).
    async fn ensure_image(&self, service: &Service, major: &str) -> AddonResult<()> {
        let _one = self.inner.building.lock().await;
        if self.inner.runtime.image_exists(&service.image(major)).await? {
            return Ok(());
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(64);
        let log = tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                tracing::info!(target: "paas::addons", "{}", line.trim());
            }
        });
        let built = catalog::build_one(self.inner.runtime.as_ref(), &self.inner.stack, service, major, &tx).await;
        drop(tx);
        let _ = log.await;
        built.map_err(|e| AddonError::Failed(format!("{e:#}")))
    }

    /// `addons:create`: provisions the service, waits for it to answer,
    /// and attaches it to `app` (a release with `{as}_URL`).
    pub async fn create(&self, app: &AppRow, service: &str, as_name: Option<&str>, name: Option<&str>) -> AddonResult<(AddonRow, Option<ReleaseRow>)> {
        let (service, major) = catalog::parse(service).map_err(|m| AddonError::Refused(ErrorId::UnknownAddonService, m))?;
        let attachment = match as_name {
            Some(a) => attachment_name(a)?,
            None => self.free_default_name(app, service).await?,
        };
        self.check_attachment_free(app, &attachment).await?;
        let name = match name {
            Some(n) => {
                paas_wire::AppName::parse(n).map_err(|_| {
                    AddonError::Refused(
                        ErrorId::InvalidName,
                        format!("add-on name {n:?} is invalid: use 3-30 characters, lowercase letters, digits and dashes, starting with a letter and not ending with a dash"),
                    )
                })?;
                n.to_owned()
            }
            None => new_name(service.name),
        };
        let creds: BTreeMap<String, String> = [
            ("user".to_owned(), format!("u{}", hex::encode(crate::crypto::random_bytes::<6>()))),
            ("password".to_owned(), hex::encode(crate::crypto::random_bytes::<24>())),
            ("database".to_owned(), format!("d{}", hex::encode(crate::crypto::random_bytes::<6>()))),
        ]
        .into();
        // The row first (it reserves the name), then the credentials sealed
        // for its id.
        let addon = match self.inner.store.create_addon(&name, &app.id, service.name, major, "").await {
            Ok(a) => a,
            Err(StoreError::Conflict) => {
                return refused(ErrorId::Conflict, format!("an add-on named {name} exists already: choose another --name"))
            }
            Err(e) => return Err(e.into()),
        };
        let sealed = self.inner.cipher.seal(&crate::crypto::addon_owner(&addon.id), &creds);
        self.inner.store.set_addon_credentials(&addon.id, &sealed).await?;
        let addon = self.find(&name).await?;
        let lock = self.inner.locks.get(&addon.id);
        let _guard = lock.lock().await;
        self.say(app, format!("Creating {} ({} {major})", addon.name, service.name));
        if let Err(e) = self.provision(&addon, major).await {
            let reason = format!("{e:#}");
            // Stopped, so its restart policy does not loop it; kept, with
            // its last lines, for `addons:info` and a look.
            let _ = self.inner.runtime.stop_addon(&addon.name, Duration::from_secs(5)).await;
            self.inner.store.set_addon_state(&addon.id, "failed", Some(&reason)).await?;
            self.say(app, format!("{} failed: {reason}", addon.name));
            return Ok((self.find(&name).await?, None));
        }
        self.inner.store.set_addon_state(&addon.id, "provisioned", None).await?;
        let addon = self.find(&name).await?;
        let release = self.attach_locked(&addon, app, &attachment).await?;
        Ok((self.find(&name).await?, release))
    }

    /// app.json's `addons` on the app's first deploy (no release with a
    /// build yet): each one the app has no attachment of that name for is
    /// created and attached, its progress said to the pusher. A service
    /// that does not come up fails the push.
    pub async fn provision_declared(&self, app: &AppRow, declared: &[crate::appjson::AddonRef], out: &crate::output::Output) -> AddonResult<()> {
        if declared.is_empty() {
            return Ok(());
        }
        let first = self.inner.store.current_release(&app.id).await?.is_none_or(|r| r.image.is_none());
        if !first {
            return Ok(());
        }
        let attachments = self.inner.store.attachments_of_app(&app.id).await?;
        for (i, entry) in declared.iter().enumerate() {
            let (service, major) = catalog::parse(entry.plan())
                .map_err(|m| AddonError::Refused(ErrorId::UnknownAddonService, format!("app.json addons[{i}]: {m}")))?;
            let name = match entry.as_name() {
                Some(a) => attachment_name(a)?,
                None => service.var.to_owned(),
            };
            if let Some(t) = attachments.iter().find(|t| t.name == name) {
                let have = self.inner.store.addon_by_id(&t.addon_id).await?.map(|a| a.name).unwrap_or_default();
                out.body(format!("app.json add-on {} as {name}_URL: {} has it already ({have})", entry.plan(), app.name)).await;
                continue;
            }
            out.heading(format!("Creating {} {major} for app.json (attached as {name}_URL)", service.name)).await;
            let (addon, _) = self.create(app, &format!("{}:{major}", service.name), Some(&name), None).await?;
            if addon.state != "provisioned" {
                return Err(AddonError::Failed(format!(
                    "app.json add-on {} ({}) did not come up: {}",
                    entry.plan(),
                    addon.name,
                    addon.reason.unwrap_or_default()
                )));
            }
            out.body(format!("{} is ready", addon.name)).await;
        }
        Ok(())
    }

    /// Runs the service and waits until it answers.
    async fn provision(&self, addon: &AddonRow, major: &str) -> AddonResult<()> {
        let service = Self::service(addon)?;
        self.ensure_image(service, major).await?;
        self.inner.runtime.run_addon(&self.spec(addon, major)?).await?;
        self.wait_ready(addon, major, READY_TIMEOUT).await
    }

    /// Polls the service's own check (`pg_isready`, `PING`) until it
    /// answers; fails early, with its last lines, when it stops.
    pub async fn wait_ready(&self, addon: &AddonRow, major: &str, timeout: Duration) -> AddonResult<()> {
        let service = Self::service(addon)?;
        let started = Instant::now();
        let restarts = self.inner.runtime.addon_status(&addon.name).await?.map_or(0, |s| s.restarts);
        let check = service.ready_check(major);
        // One client runs the check in a loop for a few seconds at a time.
        let looped = catalog::sh(&format!(
            "i=0; while [ $i -lt 20 ]; do {} >/dev/null 2>&1 && exit 0; i=$((i+1)); sleep 0.2; done; exit 1",
            shell_words(&check)
        ));
        loop {
            // A service not started yet, or gone, takes no command: not ready.
            if let Ok(out) = self.client(addon, looped.clone(), None, None, false).await {
                if out.exit_code == 0 {
                    return Ok(());
                }
            } else {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let status = self.inner.runtime.addon_status(&addon.name).await?;
            // Not running, or restarted by its policy meanwhile: it ended.
            let stopped = status.as_ref().is_none_or(|s| !s.running || s.restarts > restarts);
            if stopped || started.elapsed() >= timeout {
                let tail = self.inner.runtime.addon_output_tail(&addon.name, 5).await.unwrap_or_default();
                let why = if stopped {
                    let exit = match &status {
                        Some(s) if s.restarts > restarts => "keeps exiting".to_owned(),
                        Some(s) => s.exit.as_ref().map_or_else(|| "stopped".to_owned(), |e| e.to_string()),
                        None => "is gone".to_owned(),
                    };
                    format!("the {} service {exit}", service.name)
                } else {
                    format!("the {} service did not answer within {} s", service.name, timeout.as_secs())
                };
                let last = tail.iter().rev().find(|l| l.contains("paas:") || l.contains("FATAL") || l.contains("ERROR"));
                return Err(AddonError::Failed(match last {
                    Some(line) => format!("{why}: {}", line.trim()),
                    None => why,
                }));
            }
        }
    }

    /// Runs a client container beside the add-on: `input` fed to its stdin
    /// (a file, streamed), its stdout into `output` (a file, streamed) or
    /// kept (capped), its stderr kept (capped).
    pub(crate) async fn client(
        &self,
        addon: &AddonRow,
        cmd: Vec<String>,
        input: Option<&std::path::Path>,
        output: Option<&mut dyn Sink>,
        mount_data: bool,
    ) -> AddonResult<ClientOutput> {
        let client = self.start_client(addon, cmd, mount_data).await?;
        self.finish_client(client, input, output).await
    }

    /// Starts a client, attached, its stdin open: it waits for
    /// [`Self::finish_client`] (started ahead, so its start is off a
    /// backup's path). A command run in the service's own container (no
    /// container to make: checks, dumps, readers, `pg_restore`), or, with
    /// `mount_data`, a container of its own with the data volume (a Redis
    /// restore, while the service is stopped).
    pub(crate) async fn start_client(&self, addon: &AddonRow, cmd: Vec<String>, mount_data: bool) -> AddonResult<Client> {
        let service = Self::service(addon)?;
        let c = self.credentials(addon)?;
        if !mount_data {
            let mut env: BTreeMap<String, String> = service.client_env(&addon.name, &c.user, &c.password, &c.database).into_iter().collect();
            if service.name == "postgresql" {
                // Its socket, inside the container.
                env.insert("PGHOST".into(), "/tmp".into());
            }
            let (id, attachment) = self.inner.runtime.exec_in_addon(&addon.name, &cmd, &env).await?;
            return Ok(Client { id, attachment, exec: true });
        }
        let spec = AddonClientSpec {
            addon: addon.name.clone(),
            image: self.running_image(addon).await?,
            cmd,
            env: service.client_env(&addon.name, &c.user, &c.password, &c.database).into_iter().collect(),
            data_path: mount_data.then(|| catalog::DATA_PATH.to_owned()),
            tty: None,
        };
        let (id, attachment) = self.inner.runtime.start_addon_client(&spec).await?;
        Ok(Client { id, attachment, exec: false })
    }

    /// Ends a started client that is not needed any more.
    pub(crate) async fn abandon_client(&self, client: Client) {
        if client.exec {
            // Its streams close with the attachment: it ends by itself.
            return;
        }
        let _ = self.inner.runtime.signal(&client.id, "KILL").await;
        let _ = self.inner.runtime.finish_addon_client(&client.id).await;
    }

    /// Feeds a started client `input`, takes its output, waits for its end
    /// and removes it.
    pub(crate) async fn finish_client(
        &self,
        client: Client,
        input: Option<&std::path::Path>,
        output: Option<&mut dyn Sink>,
    ) -> AddonResult<ClientOutput> {
        let Client { id, mut attachment, exec } = client;
        // A client that stops reading early (it ended, or failed) breaks
        // the pipe: its exit status says which, so the write's error is
        // kept only as `unread`.
        let feed = async {
            let mut unread = false;
            if let Some(path) = input {
                let mut file = tokio::fs::File::open(path).await.with_context(|| format!("cannot read {}", path.display()))?;
                unread = tokio::io::copy(&mut file, &mut attachment.input).await.is_err();
            }
            attachment.input.shutdown().await.ok();
            Ok::<_, anyhow::Error>(unread)
        };
        let mut out = output;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let drain = async {
            while let Some(chunk) = attachment.output.recv().await {
                let chunk = chunk?;
                if chunk.stderr {
                    if stderr.len() < 16 * 1024 {
                        stderr.extend_from_slice(&chunk.data);
                    }
                } else if let Some(w) = out.as_deref_mut() {
                    w.take(&chunk.data).await.context("cannot write the client's output")?;
                } else if stdout.len() < 64 * 1024 {
                    stdout.extend_from_slice(&chunk.data);
                }
            }
            Ok::<_, anyhow::Error>(())
        };
        let (fed, drained) = tokio::join!(feed, drain);
        let exit = if exec {
            self.inner.runtime.finish_addon_exec(&id).await?
        } else {
            self.inner.runtime.finish_addon_client(&id).await?
        };
        let unread = fed?;
        drained?;
        Ok(ClientOutput {
            unread,
            exit_code: exit.exit_code.unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).trim().to_owned(),
        })
    }

    /// Starts the service's own client (`psql`, `redis-cli`) beside it,
    /// attached, for `pg:psql` and `redis:cli`: with a terminal of `tty`'s
    /// size, or pipes.
    pub async fn start_console(
        &self,
        addon: &AddonRow,
        tty: Option<(u16, u16)>,
        term: Option<String>,
    ) -> AddonResult<(crate::runtime::DynoId, crate::runtime::Attachment)> {
        let service = Self::service(addon)?;
        if addon.state != "provisioned" {
            return refused(
                ErrorId::AddonNotRunning,
                format!("{} is {}, so there is no service to connect to: see `paas addons:info {}`", addon.name, addon.state, addon.name),
            );
        }
        let c = self.credentials(addon)?;
        let mut env: BTreeMap<String, String> = service.client_env(&addon.name, &c.user, &c.password, &c.database).into_iter().collect();
        if let Some(term) = term.filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')) {
            env.insert("TERM".into(), term);
        }
        let image = self.running_image(addon).await?;
        let cmd = match service.name {
            "postgresql" => vec!["psql".into(), "-v".into(), "ON_ERROR_STOP=1".into()],
            _ => catalog::sh("exec redis-cli --no-auth-warning -h \"$REDIS_HOST\""),
        };
        let spec = AddonClientSpec { addon: addon.name.clone(), image, cmd, env, data_path: None, tty };
        Ok(self.inner.runtime.start_addon_client(&spec).await?)
    }

    /// Ends a console: stopped first when its client left early, then
    /// waited for and removed.
    pub async fn end_console(&self, id: &crate::runtime::DynoId, stop: bool) -> crate::runtime::Exit {
        if stop {
            let _ = self.inner.runtime.signal(id, "KILL").await;
        }
        match self.inner.runtime.finish_addon_client(id).await {
            Ok(exit) => exit,
            Err(e) => crate::runtime::Exit { exit_code: None, oom_killed: false, error: Some(format!("{e:#}")) },
        }
    }

    async fn free_default_name(&self, app: &AppRow, service: &Service) -> AddonResult<String> {
        let taken: Vec<String> = self.inner.store.attachments_of_app(&app.id).await?.into_iter().map(|t| t.name).collect();
        if !taken.iter().any(|t| t == service.var) {
            return Ok(service.var.to_owned());
        }
        // Heroku's second database is HEROKU_POSTGRESQL_<COLOR>; here the
        // service and a number.
        let base = service.name.to_ascii_uppercase();
        Ok((2..).map(|n| format!("{base}_{n}")).find(|n| !taken.contains(n)).expect("a free name"))
    }

    async fn check_attachment_free(&self, app: &AppRow, name: &str) -> AddonResult<()> {
        let attachments = self.inner.store.attachments_of_app(&app.id).await?;
        if let Some(t) = attachments.iter().find(|t| t.name == name) {
            let other = self.inner.store.addon_by_id(&t.addon_id).await?.map(|a| a.name).unwrap_or_default();
            return refused(
                ErrorId::AttachmentTaken,
                format!("{} has an attachment named {name} already ({other}, as {name}_URL): give another name with --as", app.name),
            );
        }
        let config = self.inner.releases.config(app).await?;
        if config.contains_key(&format!("{name}_URL")) {
            return refused(
                ErrorId::AttachmentTaken,
                format!(
                    "{} has a config var {name}_URL set by hand: unset it first (`paas config:unset {name}_URL -a {}`) or attach --as another name",
                    app.name, app.name
                ),
            );
        }
        Ok(())
    }

    /// `addons:attach ADDON -a APP [--as NAME]`.
    pub async fn attach(&self, addon: &AddonRow, app: &AppRow, as_name: Option<&str>) -> AddonResult<(AddonRow, Option<ReleaseRow>)> {
        let service = Self::service(addon)?;
        let lock = self.inner.locks.get(&addon.id);
        let _guard = lock.lock().await;
        if self.inner.store.attachments_of_addon(&addon.id).await?.iter().any(|t| t.app_id == app.id) {
            return refused(ErrorId::AttachmentTaken, format!("{} is attached to {} already", addon.name, app.name));
        }
        if addon.state != "provisioned" {
            return refused(
                ErrorId::AddonNotRunning,
                format!("{} is {}, not provisioned: see `paas addons:info {}`", addon.name, addon.state, addon.name),
            );
        }
        let name = match as_name {
            Some(a) => attachment_name(a)?,
            None => self.free_default_name(app, service).await?,
        };
        self.check_attachment_free(app, &name).await?;
        let release = self.attach_locked(addon, app, &name).await?;
        Ok((self.find(&addon.name).await?, release))
    }

    async fn attach_locked(&self, addon: &AddonRow, app: &AppRow, name: &str) -> AddonResult<Option<ReleaseRow>> {
        // The network first, so the release's dynos find the name.
        self.inner.runtime.connect_addon(&addon.name, &app.name, &addon.name).await?;
        match self.inner.store.attach_addon(&addon.id, &app.id, name).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                return refused(ErrorId::AttachmentTaken, format!("{} has an attachment named {name} already: give another name with --as", app.name))
            }
            Err(e) => return Err(e.into()),
        }
        let var = format!("{name}_URL");
        let what = format!("Attach {} ({var})", addon.name);
        let release = match self.inner.releases.set_attachment_config(app, &var, Some(self.url(addon)?), &what).await {
            Ok(r) => r,
            Err(e) => {
                self.inner.store.detach_addon(&addon.id, &app.id).await?;
                return Err(e.into());
            }
        };
        self.say(app, format!("{} attached as {var}", addon.name));
        Ok(release)
    }

    /// `addons:detach ADDON -a APP`: a release without `{NAME}_URL`, then
    /// the add-on leaves the app's network.
    pub async fn detach(&self, addon: &AddonRow, app: &AppRow) -> AddonResult<(AddonRow, Option<ReleaseRow>)> {
        let lock = self.inner.locks.get(&addon.id);
        let _guard = lock.lock().await;
        if addon.app_id == app.id {
            return refused(
                ErrorId::BadRequest,
                format!("{} belongs to {}: it cannot be detached from its own app; destroy it with `paas addons:destroy {} --confirm {}`", addon.name, app.name, addon.name, app.name),
            );
        }
        let release = self.detach_locked(addon, app).await?;
        Ok((self.find(&addon.name).await?, release))
    }

    async fn detach_locked(&self, addon: &AddonRow, app: &AppRow) -> AddonResult<Option<ReleaseRow>> {
        let Some(t) = self.inner.store.attachments_of_addon(&addon.id).await?.into_iter().find(|t| t.app_id == app.id) else {
            return Err(AddonError::NotFound(format!("{} is not attached to {}", addon.name, app.name)));
        };
        let var = format!("{}_URL", t.name);
        let release = self.inner.releases.set_attachment_config(app, &var, None, &format!("Detach {} ({var})", addon.name)).await?;
        self.inner.store.detach_addon(&addon.id, &app.id).await?;
        if let Err(e) = self.inner.runtime.disconnect_addon(&addon.name, &app.name).await {
            tracing::warn!(addon = %addon.name, app = %app.name, error = %format!("{e:#}"), "cannot leave the app's network");
        }
        self.say(app, format!("{} detached ({var} removed)", addon.name));
        Ok(release)
    }

    /// `addons:destroy ADDON --confirm APP [--force]`: detaches it from
    /// every app (refused while others have it, without `force`), removes
    /// the service, its data and its backups. Returns what it did.
    pub async fn destroy(&self, addon: &AddonRow, confirm: Option<&str>, force: bool) -> AddonResult<Vec<String>> {
        let owner = self.inner.store.app_by_id(&addon.app_id).await?;
        let owner_name = owner.as_ref().map(|a| a.name.clone()).unwrap_or_default();
        if confirm != Some(owner_name.as_str()) {
            return refused(
                ErrorId::ConfirmMismatch,
                format!("destroying {} deletes its data and backups for good: run again with --confirm {owner_name}", addon.name),
            );
        }
        let lock = self.inner.locks.get(&addon.id);
        let _guard = lock.lock().await;
        let attachments = self.inner.store.attachments_of_addon(&addon.id).await?;
        let others: Vec<&str> = attachments.iter().filter(|t| t.app_id != addon.app_id).map(|t| t.app_name.as_str()).collect();
        if !others.is_empty() && !force {
            return refused(
                ErrorId::AddonAttached,
                format!(
                    "{} is attached to {} too: detach it there first (`paas addons:detach {} -a APP`), or destroy it anyway with --force",
                    addon.name,
                    others.join(", "),
                    addon.name
                ),
            );
        }
        let mut done = Vec::new();
        for t in &attachments {
            if let Some(app) = self.inner.store.app_by_id(&t.app_id).await? {
                self.detach_locked(addon, &app).await?;
                done.push(format!("detached from {} ({}_URL removed)", app.name, t.name));
            }
        }
        self.remove_service(addon).await?;
        done.push(format!("removed the {} service and its data", addon.service));
        let backups = self.inner.store.backups(&addon.id).await?.len();
        let _ = tokio::fs::remove_dir_all(self.inner.dir.join(&addon.name)).await;
        if backups > 0 {
            done.push(format!("deleted {backups} backups"));
        }
        self.inner.store.delete_addon(&addon.id).await?;
        if let Some(app) = &owner {
            self.say(app, format!("{} destroyed", addon.name));
        }
        tracing::info!(addon = %addon.name, "add-on destroyed");
        Ok(done)
    }

    async fn remove_service(&self, addon: &AddonRow) -> AddonResult<()> {
        let service = Self::service(addon)?;
        self.inner.runtime.stop_addon(&addon.name, service.stop_grace).await?;
        self.inner.runtime.remove_addon(&addon.name, true).await?;
        Ok(())
    }

    /// What destroying `app` does to add-ons: refused (409) while an add-on
    /// it owns is attached to another app; else the list of what goes.
    pub async fn check_app_destroy(&self, app: &AppRow) -> AddonResult<Vec<AddonRow>> {
        let owned: Vec<AddonRow> = self.inner.store.app_addons(&app.id).await?.into_iter().filter(|a| a.app_id == app.id).collect();
        for addon in &owned {
            let others: Vec<String> = self
                .inner
                .store
                .attachments_of_addon(&addon.id)
                .await?
                .into_iter()
                .filter(|t| t.app_id != app.id)
                .map(|t| t.app_name)
                .collect();
            if !others.is_empty() {
                return refused(
                    ErrorId::AddonAttached,
                    format!(
                        "{}'s add-on {} is attached to {} too: detach it there first (`paas addons:detach {} -a {}`) or destroy it with `paas addons:destroy {} --confirm {} --force`",
                        app.name,
                        addon.name,
                        others.join(", "),
                        addon.name,
                        others[0],
                        addon.name,
                        app.name
                    ),
                );
            }
        }
        Ok(owned)
    }

    /// `apps:rename`: the add-ons attached to `app` (by its new name) join
    /// its network under that name, so its new dynos find them; with
    /// `leave`, they leave the old name's network (once its dynos are gone).
    pub async fn follow_rename(&self, app: &AppRow, old: &str, leave: bool) -> AddonResult<()> {
        for t in self.inner.store.attachments_of_app(&app.id).await? {
            let Some(addon) = self.inner.store.addon_by_id(&t.addon_id).await? else { continue };
            let lock = self.inner.locks.get(&addon.id);
            let _guard = lock.lock().await;
            if leave {
                self.inner.runtime.disconnect_addon(&addon.name, old).await?;
            } else {
                self.inner.runtime.connect_addon(&addon.name, &app.name, &addon.name).await?;
            }
        }
        Ok(())
    }

    /// Before `app` is destroyed: its own add-ons go (service, data and
    /// backups; refused while one is attached to another app), others it
    /// had attached let go of it. No release is made: the app is going.
    /// Returns what it did.
    pub async fn remove_app(&self, app: &AppRow) -> AddonResult<Vec<String>> {
        let owned = self.check_app_destroy(app).await?;
        let mut done = Vec::new();
        for t in self.inner.store.attachments_of_app(&app.id).await? {
            if let Some(addon) = self.inner.store.addon_by_id(&t.addon_id).await? {
                let lock = self.inner.locks.get(&addon.id);
                let _guard = lock.lock().await;
                self.inner.store.detach_addon(&addon.id, &app.id).await?;
                let _ = self.inner.runtime.disconnect_addon(&addon.name, &app.name).await;
                if addon.app_id != app.id {
                    done.push(format!("detached add-on {} ({}_URL)", addon.name, t.name));
                }
            }
        }
        for addon in owned {
            let lock = self.inner.locks.get(&addon.id);
            let _guard = lock.lock().await;
            self.remove_service(&addon).await?;
            let backups = self.inner.store.backups(&addon.id).await?.len();
            let _ = tokio::fs::remove_dir_all(self.inner.dir.join(&addon.name)).await;
            self.inner.store.delete_addon(&addon.id).await?;
            done.push(format!("destroyed add-on {} ({} {}, its data and {backups} backups)", addon.name, addon.service, addon.major));
        }
        Ok(done)
    }

    /// After a server start: every provisioned add-on's service runs and
    /// sits on its apps' networks (an engine that lost a container, a
    /// network made again); backups a stopped server left running failed.
    pub async fn resume(&self) -> anyhow::Result<()> {
        let failed = self.inner.store.fail_unfinished_backups().await?;
        if failed > 0 {
            tracing::warn!(failed, "backups left running by the last server run marked failed");
        }
        for addon in self.inner.store.all_addons().await? {
            if addon.state == "provisioning" {
                let reason = "the server stopped while it was being provisioned: destroy it and create it again";
                self.inner.store.set_addon_state(&addon.id, "failed", Some(reason)).await?;
                let _ = self.inner.runtime.stop_addon(&addon.name, Duration::from_secs(5)).await;
                continue;
            }
            if addon.state != "provisioned" {
                continue;
            }
            let spec = match self.current_spec(&addon).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(addon = %addon.name, error = %e, "cannot resume add-on");
                    continue;
                }
            };
            if let Err(e) = self.inner.runtime.run_addon(&spec).await {
                tracing::warn!(addon = %addon.name, error = %format!("{e:#}"), "cannot start add-on");
                continue;
            }
            for t in self.inner.store.attachments_of_addon(&addon.id).await? {
                if let Err(e) = self.inner.runtime.connect_addon(&addon.name, &t.app_name, &addon.name).await {
                    tracing::warn!(addon = %addon.name, app = %t.app_name, error = %format!("{e:#}"), "cannot join the app's network");
                }
            }
        }
        Ok(())
    }

    /// `addons:upgrade ADDON`: within its major, the service is made again
    /// from the image the platform has now, on the same data; a major jump
    /// is refused with the steps that move the data.
    pub async fn upgrade(&self, addon: &AddonRow, to: Option<&str>) -> AddonResult<(AddonRow, Vec<String>)> {
        let service = Self::service(addon)?;
        let target = to.unwrap_or(&addon.major);
        if target != addon.major {
            let offered = service.majors.contains(&target);
            let app = self.inner.store.app_by_id(&addon.app_id).await?.map(|a| a.name).unwrap_or_default();
            return refused(
                ErrorId::BadRequest,
                format!(
                    "{} runs {} {}; moving its data to {} {target} is not done in place (the data directory's format changes between majors){}. \
                     The steps: `paas addons:create {}:{target} --as NEW -a {app}`, `paas {}:backups:capture {} -a {app}`, \
                     `paas {}:backups:download ID > dump`, `paas {}:backups:restore dump NEWADDON --confirm {app}`, \
                     then `paas addons:detach` the old one and attach the new one as {}",
                    addon.name,
                    service.name,
                    addon.major,
                    service.name,
                    if offered { "" } else { " and this platform does not offer that version" },
                    service.name,
                    backups::prefix(service),
                    addon.name,
                    backups::prefix(service),
                    backups::prefix(service),
                    service.var,
                ),
            );
        }
        let lock = self.inner.locks.get(&addon.id);
        let _guard = lock.lock().await;
        let image = service.image(target);
        let before = self.inner.runtime.addon_status(&addon.name).await?.map(|s| s.image);
        // The image as the platform now builds it: a rebuilt one replaces
        // the container, on the same volume.
        self.inner.runtime.stop_addon(&addon.name, service.stop_grace).await?;
        self.inner.runtime.remove_addon(&addon.name, false).await?;
        self.ensure_image(service, target).await?;
        let mut messages = vec![format!("stopped {} ({}) gracefully", addon.name, before.unwrap_or(image.clone()))];
        self.inner.runtime.run_addon(&self.spec(addon, target)?).await?;
        match self.wait_ready(addon, target, READY_TIMEOUT).await {
            Ok(()) => {
                self.inner.store.set_addon_state(&addon.id, "provisioned", None).await?;
                messages.push(format!("started it again on the same data from {image}"));
            }
            Err(e) => {
                let _ = self.inner.runtime.stop_addon(&addon.name, Duration::from_secs(5)).await;
                self.inner.store.set_addon_state(&addon.id, "failed", Some(&e.to_string())).await?;
                return Err(e);
            }
        }
        for t in self.inner.store.attachments_of_addon(&addon.id).await? {
            self.inner.runtime.connect_addon(&addon.name, &t.app_name, &addon.name).await?;
        }
        Ok((self.find(&addon.name).await?, messages))
    }

    /// A line in the app's log, `paas[addons]`.
    fn say(&self, app: &AppRow, text: String) {
        self.inner.logs.event(&app.name, "addons", text);
    }

    pub(crate) fn say_to(&self, app_name: &str, text: String) {
        self.inner.logs.event(app_name, "addons", text);
    }

    pub(crate) fn dir(&self) -> &std::path::Path {
        &self.inner.dir
    }

    pub(crate) fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.inner.runtime
    }

    pub(crate) fn lock_of(&self, addon: &AddonRow) -> Arc<tokio::sync::Mutex<()>> {
        self.inner.locks.get(&addon.id)
    }
}

/// Where a client's stdout goes, chunk by chunk.
#[async_trait::async_trait]
pub(crate) trait Sink: Send {
    async fn take(&mut self, data: &[u8]) -> std::io::Result<()>;
}

#[async_trait::async_trait]
impl<W: tokio::io::AsyncWrite + Unpin + Send> Sink for W {
    async fn take(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.write_all(data).await
    }
}

/// A client container started and attached, waiting for its input.
pub(crate) struct Client {
    id: crate::runtime::DynoId,
    attachment: crate::runtime::Attachment,
    /// A command in the service's container, not a container of its own.
    exec: bool,
}

/// What a client container did.
#[derive(Debug)]
pub struct ClientOutput {
    pub exit_code: i64,
    /// It ended before it read all of its input.
    pub unread: bool,
    /// Its stdout when not written elsewhere (capped).
    pub stdout: String,
    pub stderr: String,
}

/// An attachment's name as given (`db`, `DB`, `ANALYTICS_DB`): uppercased,
/// and a valid config key once `_URL` follows.
fn attachment_name(given: &str) -> AddonResult<String> {
    let name = given.trim().trim_end_matches("_URL").to_ascii_uppercase();
    let ok = !name.is_empty()
        && name.len() <= 60
        && name.as_bytes()[0].is_ascii_alphabetic()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.starts_with("PAAS_");
    if !ok {
        return refused(
            ErrorId::InvalidName,
            format!("attachment name {given:?} is invalid: use letters, digits and underscores, starting with a letter (the app gets NAME_URL)"),
        );
    }
    Ok(name)
}

/// A new add-on name, as Heroku's: `postgresql-amber-4821`.
fn new_name(service: &str) -> String {
    const WORDS: &[&str] = &[
        "amber", "aspen", "birch", "cedar", "coral", "dune", "ember", "fern", "flint", "frost", "glade", "harbor", "hazel", "ivy",
        "jade", "lark", "maple", "meadow", "mist", "oak", "onyx", "pine", "quartz", "reef", "ridge", "sage", "slate", "spruce",
        "stone", "tide", "willow", "zephyr",
    ];
    let r = crate::crypto::random_bytes::<4>();
    let word = WORDS[r[0] as usize % WORDS.len()];
    let number = u16::from_be_bytes([r[1], r[2]]) % 9000 + 1000;
    format!("{service}-{word}-{number}")
}

/// A fixed argv as one shell command (the platform's own words only).
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|w| if w.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b)) { w.clone() } else { format!("'{}'", w.replace('\'', "'\\''")) })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_are_config_key_prefixes() {
        assert_eq!(attachment_name("db").unwrap(), "DB");
        assert_eq!(attachment_name("ANALYTICS_DB_URL").unwrap(), "ANALYTICS_DB");
        for bad in ["", "1DB", "my-db", "PAAS_DB", "a b"] {
            assert!(attachment_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn new_names_are_valid_app_style_names() {
        for _ in 0..100 {
            let n = new_name("postgresql");
            assert!(paas_wire::AppName::parse(&n).is_ok(), "{n}");
        }
    }
}
