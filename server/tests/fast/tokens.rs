//! API tokens with a lifecycle, through the real CLI and real HTTP: made
//! with a description and an expiry and shown once, listed without their
//! values, revoked (refused on the next request: the API, git, the
//! dashboard's session), and refused once expired.

use crate::harness::Fast;
use crate::pushes::dockerfile_repo;
use crate::shared::text;
use std::time::Duration;

async fn status_with(f: &Fast, token: &str, path: &str) -> u16 {
    f.http().get(f.url(path)).bearer_auth(token).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_shown_once_listed_without_values_revoked_and_expired() {
    let f = Fast::start().await;
    let out = f.paas(&["tokens:create", "--description", "CI deploys", "--expires", "30d", "--json"], b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, value) = (made["token"]["id"].as_str().unwrap().to_owned(), made["value"].as_str().unwrap().to_owned());
    assert_eq!(made["token"]["description"], "CI deploys");
    assert!(made["token"]["expires_at"].as_str().is_some());

    // It works, and its use is recorded.
    assert_eq!(status_with(&f, &value, "/apps").await, 200);
    let listed = f.paas(&["tokens", "--json"], b"").await;
    let listed = text(&listed.stdout);
    assert!(!listed.contains(&value), "a token's value is never listed");
    let tokens: Vec<serde_json::Value> = serde_json::from_str(&listed).unwrap();
    let ci = tokens.iter().find(|t| t["id"] == id.as_str()).unwrap();
    assert_eq!(ci["state"], "active");
    assert!(ci["last_used_at"].as_str().is_some(), "{ci}");
    let table = text(&f.paas(&["tokens"], b"").await.stdout);
    assert!(table.contains("CI deploys") && table.contains("active"), "{table}");

    // A git push with it works; revoked, the next request of every kind is refused.
    let repo = dockerfile_repo();
    f.app("tok-push").await;
    let push = |token: String| {
        let url = format!("http://git:{token}@{}/tok-push.git", f.p().api_addr);
        let dir = repo.path().to_path_buf();
        async move {
            let out = tokio::task::spawn_blocking(move || crate::pushes::git(&dir, &["push", &url, "HEAD:main"])).await.unwrap();
            (out.status.success(), text(&out.stderr))
        }
    };
    let (ok, said) = push(value.clone()).await;
    assert!(ok, "{said}");
    let out = f.paas(&["tokens:revoke", &id], b"").await;
    assert!(out.status.success() && text(&out.stdout).contains("Revoked"), "{}", text(&out.stderr));
    assert_eq!(status_with(&f, &value, "/apps").await, 401, "revoked: refused at once");
    let (ok, said) = push(value.clone()).await;
    assert!(!ok, "a push with a revoked token is refused: {said}");
    let tokens: Vec<serde_json::Value> = serde_json::from_slice(&f.paas(&["tokens", "--json"], b"").await.stdout).unwrap();
    assert_eq!(tokens.iter().find(|t| t["id"] == id.as_str()).unwrap()["state"], "revoked");
    let out = f.paas(&["tokens:revoke", "no-such-token"], b"").await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));

    // An expired token is refused.
    let out = f.paas(&["tokens:create", "--expires", "1s", "--json"], b"").await;
    let short: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let short = short["value"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if status_with(&f, &short, "/apps").await == 401 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the token never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = f.paas(&["tokens:create", "--expires", "soon"], b"").await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("like 90s, 15m, 12h or 30d"), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_ends_the_dashboard_sessions_signed_in_with_it() {
    let f = Fast::start().await;
    let made: serde_json::Value = f.send(reqwest::Method::POST, "/tokens", serde_json::json!({"description": "browser"})).await.json().await.unwrap();
    let (id, value) = (made["token"]["id"].as_str().unwrap().to_owned(), made["value"].as_str().unwrap().to_owned());
    let http = Fast::browser();
    let signed = f.sign_in(&[("token", value.as_str())]).await;
    assert_eq!(signed.status().as_u16(), 303, "signed in");
    let session = Fast::session_cookie(&signed).unwrap();
    let home = http.get(f.url("/")).header("cookie", &session).send().await.unwrap();
    assert_eq!(home.status().as_u16(), 200, "the apps page");
    f.send(reqwest::Method::DELETE, &format!("/tokens/{id}"), serde_json::json!({})).await;
    let after = http.get(f.url("/")).header("cookie", &session).send().await.unwrap();
    assert_eq!(after.status().as_u16(), 303, "the session ended with its token");
    assert_eq!(after.headers()["location"], "/login");
}
