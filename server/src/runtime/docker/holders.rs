//! Network holders: most of what the engine does to start a dyno here is
//! setting up its place on the app's network (a veth pair on the bridge,
//! the embedded DNS server): 0.23-0.26 s of a start, against 0.085 s for
//! a container that joins a running container's network namespace
//! (`container:<id>`). So once a change's dynos are up, a few containers
//! per app that run nothing but `sleep` on the app's network are made
//! ahead of the next change; a dyno started then joins one of them and
//! reaches (and is reached) exactly as its own endpoint on that network
//! would.
//!
//! A holder serves one dyno and belongs to it from then on: removed with
//! it, and a dyno whose holder no longer runs is listed as not running
//! (its network is gone with the holder), so the scheduler replaces it.
//! Only where dynos are reached at their container address (the published
//! ports would be the holder's) and on a single engine (a swarm's dynos
//! are services). Bounded like spares: at most [`PER_APP`] ready per app
//! and [`MAX_HOLDERS`] in all, each removed after [`HOLDER_TTL`] unused,
//! with the app's network, at a graceful stop, and (the ones no dyno uses)
//! when the server starts.

use super::{locked_down, DockerRuntime};
use crate::runtime::labels;
use anyhow::{anyhow, Result};
use bollard::container::Config;
use bollard::models::{ContainerSummary, HostConfig};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

/// How many ready holders an app may have.
pub const PER_APP: usize = 4;
/// How many ready holders may wait at once; the oldest goes first.
pub const MAX_HOLDERS: usize = 16;
/// How long a holder waits for its dyno before it is removed.
pub const HOLDER_TTL: Duration = Duration::from_secs(15 * 60);
/// How long a dyno waits for a holder being made before it gets an
/// endpoint of its own instead (which takes about as long again).
pub const HOLDER_WAIT: Duration = Duration::from_millis(300);
/// How long a stopping server waits for the holders being made to be
/// removed by their tasks.
const HOLDER_DRAIN: Duration = Duration::from_secs(10);
/// `paas.kind` of a holder.
pub const KIND_HOLDER: &str = "holder";
/// On a dyno: the id of the holder whose network it joined.
pub const HOLDER_LABEL: &str = "paas.holder";
/// On a dyno that joined a holder: its address on the app's network
/// (the engine lists none for it).
pub const IP_LABEL: &str = "paas.ip";
/// On a web dyno that joined a holder: the router reaches it at its
/// address (`paas.ip`), on `$PORT`.
pub const WEB_LABEL: &str = "paas.web";
/// A holder's memory limit: it runs `sleep` under the engine's init.
const HOLDER_MEMORY: i64 = 16 << 20;

/// A ready holder of `app`, and its address on the app's network.
#[derive(Clone)]
pub struct Holder {
    pub id: String,
    pub ip: IpAddr,
    app: String,
}

pub struct Holders {
    /// Oldest first.
    ready: Vec<Holder>,
    /// Holders being made, by app.
    preparing: HashMap<String, usize>,
    /// Bumped (under the lock) each time a holder is made or fails to
    /// be: what a dyno waiting for one, and a stopping server, watch.
    changed: tokio::sync::watch::Sender<u64>,
    /// The server stops: no holder is pooled or made from now on (one
    /// would outlive it).
    closing: bool,
}

impl Holders {
    /// `count` of the holders of `app` being made are made, or will not
    /// be: what a dyno waiting for one, and a stopping server, are told.
    fn settle(&mut self, app: &str, count: usize) {
        if let Some(n) = self.preparing.get_mut(app) {
            *n = n.saturating_sub(count);
        }
        self.preparing.retain(|_, n| *n > 0);
        self.changed.send_modify(|n| *n += 1);
    }
}

impl Default for Holders {
    fn default() -> Self {
        Self { ready: Vec::new(), preparing: HashMap::new(), changed: tokio::sync::watch::channel(0).0, closing: false }
    }
}

impl DockerRuntime {
    /// The image holders are made from, where dynos may join holders.
    fn holder_image(&self) -> Option<&str> {
        self.holder_image.as_deref().filter(|_| self.via_container && !self.overlay)
    }

