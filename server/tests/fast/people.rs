//! People, through the real CLI and real HTTP: users with passwords,
//! `paas login`/`whoami`/`logout`, roles on apps (a viewer sees config
//! names, not values; the last admin stays), deploy tokens that push and
//! nothing else, who made each release, the audit log, the rate limit on
//! failed sign-ins, and dashboard sessions that outlive a restart.

use crate::harness::Fast;
use crate::pushes::dockerfile_repo;
use crate::shared::text;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";

/// The CLI as someone else: their own HOME, no PAAS_TOKEN (their saved login), or `token`.
fn as_user(f: &Fast, home: &std::path::Path, token: Option<&str>, args: &[&str]) -> std::process::Command {
    let mut c = f.cli(args);
    c.env("HOME", home).env("XDG_CONFIG_HOME", home.join(".config"));
    match token {
        Some(t) => c.env("PAAS_TOKEN", t),
        None => c.env_remove("PAAS_TOKEN"),
    };
    c
}

async fn add_user(f: &Fast, email: &str) {
    let out = f.paas(&["users:create", email], format!("{PASSWORD}\n").as_bytes()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_log_in_with_passwords_and_roles_limit_what_they_see() {
    let f = Fast::start().await;
    // Bad input says what to do.
    let out = f.paas(&["users:create", "not-an-email"], format!("{PASSWORD}\n").as_bytes()).await;
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stderr).contains("alice@example.com"), "{}", text(&out.stderr));
    let out = f.paas(&["users:create", "short@example.com"], b"short\n").await;
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stderr).contains("at least 10 characters"), "{}", text(&out.stderr));
    add_user(&f, "Dev@Example.com").await;
    add_user(&f, "view@example.com").await;
    let again = f.paas(&["users:create", "dev@example.com"], format!("{PASSWORD}\n").as_bytes()).await;
    assert_eq!(again.status.code(), Some(4), "a user twice");

    // `paas login` reads an email and a password from standard input.
    let home = tempfile::tempdir().unwrap();
    let login = as_user(&f, home.path(), None, &["login", "--api-url", &f.p().api_url()]);
    let out = Fast::finish(login, format!("dev@example.com\n{PASSWORD}\n").as_bytes()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("as dev@example.com"), "{}", text(&out.stdout));
    let whoami = Fast::finish(as_user(&f, home.path(), None, &["whoami"]), b"").await;
    assert_eq!(text(&whoami.stdout).trim(), "dev@example.com");
    let wrong = Fast::finish(as_user(&f, home.path(), None, &["login", "--api-url", &f.p().api_url()]), b"dev@example.com\nnot the password\n").await;
    assert_eq!(wrong.status.code(), Some(4));
    assert!(text(&wrong.stderr).contains("do not match"), "{}", text(&wrong.stderr));

    // The developer creates an app: its admin. Others do not see it.
    let out = Fast::finish(as_user(&f, home.path(), None, &["apps:create", "ppl-shop"]), b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let view = f.token_of("view@example.com", PASSWORD).await;
    let apps: Vec<serde_json::Value> = f.http().get(f.url("/apps")).bearer_auth(&view).send().await.unwrap().json().await.unwrap();
    assert!(apps.is_empty(), "an app without a role is not listed: {apps:?}");
    let r = f.http().get(f.url("/apps/ppl-shop")).bearer_auth(&view).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let missing = f.http().get(f.url("/apps/ppl-none")).bearer_auth(&view).send().await.unwrap();
    assert_eq!(
        r.text().await.unwrap().replace("ppl-shop", "X"),
        missing.text().await.unwrap().replace("ppl-none", "X"),
        "an app without a role answers as one that does not exist"
    );

    // Roles: add, update; the viewer reads config names, not values.
    let dev = |args: &[&str]| as_user(&f, home.path(), None, args);
    let out = Fast::finish(dev(&["access:add", "view@example.com", "--role", "viewer", "-a", "ppl-shop"]), b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = Fast::finish(dev(&["access:add", "view@example.com", "--role", "viewer", "-a", "ppl-shop"]), b"").await;
    assert!(text(&out.stderr).contains("access:update"), "adding twice says how to change it: {}", text(&out.stderr));
    let out = Fast::finish(dev(&["access:add", "nobody@example.com", "--role", "viewer", "-a", "ppl-shop"]), b"").await;
    assert!(text(&out.stderr).contains("users:create"), "{}", text(&out.stderr));
    let out = Fast::finish(dev(&["access:update", "view@example.com", "--role", "owner", "-a", "ppl-shop"]), b"").await;
    assert!(text(&out.stderr).contains("viewer, developer or admin"), "{}", text(&out.stderr));
    let out = Fast::finish(dev(&["config:set", "SECRET=s3cret", "--no-wait", "-a", "ppl-shop"]), b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = Fast::finish(as_user(&f, home.path(), Some(&view), &["config", "-a", "ppl-shop"]), b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("SECRET") && !text(&out.stdout).contains("s3cret"), "{}", text(&out.stdout));
    let vars: serde_json::Value = f.http().get(f.url("/apps/ppl-shop/config-vars")).bearer_auth(&view).send().await.unwrap().json().await.unwrap();
    assert_eq!(vars, json!({"SECRET": null}));
    let out = Fast::finish(as_user(&f, home.path(), Some(&view), &["config:set", "X=1", "-a", "ppl-shop"]), b"").await;
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stderr).contains("you are a viewer of this app and this needs a developer"), "{}", text(&out.stderr));

    // Releases say who made them.
    let out = Fast::finish(dev(&["releases", "-a", "ppl-shop"]), b"").await;
    assert!(text(&out.stdout).contains("by dev@example.com"), "{}", text(&out.stdout));

    // The last admin stays.
    let out = Fast::finish(dev(&["access:remove", "dev@example.com", "-a", "ppl-shop"]), b"").await;
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stderr).contains("last admin of ppl-shop"), "{}", text(&out.stderr));
    let out = Fast::finish(dev(&["access:update", "dev@example.com", "--role", "developer", "-a", "ppl-shop"]), b"").await;
    assert!(text(&out.stderr).contains("last admin"), "{}", text(&out.stderr));
    let out = f.paas(&["users:remove", "dev@example.com"], b"").await;
    assert!(text(&out.stderr).contains("last admin of ppl-shop"), "{}", text(&out.stderr));
    let out = f.paas(&["users:remove", "admin@localhost"], b"").await;
    assert!(text(&out.stderr).contains("the platform's last admin"), "{}", text(&out.stderr));
    let out = Fast::finish(dev(&["users"]), b"").await;
    assert!(text(&out.stderr).contains("only a platform admin"), "{}", text(&out.stderr));

    // The audit log has who did what from where; only admins read it.
    let audit: Vec<serde_json::Value> = serde_json::from_slice(&f.paas(&["audit", "--json"], b"").await.stdout).unwrap();
    let set = audit.iter().find(|e| e["action"] == "config.set").expect("the config change is in the audit log");
    assert_eq!(set["actor"], "dev@example.com");
    assert_eq!(set["app"], "ppl-shop");
    assert_eq!(set["address"], "127.0.0.1");
    assert!(audit.iter().any(|e| e["action"] == "auth.failed" && e["actor"] == "dev@example.com"), "the failed sign-in too");
    assert!(audit.iter().any(|e| e["action"] == "access.add" && e["status"] == 201));
    let out = Fast::finish(as_user(&f, home.path(), Some(&view), &["audit"]), b"").await;
    assert_eq!(out.status.code(), Some(4));

    // `paas logout` revokes the saved token.
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(home.path().join(".config/paas/credentials.json")).unwrap()).unwrap();
    let token = saved["token"].as_str().unwrap().to_owned();
    let out = Fast::finish(dev(&["logout"]), b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(f.http().get(f.url("/apps")).bearer_auth(&token).send().await.unwrap().status().as_u16(), 401);
    assert!(!home.path().join(".config/paas/credentials.json").exists());
    assert!(!std::fs::read_to_string(home.path().join(".netrc")).unwrap_or_default().contains(&token));

    // A removed user's tokens stop working.
    let out = f.paas(&["users:remove", "view@example.com"], b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(f.http().get(f.url("/apps")).bearer_auth(&view).send().await.unwrap().status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_token_pushes_to_its_app_and_does_nothing_else() {
    let f = Fast::start().await;
    add_user(&f, "ci-owner@example.com").await;
    let owner = f.token_of("ci-owner@example.com", PASSWORD).await;
    let send = |token: &str, method: Method, path: &str, body: serde_json::Value| {
        let rb = f.http().request(method, f.url(path)).bearer_auth(token).json(&body);
        async move { rb.send().await.unwrap() }
    };
    for app in ["ppl-ci", "ppl-other"] {
        assert_eq!(send(&owner, Method::POST, "/apps", json!({"name": app})).await.status().as_u16(), 201);
    }
    let mut cmd = f.cli(&["tokens:create", "-a", "ppl-ci", "--role", "deploy", "--description", "GitHub Actions", "--json"]);
    cmd.env("PAAS_TOKEN", &owner);
    let out = Fast::finish(cmd, b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let deploy = made["value"].as_str().unwrap().to_owned();
    assert_eq!(made["token"]["app"], "ppl-ci");

    // It pushes to its app; the release says it did.
    let repo = dockerfile_repo();
    let push = |app: &str| {
        let url = format!("http://git:{deploy}@{}/{app}.git", f.p().api_addr);
        let dir = repo.path().to_path_buf();
        async move {
            let out = tokio::task::spawn_blocking(move || crate::pushes::git(&dir, &["push", &url, "HEAD:main"])).await.unwrap();
            (out.status.success(), text(&out.stderr))
        }
    };
    let (ok, said) = push("ppl-ci").await;
    assert!(ok, "{said}");
    let releases: Vec<serde_json::Value> = send(&deploy, Method::GET, "/apps/ppl-ci/releases", json!({})).await.json().await.unwrap();
    assert_eq!(releases[0]["actor"], "GitHub Actions (deploy token of ci-owner@example.com)");
    let builds = send(&deploy, Method::GET, "/apps/ppl-ci/builds", json!({})).await;
    assert_eq!(builds.status().as_u16(), 200, "it reads its builds");

    // Nothing else: another app, the app's config, its dynos, apps, tokens.
    let (ok, said) = push("ppl-other").await;
    assert!(!ok && said.contains("not found"), "another app is, to it, no app: {said}");
    for (method, path) in [
        (Method::GET, "/apps/ppl-ci"),
        (Method::GET, "/apps/ppl-ci/config-vars"),
        (Method::PATCH, "/apps/ppl-ci/config-vars"),
        (Method::DELETE, "/apps/ppl-ci/dynos"),
        (Method::GET, "/apps"),
        (Method::POST, "/tokens"),
    ] {
        let r = send(&deploy, method.clone(), path, json!({})).await;
        assert_eq!(r.status().as_u16(), 403, "{method} {path}");
    }
    // A viewer cannot make one.
    add_user(&f, "ci-viewer@example.com").await;
    let viewer = f.token_of("ci-viewer@example.com", PASSWORD).await;
    send(&owner, Method::POST, "/apps/ppl-ci/access", json!({"email": "ci-viewer@example.com", "role": "viewer"})).await;
    let r = send(&viewer, Method::POST, "/tokens", json!({"app": "ppl-ci", "role": "deploy"})).await;
    assert_eq!(r.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_rate_limited_and_recover() {
    let f = Fast::start_with(|s| {
        s.access.failures = 3;
        s.access.window = Duration::from_secs(2);
    })
    .await;
    add_user(&f, "rate@example.com").await;
    let login = |password: &str| {
        let rb = f.http().post(f.url("/auth/tokens")).json(&json!({"email": "rate@example.com", "password": password}));
        async move { rb.send().await.unwrap() }
    };
    for _ in 0..3 {
        assert_eq!(login("wrong password!").await.status().as_u16(), 401);
    }
    let limited = login(PASSWORD).await;
    assert_eq!(limited.status().as_u16(), 429, "even the right password, while limited");
    let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert!(limited.text().await.unwrap().contains("try again in"));
    // Bad tokens from this address are limited too.
    let bad = f.http().get(f.url("/apps")).bearer_auth("not-a-token").send().await.unwrap();
    assert_eq!(bad.status().as_u16(), 429);
    // The dashboard's sign-in as well.
    let page = f.sign_in(&[("email", "rate@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(page.status().as_u16(), 429);
    assert!(page.headers().contains_key("retry-after"));
    // It recovers when the window ends.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = login(PASSWORD).await;
        if r.status().as_u16() == 201 {
            break;
        }
        assert_eq!(r.status().as_u16(), 429);
        assert!(Instant::now() < deadline, "the limit never lifted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let audit: Vec<serde_json::Value> = f.send(Method::GET, "/audit?limit=100", json!({})).await.json().await.unwrap();
    assert!(audit.iter().any(|e| e["action"] == "auth.rate_limited"), "{audit:?}");
    assert!(audit.iter().filter(|e| e["action"] == "auth.failed").count() >= 3);
}

async fn call(f: &Fast, token: &str, method: Method, path: &str, body: serde_json::Value) -> reqwest::Response {
    f.http().request(method, f.url(path)).bearer_auth(token).json(&body).send().await.unwrap()
}

async fn page(f: &Fast, cookie: String, path: &str) -> reqwest::Response {
    Fast::browser().get(f.url(path)).header("cookie", cookie).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_sessions_sign_in_with_passwords_and_outlive_a_restart() {
    let mut f = Fast::start().await;
    add_user(&f, "dash-dev@example.com").await;
    add_user(&f, "dash-view@example.com").await;
    let dev = f.token_of("dash-dev@example.com", PASSWORD).await;
    assert_eq!(call(&f, &dev, Method::POST, "/apps", json!({"name": "ppl-dash"})).await.status().as_u16(), 201);
    call(&f, &dev, Method::POST, "/apps/ppl-dash/access", json!({"email": "dash-view@example.com", "role": "viewer"})).await;

    let wrong = f.sign_in(&[("email", "dash-view@example.com"), ("password", "not the password")]).await;
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.text().await.unwrap().contains("do not match"));
    let signed = f.sign_in(&[("email", "dash-view@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(signed.status().as_u16(), 303);
    let cookie = Fast::session_cookie(&signed).unwrap();
    // A viewer's page has no controls a viewer may not use.
    let app = page(&f, cookie.clone(), "/app/ppl-dash").await;
    assert_eq!(app.status().as_u16(), 200);
    let html = app.text().await.unwrap();
    for control in ["/app/ppl-dash/config\"", "/app/ppl-dash/formation", "/app/ppl-dash/destroy", "/app/ppl-dash/restart", "/app/ppl-dash/addons\""] {
        assert!(!html.contains(control), "a viewer sees no {control} form");
    }
    assert!(html.contains("/app/ppl-dash/access"));

    // Posting one anyway is refused.
    let csrf = f.csrf_of(&cookie, "/").await;
    let post = Fast::browser()
        .post(f.url("/app/ppl-dash/config"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("key", "X"), ("value", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 403);
    assert!(post.text().await.unwrap().contains("needs a developer"));

    // A server restart keeps the session.
    f.restart().await;
    let after = page(&f, cookie.clone(), "/app/ppl-dash").await;
    assert_eq!(after.status().as_u16(), 200, "still signed in after a restart");

    // The app's admin manages access from the dashboard.
    let admin = f.sign_in(&[("email", "dash-dev@example.com"), ("password", PASSWORD)]).await;
    let admin = Fast::session_cookie(&admin).unwrap();
    let access = page(&f, admin.clone(), "/app/ppl-dash/access").await.text().await.unwrap();
    assert!(access.contains("dash-view@example.com") && access.contains("access-add"), "{access}");
    let csrf = f.csrf_of(&admin, "/app/ppl-dash/access").await;
    let post = Fast::browser()
        .post(f.url("/app/ppl-dash/access"))
        .header("cookie", &admin)
        .form(&[("csrf", csrf.as_str()), ("email", "dash-view@example.com"), ("role", "developer")])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 303);
    let roles: Vec<serde_json::Value> = call(&f, &dev, Method::GET, "/apps/ppl-dash/access", json!({})).await.json().await.unwrap();
    assert!(roles.iter().any(|r| r["email"] == "dash-view@example.com" && r["role"] == "developer"), "{roles:?}");
    // Not a platform admin: no users page.
    assert_eq!(page(&f, admin.clone(), "/admin/users").await.status().as_u16(), 403);

    // Signing out ends the session in the store.
    let csrf = f.csrf_of(&cookie, "/").await;
    let out = Fast::browser().post(f.url("/logout")).header("cookie", &cookie).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(out.status().as_u16(), 303);
    let gone = page(&f, cookie, "/").await;
    assert_eq!(gone.headers()["location"], "/login");
}

/// `paas-server user:create` / `user:password`, on the running server's store.
async fn server_cmd(f: &Fast, args: &[&str], input: &str) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_paas-server"));
    c.args(args)
        .env("PAAS_DATA_DIR", &f.settings.server.data_dir)
        .env_remove("DATABASE_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    Fast::finish(c, input.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_makes_admins_and_sets_passwords_read_from_a_prompt() {
    let f = Fast::start().await;
    let signs_in = |email: &'static str| {
        let rb = f.http().post(f.url("/auth/tokens")).json(&json!({"email": email, "password": PASSWORD}));
        async move { rb.send().await.unwrap().status().as_u16() }
    };
    // The first admin (who owns the admin token) has no password until one is set.
    assert_eq!(signs_in("admin@localhost").await, 401);
    let out = server_cmd(&f, &["user:password", "admin@localhost"], &format!("{PASSWORD}\n")).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(signs_in("admin@localhost").await, 201);
    let out = server_cmd(&f, &["user:create", "boss@example.com", "--admin"], &format!("{PASSWORD}\n")).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains(PASSWORD) && !text(&out.stderr).contains(PASSWORD));
    let users: Vec<serde_json::Value> = f.send(Method::GET, "/users", json!({})).await.json().await.unwrap();
    assert!(users.iter().any(|u| u["email"] == "boss@example.com" && u["admin"] == true), "{users:?}");
    assert_eq!(signs_in("boss@example.com").await, 201);
    // Bad input says what to do.
    let out = server_cmd(&f, &["user:create", "boss@example.com"], &format!("{PASSWORD}\n")).await;
    assert!(!out.status.success() && text(&out.stderr).contains("user:password"), "{}", text(&out.stderr));
    let out = server_cmd(&f, &["user:create", "x@example.com"], "short\n").await;
    assert!(!out.status.success() && text(&out.stderr).contains("at least 10"), "{}", text(&out.stderr));
    let out = server_cmd(&f, &["user:password", "nobody@example.com"], &format!("{PASSWORD}\n")).await;
    assert!(!out.status.success() && text(&out.stderr).contains("user:create"), "{}", text(&out.stderr));
}
