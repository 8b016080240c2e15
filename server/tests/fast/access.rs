//! Team access over real HTTP: every route of the API listener, walked
//! with each role (an outsider, a viewer, a developer, an app's admin, a
//! platform admin, a deploy token), against the one table
//! (`paas_server::http::access::policy::ROUTES`); a route in the source
//! without an entry there fails the walk.

use crate::harness::Fast;
use paas_server::http::access::policy::{Need, Route, ROUTES};
use paas_server::http::access::Role;
use reqwest::Method;
use serde_json::json;
use std::collections::BTreeSet;

const PASSWORD: &str = "a long enough password";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Outsider,
    Viewer,
    Developer,
    AppAdmin,
    PlatformAdmin,
    Deploy,
}

const EVERYONE: [Who; 6] = [Who::Outsider, Who::Viewer, Who::Developer, Who::AppAdmin, Who::PlatformAdmin, Who::Deploy];

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Allowed,
    /// As if the app did not exist.
    NotFound,
    Forbidden,
}

/// What each kind of caller should get, written out apart from the
/// server's own rule.
fn expect(need: Need, who: Who) -> Expect {
    let role = match who {
        Who::Viewer => Some(Role::Viewer),
        Who::Developer => Some(Role::Developer),
        Who::AppAdmin | Who::PlatformAdmin => Some(Role::Admin),
        Who::Outsider | Who::Deploy => None,
    };
    match need {
        Need::Public | Need::Hook | Need::Any => Expect::Allowed,
        Need::User if who == Who::Deploy => Expect::Forbidden,
        Need::User => Expect::Allowed,
        Need::PlatformAdmin if who == Who::PlatformAdmin => Expect::Allowed,
        Need::PlatformAdmin => Expect::Forbidden,
        Need::App(_) | Need::AppOrDeploy(_) if who == Who::Outsider => Expect::NotFound,
        Need::AppOrDeploy(_) if who == Who::Deploy => Expect::Allowed,
        Need::App(_) if who == Who::Deploy => Expect::Forbidden,
        Need::App(r) | Need::AppOrDeploy(r) => {
            if role >= Some(r) {
                Expect::Allowed
            } else {
                Expect::Forbidden
            }
        }
    }
}

/// The dashboard's routes (signed in with a session); the rest are the
/// API's and git's (a token).
fn dashboard(r: &Route) -> bool {
    r.path == "/" || r.path == "/app" || r.path.starts_with("/app/") || r.path.starts_with("/admin/") || r.path == "/logout" || r.path == "/login" || r.path.starts_with("/static/")
}

struct Team {
    /// Email of each user principal.
    users: Vec<(Who, String)>,
}

impl Team {
    fn email(&self, who: Who) -> &str {
        &self.users.iter().find(|(w, _)| *w == who).unwrap().1
    }
}

async fn call(f: &Fast, token: &str, method: Method, path: &str, body: serde_json::Value) -> reqwest::Response {
    f.http().request(method, f.url(path)).bearer_auth(token).json(&body).send().await.unwrap()
}

/// A new app made by the app admin, with the viewer and the developer
/// given their roles, and a deploy token the developer made for it.
async fn app_for(f: &Fast, team: &Team, tokens: &Tokens, name: &str) -> String {
    let admin = &tokens.appadmin;
    assert_eq!(call(f, admin, Method::POST, "/apps", json!({"name": name})).await.status().as_u16(), 201);
    for (who, role) in [(Who::Viewer, "viewer"), (Who::Developer, "developer")] {
        let r = call(f, admin, Method::POST, &format!("/apps/{name}/access"), json!({"email": team.email(who), "role": role})).await;
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    }
    let r = call(f, &tokens.developer, Method::POST, "/tokens", json!({"description": "ci", "app": name, "role": "deploy"})).await;
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    let made: serde_json::Value = r.json().await.unwrap();
    made["value"].as_str().unwrap().to_owned()
}

struct Tokens {
    outsider: String,
    viewer: String,
    developer: String,
    appadmin: String,
    platform: String,
}

impl Tokens {
    fn of(&self, who: Who, deploy: &str) -> String {
        let t: &str = match who {
            Who::Outsider => &self.outsider,
            Who::Viewer => &self.viewer,
            Who::Developer => &self.developer,
            Who::AppAdmin => &self.appadmin,
            Who::PlatformAdmin => &self.platform,
            Who::Deploy => deploy,
        };
        t.to_owned()
    }
}

