//! The release service: the one door through which every release is made
//! and every change reaches the dynos. A push (after its build), a config
//! change, a rollback, a formation change, an app's destruction, and every
//! later feature call it; API handlers and the git receiver hold no release
//! logic.
//!
//! Each change takes the app's lock, validates in one place, runs the
//! release's `release` command when it has one, appends the release (or
//! records the formation), lets the lock go, and then asks the scheduler to
//! converge. Holding the lock from reading the current release to appending
//! the next one is what keeps concurrent changes from losing each other.
//! Converging happens outside the lock (the scheduler has its own per-app
//! lock), so a slow boot never blocks the next config change.
//!
//! It must not build (the builder does) and never talks to the runtime but
//! through the scheduler.

use paas_wire::ErrorId;
use crate::crypto::ConfigCipher;
use crate::locks::KeyedLocks;
use crate::output::Output;
use crate::runtime::build_cache_volume;
use crate::scheduler::{Outcome, Scheduler};
use crate::store::{AppRow, NewRelease, ReleaseRow, Store, StoreError};
use paas_wire::{ConfigKey, ConfigPatch, Deploy, DeployState, DynoSize, FormationChange, NameError, ProcessType};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Applies app.json `env` entries to a first deploy's config: a `value` or a
/// generated secret (64 hex characters) for each key not set yet. Returns the
/// keys added and the required keys that have neither.
pub fn apply_app_json_env(
    config: &mut BTreeMap<String, String>,
    env: &BTreeMap<String, crate::appjson::EnvEntry>,
) -> (Vec<String>, Vec<String>) {
    let (mut added, mut missing) = (Vec::new(), Vec::new());
    for (key, entry) in env {
        if config.contains_key(key) {
            continue;
        }
        let value = match (&entry.value, entry.generator.as_deref()) {
            (Some(v), _) => Some(v.clone()),
            (None, Some("secret")) => Some(hex::encode(crate::crypto::random_bytes::<32>())),
            _ => None,
        };
        match value {
            Some(v) => {
                config.insert(key.clone(), v);
                added.push(key.clone());
            }
            None if entry.required => missing.push(key.clone()),
            None => {}
        }
    }
    (added, missing)
}

/// Sets each app.json `env` entry marked `"sync": true` that has a value
/// to that value; the keys it changed.
pub fn sync_app_json_env(config: &mut BTreeMap<String, String>, env: &BTreeMap<String, crate::appjson::EnvEntry>) -> Vec<String> {
    let mut changed = Vec::new();
    for (key, entry) in env.iter().filter(|(_, e)| e.sync) {
        if let Some(v) = &entry.value {
            if config.get(key) != Some(v) {
                config.insert(key.clone(), v.clone());
                changed.push(key.clone());
            }
        }
    }
    changed
}

/// The entries of `wanted` for process types the release has and `set`
/// has no entry for.
fn not_set_yet<T, U>(wanted: BTreeMap<String, T>, types: &BTreeMap<String, String>, set: &BTreeMap<String, U>) -> BTreeMap<String, T> {
    wanted.into_iter().filter(|(t, _)| types.contains_key(t) && !set.contains_key(t)).collect()
}

/// An outcome not known yet: the dynos are still being updated.
fn pending(release: Option<i64>, message: String) -> Deploy {
    Deploy {
        state: DeployState::Pending,
        release,
        started: Vec::new(),
        unhealthy: Vec::new(),
        previous_serving: false,
        message,
    }
}

/// The most dynos of one type one host runs.
pub const MAX_QUANTITY: i64 = 100;

/// The most config an app may have, keys and values together, in bytes
/// (Heroku's 32 kB).
pub const MAX_CONFIG_BYTES: usize = 32 * 1024;

/// Why a change was refused. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The change needs a build the app does not have yet.
    #[error("{0}")]
    NoImage(String),
    #[error("{0}")]
    NotFound(String),
    /// The request names something that cannot be done; the id is stable.
    #[error("{1}")]
    Invalid(paas_wire::ErrorId, String),
    /// The release's `release` command failed: no release was made.
    #[error("{0}")]
    ReleasePhase(String),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type ReleaseResult<T> = Result<T, ReleaseError>;

