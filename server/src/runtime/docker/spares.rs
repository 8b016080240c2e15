//! Spare task containers: for tasks that ask for it (buildpack builds), a
//! container of the same task is created and started ahead of the next run,
//! so that run skips the engine's create and start (about 0.2 s with a
//! network here) and the teardown before its output can be read (about
//! 0.07 s). Each spare runs nothing but `sleep` under the engine's init
//! until a task runs in it with `exec`; it serves one run and is removed,
//! so no run ever sees what an earlier one left behind.
//!
//! Spares are bounded: at most [`MAX_SPARES`], each removed after
//! [`SPARE_TTL`] unused, all of them removed when the server starts again,
//! and a spare that mounts a volume goes before the volume is removed
//! (`builds:cache:clear`, `apps:destroy`).

use super::DockerRuntime;
use crate::runtime::TaskSpec;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use std::collections::HashMap;
use std::time::Duration;

/// How many spares may wait at once; the oldest goes first.
pub const MAX_SPARES: usize = 8;
/// How long a spare waits for its task before it is removed.
pub const SPARE_TTL: Duration = Duration::from_secs(15 * 60);
/// How long the container of a finished run stays when no spare follows.
const RETIRED_TTL: Duration = Duration::from_secs(60);
/// The label that marks the containers of spare tasks (spares, and the
/// containers of their runs), all removed when the server starts.
pub const SPARE_LABEL: &str = "paas.spare";

/// What a spare was made for: a run may use it only if all of this matches.
/// Not the environment: a spare has none, each run brings its own to `exec`.
pub fn key(spec: &TaskSpec) -> String {
    format!("{}\n{}\n{:?}\n{:?}\n{:?}\n{:?}", spec.name, spec.image, spec.volumes, spec.ca_bundle, spec.memory, spec.platform_step)
}

struct Spare {
    id: String,
    key: String,
    volumes: Vec<String>,
}

/// Takes the first entry of `list` that matches out of it.
fn take_one(list: &mut Vec<Spare>, matches: impl Fn(&Spare) -> bool) -> Option<String> {
    let i = list.iter().position(matches)?;
    Some(list.remove(i).id)
}

/// Takes every entry of `list` that matches out of it.
fn take_all(list: &mut Vec<Spare>, matches: impl Fn(&Spare) -> bool) -> Vec<String> {
    let (taken, kept): (Vec<Spare>, Vec<Spare>) = std::mem::take(list).into_iter().partition(|x| matches(x));
    *list = kept;
    taken.into_iter().map(|x| x.id).collect()
}

#[derive(Default)]
pub struct Spares {
    /// Oldest first.
    ready: Vec<Spare>,
    /// Containers of finished runs, removed when the next spare for their
    /// key is made (after the deploy, not during it) or after a minute.
    retired: Vec<Spare>,
    /// Spares being made, by key: a run that finds one waits for it.
    preparing: HashMap<String, Shared<BoxFuture<'static, ()>>>,
    /// The server stops: no spare is made from now on (one would outlive
    /// it).
    closing: bool,
}

impl DockerRuntime {
    /// A started spare for `spec`, if one is ready or being made (then it
    /// waits for it); None otherwise.
    async fn take_spare(&self, spec: &TaskSpec) -> Option<String> {
        let key = key(spec);
        let waiting = {
            let mut s = self.spares.lock().expect("spares lock");
            if let Some(id) = take_one(&mut s.ready, |x| x.key == key) {
                return Some(id);
            }
            s.preparing.get(&key).cloned()
        };
        waiting?.await;
        take_one(&mut self.spares.lock().expect("spares lock").ready, |x| x.key == key)
    }

    /// [`Self::take_spare`], if that spare still runs (an engine restart
    /// stops it); one that does not is removed.
    pub(super) async fn take_running_spare(&self, spec: &TaskSpec) -> Option<String> {
        let id = self.take_spare(spec).await?;
        let running = self.docker.inspect_container(&id, None).await.ok().and_then(|c| c.state?.running);
        if running == Some(true) {
            return Some(id);
        }
        self.remove_later(&id);
        None
    }

