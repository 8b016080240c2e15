//! `paas run` end to end: the real CLI, a real `paas-server` process, the
//! real Docker engine, a real terminal (tmux) and real pipes.

use crate::harness::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// An app whose release runs the busybox test image, deployed.
fn deployed(p: &mut Platform, prefix: &str) -> (tempfile::TempDir, String) {
    let app = unique_app(prefix);
    let repo = dockerfile_repo(p, "main", "run");
    p.create_app(repo.path(), &app);
    p.paas_ok(repo.path(), &["config:set", "-a", &app, "FROM_CONFIG=configured", "--no-wait"]);
    p.push_ok(repo.path(), &app);
    (repo, app)
}

/// `paas ps` of the app.
fn ps(p: &Platform, dir: &Path, app: &str) -> String {
    p.paas_ok(dir, &["ps", "-a", app])
}

/// The app's one-off containers, running or not.
fn one_offs(app: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label=paas.app={app}"), "--filter", "label=paas.kind=run"])
        .output()
        .unwrap();
    text(&out.stdout).lines().map(str::to_owned).collect()
}

fn wait_no_one_offs(app: &str, what: &str) {
    poll(Duration::from_secs(30), what, || one_offs(app).is_empty().then_some(()));
}

#[test]
fn a_real_terminal_sizes_signals_exit_codes_and_restores_itself() {
    let mut p = Platform::start();
    // A buildpack app on the Debian stack, with a .profile.d script of its
    // own, as Heroku apps have.
    let app = unique_app("run-tty");
    let repo = fixture_repo(&p, "procfile");
    std::fs::create_dir_all(repo.path().join(".profile.d")).unwrap();
    std::fs::write(repo.path().join(".profile.d/mark.sh"), "export PROFILE_MARK=sourced\n").unwrap();
    p.git_ok(repo.path(), &["add", "-A"]);
    p.git_ok(repo.path(), &["commit", "-qm", "a .profile.d script"]);
    p.create_app(repo.path(), &app);
    p.paas_ok(repo.path(), &["config:set", "-a", &app, "FROM_CONFIG=configured", "--no-wait"]);
    p.push_ok(repo.path(), &app);
    let cli = cli_exe();
    let env = [("PAAS_API_URL", p.api_url()), ("PAAS_TOKEN", p.token.clone()), ("HOME", p.home.path().display().to_string())];
    // After the CLI ends, the same terminal says how it ended and whether
    // it is back in cooked mode with echo.
    let cmd = format!(
        "{} run -a {app} bash; echo CLI-EXIT=$?; echo \"TTY:$(stty -a | tr ' ' '\\n' | grep -x -e icanon -e echo | tr '\\n' ' '):END\"; sleep 60",
        cli.display()
    );
    let term = Terminal::start(&cmd, &env, 100, 30);
    term.wait_for(&format!("on {app}... up, run.1"), Duration::from_secs(30));
    // `paas run bash` gets a shell where .profile.d has run.
    term.type_line("echo ready-$PROFILE_MARK");
    term.wait_for("ready-sourced", Duration::from_secs(20));

    // The local size at start, then after a resize.
    term.type_line("stty size");
    term.wait_for("30 100", Duration::from_secs(10));
    term.resize(120, 40);
    let resized = Instant::now();
    poll(Duration::from_secs(10), "the dyno's terminal to follow the resize", || {
        term.type_line("echo size=$(stty size)=");
        term.screen(false).contains("size=40 120=").then_some(())
    });
    eprintln!("resize seen after {:?}", resized.elapsed());

    // A one-off dyno shows in `ps` as run.1 with its command, and never as
    // part of the formation.
    let listed = ps(&p, repo.path(), &app);
    let line = listed.lines().find(|l| l.starts_with("run.1")).unwrap_or_else(|| panic!("no run.1 in:\n{listed}"));
    assert!(line.contains(" up ") && line.trim_end().ends_with("bash"), "{line}");
    let formation = p.api().get(p.url(&format!("/apps/{app}/formation"))).send().unwrap().text().unwrap();
    assert!(!formation.contains("\"run\""), "{formation}");

    // Ctrl-C and Ctrl-\ reach the process, not the CLI.
    term.type_line("sleep 100");
    std::thread::sleep(Duration::from_millis(300));
    term.keys(&["C-c"]);
    term.type_line("echo after-int=$?");
    term.wait_for("after-int=130", Duration::from_secs(10));
    term.type_line("sleep 100");
    std::thread::sleep(Duration::from_millis(300));
    term.keys(&["C-\\"]);
    term.type_line("echo after-quit=$?");
    term.wait_for("after-quit=131", Duration::from_secs(10));
    term.type_line("echo $FROM_CONFIG-$DYNO");
    term.wait_for("configured-run.1", Duration::from_secs(10));

    // The command's exit code is the CLI's, and the terminal is restored.
    term.type_line("exit 5");
    let screen = term.wait_for(":END", Duration::from_secs(20));
    assert!(screen.contains("CLI-EXIT=5"), "{screen}");
    let restored = screen.lines().find(|l| l.starts_with("TTY:")).unwrap_or_default();
    assert!(restored.contains("icanon") && restored.contains("echo"), "the terminal is cooked again: {restored:?}\n{screen}");
    wait_no_one_offs(&app, "run.1 to be removed once it ended");
    let log = p.paas_ok(repo.path(), &["logs", "-a", &app, "-p", "run.1"]);
    assert!(log.contains("Process exited with status 5") && log.contains("State changed from up to complete"), "{log}");

    // --no-tty forces pipes on a terminal.
    let piped = Terminal::start(
        &format!("{} run -a {app} --no-tty 'test -t 0 && echo IN-A-TTY || echo IN-PIPES'; echo DONE-$?; sleep 60", cli.display()),
        &env,
        100,
        30,
    );
    let screen = piped.wait_for("DONE-", Duration::from_secs(30));
    assert!(screen.contains("IN-PIPES") && screen.contains("DONE-0"), "{screen}");

    // A dropped connection (the server dies) restores the terminal too.
    let term = Terminal::start(&cmd, &env, 100, 30);
    term.type_line("echo again-$PROFILE_MARK");
    term.wait_for("again-sourced", Duration::from_secs(30));
    p.kill();
    let screen = term.wait_for(":END", Duration::from_secs(20));
    assert!(screen.contains("connection to the server was lost") && screen.contains("CLI-EXIT=255"), "{screen}");
    let restored = screen.lines().find(|l| l.starts_with("TTY:")).unwrap_or_default();
    assert!(restored.contains("icanon") && restored.contains("echo"), "the terminal is cooked again: {restored:?}\n{screen}");
    p.boot();
    wait_no_one_offs(&app, "the orphaned run to be removed after the restart");
}

