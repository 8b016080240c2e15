//! An in-memory [`Runtime`] for fast tests of the release service's and
//! the scheduler's decisions. Web dynos are real loopback HTTP listeners, so
//! the scheduler's health probes and the router work against them as they
//! do against containers; images whose name is marked broken start dynos
//! that never answer. It is never the proof that a feature works: the
//! end-to-end tests against the real Docker engine are.

use super::{Dyno, DynoSpec, Placement, TaskResult, TaskSpec};
use anyhow::{anyhow, Result};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

struct FakeContainer {
    dyno: Dyno,
    exit: super::Exit,
    output: Vec<String>,
    /// What the dyno wrote, with when, for followers.
    lines: Vec<super::OutputLine>,
    followers: Vec<mpsc::Sender<Result<super::OutputLine>>>,
    env: BTreeMap<String, String>,
    /// A web dyno's HTTP server, or an attached one-off dyno's process.
    server: Option<tokio::task::JoinHandle<()>>,
    /// Set for one-off dynos (`paas run`).
    one_off: Option<(String, Option<String>, i64)>,
}

impl FakeContainer {
    /// The container's process ends with `code`: it stops answering, and
    /// its output's followers reach the end.
    fn exit_with(&mut self, code: i64) {
        self.dyno.running = false;
        self.dyno.state = "exited".into();
        self.dyno.addr = None;
        self.exit = super::Exit { exit_code: Some(code), ..Default::default() };
        self.followers.clear();
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

#[derive(Default)]
struct State {
    /// Images whose dynos exit at once: (exit code, output lines).
    crashing_images: BTreeMap<String, (i64, Vec<String>)>,
    exits: Vec<mpsc::Sender<(String, super::DynoId)>>,
    /// When set, listing dynos fails (an engine that stopped answering).
    fail_listing: bool,
    /// When set, builds wait for it before they finish.
    build_gate: Option<Arc<tokio::sync::Semaphore>>,
    builds_started: u64,
    containers: BTreeMap<String, FakeContainer>,
    broken_images: HashSet<String>,
    failing_tasks: HashSet<String>,
    next_id: u64,
    started: u64,
    tasks: Vec<TaskSpec>,
}

/// See the module docs. Cloning shares the state, so a second server in a
/// test (a "restart") sees the dynos the first one started.
#[derive(Clone, Default)]
pub struct FakeRuntime {
    state: Arc<Mutex<State>>,
}

impl FakeRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake runtime poisoned")
    }

    /// Dynos from `image` will run but never answer HTTP.
    pub fn break_image(&self, image: &str) {
        self.lock().broken_images.insert(image.to_owned());
    }

    /// Task containers (release phase) whose command line contains `needle`
    /// exit with status 1.
    pub fn fail_tasks_containing(&self, needle: &str) {
        self.lock().failing_tasks.insert(needle.to_owned());
    }

    /// Dynos from `image` exit at once with `code`, having printed `output`.
    pub fn crash_image(&self, image: &str, code: i64, output: &[&str]) {
        self.lock().crashing_images.insert(image.to_owned(), (code, output.iter().map(|s| s.to_string()).collect()));
    }

    /// Kills a running dyno from outside (as `docker kill` would): it exits
    /// with 137 and the watchers hear of it.
    pub fn kill(&self, app: &str, name: &str) {
        let senders = {
            let mut state = self.lock();
            let Some(c) = state.containers.values_mut().find(|c| c.dyno.app == app && c.dyno.name() == name && c.dyno.running)
            else {
                return;
            };
            c.exit_with(137);
            let id = c.dyno.id.clone();
            (state.exits.clone(), id)
        };
        let (senders, id) = senders;
        for tx in senders {
            let _ = tx.try_send((app.to_owned(), id.clone()));
        }
    }

