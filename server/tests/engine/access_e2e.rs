//! Team access on the real engine: a deploy token's `git push` deploys
//! (and its release says so), a developer's push and `paas run` work, a
//! viewer's `paas run` and a deploy token's are refused.

use crate::harness::*;
use std::time::Duration;

#[test]
fn deploy_tokens_push_developers_push_and_run_viewers_do_not() {
    let mut p = Platform::start();
    let app = unique_app("team");
    let repo = dockerfile_repo(&p, "main", "team");
    let dir = repo.path();
    p.create_app(dir, &app);
    let (dev, viewer) = (format!("dev-{app}@example.com"), format!("view-{app}@example.com"));
    for (email, role) in [(&dev, "developer"), (&viewer, "viewer")] {
        p.add_user(email);
        p.paas_ok(dir, &["access:add", email, "--role", role, "-a", &app]);
    }
    let dev_token = p.token_of(&dev);
    let viewer_token = p.token_of(&viewer);

    // CI's deploy token, made by the developer, deploys.
    let out = p.paas_cmd(dir, &["tokens:create", "-a", &app, "--role", "deploy", "--description", "ci", "--json"]).env("PAAS_TOKEN", &dev_token).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let deploy = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["value"].as_str().unwrap().to_owned();
    let (ok, said) = p.push_as(dir, &app, &deploy);
    assert!(ok, "{said}");
    p.wait_for_page(&app, "marker: team");
    let releases = p.paas_ok(dir, &["releases", "-a", &app]);
    assert!(releases.contains(&format!("by ci (deploy token of {dev})")), "{releases}");

    // The developer pushes and runs.
    p.git_ok(dir, &["commit", "-q", "--allow-empty", "-m", "second"]);
    let (ok, said) = p.push_as(dir, &app, &dev_token);
    assert!(ok, "{said}");
    let releases = p.paas_ok(dir, &["releases", "-a", &app]);
    assert!(releases.lines().find(|l| l.starts_with("v2 ")).is_some_and(|l| l.contains(&format!("by {dev}"))), "the newest release is the developer's:\n{releases}");
    let out = p.paas_cmd(dir, &["run", "-a", &app, "echo", "ran-by-dev"]).env("PAAS_TOKEN", &dev_token).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ran-by-dev"), "{}", text(&out.stdout));

    // A viewer may not run, nor push; a deploy token may not run.
    let out = p.paas_cmd(dir, &["run", "-a", &app, "echo", "nope"]).env("PAAS_TOKEN", &viewer_token).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stderr).contains("needs a developer"), "{}", text(&out.stderr));
    let (ok, said) = p.push_as(dir, &app, &viewer_token);
    assert!(!ok, "a viewer's push is refused: {said}");
    let out = p.paas_cmd(dir, &["run", "-a", &app, "echo", "nope"]).env("PAAS_TOKEN", &deploy).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stderr).contains("deploy token"), "{}", text(&out.stderr));

    // The audit log has the pushes and the run, with who made each.
    let audit: Vec<serde_json::Value> = p.api().get(p.url(&format!("/audit?app={app}&limit=100"))).send().unwrap().json().unwrap();
    let pushes: Vec<&str> = audit.iter().filter(|e| e["action"] == "git.push" && e["status"] == 200).map(|e| e["actor"].as_str().unwrap()).collect();
    assert!(pushes.contains(&dev.as_str()) && pushes.iter().any(|a| a.starts_with("ci (deploy token")), "{pushes:?}");
    assert!(audit.iter().any(|e| e["action"] == "run" && e["actor"] == dev.as_str()), "{audit:?}");
}

#[test]
fn paas_login_at_a_terminal_asks_for_the_password_without_echo() {
    let p = Platform::start();
    let email = format!("{}@example.com", unique_app("tty"));
    p.add_user(&email);
    let home = tempfile::tempdir().unwrap();
    let cmd = format!("{} login --api-url {}; echo exit=$?; sleep 60", crate::shared::cli_exe().display(), p.api_url());
    let env = [("HOME", home.path().display().to_string()), ("NO_COLOR", "1".to_owned())];
    let term = Terminal::start(&cmd, &env, 100, 30);
    term.wait_for("Email:", Duration::from_secs(10));
    term.type_line(&email);
    term.wait_for("Password:", Duration::from_secs(10));
    term.type_line(USER_PASSWORD);
    let screen = term.wait_for("exit=", Duration::from_secs(20));
    assert!(screen.contains(&format!("as {email}")) && screen.contains("exit=0"), "{screen}");
    assert!(!screen.contains(USER_PASSWORD), "the password is not echoed:\n{screen}");
    let saved = std::fs::read_to_string(home.path().join(".config/paas/credentials.json")).unwrap();
    assert!(!saved.contains(USER_PASSWORD), "a token is kept, not the password");
}