/// A successful build, ready to be released. The git receiver hands the
/// builder's result over in this shape.
#[derive(Debug, Clone)]
pub struct Deployable {
    pub build_id: String,
    pub commit: String,
    pub image: String,
    pub process_types: BTreeMap<String, String>,
    /// app.json's `formation`: applied to process types nobody has scaled.
    pub initial_formation: BTreeMap<String, i64>,
    /// app.json's `formation` sizes: applied to process types nobody has
    /// sized.
    pub initial_sizes: BTreeMap<String, String>,
    /// app.json's web health check path.
    pub health_path: Option<String>,
    /// app.json's health checks, by process type.
    pub healthchecks: crate::appjson::Checks,
    /// app.json's `env`: applied on the app's first deploy, as on Heroku.
    pub env: BTreeMap<String, crate::appjson::EnvEntry>,
    /// app.json's `cron` and `scripts`.
    pub tasks: crate::appjson::Tasks,
}

#[derive(Clone)]
pub struct ReleaseService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    cipher: ConfigCipher,
    scheduler: Scheduler,
    locks: KeyedLocks,
    /// Dynos one app may run, all types together (`PAAS_MAX_DYNOS`).
    max_dynos: i64,
}

impl ReleaseService {
    pub fn new(store: Store, cipher: ConfigCipher, scheduler: Scheduler) -> Self {
        Self::with_max_dynos(store, cipher, scheduler, 100)
    }

    pub fn with_max_dynos(store: Store, cipher: ConfigCipher, scheduler: Scheduler, max_dynos: u32) -> Self {
        Self { inner: Arc::new(Inner { store, cipher, scheduler, locks: KeyedLocks::default(), max_dynos: max_dynos.into() }) }
    }

    /// The app's current config vars.
    pub async fn config(&self, app: &AppRow) -> ReleaseResult<BTreeMap<String, String>> {
        match self.inner.store.current_release(&app.id).await? {
            Some(r) => Ok(self.inner.cipher.open(&crate::crypto::config_owner(&app.id), &r.config)?),
            None => Ok(BTreeMap::new()),
        }
    }

    /// Sets and unsets config vars (`None` unsets). Returns the new release,
    /// or `None` when nothing changed, and the config as it now is. Before an
    /// app's first push this records the config in a release without a build,
    /// as Heroku does; such a release never runs.
    pub async fn set_config(
        &self,
        app: &AppRow,
        patch: ConfigPatch,
    ) -> ReleaseResult<(Option<ReleaseRow>, BTreeMap<String, String>)> {
        self.change_config(app, patch, None).await
    }

    /// Sets or unsets the config var of an add-on's attachment (`addons/`),
    /// which `set_config` refuses to touch: a release described by `what`.
    pub async fn set_attachment_config(
        &self,
        app: &AppRow,
        key: &str,
        value: Option<String>,
        what: &str,
    ) -> ReleaseResult<Option<ReleaseRow>> {
        let patch = ConfigPatch::from([(key.to_owned(), value)]);
        Ok(self.change_config(app, patch, Some(what)).await?.0)
    }