    /// A running web dyno stops answering HTTP but keeps running (a hung
    /// process), as a liveness check would find it.
    pub fn hang(&self, app: &str, name: &str) {
        let mut state = self.lock();
        if let Some(c) = state.containers.values_mut().find(|c| c.dyno.app == app && c.dyno.name() == name && c.dyno.running) {
            if let Some(server) = c.server.take() {
                server.abort();
            }
        }
    }

    /// Makes listing dynos fail (true) or work again (false).
    pub fn fail_listing(&self, fail: bool) {
        self.lock().fail_listing = fail;
    }

    /// From now on builds wait inside `build_image` until the returned gate
    /// gets permits (`add_permits(1)` lets one build finish).
    pub fn gate_builds(&self) -> Arc<tokio::sync::Semaphore> {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        self.lock().build_gate = Some(gate.clone());
        gate
    }

    /// How many image builds have started.
    pub fn builds_started(&self) -> u64 {
        self.lock().builds_started
    }

    /// How many dynos were ever started.
    pub fn started_count(&self) -> u64 {
        self.lock().started
    }

    /// The environment a running dyno got, by its name (`web.1`).
    pub fn env_of(&self, app: &str, name: &str) -> Option<BTreeMap<String, String>> {
        let state = self.lock();
        state
            .containers
            .values()
            .find(|c| c.dyno.app == app && c.dyno.name() == name && c.dyno.running)
            .map(|c| c.env.clone())
    }

    /// A running dyno writes `text` to its stdout (or stderr).
    pub fn write_output(&self, app: &str, name: &str, text: &str, stderr: bool) {
        let mut state = self.lock();
        let Some(c) = state.containers.values_mut().find(|c| c.dyno.app == app && c.dyno.name() == name && c.dyno.running)
        else {
            return;
        };
        let line = super::OutputLine { at_ns: now_ns(), stderr, text: text.to_owned() };
        c.output.push(text.to_owned());
        c.lines.push(line.clone());
        c.followers.retain(|f| f.try_send(Ok(line.clone())).is_ok());
    }

    /// Every task container run so far.
    pub fn tasks(&self) -> Vec<TaskSpec> {
        self.lock().tasks.clone()
    }
}

/// Answers every HTTP request on `listener` with 200 and `body`.
async fn serve(listener: tokio::net::TcpListener, body: String) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else { return };
        let body = body.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        });
    }
}

#[async_trait]
impl super::Placement for FakeRuntime {
    async fn list_dynos(&self, app: Option<&str>) -> Result<Vec<Dyno>> {
        let state = self.lock();
        if state.fail_listing {
            return Err(anyhow!("the fake engine does not answer"));
        }
        Ok(state
            .containers
            .values()
            .filter(|c| c.one_off.is_none())
            .map(|c| c.dyno.clone())
            .filter(|d| app.is_none_or(|a| d.app == a))
            .collect())
    }

    async fn start_dyno(&self, spec: &DynoSpec) -> Result<Dyno> {
        let broken = self.lock().broken_images.contains(&spec.image);
        let crash = self.lock().crashing_images.get(&spec.image).cloned();
        let (addr, server) = if crash.is_some() {
            (None, None)
        } else if spec.web {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr: SocketAddr = listener.local_addr()?;
            if broken {
                // The port is closed again: connections are refused.
                drop(listener);
                (Some(addr), None)
            } else {
                let body = format!(
                    "{} v{} {} {}",
                    spec.app,
                    spec.release_version,
                    spec.process_type,
                    spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
                );
                (Some(addr), Some(tokio::spawn(serve(listener, body))))
            }
        } else {
            (None, None)
        };
        let mut state = self.lock();
        state.next_id += 1;
        state.started += 1;
        let dyno = Dyno {
            id: format!("fake{:012}", state.next_id).into(),
            app: spec.app.clone(),
            release_id: spec.release_id.clone(),
            release_version: spec.release_version,
            process_type: spec.process_type.clone(),
            index: spec.index,
            running: crash.is_none(),
            state: if crash.is_some() { "exited" } else { "running" }.into(),
            command: spec.command.clone(),
            addr: addr.map(super::Endpoint::new),
            created: crate::unix_secs(),
            memory: spec.memory,
            ip: Some(std::net::IpAddr::from([127, 0, 0, 1])),
            node: None,
        };
        let (exit, output) = match crash {
            Some((code, output)) => (super::Exit { exit_code: Some(code), ..Default::default() }, output),
            None => (super::Exit::default(), Vec::new()),
        };
        let lines = output.iter().map(|t| super::OutputLine { at_ns: now_ns(), stderr: false, text: t.clone() }).collect();
        state.containers.insert(
            dyno.id.to_string(),
            FakeContainer {
                dyno: dyno.clone(),
                env: spec.env.clone(),
                server,
                exit,
                output,
                lines,
                followers: Vec::new(),
                one_off: None,
            },
        );
        Ok(dyno)
    }

