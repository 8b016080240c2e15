//! The dashboard in a real browser: headless Chromium driven over WebDriver
//! (Debian's chromium-driver) against a real `paas-server` process, with a
//! real `git push` and the real Docker engine. Screenshots of each page go
//! to the build's target folder (`dashboard-screenshots/`), not the repo.

use crate::harness::*;
use fantoccini::{Client, ClientBuilder, Locator};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// chromedriver on a port it picks, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Self {
        let mut child = Command::new("chromedriver")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver: scripts/ensure-deps installs Debian's chromium-driver");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = loop {
            let line = lines.next().expect("chromedriver said nothing").unwrap();
            if let Some(rest) = line.strip_suffix('.').and_then(|l| l.rsplit_once("on port ")) {
                break rest.1.parse().unwrap();
            }
        };
        // Keep reading its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, javascript: bool) -> Client {
    let mut args = vec![
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--window-size=1280,1000",
    ];
    if !javascript {
        args.push("--blink-settings=scriptEnabled=false");
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), serde_json::json!({ "args": args, "binary": "/usr/bin/chromium" }));
    // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("cannot start headless chromium")
}

fn shots_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
}

/// An element's text; empty while a page is loading.
async fn text_of(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits (bounded) until the page's text contains `needle`, reloading
/// when `reload`.
async fn wait_text(c: &Client, needle: &str, timeout: Duration, reload: bool) -> String {
    wait_text_in(c, "body", needle, timeout, reload).await
}

/// Like [`wait_text`], in one element (the live log view can show a word
/// before the rest of the page would).
async fn wait_text_in(c: &Client, css: &str, needle: &str, timeout: Duration, reload: bool) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = text_of(c, css).await;
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "the page never showed {needle:?}; it shows:\n{text}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        if reload {
            c.refresh().await.unwrap();
        }
    }
}

/// Fills the form that `field` belongs to and submits it with its button.
async fn submit(c: &Client, form_css: &str, fields: &[(&str, &str)]) {
    let form = c.find(Locator::Css(form_css)).await.unwrap_or_else(|e| panic!("no form {form_css}: {e}"));
    for (name, value) in fields {
        let input = form.find(Locator::Css(&format!("[name='{name}']"))).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }
    form.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
}

/// The harness blocks (its HTTP client has a runtime of its own): run it
/// off this runtime's worker.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