#[test]
fn pipes_carry_bytes_streams_end_of_input_and_exit_codes() {
    let mut p = Platform::start();
    let (repo, app) = deployed(&mut p, "run-pipe");
    let dir = repo.path();
    let run = |args: &[&str], input: &[u8]| {
        let mut cmd = p.paas_cmd(dir, &[&["run", "-a", &app][..], args].concat());
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        out
    };

    // `echo hi | paas run cat`: the end of input reaches the process.
    let out = run(&["cat"], b"hi\n");
    assert_eq!(text(&out.stdout), "hi\n", "{}", text(&out.stderr));
    assert!(out.status.success());

    // 10 MB of random bytes through `cat`, byte for byte.
    let mut blob = vec![0u8; 10 * 1024 * 1024];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut blob).unwrap();
    let out = run(&["cat"], &blob);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout.len(), blob.len());
    assert!(out.stdout == blob, "the bytes came back changed");

    // stdout and stderr stay apart; the exit code is the command's.
    let out = run(&["sh", "-c", "echo to-out; echo to-err >&2; exit 7"], b"");
    assert_eq!(text(&out.stdout), "to-out\n");
    assert_eq!(text(&out.stderr), "to-err\n");
    assert_eq!(out.status.code(), Some(7));

    // The release's config, with -e on top for this run only.
    let out = run(&["-e", "EXTRA=given", "echo $FROM_CONFIG $EXTRA $DYNO"], b"");
    assert!(text(&out.stdout).starts_with("configured given run."), "{}", text(&out.stdout));

    // A dyno over its memory limit says so.
    let out = run(&["--size", "64M", "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"], b"");
    assert_eq!(out.status.code(), Some(137), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stderr).contains("killed for using more memory than its limit (64M)"), "{}", text(&out.stderr));

    // Bad input is refused before anything starts, saying what to do.
    let out = run(&["--size", "lots", "true"], b"");
    assert!(!out.status.success() && text(&out.stderr).contains("size"), "{}", text(&out.stderr));
    let out = run(&["-e", "PAAS_X=1", "true"], b"");
    assert!(!out.status.success() && text(&out.stderr).contains("PAAS_"), "{}", text(&out.stderr));
    let out = p.paas_cmd(dir, &["run", "-a", "no-such-app-here", "true"]).output().unwrap();
    assert!(!out.status.success() && text(&out.stderr).contains("does not exist"), "{}", text(&out.stderr));
    let out = p.paas_cmd(dir, &["run", "-a", &app, "true"]).env("PAAS_TOKEN", "not-a-token").output().unwrap();
    assert!(!out.status.success() && text(&out.stderr).to_lowercase().contains("token"), "{}", text(&out.stderr));
    wait_no_one_offs(&app, "every run to be removed once it ended");
}

/// An upgrade request to the attach WebSocket, raw: the status line.
fn upgrade_status(p: &Platform, path: &str, token: Option<&str>) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", p.api_port)).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{auth}\r\n"
    )
    .unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    text(&buf[..n]).lines().next().unwrap_or_default().to_owned()
}