    async fn halt_dyno(&self, id: &super::DynoId, _grace: Duration) -> Result<()> {
        if let Some(c) = self.lock().containers.get_mut(id.as_str()) {
            if c.dyno.running {
                c.exit_with(143);
            }
        }
        Ok(())
    }

    async fn stop_dyno(&self, id: &super::DynoId, _grace: Duration) -> Result<()> {
        if let Some(c) = self.lock().containers.remove(id.as_str()) {
            if let Some(server) = c.server {
                server.abort();
            }
        }
        Ok(())
    }

    async fn remove_app_network(&self, _app: &str) -> Result<()> {
        Ok(())
    }

    async fn prune_networks(&self, _apps: &HashSet<&str>) -> Result<()> {
        Ok(())
    }

    async fn exit_of(&self, id: &super::DynoId) -> Result<(bool, super::Exit)> {
        let state = self.lock();
        let c = state.containers.get(id.as_str()).ok_or_else(|| anyhow!("no such container"))?;
        Ok((c.dyno.running, c.exit.clone()))
    }

    fn watch_exits(&self) -> mpsc::Receiver<(String, super::DynoId)> {
        let (tx, rx) = mpsc::channel(256);
        self.lock().exits.push(tx);
        rx
    }

    async fn nodes(&self) -> Result<Vec<super::Node>> {
        Ok(vec![super::Node {
            id: "fake".into(),
            hostname: "fake".into(),
            state: "ready".into(),
            availability: "active".into(),
            role: "engine".into(),
            address: Some("127.0.0.1".into()),
            labels: Default::default(),
            dynos: Vec::new(),
        }])
    }
}

#[async_trait]
impl super::ImageBuilder for FakeRuntime {
    async fn build_image(
        &self,
        context: &Path,
        tag: &str,
        _args: &std::collections::BTreeMap<String, String>,
        _limits: super::BuildLimits,
        output: &mpsc::Sender<String>,
    ) -> Result<String> {
        let gate = {
            let mut state = self.lock();
            state.builds_started += 1;
            state.build_gate.clone()
        };
        let size = std::fs::metadata(context)?.len();
        let _ = output.send(format!("fake build of {tag} from a {size}-byte context")).await;
        if let Some(gate) = gate {
            gate.acquire().await?.forget();
        }
        Ok(format!("sha256:{tag}"))
    }

    async fn remove_image(&self, _image: &str) -> Result<()> {
        Ok(())
    }

    async fn retag_image(&self, _from: &str, _to: &str) -> Result<()> {
        Ok(())
    }

    async fn tag_image(&self, _image: &str, _to: &str) -> Result<()> {
        Ok(())
    }

    async fn image_exists(&self, _image: &str) -> Result<bool> {
        Ok(true)
    }