    /// `attachment`: the change is an add-on's (described so), which may
    /// touch attachments' vars; None: a user's, which may not.
    async fn change_config(
        &self,
        app: &AppRow,
        patch: ConfigPatch,
        attachment: Option<&str>,
    ) -> ReleaseResult<(Option<ReleaseRow>, BTreeMap<String, String>)> {
        if patch.is_empty() {
            return Err(ReleaseError::Invalid(
                ErrorId::BadRequest,
                "no config vars given: send an object like {\"KEY\": \"value\"}, with null to unset".into(),
            ));
        }
        for (key, value) in &patch {
            ConfigKey::parse(key)?;
            if value.as_deref().is_some_and(|v| v.contains('\0')) {
                return Err(ReleaseError::Invalid(ErrorId::InvalidValue, format!("the value of {key} contains a NUL byte")));
            }
        }
        let lock = self.inner.locks.get(&app.id);
        let _guard = lock.lock().await;
        let store = &self.inner.store;
        if attachment.is_none() {
            // Under the app's lock, as attaching changes these vars under it.
            for attached in store.attachments_of_app(&app.id).await? {
                let key = format!("{}_URL", attached.name);
                if patch.contains_key(&key) {
                    let addon = store.addon_by_id(&attached.addon_id).await?.map(|a| a.name).unwrap_or_default();
                    return Err(ReleaseError::Invalid(
                        ErrorId::AttachedVar,
                        format!(
                            "{key} is add-on {addon}'s attachment to {app}: it changes with the add-on, not by hand. Remove it with `paas addons:detach {addon} -a {app}` (or `paas addons:destroy {addon}` on the app that owns it), or give another add-on another name with `--as`",
                            app = app.name
                        ),
                    ));
                }
            }
        }
        let current = store.current_release(&app.id).await?;
        let mut vars = match &current {
            Some(r) => self.inner.cipher.open(&crate::crypto::config_owner(&app.id), &r.config)?,
            None => BTreeMap::new(),
        };
        let before = vars.clone();
        let (mut set, mut unset) = (Vec::new(), Vec::new());
        for (key, value) in patch {
            match value {
                Some(v) => {
                    set.push(key.clone());
                    vars.insert(key, v);
                }
                None => {
                    if vars.remove(&key).is_some() {
                        unset.push(key);
                    }
                }
            }
        }
        if vars == before {
            return Ok((None, vars));
        }
        let size: usize = vars.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_CONFIG_BYTES && size > before.iter().map(|(k, v)| k.len() + v.len()).sum() {
            return Err(ReleaseError::Invalid(
                ErrorId::ConfigTooLarge,
                format!(
                    "{}'s config vars would take {size} bytes, over the {} kB an app may have: keep large files in the app's code or a store, and their location in a config var",
                    app.name,
                    MAX_CONFIG_BYTES / 1024
                ),
            ));
        }
        let mut description = Vec::new();
        if let Some(what) = attachment {
            description.push(what.to_owned());
        } else if !set.is_empty() {
            description.push(format!("Set {} config vars", set.join(", ")));
        }
        if !unset.is_empty() && attachment.is_none() {
            description.push(format!("Remove {} config vars", unset.join(", ")));
        }
        let new = NewRelease {
            actor: None,
            build_id: current.as_ref().and_then(|r| r.build_id.clone()),
            image: current.as_ref().and_then(|r| r.image.clone()),
            process_types: match &current {
                Some(r) => r.process_types()?,
                None => BTreeMap::new(),
            },
            sealed_config: self.inner.cipher.seal(&crate::crypto::config_owner(&app.id), &vars),
            description: description.join("; "),
            health_path: current.as_ref().and_then(|r| r.health_path.clone()),
            healthchecks: current.as_ref().and_then(|r| r.healthchecks.clone()),
            tasks: current.as_ref().and_then(|r| r.tasks.clone()),
            output: None,
        };
        let release = self.append(app, new, &vars, &Output::collect(), "config not changed").await?;
        info!(app = %app.name, release = release.version, "config changed");
        Ok((Some(release), vars))
    }

    /// Rolls back to an earlier release (by UUID, `N` or `vN`): a new release
    /// with that release's build and config.
    pub async fn rollback(&self, app: &AppRow, which: &str) -> ReleaseResult<ReleaseRow> {
        let lock = self.inner.locks.get(&app.id);
        let _guard = lock.lock().await;
        let target = self.find(app, which).await?;
        let current = self.inner.store.current_release(&app.id).await?;
        if current.as_ref().is_some_and(|c| target.version >= c.version) {
            return Err(ReleaseError::Invalid(
                ErrorId::NotEarlier,
                format!(
                    "v{} is the current release of {}: roll back to an earlier one (see `paas releases -a {}`)",
                    target.version, app.name, app.name
                ),
            ));
        }
        if target.image.is_none() {
            return Err(ReleaseError::NoImage(format!(
                "v{} of {} has no build (it changed config before the first push): roll back to a release with a build, or push first",
                target.version, app.name
            )));
        }
        // The target has an image here (checked just above).
        if self.inner.store.image_removed(target.image.as_deref().unwrap_or_default()).await? {
            let commit = match &target.build_id {
                Some(b) => self.inner.store.build_by_id(b).await?.map(|b| b.commit_sha).unwrap_or_default(),
                None => String::new(),
            };
            return Err(ReleaseError::NoImage(format!(
                "v{}'s image of {} was removed to free disk (PAAS_KEEP_RELEASES keeps each app's newest releases' images): build its commit again, `git push paas {}:main` (or `--force` it onto main), then set any config it had",
                target.version,
                app.name,
                &commit[..commit.len().min(12)]
            )));
        }
        let config = self.inner.cipher.open(&crate::crypto::config_owner(&app.id), &target.config)?;
        let new = NewRelease {
            actor: None,
            build_id: target.build_id.clone(),
            image: target.image.clone(),
            process_types: target.process_types()?,
            sealed_config: target.config.clone(),
            description: format!("Rollback to v{}", target.version),
            health_path: target.health_path.clone(),
            healthchecks: target.healthchecks.clone(),
            tasks: target.tasks.clone(),
            output: None,
        };
        let release = self.append(app, new, &config, &Output::collect(), "not rolled back").await?;
        info!(app = %app.name, release = release.version, to = target.version, "rolled back");
        Ok(release)
    }