#[test]
fn detached_runs_log_and_end_and_attached_ones_die_with_their_client_or_the_server() {
    let mut p = Platform::start_with(&[("PAAS_RUN_MAX_SECONDS", "20")]);
    let (repo, app) = deployed(&mut p, "run-bg");
    let dir = repo.path();
    let spec = "%7B%22command%22%3A%22true%22%7D";
    assert!(upgrade_status(&p, &format!("/apps/{app}/run?spec={spec}"), None).contains("401"));
    assert!(upgrade_status(&p, &format!("/apps/{app}/run?spec={spec}"), Some("wrong")).contains("401"));
    assert!(upgrade_status(&p, &format!("/apps/not-{app}/run?spec={spec}"), Some(&p.token)).contains("404"));
    assert!(upgrade_status(&p, &format!("/apps/{app}/run?spec={spec}"), Some(&p.token)).contains("101"));

    // run:detached returns at once; the output goes to the logs.
    let said = p.paas_ok(dir, &["run:detached", "-a", &app, "echo detached says $FROM_CONFIG"]);
    let name = said.split("up, ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().to_owned();
    assert!(name.starts_with("run."), "{said}");
    poll(Duration::from_secs(30), "the detached output in the logs", || {
        let log = p.paas_ok(dir, &["logs", "-a", &app, "-p", &name]);
        (log.contains(&format!("app[{name}]: detached says configured")) && log.contains("State changed from up to complete"))
            .then_some(())
    });
    wait_no_one_offs(&app, "the detached run to be removed once it ended");

    // A long one shows in ps, and `ps:stop` ends it.
    let said = p.paas_ok(dir, &["run:detached", "-a", &app, "sleep 1000"]);
    let long = said.split("up, ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().to_owned();
    assert!(ps(&p, dir, &app).contains(&long));
    p.paas_ok(dir, &["ps:stop", "-a", &app, &long]);
    wait_no_one_offs(&app, "the stopped run to be removed");

    // One that outlives PAAS_RUN_MAX_SECONDS is stopped, across a restart
    // of the server.
    let said = p.paas_ok(dir, &["run:detached", "-a", &app, "sleep 1000"]);
    let capped = said.split("up, ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().to_owned();
    p.kill();
    p.boot();
    assert!(ps(&p, dir, &app).contains(&capped), "a detached run survives a restart of the server");
    poll(Duration::from_secs(60), "the run to be stopped at its longest lifetime", || {
        let log = p.paas_ok(dir, &["logs", "-a", &app, "-p", &capped]);
        log.contains("longest a one-off dyno may run").then_some(())
    });
    wait_no_one_offs(&app, "the expired run to be removed");

    // An attached run ends when its client goes ...
    let mut client = p.paas_cmd(dir, &["run", "-a", &app, "sleep 1000"]).stdin(Stdio::piped()).spawn().unwrap();
    poll(Duration::from_secs(30), "the attached run to start", || ps(&p, dir, &app).contains("sleep 1000").then_some(()));
    client.kill().unwrap();
    let _ = client.wait();
    wait_no_one_offs(&app, "the run whose client left to be removed");

    // ... and when the server it was attached through goes away.
    let mut client = p.paas_cmd(dir, &["run", "-a", &app, "sleep 1000"]).stdin(Stdio::piped()).spawn().unwrap();
    poll(Duration::from_secs(30), "the attached run to start", || ps(&p, dir, &app).contains("sleep 1000").then_some(()));
    p.kill();
    let code = poll(Duration::from_secs(30), "the client to notice", || client.try_wait().unwrap()).code();
    assert_eq!(code, Some(255), "a lost connection is exit 255, as ssh has it");
    p.boot();
    wait_no_one_offs(&app, "the orphaned attached run to be removed after the restart");
}

#[test]
fn a_process_type_runs_its_procfile_command_as_on_heroku() {
    let mut p = Platform::start();
    let app = unique_app("run-console");
    // A console-only app: no web, nothing to scale, only a command to run.
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    p.git_ok(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("Dockerfile"), format!("FROM {BASE_IMAGE}\nCOPY . /app\n")).unwrap();
    std::fs::write(dir.join("Procfile"), "console: echo console says $FROM_CONFIG and\n").unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "console only"]);
    p.create_app(dir, &app);
    p.paas_ok(dir, &["config:set", "-a", &app, "FROM_CONFIG=configured", "--no-wait"]);
    p.push_ok(dir, &app);

    // `paas run console ARGS`: the Procfile's command, the arguments after it.
    let said = p.paas_ok(dir, &["run", "-a", &app, "console", "hello"]);
    assert_eq!(said.trim(), "console says configured and hello");
    // A word that is no process type is a command as typed.
    let said = p.paas_ok(dir, &["run", "-a", &app, "echo console"]);
    assert_eq!(said.trim(), "console");
}