    async fn run_task(&self, spec: &TaskSpec, output: &mpsc::Sender<String>) -> Result<TaskResult> {
        let line = spec.cmd.join(" ");
        let fails = {
            let mut state = self.lock();
            state.tasks.push(spec.clone());
            state.failing_tasks.iter().any(|n| line.contains(n.as_str()))
        };
        let _ = output.send(format!("fake task: {line}")).await;
        Ok(TaskResult { exit_code: if fails { 1 } else { 0 }, oom_killed: false })
    }

    async fn image_label(&self, _image: &str, _label: &str) -> Result<Option<String>> {
        Ok(None)
    }

    async fn image_id(&self, image: &str) -> Result<Option<String>> {
        Ok(Some(format!("sha256:{image}")))
    }

    async fn pull_image(&self, _reference: &str) -> Result<()> {
        Ok(())
    }

    async fn image_from_files(&self, base: &str, _tar: &Path, tag: &str, _label: Option<(&str, &str)>) -> Result<String> {
        if base.is_empty() {
            return Err(anyhow!("no base image"));
        }
        Ok(format!("sha256:{tag}"))
    }

    async fn remove_volume(&self, _name: &str) -> Result<()> {
        Ok(())
    }

    async fn push_image(&self, image: &str, repository: &str, _tag: &str, _auth: Option<&super::RegistryAuth>) -> Result<String> {
        use sha2::Digest;
        Ok(format!("{repository}@sha256:{}", hex::encode(sha2::Sha256::digest(image))))
    }
}

#[async_trait]
impl super::OutputFollower for FakeRuntime {
    async fn output_tail(&self, id: &super::DynoId, lines: usize) -> Result<Vec<String>> {
        let state = self.lock();
        let c = state.containers.get(id.as_str()).ok_or_else(|| anyhow!("no such container"))?;
        Ok(c.output[c.output.len().saturating_sub(lines)..].to_vec())
    }

    fn follow_output(&self, id: &super::DynoId, since: i64) -> mpsc::Receiver<Result<super::OutputLine>> {
        let (tx, rx) = mpsc::channel(4096);
        let mut state = self.lock();
        if let Some(c) = state.containers.get_mut(id.as_str()) {
            for line in c.lines.iter().filter(|l| l.at_ns >= since * 1_000_000_000) {
                let _ = tx.try_send(Ok(line.clone()));
            }
            if c.dyno.running {
                c.followers.push(tx);
            }
        }
        rx
    }
}