    /// Releases another app's release's build in `app`, with `app`'s own
    /// config: a pipeline promotion. Nothing is rebuilt; the release phase
    /// runs with this app's config, and a failure there makes no release.
    pub async fn promote(&self, app: &AppRow, source_app: &str, source: &ReleaseRow, out: &Output) -> ReleaseResult<ReleaseRow> {
        let lock = self.inner.locks.get(&app.id);
        let _guard = lock.lock().await;
        if source.image.is_none() {
            return Err(ReleaseError::NoImage(format!("{source_app} has no build to promote (v{} changed config only): push to it first", source.version)));
        }
        let current = self.inner.store.current_release(&app.id).await?;
        let owner = crate::crypto::config_owner(&app.id);
        let sealed_config = match &current {
            Some(r) => r.config.clone(),
            None => self.inner.cipher.seal(&owner, &BTreeMap::new()),
        };
        let config = self.inner.cipher.open(&owner, &sealed_config)?;
        let new = NewRelease {
            actor: None,
            build_id: source.build_id.clone(),
            image: source.image.clone(),
            process_types: source.process_types()?,
            sealed_config,
            description: format!("Promote {source_app} v{}", source.version),
            health_path: source.health_path.clone(),
            healthchecks: source.healthchecks.clone(),
            tasks: source.tasks.clone(),
            output: None,
        };
        let release = self.append(app, new, &config, out, "not promoted").await?;
        // The image gets this app's tag too, which this app's destroy
        // removes: the source app's own tag alone could not go while this
        // app's dynos use the image (the engine will not untag an image's
        // last tag then), and the image would outlive both apps.
        if let (Some(image), Some(build)) = (&source.image, &source.build_id) {
            if let Err(e) = self.inner.scheduler.runtime().tag_image(image, &crate::runtime::build_image(&app.name, build)).await {
                warn!(app = %app.name, error = %format!("{e:#}"), "cannot tag the promoted image");
            }
        }
        info!(app = %app.name, release = release.version, from = %source_app, "promoted");
        Ok(release)
    }

    /// Releases a push's build with the app's config as it is now (changes
    /// made while it built included).
    pub async fn deploy(&self, app: &AppRow, built: Deployable, out: &Output) -> ReleaseResult<ReleaseRow> {
        let lock = self.inner.locks.get(&app.id);
        if lock.try_lock().is_err() {
            out.heading("Waiting for another change to this app to finish").await;
        }
        let _guard = lock.lock().await;
        let store = &self.inner.store;
        let current = store.current_release(&app.id).await?;
        let mut sealed_config = match &current {
            Some(r) => r.config.clone(),
            None => self.inner.cipher.seal(&crate::crypto::config_owner(&app.id), &BTreeMap::new()),
        };
        let mut config = self.inner.cipher.open(&crate::crypto::config_owner(&app.id), &sealed_config)?;
        // The app's first deploy sets up app.json's `env`, as Heroku does.
        if current.as_ref().is_none_or(|r| r.image.is_none()) && !built.env.is_empty() {
            let (added, missing) = apply_app_json_env(&mut config, &built.env);
            if !missing.is_empty() {
                let example: Vec<String> = missing.iter().map(|k| format!("{k}=…")).collect();
                return Err(ReleaseError::Invalid(
                    ErrorId::MissingConfig,
                    format!(
                        "app.json requires {}, which {} not set: run `paas config:set {}` and push again",
                        missing.join(", "),
                        if missing.len() == 1 { "is" } else { "are" },
                        example.join(" ")
                    ),
                ));
            }
            if !added.is_empty() {
                out.heading(format!("Setting config vars from app.json: {}", added.join(", "))).await;
                sealed_config = self.inner.cipher.seal(&crate::crypto::config_owner(&app.id), &config);
            }
        }
        // Dokku's `"sync": true` entries are set again on every deploy.
        let synced = sync_app_json_env(&mut config, &built.env);
        if !synced.is_empty() {
            out.heading(format!("Setting config vars app.json syncs: {}", synced.join(", "))).await;
            sealed_config = self.inner.cipher.seal(&crate::crypto::config_owner(&app.id), &config);
        }
        let short = &built.commit[..built.commit.len().min(7)];
        let new = NewRelease {
            actor: None,
            build_id: Some(built.build_id.clone()),
            image: Some(built.image.clone()),
            process_types: built.process_types.clone(),
            sealed_config,
            description: format!("Deploy {short}"),
            health_path: built.health_path.clone(),
            healthchecks: Some(serde_json::to_string(&built.healthchecks).expect("checks always serialize")),
            tasks: built.tasks.to_json(),
            output: None,
        };
        let release = self.append(app, new, &config, out, "the push was not deployed").await?;
        // app.json's formation scales and sizes process types nobody has
        // scaled or sized yet (`ps:scale` and `ps:resize` win).
        let initial = not_set_yet(built.initial_formation, &built.process_types, &store.formation(&app.id).await?);
        if !initial.is_empty() {
            store.set_formation(&app.id, &initial).await?;
        }
        let sizes = not_set_yet(built.initial_sizes, &built.process_types, &store.sizes(&app.id).await?);
        if !sizes.is_empty() {
            store.set_sizes(&app.id, &sizes).await?;
        }
        info!(app = %app.name, release = release.version, "release created");
        Ok(release)
    }