    /// Sets the container of a finished run aside, to be removed later:
    /// removing it now would slow what follows the run (the release image,
    /// the new dynos) for nothing.
    pub(super) fn retire(&self, spec: &TaskSpec, id: &str) {
        let volumes = spec.volumes.iter().map(|(v, _)| v.clone()).collect();
        let spare = Spare { id: id.to_owned(), key: key(spec), volumes };
        self.spares.lock().expect("spares lock").retired.push(spare);
        self.expire(id, RETIRED_TTL, |s| &mut s.retired);
    }

    /// Removes container `id` after `ttl` if it is still in the list
    /// `list` picks (not used or removed by then).
    fn expire(&self, id: &str, ttl: Duration, list: fn(&mut Spares) -> &mut Vec<Spare>) {
        let (me, id) = (self.clone(), id.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            let still = take_one(list(&mut me.spares.lock().expect("spares lock")), |x| x.id == id).is_some();
            if still {
                me.remove_now(&id).await;
            }
        });
    }

    /// Starts making a spare for the next run of `spec`, in the background,
    /// and removes the containers of its earlier runs.
    pub(super) fn prepare_spare(&self, spec: &TaskSpec) {
        let key = key(spec);
        let done = take_all(&mut self.spares.lock().expect("spares lock").retired, |r| r.key == key);
        for id in done {
            self.remove_later(&id);
        }
        let me = self.clone();
        let mut sleeper = spec.clone();
        sleeper.cmd = vec!["sleep".into(), "infinity".into()];
        sleeper.env.clear();
        let volumes: Vec<String> = spec.volumes.iter().map(|(v, _)| v.clone()).collect();
        let made_key = key.clone();
        let make = async move {
            let config = me.task_config(&sleeper, &[(SPARE_LABEL, "1")]);
            let name = format!("paas-spare-{}-{}", sleeper.name, &uuid::Uuid::new_v4().simple().to_string()[..8]);
            let made = async {
                let id = me.create(&name, config, "a spare build container").await?;
                me.start_created(&id, "a spare build container").await?;
                anyhow::Ok(id)
            };
            let made = made.await.map_err(|e| tracing::warn!(error = %format!("{e:#}"), "no spare build container")).ok();
            let mut evicted = Vec::new();
            {
                let mut s = me.spares.lock().expect("spares lock");
                s.preparing.remove(&made_key);
                if let Some(id) = &made {
                    s.ready.push(Spare { id: id.clone(), key: made_key, volumes });
                    while s.ready.len() > MAX_SPARES {
                        evicted.push(s.ready.remove(0).id);
                    }
                }
            }
            for id in evicted {
                me.remove_later(&id);
            }
            if let Some(id) = made {
                me.expire(&id, SPARE_TTL, |s| &mut s.ready);
            }
        }
        .boxed()
        .shared();
        let mut s = self.spares.lock().expect("spares lock");
        if s.closing || s.preparing.contains_key(&key) || s.ready.iter().any(|x| x.key == key) {
            return;
        }
        s.preparing.insert(key, make.clone());
        drop(s);
        tokio::spawn(make);
    }

    /// The server stops: makes no more spares, and removes every spare
    /// (the ones being made once they are) and retired container.
    pub(super) async fn close_spares(&self) {
        self.spares.lock().expect("spares lock").closing = true;
        self.remove_spares_where(|_| true).await;
    }

    /// Removes the spares and retired containers that mount `volume`
    /// (the engine keeps a volume that any container mounts).
    pub(super) async fn drop_spares_of(&self, volume: &str) {
        self.remove_spares_where(|x| x.volumes.iter().any(|v| v == volume)).await;
    }

    /// Returns once the spares being made now are made (or failed).
    pub(super) async fn spares_made(&self) {
        let waiting: Vec<_> = self.spares.lock().expect("spares lock").preparing.values().cloned().collect();
        futures_util::future::join_all(waiting).await;
    }

    /// Removes the spares and retired containers that match, once the
    /// spares being made are made.
    async fn remove_spares_where(&self, matches: impl Fn(&Spare) -> bool) {
        self.spares_made().await;
        let gone = {
            let mut s = self.spares.lock().expect("spares lock");
            let mut gone = take_all(&mut s.ready, &matches);
            gone.extend(take_all(&mut s.retired, &matches));
            gone
        };
        futures_util::future::join_all(gone.iter().map(|id| self.remove_now(id))).await;
    }
}
