//! The API against a real server process: bad input gets a clear 4xx JSON
//! error (never a 500), and every route wants the token.

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn error_of(resp: reqwest::blocking::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let body: Value = resp.json().expect("errors are JSON");
    assert!(body["id"].is_string() && body["message"].is_string(), "{body}");
    // Every id sent is one the wire crate declares.
    assert_ne!(paas_wire::ErrorId::parse(body["id"].as_str().unwrap()), paas_wire::ErrorId::Other, "{body}");
    (status, body)
}

#[test]
fn bad_input_gets_a_clear_4xx() {
    let mut p = Platform::start();
    let app = unique_app("api");
    p.track(&app);
    let api = p.api();

    let (s, e) = error_of(api.post(p.url("/apps")).json(&json!({"name": "My_App"})).send().unwrap());
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e["message"].as_str().unwrap().contains("lowercase letters"), "{e}");

    let r = api.post(p.url("/apps")).json(&json!({"name": app})).send().unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (s, e) = error_of(api.post(p.url("/apps")).json(&json!({"name": app})).send().unwrap());
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(e["message"].as_str().unwrap().contains("already exists"), "{e}");

    let (s, e) = error_of(api.get(p.url("/apps/no-such-app")).send().unwrap());
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(e["message"].as_str().unwrap().contains("apps:create"), "{e}");

    let cv = format!("/apps/{app}/config-vars");
    for (key, want) in [("9LIVES", "is invalid"), ("PORT", "reserved"), ("PAAS_X", "reserved"), ("A;B", "is invalid")] {
        let (s, e) = error_of(api.patch(p.url(&cv)).json(&json!({ key: "v" })).send().unwrap());
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{key}");
        assert!(e["message"].as_str().unwrap().contains(want), "{key}: {e}");
    }
    let (s, _) = error_of(api.patch(p.url(&cv)).body("{not json").header("content-type", "application/json").send().unwrap());
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = error_of(api.patch(p.url(&cv)).json(&json!({"A": 5})).send().unwrap());
    assert!(s.is_client_error());

    // Nothing above made a release; a valid change makes v1, an unset v2.
    let r = api.patch(p.url(&cv)).json(&json!({"A": "1", "B": "2"})).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = api.patch(p.url(&cv)).json(&json!({"A": null})).send().unwrap();
    assert_eq!(r.json::<Value>().unwrap(), json!({"B": "2"}));
    let releases: Value = api.get(p.url(&format!("/apps/{app}/releases"))).send().unwrap().json().unwrap();
    assert_eq!(releases.as_array().unwrap().len(), 2);
    assert_eq!(releases[0]["version"], 2);
    assert_eq!(releases[0]["current"], true);

    let rel = format!("/apps/{app}/releases");
    let (s, e) = error_of(api.post(p.url(&rel)).json(&json!({"release": "v99"})).send().unwrap());
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(e["message"].as_str().unwrap().contains("v99"), "{e}");
    let (s, _) = error_of(api.get(p.url(&format!("{rel}/not-a-release"))).send().unwrap());
    assert_eq!(s, StatusCode::NOT_FOUND);

    let f = format!("/apps/{app}/formation");
    let (s, e) = error_of(api.patch(p.url(&f)).json(&json!({"updates": [{"type": "web", "quantity": 1}]})).send().unwrap());
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // The app has config releases but no build: scaling says to push first.
    assert!(e["message"].as_str().unwrap().contains("no build yet: deploy it with `git push paas main`"), "{e}");
    let (s, _) = error_of(api.patch(p.url(&f)).json(&json!({"updates": [{"type": "Web!", "quantity": 1}]})).send().unwrap());
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    let (s, _) = error_of(api.get(p.url(&format!("/apps/{app}/builds/nope"))).send().unwrap());
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = error_of(api.get(p.url("/no/such/route")).send().unwrap());
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(!p.log().contains("internal error"), "no 500s: {}", p.log());
}

#[test]
fn every_route_requires_the_token() {
    let mut p = Platform::start();
    let app = unique_app("auth");
    p.track(&app);
    let r = p.api().post(p.url("/apps")).json(&json!({"name": app})).send().unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let anon = reqwest::blocking::Client::new();
    for path in [
        "/apps".to_owned(),
        format!("/apps/{app}"),
        format!("/apps/{app}/config-vars"),
        format!("/apps/{app}/releases"),
        format!("/apps/{app}/formation"),
        format!("/apps/{app}/builds"),
        format!("/apps/{app}/dynos"),
        format!("/{app}.git/info/refs?service=git-receive-pack"),
    ] {
        let r = anon.get(p.url(&path)).send().unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        // Only git's routes ask a browser for Basic credentials (which it
        // would then send from any site's page).
        assert_eq!(r.headers().contains_key("www-authenticate"), path.contains(".git/"), "{path}");
        let r = anon.get(p.url(&path)).bearer_auth("paas_wrong").send().unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let r = anon.post(p.url(&format!("/{app}.git/git-receive-pack"))).body("0000").send().unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The hook's endpoint wants the per-start hook secret, not an API token.
    let commit = "a".repeat(40);
    let r = p.api().post(p.url(&format!("/internal/apps/{app}/builds?commit={commit}"))).send().unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The token works as a Basic password, as git sends it.
    let r = anon.get(p.url("/apps")).basic_auth("git", Some(&p.token)).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