    /// After a deploy of `release` whose dynos came up: Heroku's
    /// `scripts.postdeploy` if this is the app's first deploy to come up,
    /// then Dokku's `scripts.dokku.postdeploy`, each in a one-off container
    /// of the release with its config, output to `out`. The release serves
    /// already, so a failure is told as a warning (returned), not undone.
    pub async fn postdeploy(&self, app: &AppRow, release: &ReleaseRow, out: &Output) -> Vec<String> {
        use crate::scheduler::Phase;
        let mut failed = Vec::new();
        let first = match self.inner.store.mark_first_deployed(&app.id).await {
            Ok(first) => first,
            Err(e) => {
                failed.push(format!("cannot tell whether this is {}'s first deploy ({e}), so scripts.postdeploy did not run", app.name));
                false
            }
        };
        let tasks = crate::appjson::Tasks::from_json(release.tasks.as_deref());
        let Some(image) = &release.image else { return failed };
        let mut phases: Vec<(Phase, String)> = Vec::new();
        if let Some(c) = tasks.first_postdeploy.filter(|_| first) {
            phases.push((Phase::FirstPostdeploy, c));
        }
        if let Some(c) = tasks.postdeploy {
            phases.push((Phase::Postdeploy, c));
        }
        if phases.is_empty() {
            return failed;
        }
        let config = match self.inner.cipher.open(&crate::crypto::config_owner(&app.id), &release.config) {
            Ok(c) => c,
            Err(e) => {
                failed.push(format!("cannot open v{}'s config ({e}), so its postdeploy scripts did not run", release.version));
                return failed;
            }
        };
        for (phase, command) in phases {
            if let Err(e) = self.inner.scheduler.run_phase(&app.name, image, phase, &command, &config, out).await {
                let message = match phase {
                    Phase::FirstPostdeploy => format!("{e:#}; it runs only after the first deploy: run it by hand with `paas run`"),
                    _ => format!("{e:#}; v{} serves all the same", release.version),
                };
                self.inner.scheduler.logs().event(&app.name, "api", message.clone());
                failed.push(message);
            }
        }
        failed
    }

