//! The CLI's conventions, through the real `paas` binary against the
//! in-process server: `--json` on every verb (JSON, or a plain refusal),
//! exit codes by kind of failure, `-r/--remote`, colour by `NO_COLOR` and
//! `CLICOLOR_FORCE`, shell completions, `paas help`, and a login that
//! leaves every other line of `~/.netrc` as it was.

use crate::harness::Fast;
use crate::pushes::{dockerfile_repo, git};
use crate::shared::text;
use std::collections::BTreeSet;
use std::process::Output;

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// The verbs `paas help` lists.
async fn verbs(f: &Fast) -> BTreeSet<String> {
    let out = f.paas(&["help"], b"").await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let help = text(&out.stdout);
    let list = help.split("Commands:").nth(1).expect("a command list").split("\n\n").next().unwrap();
    list.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).filter(|v| v != "help").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verb_prints_json_or_says_it_does_not() {
    let f = Fast::start_with(|settings| {
        // certs:auto:enable must not reach out to Let's Encrypt.
        settings.certs.acme_directory = "https://127.0.0.1:9/directory".into();
    })
    .await;
    let app = "conv-json";
    let repo = dockerfile_repo();
    std::fs::write(repo.path().join("app.json"), r#"{"cron": [{"name": "conv", "command": "true", "schedule": "0 3 * * *"}]}"#).unwrap();
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "a cron entry"]);
    let out = f.paas(&["apps:create", app, "--json"], b"").await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let (ok, said) = f.push(repo.path(), app).await;
    assert!(ok, "{said}");
    let builds: serde_json::Value = serde_json::from_slice(&f.paas(&["builds", "-a", app, "--json"], b"").await.stdout).unwrap();
    let build = builds[0]["id"].as_str().expect("a build id").to_owned();
    let certs = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["conv.example.com".to_owned()]).unwrap();
    let (cert_file, key_file) = (certs.path().join("c.pem"), certs.path().join("k.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.key_pair.serialize_pem()).unwrap();
    let (cert_file, key_file) = (cert_file.to_str().unwrap(), key_file.to_str().unwrap());
    let api = f.p().api_url();
    let spare: serde_json::Value = f.send(reqwest::Method::POST, "/tokens", serde_json::json!({"description": "to revoke"})).await.json().await.unwrap();
    let spare = spare["token"]["id"].as_str().unwrap().to_owned();

    // In the order a user might: each must answer JSON.
    let prints: Vec<Vec<&str>> = vec![
        vec!["apps"],
        vec!["apps:info"],
        vec!["config:set", "K=v", "--wait", "10"],
        vec!["config"],
        vec!["config:get", "K"],
        vec!["config:unset", "K", "--wait", "10"],
        vec!["releases"],
        vec!["releases:info", "v1"],
        vec!["releases:output", "v1"],
        vec!["12factor"],
        vec!["metrics", "--since", "30m"],
        vec!["version"],
        vec!["open"],
        vec!["releases:rollback", "v1", "--wait", "10"],
        vec!["ps:scale", "web=1", "--wait", "10"],
        vec!["ps:resize", "web=256M", "--wait", "10"],
        vec!["ps"],
        vec!["ps:restart"],
        vec!["ps:stop", "web.1"],
        vec!["run:detached", "sleep 1000"],
        vec!["cron"],
        vec!["cron:run", "conv"],
        vec!["builds"],
        vec!["builds:output", &build],
        vec!["builds:cache:clear"],
        vec!["domains:add", "conv.example.com"],
        vec!["domains"],
        vec!["certs:add", cert_file, key_file],
        vec!["certs"],
        vec!["certs:remove", "conv.example.com"],
        vec!["domains:remove", "conv.example.com"],
        vec!["certs:auto:enable"],
        vec!["certs:auto:disable"],
        vec!["drains:add", "syslog://127.0.0.1:9"],
        vec!["drains"],
        vec!["drains:remove", "syslog://127.0.0.1:9"],
        vec!["git:remote"],
        vec!["nodes"],
        vec!["tokens:create", "--description", "conv", "--role", "deploy"],
        vec!["tokens"],
        vec!["tokens:revoke", &spare],
        vec!["apps:constraints:set", "node.labels.pool==web"],
        vec!["apps:constraints"],
        vec!["apps:constraints:clear"],
        vec!["login", "--api-url", &api],
        vec!["whoami"],
        vec!["users:create", "conv-user@example.com"],
        vec!["users"],
        vec!["access:add", "conv-user@example.com", "--role", "viewer"],
        vec!["access:update", "conv-user@example.com", "--role", "developer"],
        vec!["access"],
        vec!["audit", "-n", "5"],
        vec!["pipelines:create", "conv-pipe"],
        vec!["pipelines:add", "conv-pipe", "--stage", "staging"],
        vec!["pipelines"],
        vec!["pipelines:info", "conv-pipe"],
        vec!["pipelines:diff"],
        vec!["pipelines:remove"],
        vec!["pipelines:destroy", "conv-pipe"],
        vec!["maintenance:on"],
        vec!["maintenance"],
        vec!["maintenance:off"],
        vec!["apps:create", "conv-json-2"],
        vec!["apps:destroy", "--confirm", app],
    ];
    let refuses: Vec<Vec<&str>> = vec![
        vec!["run", "true"],
        vec!["deploy"],
        vec!["logs"],
        vec!["completions", "bash"],
        vec!["logout"],
        vec!["users:remove", "conv-user@example.com"],
        vec!["access:remove", "conv-user@example.com"],
    ];
    let mut seen = BTreeSet::new();
    for args in &prints {
        seen.insert(args[0].to_owned());
        // The flags first: `run:detached` takes what follows its command as words.
        let mut command = f.cli(&[&["-a", app, "--json"], args.as_slice()].concat());
        command.current_dir(repo.path());
        let out = Fast::finish(command, f.token.as_bytes()).await;
        assert_eq!(code(&out), 0, "paas {args:?} --json failed: {}", text(&out.stderr));
        let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&out.stdout);
        assert!(parsed.is_ok(), "paas {args:?} --json printed no JSON: {}", text(&out.stdout));
    }
    for args in &refuses {
        seen.insert(args[0].to_owned());
        let out = f.paas(&[&["-a", "conv-json-2", "--json"], args.as_slice()].concat(), b"").await;
        assert_eq!(code(&out), 2, "paas {args:?} --json: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("does not print JSON"), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "a refusal prints nothing on stdout");
    }
    // Renaming the app the others use would pull it from under them.
    let out = f.paas(&["-a", "conv-json-2", "--json", "apps:rename", "conv-json-3"], b"").await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["name"], "conv-json-3");
    seen.insert("apps:rename".to_owned());
    // Tried on the real engine (add-ons need one).
    seen.extend(crate::shared::ADDON_VERBS.iter().map(|v| v.to_string()));
    // Tried with --json where there is somewhere to promote to (`fast::pipelines`).
    seen.insert("pipelines:promote".to_owned());
    let missing: Vec<String> = verbs(&f).await.difference(&seen).cloned().collect();
    assert!(missing.is_empty(), "verbs this test does not try with --json: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_tell_usage_unreachable_refused_and_failed_apart() {
    let f = Fast::start().await;
    let app = f.app("conv-exit").await;
    assert_eq!(f.deploy(&app, "img-conv-exit").await.state, paas_wire::DeployState::Serving);

    let ok = f.paas(&["config", "-a", "conv-exit"], b"").await;
    assert_eq!(code(&ok), 0, "{}", text(&ok.stderr));
    let usage = f.paas(&["config:set", "NOEQUALS", "-a", "conv-exit"], b"").await;
    assert_eq!(code(&usage), 2, "{}", text(&usage.stderr));
    assert_eq!(code(&f.paas(&["no-such-verb"], b"").await), 2);
    assert_eq!(code(&f.paas(&["apps:info", "-a", "Not_A_Name"], b"").await), 2);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut command = f.cli(&["apps"]);
    command.env("PAAS_API_URL", format!("http://{closed}"));
    let unreachable = Fast::finish(command, b"").await;
    assert_eq!(code(&unreachable), 3, "{}", text(&unreachable.stderr));
    assert!(text(&unreachable.stderr).contains("cannot reach the paas API"), "{}", text(&unreachable.stderr));

    let refused = f.paas(&["apps:info", "-a", "conv-nosuch"], b"").await;
    assert_eq!(code(&refused), 4, "{}", text(&refused.stderr));
    let mut command = f.cli(&["apps"]);
    command.env("PAAS_TOKEN", "not-a-token");
    assert_eq!(code(&Fast::finish(command, b"").await), 4);

    // A change whose dynos do not come up: the server took it, it failed.
    f.fake.crash_image("img-conv-exit", 1, &["boom"]);
    let failed = f.paas(&["config:set", "K=v", "-a", "conv-exit", "--wait", "10"], b"").await;
    assert_eq!(code(&failed), 1, "{}{}", text(&failed.stdout), text(&failed.stderr));
    assert!(text(&failed.stdout).contains("failed"), "{}", text(&failed.stdout));

    let help = text(&f.paas(&["--help"], b"").await.stdout);
    assert!(help.contains("Exit codes:") && help.contains("3  unreachable") && help.contains("4  refused"), "{help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_flag_picks_the_app_behind_any_git_remote() {
    let f = Fast::start().await;
    f.app("conv-remote").await;
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q", "-b", "main"]);
    let url = format!("{}/conv-remote.git", f.p().api_url());
    git(repo.path(), &["remote", "add", "staging", &url]);

    let mut command = f.cli(&["apps:info", "-r", "staging", "--json"]);
    command.current_dir(repo.path());
    let out = Fast::finish(command, b"").await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["name"], "conv-remote");

    // Without -r: the remote paas, which this repo lacks, and says so.
    let mut command = f.cli(&["apps:info"]);
    command.current_dir(repo.path());
    let out = Fast::finish(command, b"").await;
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("git remote named paas"), "{}", text(&out.stderr));

    // git:remote sets the remote -r names.
    let mut command = f.cli(&["git:remote", "-a", "conv-remote", "--remote", "prod"]);
    command.current_dir(repo.path());
    assert_eq!(code(&Fast::finish(command, b"").await), 0);
    let set = git(repo.path(), &["remote", "get-url", "prod"]);
    assert_eq!(text(&set.stdout).trim(), url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colour_follows_no_color_and_clicolor_force() {
    let f = Fast::start().await;
    f.app("conv-colour").await;
    let run = |env: &[(&str, &str)]| {
        let mut command = f.cli(&["apps"]);
        command.env_remove("NO_COLOR").env_remove("CLICOLOR").env("TERM", "xterm");
        for (k, v) in env {
            command.env(k, v);
        }
        Fast::finish(command, b"")
    };
    let escapes = |out: &Output| out.stdout.contains(&0x1b);
    assert!(!escapes(&run(&[]).await), "not a terminal: no colour");
    assert!(escapes(&run(&[("CLICOLOR_FORCE", "1")]).await), "CLICOLOR_FORCE: colour even into a pipe");
    assert!(!escapes(&run(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]).await), "NO_COLOR wins");
    let plain = run(&[]).await;
    assert!(text(&plain.stdout).contains("=== Apps") && text(&plain.stdout).contains("conv-colour"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_help() {
    let f = Fast::start().await;
    for (shell, marker) in [("bash", "_paas()"), ("zsh", "#compdef paas"), ("fish", "complete -c paas")] {
        let out = f.paas(&["completions", shell], b"").await;
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains(marker) && script.contains("config:set"), "{shell}: {}", &script[..script.len().min(300)]);
    }
    let out = f.paas(&["completions", "tcsh"], b"").await;
    assert_eq!(code(&out), 2);
    let help = f.paas(&["help", "config:set"], b"").await;
    assert_eq!(code(&help), 0);
    assert!(text(&help.stdout).contains("Usage: paas config:set"), "{}", text(&help.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_changes_only_its_own_netrc_entry() {
    let f = Fast::start().await;
    let home = &f.settings.server.data_dir;
    let host = f.p().api_addr.ip().to_string();
    let before = format!(
        "# work machines\nmachine git.example.com login me password s3cret\n\nmacdef init\nmachine {host} login evil password in-a-macro\n\nmachine {host} login paas password stale\n# trailing comment\n"
    );
    std::fs::write(home.join(".netrc"), &before).unwrap();
    let out = f.paas(&["login", "--api-url", &f.p().api_url()], f.token.as_bytes()).await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let after = std::fs::read_to_string(home.join(".netrc")).unwrap();
    let expected = before.replace(&format!("machine {host} login paas password stale\n"), "")
        + &format!("machine {host}\n  login paas\n  password {}\n", f.token);
    assert_eq!(after, expected);
}
