//! The fast tests' platform: a real server in this process (store, release
//! service, scheduler, log router, API and router on port 0, real HTTP)
//! over the fake runtime, on a fresh SQLite file or a PostgreSQL database.

use paas_server::release::Deployable;
use paas_server::runtime::{FakeRuntime, Placement, Runtime};
use paas_server::server::{self, Running};
use paas_server::settings::Settings;
use paas_server::store::AppRow;
use paas_wire::AppName;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Fast {
    pub running: Option<Running>,
    pub fake: FakeRuntime,
    pub settings: Settings,
    pub token: String,
    _data: tempfile::TempDir,
}

impl Fast {
    pub async fn start() -> Self {
        Self::start_on(None).await
    }

    /// A platform on SQLite, or on the PostgreSQL database `database_url`.
    pub async fn start_on(database_url: Option<String>) -> Self {
        Self::start_with(|s| {
            if let Some(url) = database_url {
                s.server.set_database_url(url);
            }
        })
        .await
    }

    /// A platform on SQLite with settings changed by `change`.
    pub async fn start_with(change: impl FnOnce(&mut Settings)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut settings = Settings::local(data.path());
        settings.dynos.boot_timeout = Duration::from_secs(1);
        // Real git pushes run the real hook, which calls back into this server.
        settings.hook_exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_paas-server"));
        change(&mut settings);
        let fake = FakeRuntime::new();
        let running = server::start(settings.clone(), Some(Arc::new(fake.clone()) as Arc<dyn Runtime>)).await.unwrap();
        let token = running.store.create_token("fast").await.unwrap();
        Self { running: Some(running), fake, settings, token, _data: data }
    }

    pub fn p(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    /// Stops this server and starts another on the same store and runtime.
    pub async fn restart(&mut self) {
        self.running.take().unwrap().stop().await.unwrap();
        let runtime = Arc::new(self.fake.clone()) as Arc<dyn Runtime>;
        self.running = Some(server::start(self.settings.clone(), Some(runtime)).await.unwrap());
    }

    pub async fn app(&self, name: &str) -> AppRow {
        self.p().store.create_app(&AppName::parse(name).unwrap()).await.unwrap()
    }

    /// What a push hands the release service after its build.
    pub fn built(image: &str) -> Deployable {
        Deployable {
            build_id: uuid::Uuid::new_v4().to_string(),
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            image: image.into(),
            process_types: BTreeMap::from([
                ("web".to_owned(), "serve".to_owned()),
                ("worker".to_owned(), "work".to_owned()),
            ]),
            initial_formation: BTreeMap::new(),
            initial_sizes: BTreeMap::new(),
            health_path: None,
            healthchecks: BTreeMap::new(),
            env: BTreeMap::new(),
            tasks: Default::default(),
        }
    }

    pub async fn deploy(&self, app: &AppRow, image: &str) -> paas_wire::Deploy {
        let out = paas_server::output::Output::collect();
        let r = self.p().releases.deploy(app, Self::built(image), &out).await.unwrap();
        self.p().releases.converge(app, Some(r.version), Some(Duration::from_secs(10))).await
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    /// An API request with the token and a JSON body.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.http().request(method, self.url(path)).bearer_auth(&self.token).json(&body).send().await.unwrap()
    }

    /// A token of `email`, by signing in with `password` (`POST /auth/tokens`).
    pub async fn token_of(&self, email: &str, password: &str) -> String {
        let r = self.http().post(self.url("/auth/tokens")).json(&serde_json::json!({"email": email, "password": password})).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 201, "{email} could not sign in");
        r.json::<serde_json::Value>().await.unwrap()["value"].as_str().unwrap().to_owned()
    }

    /// A client that does not follow redirects, as the dashboard tests want.
    pub fn browser() -> reqwest::Client {
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
    }

    /// Posts the dashboard's sign-in form with `fields` (and its
    /// double-submit CSRF cookie and field); the answer.
    pub async fn sign_in(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        let http = Self::browser();
        let form = http.get(self.url("/login")).send().await.unwrap();
        let login_cookie = form.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let html = form.text().await.unwrap();
        let csrf = html.split("name=\"login_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let mut form: Vec<(&str, &str)> = vec![("login_csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        http.post(self.url("/login")).header("cookie", login_cookie).form(&form).send().await.unwrap()
    }

    /// The session cookie (`paas_session=...`) a sign-in set, if it did.
    pub fn session_cookie(signed: &reqwest::Response) -> Option<String> {
        let cookie = signed.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).find(|c| c.starts_with("paas_session="))?;
        Some(cookie.split(';').next().unwrap().to_owned())
    }

    /// The CSRF token of a signed-in session, from a page's forms.
    pub async fn csrf_of(&self, cookie: &str, page: &str) -> String {
        let html = Self::browser().get(self.url(page)).header("cookie", cookie).send().await.unwrap().text().await.unwrap();
        html.split("name=\"csrf\" value=\"").nth(1).expect("a form with the session's CSRF token").split('"').next().unwrap().to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.p().api_url())
    }

    /// GET through the router, as a browser would.
    pub async fn page(&self, app: &str) -> (u16, String) {
        let r = self
            .http()
            .get(format!("http://{}/", self.p().router_addr))
            .header("Host", format!("{app}.localhost"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn running_names(&self, app: &str) -> Vec<String> {
        let mut names: Vec<String> =
            self.fake.list_dynos(Some(app)).await.unwrap().iter().map(|d| format!("{} v{}", d.name(), d.release_version)).collect();
        names.sort();
        names
    }

    /// Polls (bounded) until the app's dynos are exactly `want`.
    pub async fn wait_for_dynos(&self, app: &str, want: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.running_names(app).await;
            if now == want {
                return;
            }
            assert!(Instant::now() < deadline, "dynos of {app}: {now:?}, want {want:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