    /// Changes the formation of the current release: how many dynos of a
    /// type (`web=2`) and their size (`web=1G`). Makes no release, as on
    /// Heroku; returns the current one.
    pub async fn scale(&self, app: &AppRow, changes: &[FormationChange]) -> ReleaseResult<ReleaseRow> {
        if changes.is_empty() || changes.iter().any(|c| c.quantity.is_none() && c.size.is_none()) {
            return Err(ReleaseError::Invalid(
                ErrorId::BadRequest,
                "no updates given: send {\"updates\": [{\"type\": \"web\", \"quantity\": 2, \"size\": \"512M\"}]}".into(),
            ));
        }
        let lock = self.inner.locks.get(&app.id);
        let _guard = lock.lock().await;
        let release = self.running_release(app).await?;
        let types = release.process_types()?;
        let (mut quantities, mut sizes) = (BTreeMap::new(), BTreeMap::new());
        for change in changes {
            let t = ProcessType::parse(&change.process_type)?;
            let known: Vec<&str> = types.keys().map(String::as_str).filter(|t| *t != "release").collect();
            if known.is_empty() {
                return Err(ReleaseError::Invalid(
                    ErrorId::NoProcessTypes,
                    format!(
                        "v{} of {} declares no process types, so there is nothing to scale: add a Procfile (e.g. `web: gunicorn app:app`) and push again",
                        release.version, app.name
                    ),
                ));
            }
            if !types.contains_key(t.as_str()) || t.as_str() == "release" {
                return Err(ReleaseError::Invalid(
                    ErrorId::UnknownProcessType,
                    format!(
                        "v{} of {} has no process type {t}: its types are {}",
                        release.version,
                        app.name,
                        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                    ),
                ));
            }
            if let Some(quantity) = change.quantity {
                if !(0..=MAX_QUANTITY).contains(&quantity) {
                    return Err(ReleaseError::Invalid(
                        ErrorId::InvalidQuantity,
                        format!("quantity {quantity} for {t} is out of range: use 0 to {MAX_QUANTITY}"),
                    ));
                }
                quantities.insert(t.to_string(), quantity);
            }
            if let Some(size) = &change.size {
                sizes.insert(t.to_string(), DynoSize::parse(size)?.to_string());
            }
        }
        let mut total = self.inner.store.formation(&app.id).await?;
        total.extend(quantities.clone());
        let total: i64 = total.iter().filter(|(t, _)| types.contains_key(t.as_str())).map(|(_, q)| q).sum();
        if total > self.inner.max_dynos {
            return Err(ReleaseError::Invalid(
                ErrorId::TooManyDynos,
                format!(
                    "that would run {total} dynos of {}, over the {} one app may run (PAAS_MAX_DYNOS on the server): scale another type down first",
                    app.name, self.inner.max_dynos
                ),
            ));
        }
        self.inner.store.set_formation(&app.id, &quantities).await?;
        self.inner.store.set_sizes(&app.id, &sizes).await?;
        info!(app = %app.name, quantities = ?quantities, sizes = ?sizes, "formation changed");
        let mut said: Vec<String> = quantities.iter().map(|(t, q)| format!("{t}={q}")).collect();
        said.extend(sizes.iter().map(|(t, size)| format!("{t}:{size}")));
        self.inner.scheduler.logs().event(&app.name, "api", format!("Scaled {}", said.join(" ")));
        Ok(release)
    }

    /// The app's lock: no release is made, and no formation changes, while
    /// the guard lives (`apps:rename`).
    pub async fn hold(&self, app: &AppRow) -> tokio::sync::OwnedMutexGuard<()> {
        self.inner.locks.get(&app.id).lock_owned().await
    }

    /// Stops every dyno of the app and deletes it with its releases, builds,
    /// images no other release references, and build cache.
    pub async fn destroy(&self, app: &AppRow) -> ReleaseResult<()> {
        let lock = self.inner.locks.get(&app.id);
        let _guard = lock.lock().await;
        let store = &self.inner.store;
        let images: Vec<String> = store.list_releases(&app.id).await?.into_iter().filter_map(|r| r.image).collect();
        // Its builds' tags (`paas/APP:BUILD`) go first, so that removing an
        // image by ID then deletes it only when no other app's tag names it
        // (an identical build elsewhere is the same image).
        let tags: Vec<String> = tagged_builds(store, &app.id).await?.iter().map(|b| crate::runtime::build_image(&app.name, b)).collect();
        // The rows go first: a reconcile pass queued meanwhile (the dynos'
        // exit events queue some) then finds nothing to run, instead of
        // starting a dyno (and its network) again after they were removed.
        store.delete_app(app).await?;
        self.inner.scheduler.remove_app(&app.name).await?;
        self.inner.scheduler.logs().forget_app(&app.name);
        let runtime = self.inner.scheduler.runtime().clone();
        if let Err(e) = runtime.remove_volume(&build_cache_volume(&app.name)).await {
            warn!(app = %app.name, error = %format!("{e:#}"), "cannot remove the build cache");
        }
        // Its dependency layer's tag (the layers go with the last image using them).
        if let Err(e) = runtime.remove_image(&crate::runtime::deps_image(&app.name)).await {
            warn!(app = %app.name, error = %format!("{e:#}"), "cannot remove the dependency image");
        }
        // An image referenced by a kept release is never removed.
        let kept = store.referenced_images().await?;
        tokio::spawn(async move {
            for tag in tags {
                if let Err(e) = runtime.remove_image(&tag).await {
                    warn!(error = %format!("{e:#}"), "cannot untag an image of a destroyed app");
                }
            }
            for image in images.into_iter().filter(|i| !kept.contains(i)) {
                if let Err(e) = runtime.remove_image(&image).await {
                    warn!(error = %format!("{e:#}"), "cannot remove image of a destroyed app");
                }
            }
        });
        info!(app = %app.name, "app destroyed");
        Ok(())
    }