async fn sign_in(c: &Client, p: &Platform) {
    c.goto(&p.url("/")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().ends_with("/login"), "without a session the browser lands on sign-in");
    submit(c, "#token-login", &[("token", &p.token)]).await;
    wait_text(c, "Create an app", Duration::from_secs(10), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_in_a_real_browser() {
    let mut p = blocking(Platform::start);
    let driver = Driver::start();
    let c = browser(&driver, true).await;
    let app = unique_app("dash");

    // Sign in; a wrong token is refused with a message.
    c.goto(&p.url("/")).await.unwrap();
    shot(&c, "01-sign-in").await;
    submit(&c, "#token-login", &[("token", "not-a-token")]).await;
    wait_text(&c, "That token is not valid", Duration::from_secs(10), false).await;
    sign_in(&c, &p).await;
    shot(&c, "02-apps-empty").await;

    // Create an app, then deploy it with git push.
    p.track(&app);
    submit(&c, "form[action='/app']", &[("name", &app)]).await;
    wait_text(&c, &format!("Created {app}"), Duration::from_secs(10), false).await;
    let repo = blocking(|| dockerfile_repo(&p, "main", "dash"));
    blocking(|| p.push_ok(repo.path(), &app));
    wait_text_in(&c, "#dynos", "web.1", Duration::from_secs(30), true).await;
    shot(&c, "03-app-deployed").await;
    // Its build's output is a click away.
    c.find(Locator::Css("#builds a")).await.unwrap().click().await.unwrap();
    wait_text(&c, "paas-test/busybox", Duration::from_secs(10), false).await;
    shot(&c, "03b-build-output").await;
    // Its access page: the creator is its admin; a platform admin has a users page.
    c.goto(&p.url(&format!("/app/{app}/access"))).await.unwrap();
    let people = wait_text(&c, "Give someone a role", Duration::from_secs(10), false).await;
    assert!(people.contains("admin@localhost") && people.contains("admin"), "{people}");
    shot(&c, "03c-access").await;
    c.goto(&p.url("/admin/users")).await.unwrap();
    wait_text(&c, "Add a user", Duration::from_secs(10), false).await;
    shot(&c, "03d-users").await;
    // The apps list says it is up, at v1, with its URL.
    c.goto(&p.url("/")).await.unwrap();
    let row = c.find(Locator::XPath(&format!("//tr[td/a[text()='{app}']]"))).await.unwrap().text().await.unwrap();
    assert!(row.contains("up") && row.contains("v1") && row.contains(&format!("http://{app}.localhost")), "{row}");
    c.goto(&p.url(&format!("/app/{app}"))).await.unwrap();

    // A config var makes a release and says how it went; values are
    // hidden until revealed, and HTML in them is text.
    submit(&c, "#config-add", &[("key", "GREETING"), ("value", "<script>alert(1)</script>")]).await;
    let text = wait_text(&c, "Setting GREETING (v", Duration::from_secs(60), false).await;
    assert!(text.contains(": done."), "{text}");
    let value = c.find(Locator::Css("#config code.value")).await.unwrap();
    assert!(!value.is_displayed().await.unwrap(), "hidden until revealed");
    c.find(Locator::Css("#config summary")).await.unwrap().click().await.unwrap();
    assert_eq!(value.text().await.unwrap(), "<script>alert(1)</script>");
    assert!(c.get_alert_text().await.is_err(), "no script ran");
    blocking(|| p.wait_for_page(&app, "greeting: <script>"));
    // Edit it in place.
    submit(&c, "#config details form", &[("value", "edited")]).await;
    let text = wait_text(&c, "Setting GREETING (v", Duration::from_secs(60), false).await;
    assert!(text.contains(": done."), "{text}");
    blocking(|| p.wait_for_page(&app, "greeting: edited"));
    shot(&c, "04-config-set").await;

    // Roll back to the first deployed release.
    c.find(Locator::Css("#releases button[aria-label='Roll back to v1']")).await.unwrap().click().await.unwrap();
    let text = wait_text(&c, "Rolling back to v", Duration::from_secs(60), false).await;
    assert!(text.contains(": done."), "{text}");
    blocking(|| p.wait_for_page(&app, "greeting: </p>"));

    // Scale the worker up, and restart the web dyno.
    submit(&c, "form:has(input[name='process_type'][value='worker'])", &[("quantity", "1")]).await;
    let text = wait_text(&c, "Scaling worker to 1", Duration::from_secs(60), false).await;
    assert!(text.contains(": done."), "{text}");
    wait_text_in(&c, "#dynos", "worker.1", Duration::from_secs(30), true).await;
    let restart = c.find(Locator::Css("#dynos button[aria-label='Restart web.1']")).await.unwrap();
    restart.click().await.unwrap();
    wait_text(&c, "Restarted web.1.", Duration::from_secs(60), false).await;
    shot(&c, "05-scaled-restarted").await;

    // A line the app prints appears in the log view without a reload.
    let marker = format!("live-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    c.find(Locator::Css("#log")).await.unwrap();
    let out = blocking(|| p.paas(repo.path(), &["run:detached", "-a", &app, &format!("echo {marker}")]));
    assert!(out.status.success(), "{}", crate::harness::text(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = c.find(Locator::Css("#log")).await.unwrap().text().await.unwrap();
        if log.contains(&marker) {
            break;
        }
        assert!(Instant::now() < deadline, "the app's line never appeared live:\n{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.execute("document.getElementById('logs').scrollIntoView()", vec![]).await.unwrap();
    shot(&c, "06-live-logs").await;
    // The process filter keeps one process's lines.
    c.goto(&p.url(&format!("/app/{app}?ps=web"))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = c.find(Locator::Css("#log")).await.unwrap().text().await.unwrap();
    assert!(!log.contains(&marker) && log.contains("[web.1]"), "only web's lines with ps=web:\n{log}");

    // Readable at phone width: no sideways scrolling of the page.
    c.set_window_size(390, 844).await.unwrap();
    let wide = c.execute("return document.documentElement.scrollWidth", vec![]).await.unwrap();
    assert!(wide.as_u64().unwrap() <= 390, "the page is {wide} px wide at 390 px");
    shot(&c, "07-phone").await;
    c.set_window_size(1280, 1000).await.unwrap();

    // Requests without a session, or without the CSRF token, are refused.
    let session = c.get_named_cookie("paas_session").await.unwrap();
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Strict)");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let config = p.url(&format!("/app/{app}/config"));
    let anonymous = http.post(&config).form(&[("key", "X"), ("value", "1")]).send().await.unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(anonymous.headers()["location"], "/login");
    let cookie = format!("paas_session={}", session.value());
    let no_csrf = http.post(&config).header("cookie", &cookie).form(&[("key", "X"), ("value", "1")]).send().await.unwrap();
    assert_eq!(no_csrf.status(), 403);
    // Every form route checks it (one extractor, before the handler), and
    // a wrong token is as good as none: nothing changes.
    for path in ["/app", "/app/{app}/config/unset", "/app/{app}/formation", "/app/{app}/restart", "/app/{app}/rollback",
                 "/app/{app}/domains", "/app/{app}/domains/remove", "/app/{app}/destroy", "/logout"] {
        let url = p.url(&path.replace("{app}", &app));
        let r = http.post(&url).header("cookie", &cookie).form(&[("csrf", "wrong"), ("confirm", app.as_str())]).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path} took a form with a wrong CSRF token");
    }
    let page = http.get(p.url(&format!("/app/{app}"))).header("cookie", &cookie).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>") && !html.contains("onclick"), "no inline script");
    assert!(!html.contains("X=1"));

    // Destroy asks for the name.
    submit(&c, "#danger form", &[("confirm", "not-the-name")]).await;
    wait_text(&c, "Type the app's name", Duration::from_secs(10), false).await;
    submit(&c, "#danger form", &[("confirm", &app)]).await;
    wait_text(&c, &format!("Destroyed {app}."), Duration::from_secs(60), false).await;
    shot(&c, "08-destroyed").await;

    // Sign out: the session is gone.
    c.find(Locator::Css("form[action='/logout'] button")).await.unwrap().click().await.unwrap();
    wait_text(&c, "Sign in", Duration::from_secs(10), false).await;
    let after = http.get(p.url("/")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(after.status(), 303, "a signed-out session opens nothing");
    c.close().await.unwrap();
    blocking(move || drop(p));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn everything_but_live_logs_works_without_javascript_or_a_mouse() {
    let mut p = blocking(|| Platform::start_with(&[("PAAS_TRUSTED_PROXIES", "127.0.0.1")]));
    let driver = Driver::start();
    let c = browser(&driver, false).await;
    let app = unique_app("dash-nojs");

    // A person with a password signs in by keyboard only: the email field
    // has the focus, Tab goes to the password, Enter signs in.
    let email = format!("{app}@example.com");
    let made = blocking(|| p.api().post(p.url("/users")).json(&serde_json::json!({"email": email, "password": "keyboard only!", "admin": true})).send().unwrap());
    assert_eq!(made.status(), 201);
    c.goto(&p.url("/")).await.unwrap();
    // Chromium applies `autofocus` at its next rendering step, which can
    // come after the load event: keys typed before it go to the body, the
    // email stays empty and `required` stops the submit without a word.
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.active_element().await.unwrap().attr("name").await.unwrap().as_deref() != Some("email") {
        assert!(Instant::now() < deadline, "the email field never got the focus on its own");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.active_element().await.unwrap().send_keys(&email).await.unwrap();
    let typed = c.find(Locator::Css("#email")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(typed.as_deref(), Some(email.as_str()), "the email went into its field");
    c.active_element().await.unwrap().send_keys("\u{E004}").await.unwrap();
    assert_eq!(c.active_element().await.unwrap().attr("name").await.unwrap().as_deref(), Some("password"));
    c.active_element().await.unwrap().send_keys("keyboard only!\n").await.unwrap();
    wait_text(&c, "Create an app", Duration::from_secs(10), false).await;
    wait_text(&c, &format!("Signed in as {email}"), Duration::from_secs(10), false).await;
    // Tab reaches the create form's field: the page is navigable by keys.
    let mut reached = false;
    for _ in 0..12 {
        c.active_element().await.unwrap().send_keys("\u{E004}").await.unwrap();
        if c.active_element().await.unwrap().attr("name").await.unwrap().as_deref() == Some("name") {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab never reached the app name field");
    p.track(&app);
    c.active_element().await.unwrap().send_keys(&format!("{app}\n")).await.unwrap();
    wait_text(&c, &format!("Created {app}"), Duration::from_secs(10), false).await;

    submit(&c, "#config-add", &[("key", "PLAIN"), ("value", "works")]).await;
    let text = wait_text(&c, "Setting PLAIN", Duration::from_secs(30), false).await;
    assert!(text.contains("PLAIN"), "{text}");
    submit(&c, "#domains form.row", &[("hostname", &format!("{app}.example.com"))]).await;
    wait_text(&c, &format!("Added {app}.example.com"), Duration::from_secs(10), false).await;
    // Metrics are drawn on the server: the charts are there with no script.
    let metrics = c.find(Locator::Css("#metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("The last hour") && metrics.contains("requests"), "{metrics}");
    let charts = c.find_all(Locator::Css("#metrics svg.chart")).await.unwrap();
    assert!(charts.len() >= 2, "{} charts", charts.len());
    shot(&c, "09-no-javascript").await;
    c.close().await.unwrap();

    // Behind a TLS proxy (trusted, saying https) the cookie is Secure.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for (proto, secure) in [("https", true), ("http", false)] {
        let form = http.get(p.url("/login")).header("x-forwarded-proto", proto).send().await.unwrap();
        let login_cookie = form.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let html = form.text().await.unwrap();
        let csrf = html.split("name=\"login_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let signed = http
            .post(p.url("/login"))
            .header("x-forwarded-proto", proto)
            .header("cookie", login_cookie)
            .form(&[("login_csrf", csrf.as_str()), ("token", p.token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(signed.status(), 303);
        let cookie = signed.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).find(|c| c.starts_with("paas_session=")).unwrap();
        assert_eq!(cookie.contains("; Secure"), secure, "{proto}: {cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    }
    blocking(move || drop(p));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_ons_on_the_app_page_with_their_backups() {
    let mut p = blocking(Platform::start);
    let driver = Driver::start();
    let c = browser(&driver, true).await;
    let app = unique_app("dash-addon");
    let dir = tempfile::tempdir().unwrap();
    blocking(|| p.create_app(dir.path(), &app));
    sign_in(&c, &p).await;
    c.goto(&p.url(&format!("/app/{app}"))).await.unwrap();
    wait_text_in(&c, "#addons", "No add-ons", Duration::from_secs(10), false).await;

    // Created from the page: provisioned and attached.
    submit(&c, "#addons form[action$='/addons']", &[]).await;
    let flash = wait_text(&c, "Created postgresql-", Duration::from_secs(60), false).await;
    assert!(flash.contains("attached it as DATABASE_URL"), "{flash}");
    let addons: Vec<serde_json::Value> = serde_json::from_str(&blocking(|| p.paas_ok(dir.path(), &["addons", "-a", &app, "--json"]))).unwrap();
    let addon = addons[0]["name"].as_str().unwrap().to_owned();
    p.track_addon(&addon);
    let row = wait_text_in(&c, "#addons", "provisioned", Duration::from_secs(10), false).await;
    assert!(row.contains("none yet") && row.contains("DATABASE_URL on"), "{row}");

    // Capture from the page: the last good backup's age shows, and it
    // downloads as a pg_dump archive.
    c.find(Locator::Css(&format!("button[aria-label='Capture a backup of {addon}']"))).await.unwrap().click().await.unwrap();
    wait_text(&c, &format!("Backed up {addon}: b001"), Duration::from_secs(60), false).await;
    let cell = text_of(&c, "#addons td.last-backup").await;
    assert!(cell.starts_with("b001, ") && cell.contains(" s ago"), "{cell}");
    shot(&c, "20-addons").await;
    let link = c.find(Locator::Css("#addons a[download]")).await.unwrap();
    let href = link.attr("href").await.unwrap().unwrap();
    let magic = c
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             fetch(arguments[0]).then(r => r.arrayBuffer()).then(b => done(String.fromCharCode(...new Uint8Array(b).slice(0, 5))));",
            vec![serde_json::json!(href)],
        )
        .await
        .unwrap();
    assert_eq!(magic, serde_json::json!("PGDMP"), "the download is a pg_dump archive");
    blocking(move || drop(p));
}