fn fill(path: &str, app: &str) -> String {
    path.replace("{app}", app)
        .replace("{repo}", &format!("{app}.git"))
        .replace("{email}", "nobody@example.com")
        .split('/')
        .map(|seg| if seg.starts_with('{') { "nope" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// How a request was answered, as the walk judges it.
async fn judge(r: reqwest::Response, what: &str) -> (Expect, String) {
    let status = r.status().as_u16();
    let location = r.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or_default().to_owned();
    if status == 200 && r.headers().get("content-type").is_some_and(|c| c.to_str().unwrap().starts_with("text/event-stream")) {
        return (Expect::Allowed, "a stream".into());
    }
    let body = if matches!(status, 401 | 403 | 404) { r.text().await.unwrap_or_default() } else { String::new() };
    let said = format!("{what}: {status} {location} {}", body.chars().take(300).collect::<String>());
    let verdict = match status {
        401 => panic!("a valid credential was refused: {said}"),
        // Signing out sends the browser to sign in, as it should.
        303 if location == "/login" && !what.starts_with("POST /logout ") => panic!("a signed-in session was sent to sign in: {said}"),
        500..=599 => panic!("a server error: {said}"),
        403 if body.contains("\"forbidden\"") || body.contains("needs a") || body.contains("needs an") || body.contains("only a platform admin") || body.contains("a deploy token may only") => Expect::Forbidden,
        404 if body.contains("does not exist: see `paas apps`") => Expect::NotFound,
        _ => Expect::Allowed,
    };
    (verdict, said)
}

/// Every (method, path) the source declares with `.route("PATH", get(..).post(..))`.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    crate::tidy::rust_files(&crate::tidy::root().join("server/src"), &mut files);
    let mut out = BTreeSet::new();
    for file in files {
        let code = std::fs::read_to_string(&file).unwrap();
        // `.route(` then the path's literal, on the same line or the next
        // (as rustfmt may put it).
        for piece in code.split(".route(").skip(1) {
            let Some(piece) = piece.trim_start().strip_prefix('"') else { continue };
            let path = piece.split('"').next().unwrap().to_owned();
            // The call's arguments: up to its closing parenthesis.
            let mut depth = 1;
            let end = piece.char_indices().find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            });
            let args = &piece[..end.map_or(piece.len(), |(i, _)| i)];
            for method in ["get", "post", "put", "patch", "delete"] {
                let called = args.match_indices(&format!("{method}(")).any(|(i, _)| {
                    let before = args[..i].chars().last();
                    matches!(before, Some('.' | ' ' | ':' | '('))
                });
                if called {
                    out.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
    }
    out
}

#[test]
fn every_route_in_the_source_has_one_entry_in_the_table() {
    let source = routes_in_source();
    assert!(source.len() > 60, "the scan found the routes: {source:?}");
    let table: BTreeSet<(String, String)> = ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
    let missing: Vec<_> = source.difference(&table).collect();
    assert!(missing.is_empty(), "routes without an entry in access::policy::ROUTES (say what each needs): {missing:?}");
    let stale: Vec<_> = table.difference(&source).collect();
    assert!(stale.is_empty(), "entries in access::policy::ROUTES for routes the source no longer has: {stale:?}");
}

/// The table says what the issue says the roles are (the walk below then
/// proves the server does what the table says).
#[test]
fn the_table_gives_each_role_what_it_should() {
    for r in ROUTES {
        let what = format!("{} {} ({})", r.method, r.path, r.action);
        let changes = r.method != "GET" || ["run", "addons.console", "backups.download"].contains(&r.action);
        match r.need {
            Need::App(role) | Need::AppOrDeploy(role) if changes => assert!(role >= Role::Developer, "a viewer only reads: {what}"),
            _ => {}
        }
        if r.action.starts_with("access.") && r.method != "GET" || r.action == "apps.destroy" || r.action == "addons.destroy" {
            assert_eq!(r.need, Need::App(Role::Admin), "access and destroying are an app admin's: {what}");
        }
        if let Need::AppOrDeploy(_) = r.need {
            // A build from an uploaded tree (`paas deploy`) is a push by other means.
            let deployish = r.action.starts_with("git.")
                || r.action == "builds.create"
                || r.method == "GET" && (r.action.starts_with("releases.") || r.action.starts_with("builds."));
            assert!(deployish, "a deploy token may only push and read releases and builds: {what}");
        }
        if ["users.list", "users.create", "users.remove", "audit.list"].contains(&r.action) {
            assert_eq!(r.need, Need::PlatformAdmin, "{what}");
        }
    }
    // A viewer reads the app: info, releases, dynos, logs, config names.
    for (method, path) in [
        ("GET", "/apps/{app}"),
        ("GET", "/apps/{app}/releases"),
        ("GET", "/apps/{app}/dynos"),
        ("GET", "/apps/{app}/formation"),
        ("GET", "/apps/{app}/logs"),
        ("GET", "/apps/{app}/log-stream"),
        ("GET", "/apps/{app}/config-vars"),
        ("GET", "/app/{app}"),
        ("GET", "/app/{app}/log-stream"),
    ] {
        let r = ROUTES.iter().find(|r| r.method == method && r.path == path).unwrap();
        assert!(matches!(r.need, Need::App(Role::Viewer) | Need::AppOrDeploy(Role::Viewer)), "{method} {path} is a viewer's");
    }
    // Deploying: a developer's, or the app's deploy token.
    for path in ["/{repo}/info/refs", "/{repo}/git-receive-pack"] {
        assert!(ROUTES.iter().any(|r| r.path == path && r.need == Need::AppOrDeploy(Role::Developer)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_role_as_the_table_says() {
    let f = Fast::start_with(|s| {
        // certs:auto:enable must not reach out to Let's Encrypt.
        s.certs.acme_directory = "https://127.0.0.1:9/directory".into();
    })
    .await;
    let mut users = Vec::new();
    for (who, email) in [(Who::Outsider, "out@example.com"), (Who::Viewer, "view@example.com"), (Who::Developer, "dev@example.com"), (Who::AppAdmin, "own@example.com")] {
        let r = f.send(Method::POST, "/users", json!({"email": email, "password": PASSWORD})).await;
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
        users.push((who, email.to_owned()));
    }
    let team = Team { users };
    let tokens = Tokens {
        outsider: f.token_of(team.email(Who::Outsider), PASSWORD).await,
        viewer: f.token_of(team.email(Who::Viewer), PASSWORD).await,
        developer: f.token_of(team.email(Who::Developer), PASSWORD).await,
        appadmin: f.token_of(team.email(Who::AppAdmin), PASSWORD).await,
        platform: f.token.clone(),
    };

    // A deploy token cannot sign in to the dashboard.
    let deploy = app_for(&f, &team, &tokens, "walk-dash").await;
    let refused = f.sign_in(&[("token", deploy.as_str())]).await;
    assert_eq!(refused.status().as_u16(), 403);
    assert!(Fast::session_cookie(&refused).is_none());

    let mut n = 0;
    let mut walked = 0;
    for route in ROUTES {
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        match route.need {
            Need::Public => {
                // Reachable without any credential.
                let r = f.http().request(method, f.url(route.path)).json(&json!({})).send().await.unwrap();
                let status = r.status().as_u16();
                let body = r.text().await.unwrap();
                assert!(!(status == 401 && body.contains("\"unauthorized\"")), "{} {} is public: {status} {body}", route.method, route.path);
                walked += 1;
                continue;
            }
            Need::Hook => {
                let path = format!("{}?commit={}", fill(route.path, "walk-dash"), "0".repeat(40));
                let r = f.http().request(method, f.url(&path)).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 401, "the hook's route needs its secret");
                walked += 1;
                continue;
            }
            _ => {}
        }
        for who in EVERYONE {
            if dashboard(route) && who == Who::Deploy {
                continue;
            }
            n += 1;
            let (app, deploy) = if route.need.app_scoped() || who == Who::Deploy {
                let app = format!("walk-{n}");
                let deploy = app_for(&f, &team, &tokens, &app).await;
                (app, deploy)
            } else {
                (String::new(), String::new())
            };
            let path = fill(route.path, &app);
            // A fresh token or session each time: some routes end their own.
            let token = match who {
                Who::Deploy => deploy.clone(),
                Who::PlatformAdmin => {
                    let made: serde_json::Value = f.send(Method::POST, "/tokens", json!({})).await.json().await.unwrap();
                    made["value"].as_str().unwrap().to_owned()
                }
                _ => {
                    let owner = tokens.of(who, &deploy);
                    let made: serde_json::Value = call(&f, &owner, Method::POST, "/tokens", json!({})).await.json().await.unwrap();
                    made["value"].as_str().unwrap().to_owned()
                }
            };
            let answer = if dashboard(route) {
                let signed = f.sign_in(&[("token", token.as_str())]).await;
                let cookie = Fast::session_cookie(&signed).unwrap_or_else(|| panic!("{who:?} signs in to the dashboard"));
                let csrf = f.csrf_of(&cookie, "/").await;
                let rb = Fast::browser().request(method.clone(), f.url(&path)).header("cookie", cookie);
                let rb = if method == Method::POST { rb.form(&[("csrf", csrf.as_str())]) } else { rb };
                rb.send().await.unwrap()
            } else {
                let rb = f.http().request(method.clone(), f.url(&path)).bearer_auth(&token);
                let rb = if method == Method::GET { rb } else { rb.json(&json!({})) };
                rb.send().await.unwrap()
            };
            let (got, said) = judge(answer, &format!("{} {} as {who:?}", route.method, path)).await;
            let want = expect(route.need, who);
            assert_eq!(got, want, "{} {} as {who:?} (needs {:?}): {said}", route.method, route.path, route.need);
        }
        walked += 1;
    }
    assert_eq!(walked, ROUTES.len(), "every entry walked");
}