    /// Asks the scheduler to converge the app and, with `wait`, waits up to
    /// that long for the outcome: whether `release` serves, and if not why.
    /// Without `wait` the converge runs in the background.
    pub async fn converge(&self, app: &AppRow, release: Option<i64>, wait: Option<Duration>) -> Deploy {
        self.converge_inner(app, release, true, wait, || ()).await
    }

    /// [`Self::converge`] after a build: `warm_up` (what makes the app's
    /// next build ready) runs as soon as the dynos are up, before what
    /// makes its next dynos ready, which waits for it.
    pub async fn converge_built(&self, app: &AppRow, release: i64, wait: Duration, warm_up: impl FnOnce()) -> Deploy {
        self.converge_inner(app, Some(release), true, Some(wait), warm_up).await
    }

    /// [`Self::converge`] after a change that made no release (a scale or
    /// resize of the running release `release`).
    pub async fn converge_current(&self, app: &AppRow, release: i64, wait: Option<Duration>) -> Deploy {
        self.converge_inner(app, Some(release), false, wait, || ()).await
    }

    async fn converge_inner(&self, app: &AppRow, release: Option<i64>, made: bool, wait: Option<Duration>, warm_up: impl FnOnce()) -> Deploy {
        let scheduler = self.inner.scheduler.clone();
        let row = app.clone();
        let pass = tokio::spawn(async move { scheduler.reconcile(&row).await });
        let Some(wait) = wait.filter(|w| !w.is_zero()) else {
            return pending(release, "the dynos are being updated in the background: see `paas ps`".into());
        };
        match tokio::time::timeout(wait, pass).await {
            Err(_) => pending(
                release,
                format!(
                    "the new dynos were still starting after {} s; they carry on in the background: see `paas ps`",
                    wait.as_secs()
                ),
            ),
            Ok(Err(e)) => self.not_yet(release, format!("the converge task failed: {e}")),
            Ok(Ok(Err(e))) => self.not_yet(
                release,
                format!("its dynos could not be updated ({e:#}); the scheduler retries every few seconds: see `paas ps`"),
            ),
            Ok(Ok(Ok(outcome))) => {
                warm_up();
                // The next change's dynos start sooner (network holders on
                // one engine), made now that this one's are up.
                self.inner.scheduler.runtime().prepare_dynos(&app.name, outcome.started.len());
                self.judge(app, release, made, outcome).await
            }
        }
    }

    /// The change is made but whether its dynos serve is not known yet.
    fn not_yet(&self, release: Option<i64>, why: String) -> Deploy {
        let version = release.map_or_else(|| "the change".to_owned(), |v| format!("v{v}"));
        pending(release, format!("{version} was made, but {why}"))
    }

    /// Turns a reconcile pass's outcome into what the person is told.
    async fn judge(&self, app: &AppRow, release: Option<i64>, made: bool, o: Outcome) -> Deploy {
        let mut d = Deploy {
            state: DeployState::Serving,
            release,
            started: o.started.clone(),
            unhealthy: o.failures.iter().map(|f| f.name.clone()).collect(),
            previous_serving: o.previous_serving,
            message: String::new(),
        };
        let version = release.map_or_else(|| "the app".to_owned(), |v| format!("v{v}"));
        if let (Some(want), Some(now)) = (release, o.release_version) {
            if now > want {
                d.state = DeployState::Superseded;
                d.message = format!("v{now} was made meanwhile and is what runs now");
                return d;
            }
            if now < want {
                // The release failed in an earlier pass: say why.
                let detail = self.status_detail(app, want).await.unwrap_or_default();
                d.state = DeployState::Failed;
                d.message = format!("{version} failed: its dynos did not come up, and v{now} keeps running\n{detail}");
                return d;
            }
        }
        let mut problems: Vec<String> = o.failures.iter().map(|f| f.to_string()).collect();
        problems.extend(o.failed_to_start.iter().map(|f| format!("could not start {f}")));
        if problems.is_empty() {
            d.message = if o.started.is_empty() {
                format!("{version} runs: nothing needed to change")
            } else {
                format!("{version} runs: started {}", o.started.join(", "))
            };
            return d;
        }
        d.state = DeployState::Failed;
        let serving = if o.previous_serving {
            "the previous release's web dynos keep serving"
        } else if o.routed > 0 {
            "the web dynos that answered serve"
        } else {
            "no web dyno serves"
        };
        let marked = if o.release_failed { format!(" ({version} is marked failed)") } else { String::new() };
        let what = if made { format!("{version} was made, but its new dynos") } else { format!("{version}'s new dynos") };
        d.message = format!("{what} did not come up; {serving}{marked}:\n{}", problems.join("\n"));
        d
    }