#[async_trait]
impl super::OneOffAttach for FakeRuntime {
    /// A fake one-off dyno behaves as `cat` whatever its command, except
    /// `exit N`, which ends at once with status N. Attached, it echoes its
    /// stdin to stdout and exits 0 at the end of its stdin; detached, it
    /// runs until stopped.
    async fn start_one_off(&self, spec: &super::OneOffSpec) -> Result<(super::OneOff, Option<super::Attachment>)> {
        let dyno = self.start_dyno(&spec.dyno).await?;
        let id = dyno.id.to_string();
        let exits_with: Option<i64> = spec.dyno.command.strip_prefix("exit ").and_then(|c| c.trim().parse().ok());
        let (attachment, task) = match &spec.session {
            Some(_) => {
                let (client, mut process) = tokio::io::duplex(64 * 1024);
                let (tx, rx) = mpsc::channel(16);
                let this = self.clone();
                let id = id.clone();
                let task = tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while exits_with.is_none() {
                        match process.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let chunk = super::OutputChunk { stderr: false, data: bytes::Bytes::copy_from_slice(&buf[..n]) };
                                if tx.send(Ok(chunk)).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    if let Some(c) = this.lock().containers.get_mut(&id) {
                        c.server = None;
                        c.exit_with(exits_with.unwrap_or(0));
                    }
                });
                (Some(super::Attachment { input: Box::pin(client), output: rx }), Some(task))
            }
            None => (None, None),
        };
        let mut state = self.lock();
        let c = state.containers.get_mut(&id).ok_or_else(|| anyhow!("the one-off dyno vanished"))?;
        c.one_off = Some((spec.dyno.command.clone(), spec.session.clone(), spec.expires_at));
        c.server = task;
        if let (Some(code), None) = (exits_with, &spec.session) {
            c.exit_with(code);
        }
        let one_off = super::OneOff {
            dyno: c.dyno.clone(),
            command: spec.dyno.command.clone(),
            session: spec.session.clone(),
            expires_at: spec.expires_at,
        };
        Ok((one_off, attachment))
    }

    async fn list_one_offs(&self, app: Option<&str>) -> Result<Vec<super::OneOff>> {
        let state = self.lock();
        Ok(state
            .containers
            .values()
            .filter(|c| app.is_none_or(|a| c.dyno.app == a))
            .filter_map(|c| {
                let (command, session, expires_at) = c.one_off.clone()?;
                Some(super::OneOff { dyno: c.dyno.clone(), command, session, expires_at })
            })
            .collect())
    }

    async fn resize_tty(&self, _id: &super::DynoId, _cols: u16, _rows: u16) -> Result<()> {
        Ok(())
    }

    async fn signal(&self, id: &super::DynoId, signal: &str) -> Result<()> {
        let number = match signal {
            "HUP" => 1,
            "INT" => 2,
            "QUIT" => 3,
            "KILL" => 9,
            "TERM" => 15,
            _ => return Ok(()),
        };
        if let Some(c) = self.lock().containers.get_mut(id.as_str()).filter(|c| c.dyno.running) {
            c.exit_with(128 + number);
        }
        Ok(())
    }

    async fn wait_exit(&self, id: &super::DynoId) -> Result<super::Exit> {
        loop {
            let (running, exit) = self.exit_of(id).await?;
            if !running {
                return Ok(exit);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Add-ons need a real engine: the fake runs none, and says so.
#[async_trait]
impl super::AddonHost for FakeRuntime {
    async fn run_addon(&self, spec: &super::AddonSpec) -> anyhow::Result<()> {
        anyhow::bail!("the fake runtime runs no add-ons ({})", spec.name)
    }

    async fn addon_status(&self, _name: &str) -> anyhow::Result<Option<super::AddonStatus>> {
        Ok(None)
    }

    async fn stop_addon(&self, _name: &str, _grace: Duration) -> anyhow::Result<()> {
        Ok(())
    }

    async fn remove_addon(&self, _name: &str, _data: bool) -> anyhow::Result<()> {
        Ok(())
    }

    async fn connect_addon(&self, name: &str, _app: &str, _alias: &str) -> anyhow::Result<()> {
        anyhow::bail!("the fake runtime runs no add-ons ({name})")
    }

    async fn disconnect_addon(&self, _name: &str, _app: &str) -> anyhow::Result<()> {
        Ok(())
    }

    async fn addon_output_tail(&self, _name: &str, _lines: usize) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn start_addon_client(&self, spec: &super::AddonClientSpec) -> anyhow::Result<(super::DynoId, super::Attachment)> {
        anyhow::bail!("the fake runtime runs no add-ons ({})", spec.addon)
    }

    async fn finish_addon_client(&self, _id: &super::DynoId) -> anyhow::Result<super::Exit> {
        anyhow::bail!("the fake runtime runs no add-ons")
    }

    async fn resize_addon_client(&self, _id: &super::DynoId, _cols: u16, _rows: u16) -> anyhow::Result<()> {
        Ok(())
    }

    async fn exec_in_addon(&self, name: &str, _cmd: &[String], _env: &BTreeMap<String, String>) -> anyhow::Result<(super::DynoId, super::Attachment)> {
        anyhow::bail!("the fake runtime runs no add-ons ({name})")
    }

    async fn finish_addon_exec(&self, _id: &super::DynoId) -> anyhow::Result<super::Exit> {
        anyhow::bail!("the fake runtime runs no add-ons")
    }
}

#[async_trait]
impl super::Runtime for FakeRuntime {

}

fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

