//! A real `paas-server` process on loopback ports it binds itself (port
//! 0, read back from its log: no free-port race) with its own data dir,
//! driven through the real `paas` CLI, real git and HTTP; what it made on
//! the Docker engine is removed when it is dropped.

use crate::shared::*;
use super::fixtures::ensure_base_image;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn unique_app(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// The password of the users tests add ([`Platform::add_user`]).
pub const USER_PASSWORD: &str = "a long enough password";

/// `docker inspect -f` of what locks a dyno down: its dropped
/// capabilities, pids limit, log cap and CPU limit (`cpus=NANO`).
pub const LOCKDOWN_FORMAT: &str = "{{.HostConfig.CapDrop}} {{.HostConfig.PidsLimit}} {{index .HostConfig.LogConfig.Config \"max-size\"}} cpus={{.HostConfig.NanoCpus}}";

/// Polls `f` until it returns `Some`, or panics after `timeout` with `what`.
/// The ids `docker ps -q ARGS` lists (filters, `-a`, `--no-trunc`).
pub fn docker_ps(args: &[&str]) -> Vec<String> {
    let out = Command::new("docker").arg("ps").arg("-q").args(args).output().unwrap();
    text(&out.stdout).lines().map(str::to_owned).collect()
}

pub fn poll<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(50);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

pub struct Platform {
    pub data: tempfile::TempDir,
    pub home: tempfile::TempDir,
    pub api_port: u16,
    pub router_port: u16,
    /// The router's HTTPS port, when `PAAS_ROUTER_TLS_LISTEN` was given.
    pub tls_port: Option<u16>,
    pub token: String,
    server: Option<Child>,
    apps: Vec<String>,
    /// Add-ons to remove (container, volume, network) when the test ends.
    addons: Vec<String>,
    /// Extra server environment, e.g. a shorter boot timeout.
    env: Vec<(String, String)>,
}

impl Platform {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(env: &[(&str, &str)]) -> Self {
        ensure_base_image();
        let data = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let mut p = Platform {
            data,
            home,
            // 0: the server picks; boot() reads the ports back from its log.
            api_port: 0,
            router_port: 0,
            tls_port: None,
            token: String::new(),
            server: None,
            apps: Vec::new(),
            addons: Vec::new(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        let out = p.server_cmd().args(["token:create", "e2e"]).output().unwrap();
        assert!(out.status.success(), "token:create failed: {}", String::from_utf8_lossy(&out.stderr));
        p.token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        p.boot();
        p
    }

    /// `paas-server` with this platform's settings (a command beside the running server, or the server).
    pub fn server_cmd(&self) -> Command {
        let mut c = Command::new(server_exe());
        c.env("PAAS_DATA_DIR", self.data.path())
            .env("PAAS_LISTEN", format!("127.0.0.1:{}", self.api_port))
            .env("PAAS_ROUTER_LISTEN", format!("127.0.0.1:{}", self.router_port))
            .env("PAAS_DOMAIN", "localhost")
            .env("PAAS_STOP_GRACE_SECONDS", "3")
            .env("PAAS_BOOT_TIMEOUT_SECONDS", "30")
            .env_remove("DATABASE_URL")
            .env_remove("PAAS_SECRET_KEY")
            // The tests' drain receivers and git servers are on loopback.
            .env("PAAS_OUTBOUND_ALLOW", "127.0.0.0/8,::1")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Starts the server process, learns its ports from its log, and waits
    /// until the API answers. A restart keeps the ports of the first boot.
    pub fn boot(&mut self) {
        let log = std::fs::File::create(self.data.path().join("server.log")).unwrap();
        let child = self
            .server_cmd()
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.server = Some(child);
        let (api, router) = poll(Duration::from_secs(30), "the server to log its addresses", || {
            let log = self.log();
            let line = log.lines().find(|l| l.contains("paas-server listening"))?;
            let port = |key: &str| -> Option<u16> {
                line.split_whitespace().find_map(|w| w.strip_prefix(key))?.rsplit(':').next()?.parse().ok()
            };
            Some((port("api=")?, port("router=")?))
        });
        self.api_port = api;
        self.router_port = router;
        self.tls_port = self
            .log()
            .lines()
            .find(|l| l.contains("paas-server listening"))
            .and_then(|l| l.split("tls=Some(").nth(1)?.split(')').next()?.rsplit(':').next()?.parse().ok());
        poll(Duration::from_secs(30), "the API to answer", || {
            let r = self.api().get(self.url("/apps")).send().ok()?;
            r.status().is_success().then_some(())
        });
    }

    /// The server process's id, while it runs.
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().map(Child::id)
    }

    /// Kills the server as a crash would (SIGKILL), leaving its dynos running.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM, as an orderly stop would, and waits (at most `limit`)
    /// for the server to exit; returns how long it took.
    pub fn terminate(&mut self, limit: Duration) -> Duration {
        let mut child = self.server.take().expect("the server runs");
        let started = Instant::now();
        let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(sent.success());
        loop {
            if child.try_wait().unwrap().is_some() {
                return started.elapsed();
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                panic!("paas-server did not exit within {limit:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every container of an app, running or not.
    pub fn containers(&self, app: &str) -> Vec<String> {
        let out = self.docker()
            .args(["ps", "-aq", "--no-trunc", "--filter"])
            .arg(format!("label=paas.app={app}"))
            .output()
            .unwrap();
        text(&out.stdout).lines().map(str::to_owned).collect()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("server.log")).unwrap_or_default()
    }

    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api_url())
    }

    /// An HTTP client that sends the token.
    pub fn api(&self) -> AuthedClient {
        AuthedClient { http: reqwest::blocking::Client::new(), token: self.token.clone() }
    }

    /// Registers an app name for cleanup.
    pub fn track(&mut self, app: &str) {
        self.apps.push(app.to_owned());
    }

    /// The `paas` CLI with this platform's URL and token, in `dir`, ready
    /// to run (or to spawn while the test does something else).
    pub fn paas_cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(cli_exe());
        c.args(args)
            .current_dir(dir)
            .env("HOME", self.home.path())
            .env("PAAS_API_URL", self.api_url())
            .env("PAAS_TOKEN", &self.token)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }

    /// Runs the `paas` CLI with this platform's URL and token, in `dir`.
    pub fn paas(&self, dir: &Path, args: &[&str]) -> Output {
        self.paas_cmd(dir, args).output().unwrap()
    }

    /// Like [`Self::paas`], and panics with the output unless it succeeded.
    pub fn paas_ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.paas(dir, args);
        assert!(out.status.success(), "paas {args:?} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    /// git in `dir` with an isolated HOME (whose ~/.netrc `paas login`
    /// wrote), ready to run or spawn.
    pub fn git_cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("git");
        c.args(args)
            .current_dir(dir)
            .env("HOME", self.home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "paas test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "paas test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com");
        c
    }

    /// Runs git in `dir` with an isolated HOME.
    pub fn git(&self, dir: &Path, args: &[&str]) -> Output {
        self.git_cmd(dir, args).output().unwrap()
    }

    /// The git push of [`Self::push`], ready to spawn.
    pub fn push_cmd(&self, dir: &Path, app: &str) -> Command {
        let url = format!("http://git:{}@127.0.0.1:{}/{app}.git", self.token, self.api_port);
        self.git_cmd(dir, &["push", &url, "HEAD:main"])
    }

    pub fn git_ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git(dir, args);
        assert!(out.status.success(), "git {args:?} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
        format!("{}{}", text(&out.stdout), text(&out.stderr))
    }

    /// GET through the router with `Host: <app>.localhost`.
    pub fn get(&self, app: &str, path: &str) -> Option<(u16, String)> {
        let r = reqwest::blocking::Client::new()
            .get(format!("http://127.0.0.1:{}{path}", self.router_port))
            .header("Host", format!("{app}.localhost:{}", self.router_port))
            .timeout(Duration::from_secs(5))
            .send()
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().ok()?))
    }

    /// Polls the app's page until it answers 200 with a body containing `needle`.
    pub fn wait_for_page(&self, app: &str, needle: &str) -> String {
        poll(Duration::from_secs(60), &format!("{app} to serve {needle:?}"), || {
            self.get(app, "/").filter(|(s, b)| *s == 200 && b.contains(needle)).map(|(_, b)| b)
        })
    }

    /// Container ids of an app's running dynos of one process type.
    pub fn running(&self, app: &str, process: &str) -> Vec<String> {
        let out = self.docker()
            .args(["ps", "-q", "--no-trunc", "--filter"])
            .arg(format!("label=paas.app={app}"))
            .arg("--filter")
            .arg(format!("label=paas.process={process}"))
            .output()
            .unwrap();
        let mut ids: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
        ids.sort();
        ids
    }
}

impl Platform {
    /// An add-on (by the name the test gave it) to remove when the test ends.
    pub fn track_addon(&mut self, addon: &str) {
        self.addons.push(addon.to_owned());
    }

    /// Creates `app` (tracked for cleanup) with its remote in `dir`.
    pub fn create_app(&mut self, dir: &Path, app: &str) {
        self.track(app);
        self.paas_ok(dir, &["apps:create", app]);
    }

    /// `git push` to the app with the token in the URL; returns whether the
    /// push was accepted, and everything git printed.
    pub fn push(&self, dir: &Path, app: &str) -> (bool, String) {
        self.push_as(dir, app, &self.token)
    }

    /// [`Self::push`] with another token (a user's, a deploy token).
    pub fn push_as(&self, dir: &Path, app: &str, token: &str) -> (bool, String) {
        let url = format!("http://git:{token}@127.0.0.1:{}/{app}.git", self.api_port);
        let out = self.git(dir, &["push", &url, "HEAD:main"]);
        (out.status.success(), format!("{}{}", text(&out.stdout), text(&out.stderr)))
    }

    /// Adds a user with [`USER_PASSWORD`], as the platform admin.
    pub fn add_user(&self, email: &str) {
        let made = self.api().post(self.url("/users")).json(&serde_json::json!({"email": email, "password": USER_PASSWORD})).send().unwrap();
        assert_eq!(made.status(), 201, "{email} was not added");
    }

    /// A token of `email`, by signing in with [`USER_PASSWORD`].
    pub fn token_of(&self, email: &str) -> String {
        let r = reqwest::blocking::Client::new()
            .post(self.url("/auth/tokens"))
            .json(&serde_json::json!({"email": email, "password": USER_PASSWORD}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 201, "{email} could not sign in");
        r.json::<serde_json::Value>().unwrap()["value"].as_str().unwrap().to_owned()
    }

    pub fn push_ok(&self, dir: &Path, app: &str) -> String {
        let (ok, said) = self.push(dir, app);
        assert!(ok, "push of {app} failed:\n{said}");
        said
    }
}

impl Platform {
    /// The docker CLI for the server's engine (DOCKER_HOST given to it, or
    /// the local one).
    /// `docker build` of an image from `dockerfile` alone, on this
    /// platform's engine, tagged `tag`.
    pub fn build_image(&self, tag: &str, dockerfile: &str) {
        let context = tempfile::tempdir().unwrap();
        std::fs::write(context.path().join("Dockerfile"), dockerfile).unwrap();
        let built = self.docker().args(["build", "-q", "-t", tag]).arg(context.path()).output().unwrap();
        assert!(built.status.success(), "docker build of {tag}: {}", text(&built.stderr));
    }

    pub fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        if let Some((_, host)) = self.env.iter().find(|(k, _)| k == "DOCKER_HOST") {
            c.args(["-H", host]);
        }
        c
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        // Add-ons the tracked apps have (app.json made some), while the
        // server can still say (the blocking client cannot run on an async
        // test's runtime: those drop the platform with `blocking`).
        if self.server.is_some() && tokio::runtime::Handle::try_current().is_err() {
            for app in self.apps.clone() {
                let listed = self.api().get(self.url(&format!("/apps/{app}/addons"))).send().ok().and_then(|r| r.json::<Vec<serde_json::Value>>().ok());
                for a in listed.unwrap_or_default() {
                    if let Some(name) = a["name"].as_str() {
                        self.addons.push(name.to_owned());
                    }
                }
            }
        }
        self.kill();
        for addon in &self.addons {
            let label = format!("label=paas.addon={addon}");
            for kind in ["ps -aq", "network ls -q", "volume ls -q"] {
                let mut args: Vec<&str> = kind.split(' ').collect();
                args.extend(["--filter", &label]);
                let Ok(out) = self.docker().args(&args).output() else { continue };
                let ids: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
                if ids.is_empty() {
                    continue;
                }
                let rm: &[&str] = match args[0] {
                    "ps" => &["rm", "-f"],
                    "network" => &["network", "rm"],
                    _ => &["volume", "rm", "-f"],
                };
                let _ = self.docker().args(rm).args(&ids).output();
            }
        }
        for app in &self.apps {
            // On a swarm: its dynos' services.
            if self.env.iter().any(|(k, v)| k == "PAAS_RUNTIME" && v == "swarm") {
                let out = self.docker().args(["service", "ls", "-q", "--filter"]).arg(format!("label=paas.app={app}")).output();
                if let Ok(out) = out {
                    let ids: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
                    if !ids.is_empty() {
                        let _ = self.docker().args(["service", "rm"]).args(&ids).output();
                    }
                }
            }
            // Its dynos, and its build containers (spares among them).
            for label in [format!("label=paas.app={app}"), format!("label=paas.task=build-{app}")] {
                let out = self.docker().args(["ps", "-aq", "--filter"]).arg(label).output();
                if let Ok(out) = out {
                    let ids: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
                    if !ids.is_empty() {
                        let _ = self.docker().args(["rm", "-f"]).args(&ids).output();
                    }
                }
            }
            let _ = self.docker().args(["volume", "rm", "-f", &format!("paas-cache-{app}")]).output();
            let nets = self.docker().args(["network", "ls", "-q", "--filter"]).arg(format!("label=paas.app={app}")).output();
            if let Ok(out) = nets {
                let ids: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
                if !ids.is_empty() {
                    let _ = self.docker().args(["network", "rm"]).args(&ids).output();
                }
            }
            let _ = self.docker().args(["rmi", "-f", &format!("paas/{app}-deps:latest")]).output();
            let images = self.docker()
                .args(["images", "-q", &format!("paas/{app}")])
                .output();
            if let Ok(out) = images {
                let ids: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
                if !ids.is_empty() {
                    let _ = self.docker().args(["rmi", "-f"]).args(&ids).output();
                }
            }
        }
        if std::thread::panicking() {
            eprintln!("--- paas-server log ---\n{}", self.log());
        }
    }
}

pub struct AuthedClient {
    http: reqwest::blocking::Client,
    token: String,
}

impl AuthedClient {
    pub fn get(&self, url: String) -> reqwest::blocking::RequestBuilder {
        self.http.get(url).bearer_auth(&self.token)
    }
    pub fn post(&self, url: String) -> reqwest::blocking::RequestBuilder {
        self.http.post(url).bearer_auth(&self.token)
    }
    pub fn patch(&self, url: String) -> reqwest::blocking::RequestBuilder {
        self.http.patch(url).bearer_auth(&self.token)
    }
}