    async fn status_detail(&self, app: &AppRow, version: i64) -> Option<String> {
        let release = self.inner.store.release_by_version(&app.id, version).await.ok()?;
        let statuses = self.inner.store.release_statuses(&app.id).await.ok()?;
        statuses.get(&release.id).map(|(_, detail)| detail.clone())
    }

    /// The release the dynos run: the newest with a build that has not
    /// failed (what the scheduler converges to).
    async fn running_release(&self, app: &AppRow) -> ReleaseResult<ReleaseRow> {
        match self.inner.store.desired_release(&app.id).await? {
            Some(r) => Ok(r),
            None => Err(ReleaseError::NoImage(format!(
                "{} has no build yet: deploy it with `git push paas main` first",
                app.name
            ))),
        }
    }

    /// Finds a release of the app by UUID, `N` or `vN`.
    pub async fn find(&self, app: &AppRow, which: &str) -> ReleaseResult<ReleaseRow> {
        let which = which.trim();
        let version = which.strip_prefix('v').unwrap_or(which).parse::<i64>().ok();
        let found = match version {
            Some(v) => self.inner.store.release_by_version(&app.id, v).await,
            None => self.inner.store.release_by_id(&app.id, which).await,
        };
        match found {
            Ok(r) => Ok(r),
            Err(StoreError::NotFound) => Err(ReleaseError::NotFound(format!(
                "release {which} of {} does not exist: see `paas releases -a {}`",
                app.name, app.name
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs the release phase for `new` (app.json's `scripts.dokku.predeploy`
    /// and then the Procfile's `release` command, when it has them) with
    /// `config`, then appends it. On a failure of either nothing is appended
    /// and the error carries the command's last output lines. Callers hold
    /// the app's lock.
    async fn append(
        &self,
        app: &AppRow,
        new: NewRelease,
        config: &BTreeMap<String, String>,
        out: &Output,
        refused: &str,
    ) -> ReleaseResult<ReleaseRow> {
        // The phases' output goes to whoever watches, and is kept with the release.
        let phase_out = out.recording();
        let mut ran = false;
        if let Some(image) = &new.image {
            let predeploy = crate::appjson::Tasks::from_json(new.tasks.as_deref()).predeploy;
            let release = new.process_types.get("release").cloned();
            let phases = [(crate::scheduler::Phase::Predeploy, predeploy), (crate::scheduler::Phase::Release, release)];
            for (phase, command) in phases {
                let Some(command) = command else { continue };
                ran = true;
                if let Err(e) = self.inner.scheduler.run_phase(&app.name, image, phase, &command, config, &phase_out).await {
                    self.inner.scheduler.logs().event(&app.name, "api", format!("{refused}: {e:#}; no release was made"));
                    return Err(ReleaseError::ReleasePhase(format!(
                        "{refused}: {e:#}, so no release was made and the running one is unchanged; its output ends:\n{}",
                        out.tail(20)
                    )));
                }
            }
        }
        let output = if ran { phase_out.recorded() } else { None };
        let new = NewRelease { actor: crate::actor::Actor::current().map(|a| a.name), output, ..new };
        let release = self.inner.store.append_release(&app.id, &new).await?;
        self.inner.scheduler.logs().event(&app.name, "api", format!("Release v{} created: {}", release.version, new.description));
        Ok(release)
    }
}

/// The builds an app's images are tagged by (`paas/APP:BUILD`): its own
/// and those promoted to it.
pub async fn tagged_builds(store: &Store, app_id: &str) -> crate::store::StoreResult<Vec<String>> {
    let mut builds: Vec<String> = store.list_builds(app_id).await?.into_iter().map(|b| b.id).collect();
    for release in store.list_releases(app_id).await? {
        if let Some(build) = release.build_id {
            if !builds.contains(&build) {
                builds.push(build);
            }
        }
    }
    Ok(builds)
}