    /// A ready holder of `app`, taken out of the pool. If none is ready
    /// but one is being made, waits for it up to [`HOLDER_WAIT`]: it began
    /// when the last change's dynos were up, so by the time this change's
    /// start it is mostly made, and the rest of it is shorter than an
    /// endpoint of the dyno's own. None: the dyno gets one of its own.
    pub(super) async fn take_holder(&self, app: &str) -> Option<Holder> {
        let deadline = tokio::time::Instant::now() + HOLDER_WAIT;
        loop {
            let mut changed = {
                let mut h = self.holders.lock().expect("holders lock");
                if let Some(i) = h.ready.iter().position(|x| x.app == app) {
                    return Some(h.ready.remove(i));
                }
                if h.preparing.get(app).copied().unwrap_or(0) == 0 {
                    return None;
                }
                h.changed.subscribe()
            };
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => continue,
                _ => return None,
            }
        }
    }

    /// Starts making holders in the background until `app` has `count`
    /// (at most [`PER_APP`]) ready.
    pub(super) fn prepare_holders(&self, app: &str, count: usize) {
        let Some(image) = self.holder_image() else { return };
        let wanted = {
            let mut h = self.holders.lock().expect("holders lock");
            let have = h.ready.iter().filter(|x| x.app == app).count() + h.preparing.get(app).copied().unwrap_or(0);
            let wanted = count.min(PER_APP).saturating_sub(have);
            if wanted == 0 || h.closing {
                return;
            }
            *h.preparing.entry(app.to_owned()).or_default() += wanted;
            wanted
        };
        let (me, app, image) = (self.clone(), app.to_owned(), image.to_owned());
        tokio::spawn(async move {
            // After the spare build containers being made (the next push's
            // build waits for its spare; a dyno without a holder does not
            // wait), and one at a time.
            me.spares_made().await;
            for done in 0..wanted {
                let left = wanted - done;
                {
                    // The server stops: the rest are not made.
                    let mut h = me.holders.lock().expect("holders lock");
                    if h.closing {
                        h.settle(&app, left);
                        return;
                    }
                }
                let made = me.make_holder(&app, &image).await;
                // Made as the server stops: removed before the stop (which
                // waits for this) goes on.
                let stray = match &made {
                    Ok(holder) if me.holders.lock().expect("holders lock").closing => Some(holder.id.clone()),
                    _ => None,
                };
                if let Some(id) = stray {
                    me.remove_now(&id).await;
                    me.holders.lock().expect("holders lock").settle(&app, left);
                    return;
                }
                let mut evicted = Vec::new();
                {
                    let mut h = me.holders.lock().expect("holders lock");
                    match made {
                        Ok(holder) => {
                            h.settle(&app, 1);
                            let id = holder.id.clone();
                            h.ready.push(holder);
                            while h.ready.len() > MAX_HOLDERS {
                                evicted.push(h.ready.remove(0).id);
                            }
                            me.expire_holder(&id);
                        }
                        Err(e) => {
                            h.settle(&app, left);
                            drop(h);
                            // No stack run image (Dockerfile apps only), or
                            // the app was destroyed: nothing is wrong, dynos
                            // start as they would.
                            let no_image = e.chain().any(|c| c.downcast_ref::<bollard::errors::Error>().is_some_and(super::is_not_found));
                            if no_image {
                                tracing::debug!(app = %app, error = %format!("{e:#}"), "no network holder");
                            } else {
                                tracing::warn!(app = %app, error = %format!("{e:#}"), "no network holder");
                            }
                            return;
                        }
                    }
                }
                for id in evicted {
                    me.remove_later(&id);
                }
            }
        });
    }

    /// Creates and starts one holder on `app`'s network. Not made if the
    /// network is gone (the app was destroyed meanwhile).
    async fn make_holder(&self, app: &str, image: &str) -> Result<Holder> {
        let network = self.network_name(app);
        let labels = HashMap::from([
            (labels::INSTANCE.to_owned(), self.instance.clone()),
            (labels::KIND.to_owned(), KIND_HOLDER.to_owned()),
            (labels::APP.to_owned(), app.to_owned()),
        ]);
        let config = Config {
            image: Some(image.to_owned()),
            cmd: Some(vec!["sleep".into(), "infinity".into()]),
            user: Some("65534:65534".into()),
            labels: Some(labels),
            host_config: Some(locked_down(HostConfig {
                network_mode: Some(network.clone()),
                memory: Some(HOLDER_MEMORY),
                memory_swap: Some(HOLDER_MEMORY),
                readonly_rootfs: Some(true),
                nano_cpus: self.nano_cpus,
                ..Default::default()
            })),
            ..Default::default()
        };
        let name = format!("paas-{app}-net-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let id = self.create(&name, config, "a network holder").await?;
        self.start_created(&id, "a network holder").await?;
        let inspected = self.docker.inspect_container(&id, None).await;
        let ip = inspected
            .ok()
            .and_then(|c| c.network_settings?.networks?.get(&network)?.ip_address.clone())
            .and_then(|ip| ip.parse().ok());
        match ip {
            Some(ip) => Ok(Holder { id, ip, app: app.to_owned() }),
            None => {
                self.remove_now(&id).await;
                Err(anyhow!("the network holder got no address on {network}"))
            }
        }
    }

    /// Removes holder `id` after [`HOLDER_TTL`] if no dyno took it.
    fn expire_holder(&self, id: &str) {
        let (me, id) = (self.clone(), id.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(HOLDER_TTL).await;
            let still = {
                let mut h = me.holders.lock().expect("holders lock");
                let before = h.ready.len();
                h.ready.retain(|x| x.id != id);
                h.ready.len() != before
            };
            if still {
                me.remove_now(&id).await;
            }
        });
    }

    /// Removes the holders of the apps `gone` picks, ready or in use (an
    /// app's before its network goes; destroyed apps'), out of the pool
    /// and, as the engine lists them, from the engine.
    pub(super) async fn remove_holders(&self, gone: impl Fn(&str) -> bool) -> Result<()> {
        // Every pooled holder was started before it was pooled: the
        // engine's list below has it.
        self.holders.lock().expect("holders lock").ready.retain(|x| !gone(&x.app));
        let listed = self.labelled([format!("{}={KIND_HOLDER}", labels::KIND)]).await?;
        let ids = listed.iter().filter(|c| gone(label(c, labels::APP))).filter_map(|c| c.id.as_deref());
        futures_util::future::join_all(ids.map(|id| self.remove_now(id))).await;
        Ok(())
    }

    /// The server stops: makes no more holders, waits (up to
    /// [`HOLDER_DRAIN`]) for the ones being made to be removed by their
    /// tasks, and removes the ready ones (they would wait for dynos that
    /// never come). The ones dynos use stay with them.
    pub(super) async fn close_holders(&self) {
        let mut changed = {
            let mut h = self.holders.lock().expect("holders lock");
            h.closing = true;
            h.changed.subscribe()
        };
        let deadline = tokio::time::Instant::now() + HOLDER_DRAIN;
        while self.holders.lock().expect("holders lock").preparing.values().any(|n| *n > 0) {
            if !matches!(tokio::time::timeout_at(deadline, changed.changed()).await, Ok(Ok(()))) {
                tracing::warn!("holders still being made after {HOLDER_DRAIN:?}: the next start removes them");
                break;
            }
        }
        let ready = std::mem::take(&mut self.holders.lock().expect("holders lock").ready);
        futures_util::future::join_all(ready.iter().map(|h| self.remove_now(&h.id))).await;
    }

    /// Removes the holders no dyno uses (an earlier run's pool).
    pub(super) async fn remove_unused_holders(&self) {
        let Ok(all) = self.labelled([labels::APP.to_owned()]).await else { return };
        let used: HashSet<&str> = all.iter().map(|c| label(c, HOLDER_LABEL)).collect();
        let unused = all.iter().filter(|c| label(c, labels::KIND) == KIND_HOLDER).filter_map(|c| c.id.as_deref()).filter(|id| !used.contains(id));
        futures_util::future::join_all(unused.map(|id| self.remove_now(id))).await;
    }

    /// The ids of the holders in `list` that run.
    pub(super) fn running_holders(list: &[ContainerSummary]) -> HashSet<&str> {
        list.iter()
            .filter(|c| label(c, labels::KIND) == KIND_HOLDER && c.state.as_deref() == Some("running"))
            .filter_map(|c| c.id.as_deref())
            .collect()
    }

    /// The holder a dyno joined, from its labels.
    pub(super) async fn holder_of(&self, container_id: &str) -> Option<String> {
        let c = self.docker.inspect_container(container_id, None).await.ok()?;
        c.config?.labels?.remove(HOLDER_LABEL)
    }
}

/// A container's label `key`, "" when it has none.
fn label<'a>(c: &'a ContainerSummary, key: &str) -> &'a str {
    c.labels.as_ref().and_then(|l| l.get(key)).map_or("", String::as_str)
}
