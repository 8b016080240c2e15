//! Apps without a Dockerfile, built by the buildpacks on the stack images
//! (`paas-server stack:build`, which scripts/test runs first), with real
//! PyPI and npm dependencies, each ending with HTTP 200 through the router.

use crate::harness::*;
use std::time::Duration;

#[test]
fn python_with_a_pypi_dependency_and_a_warm_cache() {
    let mut p = Platform::start();
    let app = unique_app("bp-python");
    let repo = fixture_repo(&p, "python");
    let dir = repo.path();
    p.create_app(dir, &app);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("Python app detected"), "{said}");
    assert!(said.contains("Installing requirements with pip"), "{said}");
    assert!(said.contains("Dependencies changed: making their image layer"), "{said}");
    p.wait_for_page(&app, "python ok six=1.16.0");
    let first = docker_image_layers(&app);

    // Same requirements: the install is skipped, and the virtualenv's image
    // layer is reused: the new image differs from the last by one code layer.
    let code = std::fs::read_to_string(dir.join("app.py")).unwrap().replace("python ok", "python again");
    std::fs::write(dir.join("app.py"), code).unwrap();
    p.git_ok(dir, &["commit", "-qam", "change the code only"]);
    let said = p.push_ok(dir, &app);
    // The virtualenv is not even copied into the build's /app: the layer
    // already holds it.
    assert!(said.contains("requirements.txt unchanged: reusing the virtualenv layer"), "{said}");
    assert!(!said.contains("Installing requirements with pip"), "{said}");
    assert!(said.contains("Dependencies unchanged: reusing their image layer"), "{said}");
    p.wait_for_page(&app, "python again six=1.16.0");
    let second = docker_image_layers(&app);
    assert_eq!(first.len(), second.len());
    assert_eq!(first[..first.len() - 1], second[..second.len() - 1], "only the top (code) layer differs");
    assert_ne!(first.last(), second.last());
    let code_layer = top_layer_bytes(&app);
    assert!(code_layer < 200_000, "the code layer holds the code, not the virtualenv: {code_layer} bytes");

    // After a deploy, the app's next build container is made and started
    // ahead of the push (it runs `sleep` until then); the cache volume it
    // mounts can still be cleared, and the spare goes with it.
    poll(Duration::from_secs(30), "a spare build container", || (!spares_of(&app).is_empty()).then_some(()));
    let cleared = p.paas_ok(dir, &["builds:cache:clear", "-a", &app]);
    assert!(cleared.contains("done"), "{cleared}");
    assert!(spares_of(&app).is_empty(), "the spare went with the cache");
    p.git_ok(dir, &["commit", "-q", "--allow-empty", "-m", "rebuild"]);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("Installing requirements with pip"), "{said}");

    // A server that stops in order leaves no spare behind.
    poll(Duration::from_secs(30), "a spare build container", || (!spares_of(&app).is_empty()).then_some(()));
    p.terminate(Duration::from_secs(30));
    assert!(spares_of(&app).is_empty(), "the spare went with the server");
}

#[test]
fn a_failing_compile_rejects_the_push_with_the_buildpacks_error() {
    let mut p = Platform::start();
    let app = unique_app("bp-fail");
    let repo = fixture_repo(&p, "python");
    let dir = repo.path();
    std::fs::write(dir.join("requirements.txt"), "paas-no-such-package-xyz==1.0\n").unwrap();
    p.git_ok(dir, &["commit", "-qam", "a requirement that does not exist"]);
    p.create_app(dir, &app);
    let (ok, said) = p.push(dir, &app);
    assert!(!ok, "{said}");
    assert!(said.contains("No matching distribution found"), "pip's own error reaches the pusher: {said}");
    assert!(said.contains("Push rejected"), "{said}");
    let releases = p.paas_ok(dir, &["releases", "-a", &app]);
    assert!(releases.contains("no releases yet"), "{releases}");
}

#[test]
fn nodejs_with_an_npm_dependency() {
    let mut p = Platform::start();
    let app = unique_app("bp-node");
    let repo = fixture_repo(&p, "nodejs");
    p.create_app(repo.path(), &app);
    let said = p.push_ok(repo.path(), &app);
    assert!(said.contains("Node.js app detected") && said.contains("npm ci"), "{said}");
    assert!(said.contains("Process types -> web"), "{said}");
    let node_line = |said: &str| said.lines().find(|l| l.contains("Using Node.js v")).map(str::to_owned);
    let first_node = node_line(&said).unwrap_or_else(|| panic!("the Node.js version is said: {said}"));
    p.wait_for_page(&app, "node ok is-number=true");
    // package.json's start script runs as npm start would, without npm.
    assert_eq!(web_command(&app), "node server.js");

    // Same package.json and lockfile: no install, and node_modules stays
    // in its own layer, not copied into the build's /app.
    let dir = repo.path();
    let code = std::fs::read_to_string(dir.join("server.js")).unwrap().replace("node ok", "node again");
    std::fs::write(dir.join("server.js"), code).unwrap();
    p.git_ok(dir, &["commit", "-qam", "change the code only"]);
    // The spare this push builds in (it is then set aside, and removed
    // when the next spare is made).
    let used = the_one_spare(&app, &[]);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("Dependencies unchanged: reusing the node_modules layer"), "{said}");
    assert!(said.contains("Dependencies unchanged: reusing their image layer"), "{said}");
    assert!(!said.contains("npm ci"), "{said}");
    // The version the warm build says (kept in the cache) is the one node said.
    assert_eq!(node_line(&said), Some(first_node), "{said}");
    p.wait_for_page(&app, "node again is-number=true");

    // A spare that stopped (as an engine restart stops it) is not used:
    // the build makes a container of its own.
    let spares = the_one_spare(&app, &used);
    let killed = std::process::Command::new("docker").arg("kill").args(&spares).output().unwrap();
    assert!(killed.status.success(), "{}", text(&killed.stderr));
    poll(Duration::from_secs(30), "the killed spare to stop", || running_spares_of(&app).is_empty().then_some(()));
    let code = std::fs::read_to_string(dir.join("server.js")).unwrap().replace("node again", "node third");
    std::fs::write(dir.join("server.js"), code).unwrap();
    p.git_ok(dir, &["commit", "-qam", "third"]);
    p.push_ok(dir, &app);
    p.wait_for_page(&app, "node third is-number=true");

    // One that runs but cannot take the build (paused: the engine refuses
    // an exec) is given up for a fresh container too, with nothing lost.
    let spares = the_one_spare(&app, &spares);
    let paused = std::process::Command::new("docker").arg("pause").args(&spares).output().unwrap();
    assert!(paused.status.success(), "{}", text(&paused.stderr));
    let code = std::fs::read_to_string(dir.join("server.js")).unwrap().replace("node third", "node fourth");
    std::fs::write(dir.join("server.js"), code).unwrap();
    p.git_ok(dir, &["commit", "-qam", "fourth"]);
    p.push_ok(dir, &app);
    p.wait_for_page(&app, "node fourth is-number=true");
    assert!(p.log().contains("could not take the build: using a fresh one"), "the paused spare was tried first");
    poll(Duration::from_secs(30), "the paused spare to be removed", || {
        (!docker_ps(&["-a", "--filter", &format!("id={}", spares[0])]).iter().any(|_| true)).then_some(())
    });

    // What the build decided from package.json is reused only while
    // package.json is the same: a changed one is read again.
    let pkg = std::fs::read_to_string(dir.join("package.json")).unwrap().replacen('{', "{\n  \"engines\": {\"node\": \"4.x\"},", 1);
    std::fs::write(dir.join("package.json"), pkg).unwrap();
    p.git_ok(dir, &["commit", "-qam", "engines"]);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("package.json asks for Node.js \"4.x\""), "{said}");
}

#[test]
fn go_with_the_stacks_toolchain() {
    let mut p = Platform::start();
    let app = unique_app("bp-go");
    let repo = fixture_repo(&p, "go");
    p.create_app(repo.path(), &app);
    let said = p.push_ok(repo.path(), &app);
    assert!(said.contains("Go app detected") && said.contains("go build"), "{said}");
    p.wait_for_page(&app, "go ok");

    // A go.mod asking for a Go the stack lacks: one warning naming both
    // versions, no download, and the stack's Go builds it.
    let dir = repo.path();
    std::fs::write(dir.join("go.mod"), "module example.com/hello\n\ngo 1.99.1\n\ntoolchain go1.99.1\n").unwrap();
    std::fs::write(dir.join("main.go"), std::fs::read_to_string(dir.join("main.go")).unwrap().replace("go ok", "go newer ok")).unwrap();
    p.git_ok(dir, &["commit", "-qam", "a newer go"]);
    let said = p.push_ok(dir, &app);
    assert_eq!(said.matches("go.mod asks for Go 1.99.1").count(), 1, "{said}");
    assert!(said.contains("-----> Using go1.") && !said.contains("Using  from"), "{said}");
    assert!(!said.contains("downloading") && !said.contains("toolchain not available"), "{said}");
    p.wait_for_page(&app, "go newer ok");

    // A vendored dependency builds offline with -mod=vendor (no module
    // proxy is reachable, and none is asked).
    std::fs::write(dir.join("go.mod"), "module example.com/hello\n\ngo 1.22\n\nrequire example.com/greet v1.0.0\n").unwrap();
    std::fs::create_dir_all(dir.join("vendor/example.com/greet")).unwrap();
    std::fs::write(dir.join("vendor/modules.txt"), "# example.com/greet v1.0.0\n## explicit; go 1.22\nexample.com/greet\n").unwrap();
    std::fs::write(dir.join("vendor/example.com/greet/greet.go"), "package greet\n\nfunc Hello() string { return \"vendored hello\" }\n").unwrap();
    let main = std::fs::read_to_string(dir.join("main.go")).unwrap();
    let main = main.replacen("import (", "import (\n\t\"example.com/greet\"", 1).replace("\"go newer ok\"", "greet.Hello()");
    std::fs::write(dir.join("main.go"), main).unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "vendored"]);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("-mod=vendor"), "{said}");
    p.wait_for_page(&app, "vendored hello");
}

#[test]
fn static_site_and_procfile_errors() {
    let mut p = Platform::start();
    let app = unique_app("bp-static");
    let repo = fixture_repo(&p, "static");
    let dir = repo.path();
    p.create_app(dir, &app);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("Static site app detected"), "{said}");
    p.wait_for_page(&app, "static ok");

    // A malformed Procfile rejects the push with its line number.
    std::fs::write(dir.join("Procfile"), "# comment\nweb: exec busybox httpd -f -p $PORT -h /app\nweb: again\n").unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "bad procfile"]);
    let (ok, said) = p.push(dir, &app);
    assert!(!ok);
    assert!(said.contains("Procfile line 3: process type \"web\" is defined twice"), "{said}");

    // So does an invalid app.json, with its line.
    std::fs::write(dir.join("Procfile"), "web: exec busybox httpd -f -p $PORT -h /app\n").unwrap();
    std::fs::write(dir.join("app.json"), "{\n  \"formation\": {\n    \"web\": {\"quantity\": -1}\n  }\n}\n").unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "bad app.json"]);
    let (ok, said) = p.push(dir, &app);
    assert!(!ok);
    assert!(said.contains("app.json line 3"), "{said}");
    let (status, body) = p.get(&app, "/").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("static ok"));
}

#[test]
fn procfile_app_release_phase_and_app_json_formation() {
    let mut p = Platform::start();
    let app = unique_app("bp-procfile");
    let repo = fixture_repo(&p, "procfile");
    let dir = repo.path();
    std::fs::write(
        dir.join("app.json"),
        // Comments and trailing commas, as Dokku's test apps write app.json.
        "{\n  // one worker from the start\n  \"formation\": {\"worker\": {\"quantity\": 1,},},\n  /* Heroku's */ \"scripts\": {\"postdeploy\": \"true\"},\n}\n",
    )
    .unwrap();
    std::fs::write(dir.join("Procfile"), std::fs::read_to_string(dir.join("Procfile")).unwrap() + "worker: exec sleep 100000\n").unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "worker"]);
    p.create_app(dir, &app);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("Procfile app detected"), "{said}");
    assert!(said.contains(&format!("running the release phase for {app}")), "release output streams: {said}");
    p.wait_for_page(&app, "procfile ok, greeting=none");
    poll(Duration::from_secs(30), "the app.json worker", || (p.running(&app, "worker").len() == 1).then_some(()));
    assert!(p.running(&app, "release").is_empty(), "release never runs as a dyno");

    // Config changes run the release phase too; when it fails, nothing changes.
    p.paas_ok(dir, &["config:set", "-a", &app, "GREETING=v2"]);
    p.wait_for_page(&app, "greeting=v2");
    let refused = p.paas(dir, &["config:set", "-a", &app, "FAIL_RELEASE=yes"]);
    let said = text(&refused.stderr);
    assert!(!refused.status.success());
    assert!(said.contains("config not changed") && said.contains("exited with status 1"), "{said}");
    assert!(said.contains(&format!("running the release phase for {app}")), "{said}");
    let vars = p.paas_ok(dir, &["config", "-a", &app, "--json"]);
    assert!(!vars.contains("FAIL_RELEASE"), "{vars}");

    // A failing release command on a push keeps the old release serving.
    std::fs::write(dir.join("Procfile"), "web: ./serve.sh\nrelease: echo migration failed; exit 4\n").unwrap();
    p.git_ok(dir, &["commit", "-qam", "failing release"]);
    let (ok, said) = p.push(dir, &app);
    assert!(!ok, "{said}");
    assert!(said.contains("migration failed") && said.contains("exited with status 4"), "{said}");
    let releases: serde_json::Value = serde_json::from_str(&p.paas_ok(dir, &["releases", "-a", &app, "--json"])).unwrap();
    assert_eq!(releases[0]["description"], "Set GREETING config vars", "no release was made");
    let (status, body) = p.get(&app, "/").unwrap();
    assert_eq!((status, body.trim()), (200, "procfile ok, greeting=v2"));
}

#[test]
fn buildpack_url_picks_a_custom_buildpack_from_git() {
    // A buildpack of our own in a local git repo, fetched by file:// URL,
    // which the operator allows by listing its folder.
    let bp = tempfile::tempdir().unwrap();
    let mut p = Platform::start_with(&[("PAAS_BUILDPACK_DIRS", &bp.path().display().to_string())]);
    let app = unique_app("bp-custom");
    let bin = bp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, body) in [
        ("detect", "#!/bin/sh\necho Custom\n"),
        (
            "compile",
            "#!/bin/sh\necho '-----> custom buildpack compiling'\nmkdir -p \"$1/www\"\necho \"custom ok, env dir has $(cat \"$3/GREETING\")\" > \"$1/www/index.html\"\n",
        ),
        ("release", "#!/bin/sh\necho '---'\necho 'default_process_types:'\necho '  web: exec busybox httpd -f -p $PORT -h /app/www'\n"),
    ] {
        std::fs::write(bin.join(name), body).unwrap();
        std::process::Command::new("chmod").arg("+x").arg(bin.join(name)).status().unwrap();
    }
    p.git_ok(bp.path(), &["init", "-q", "-b", "main"]);
    p.git_ok(bp.path(), &["add", "-A"]);
    p.git_ok(bp.path(), &["commit", "-qm", "buildpack"]);

    let repo = fixture_repo(&p, "static");
    let dir = repo.path();
    p.create_app(dir, &app);
    let url = format!("file://{}", bp.path().display());
    p.paas_ok(dir, &["config:set", "-a", &app, &format!("BUILDPACK_URL={url}"), "GREETING=hello"]);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("custom buildpack compiling"), "{said}");
    p.wait_for_page(&app, "custom ok, env dir has hello");

    // app.json `buildpacks` lists several: they run in order, and the last
    // one's default process types win.
    let app2 = unique_app("bp-multi");
    let repo2 = fixture_repo(&p, "static");
    let dir2 = repo2.path();
    std::fs::write(dir2.join("app.json"), format!("{{\"buildpacks\": [{{\"url\": \"{url}\"}}, {{\"url\": \"heroku/static\"}}]}}\n")).unwrap();
    p.git_ok(dir2, &["add", "-A"]);
    p.git_ok(dir2, &["commit", "-qm", "two buildpacks"]);
    p.create_app(dir2, &app2);
    p.paas_ok(dir2, &["config:set", "-a", &app2, "GREETING=twice"]);
    let said = p.push_ok(dir2, &app2);
    let custom = said.find("custom buildpack compiling").expect(&said);
    let stat = said.find("Static site: serving").expect(&said);
    assert!(custom < stat, "the buildpacks run in app.json's order: {said}");
    p.wait_for_page(&app2, "static ok");
    let (_, www) = p.get(&app2, "/www/index.html").unwrap();
    assert!(www.contains("custom ok, env dir has twice"), "{www}");
}

#[test]
fn herokus_buildpack_names_use_the_built_ins_and_server_paths_are_refused() {
    let mut p = Platform::start();
    // app.json names Heroku's Node.js buildpack: the built-in one builds it,
    // offline, and says so.
    let app = unique_app("bp-heroku");
    let repo = fixture_repo(&p, "nodejs");
    let dir = repo.path();
    std::fs::write(dir.join("app.json"), r#"{"buildpacks": [{"url": "heroku/nodejs"}]}"#).unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "heroku's name"]);
    p.create_app(dir, &app);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("Using the built-in nodejs buildpack for heroku/nodejs"), "{said}");
    p.wait_for_page(&app, "node ok is-number=true");

    // Heroku's GitHub URL, with .git and a ref, works the same way.
    p.paas_ok(dir, &["config:set", "-a", &app, "BUILDPACK_URL=https://github.com/heroku/heroku-buildpack-nodejs.git#v300"]);
    std::fs::write(dir.join("server.js"), std::fs::read_to_string(dir.join("server.js")).unwrap() + "\n// two\n").unwrap();
    p.git_ok(dir, &["commit", "-qam", "two"]);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("Using the built-in nodejs buildpack for https://github.com/heroku/heroku-buildpack-nodejs.git#v300"), "{said}");

    // A server path, a file:// URL and plain http are refused, saying what
    // is allowed; credentials never show.
    for (url, want) in [
        ("/usr/share", "PAAS_BUILDPACK_DIRS"),
        ("file:///etc", "PAAS_BUILDPACK_DIRS"),
        ("http://user:hunter2@example.com/bp.git", "https:// git URL"),
    ] {
        p.paas_ok(dir, &["config:set", "-a", &app, &format!("BUILDPACK_URL={url}")]);
        std::fs::write(dir.join("server.js"), std::fs::read_to_string(dir.join("server.js")).unwrap() + "\n// again\n").unwrap();
        p.git_ok(dir, &["commit", "-qam", "again"]);
        let (ok, said) = p.push(dir, &app);
        assert!(!ok, "{url}: {said}");
        assert!(said.contains(want), "{url}: {said}");
        assert!(!said.contains("hunter2"), "{said}");
    }
    p.wait_for_page(&app, "node ok is-number=true");
}

#[test]
fn go_without_go_mod_builds_in_module_mode_named_by_godir() {
    let mut p = Platform::start();
    let app = unique_app("bp-go-nomod");
    let repo = fixture_repo(&p, "go-nomod");
    p.create_app(repo.path(), &app);
    let said = p.push_ok(repo.path(), &app);
    assert!(said.contains("Go app detected") && said.contains("No go.mod"), "{said}");
    assert!(said.contains("github.com/example/hello-godir"), "{said}");
    // `web: hello-godir` in the Procfile finds the binary on PATH.
    p.wait_for_page(&app, "go without go.mod ok");
}

#[test]
fn versions_the_stack_lacks_are_named_once_and_the_build_goes_on() {
    let mut p = Platform::start();
    let app = unique_app("bp-pyver");
    let repo = fixture_repo(&p, "python");
    let dir = repo.path();
    // A supported version the stack lacks (one that never existed is
    // refused: python_version_files_are_read_as_heroku_reads_them).
    std::fs::write(dir.join(".python-version"), "3.12\n").unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "asks for 3.12"]);
    p.create_app(dir, &app);
    let said = p.push_ok(dir, &app);
    assert!(said.contains(".python-version asks for Python 3.12, but this stack provides Python 3.13"), "{said}");
    p.wait_for_page(&app, "six");
    // The twelve-factor report tells it under dev/prod parity.
    let report: serde_json::Value = serde_json::from_str(&p.paas_ok(dir, &["12factor", "-a", &app, "--json"])).unwrap();
    let parity = &report["factors"][9];
    assert_eq!((parity["numeral"].as_str(), parity["status"].as_str()), (Some("X"), Some("finding")), "{report}");
    assert!(parity["observations"][0]["message"].as_str().unwrap().contains(".python-version asks for Python 3.12"), "{report}");

    let app = unique_app("bp-nodever");
    let repo = fixture_repo(&p, "nodejs");
    let dir = repo.path();
    let package = std::fs::read_to_string(dir.join("package.json")).unwrap();
    let package = package.replacen('{', "{\n  \"engines\": {\"node\": \">=22\"},", 1);
    std::fs::write(dir.join("package.json"), package).unwrap();
    p.git_ok(dir, &["commit", "-qam", "asks for node 22"]);
    p.create_app(dir, &app);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("package.json asks for Node.js \">=22\", but this stack provides v20"), "{said}");
    p.wait_for_page(&app, "node ok");
}

#[test]
fn buildpack_builds_over_their_time_or_memory_limit_fail_naming_the_limit() {
    let bps = tempfile::tempdir().unwrap();
    for (name, compile) in [("slow", "sleep 60"), ("hungry", "head -c 300000000 /dev/zero | tail")] {
        let bin = bps.path().join(name).join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("detect"), "#!/bin/sh\necho Limits\n").unwrap();
        std::fs::write(bin.join("compile"), format!("#!/bin/sh\necho '-----> about to misbehave'\n{compile}\n")).unwrap();
        std::fs::write(bin.join("release"), "#!/bin/sh\necho '---'\n").unwrap();
        std::process::Command::new("chmod").args(["-R", "+x"]).arg(&bin).status().unwrap();
    }
    let mut p = Platform::start_with(&[
        ("PAAS_BUILDPACK_DIRS", &bps.path().display().to_string()),
        ("PAAS_BUILD_TIMEOUT_SECONDS", "5"),
        ("PAAS_BUILD_MEMORY", "64M"),
    ]);
    let app = unique_app("bp-limits");
    let repo = fixture_repo(&p, "static");
    let dir = repo.path();
    p.create_app(dir, &app);
    // Each limit twice: in a fresh build container (the first push's, and
    // the one after a failed build), and in the spare a deploy leaves for
    // the next build (its command runs there with `exec`).
    let mut version = 0;
    for (name, want) in [
        ("slow", "the build took longer than 5 s, the build timeout"),
        ("hungry", "killed for using more than its memory limit of 64 MiB: raise PAAS_BUILD_MEMORY"),
    ] {
        let bp = bps.path().join(name).display().to_string();
        for spare in [false, true] {
            p.paas_ok(dir, &["config:unset", "-a", &app, "BUILDPACK_URL"]);
            if spare {
                version += 1;
                std::fs::write(dir.join("index.html"), format!("<p>v{version}</p>")).unwrap();
                p.git_ok(dir, &["commit", "-qam", "serve"]);
                p.push_ok(dir, &app);
                p.wait_for_page(&app, &format!("v{version}"));
                poll(Duration::from_secs(30), "a spare build container", || (!spares_of(&app).is_empty()).then_some(()));
            }
            p.paas_ok(dir, &["config:set", "-a", &app, &format!("BUILDPACK_URL={bp}")]);
            p.git_ok(dir, &["commit", "-q", "--allow-empty", "-m", name]);
            let (ok, said) = p.push(dir, &app);
            assert!(!ok, "{name} (spare: {spare}): {said}");
            assert!(said.contains(want), "{name} (spare: {spare}): {said}");
            if spare {
                // The running release keeps serving.
                p.wait_for_page(&app, &format!("v{version}"));
            }
        }
    }
}

/// The app's one spare build container not among `earlier`, once it runs.
/// `earlier` names spares a build has used: such a one is set aside and
/// removed only while the next spare is being made, so for a moment it can
/// be the only spare listed, and still running.
fn the_one_spare(app: &str, earlier: &[String]) -> Vec<String> {
    poll(Duration::from_secs(30), "one new spare build container", || {
        let fresh: Vec<String> = spares_of(app).into_iter().filter(|s| !earlier.contains(s)).collect();
        (fresh.len() == 1 && running_spares_of(app).contains(&fresh[0])).then_some(fresh)
    })
}

/// The app's spare build containers, running or not.
fn spares_of(app: &str) -> Vec<String> {
    docker_ps(&["-a", "--filter", &format!("name=paas-spare-build-{app}-")])
}

/// The app's spare build containers that run.
fn running_spares_of(app: &str) -> Vec<String> {
    docker_ps(&["--filter", &format!("name=paas-spare-build-{app}-")])
}

/// The command of the app's running web dyno (after `/bin/sh -c`).
fn web_command(app: &str) -> String {
    let out = std::process::Command::new("docker")
        .args(["inspect", "-f", "{{index .Config.Cmd 2}}", &web_dyno(app)])
        .output()
        .unwrap();
    text(&out.stdout).trim().to_owned()
}

/// The size of the top layer of the app's running web dyno's image.
fn top_layer_bytes(app: &str) -> u64 {
    let image = std::process::Command::new("docker").args(["inspect", "-f", "{{.Image}}", &web_dyno(app)]).output().unwrap();
    let history = std::process::Command::new("docker")
        .args(["history", "--no-trunc", "-H=false", "--format", "{{.Size}}", text(&image.stdout).trim()])
        .output()
        .unwrap();
    text(&history.stdout).lines().next().expect("the image has a history").trim().parse().expect("a size in bytes")
}

fn web_dyno(app: &str) -> String {
    let id = std::process::Command::new("docker")
        .args(["ps", "-q", "--filter", &format!("label=paas.app={app}"), "--filter", "label=paas.process=web"])
        .output()
        .unwrap();
    text(&id.stdout).lines().next().expect("a web dyno runs").to_owned()
}

/// The layers of the image the app's running web dyno uses, bottom first.
fn docker_image_layers(app: &str) -> Vec<String> {
    let id = web_dyno(app);
    let image = std::process::Command::new("docker").args(["inspect", "-f", "{{.Image}}", &id]).output().unwrap();
    let layers = std::process::Command::new("docker")
        .args(["image", "inspect", "-f", "{{range .RootFS.Layers}}{{println .}}{{end}}", text(&image.stdout).trim()])
        .output()
        .unwrap();
    text(&layers.stdout).lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

#[test]
fn what_a_build_prints_or_leaves_behind_is_bounded() {
    // Buildpacks that misbehave: 50 MB of output without a newline (then a
    // line that must arrive whole), a 40 MB file in /app against a 16 MiB
    // slug limit, and a bin/release that prints a megabyte.
    let bps = tempfile::tempdir().unwrap();
    let serve = "echo '---'; echo 'default_process_types:'; echo '  web: exec busybox httpd -f -p $PORT -h /app/www'";
    for (name, compile, release) in [
        (
            "noisy",
            "head -c 50000000 /dev/zero | tr '\\0' x; echo; echo 'the line after'; mkdir -p \"$1/www\"; echo noisy ok > \"$1/www/index.html\"",
            serve.to_owned(),
        ),
        ("fat", "mkdir -p \"$1/www\"; head -c 40000000 /dev/urandom > \"$1/www/fat.bin\"", serve.to_owned()),
        ("chatty", "mkdir -p \"$1/www\"", format!("{serve}; head -c 1000000 /dev/zero | tr '\\0' '#'")),
    ] {
        let bin = bps.path().join(name).join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("detect"), "#!/bin/sh\necho Bounded\n").unwrap();
        std::fs::write(bin.join("compile"), format!("#!/bin/sh\n{compile}\n")).unwrap();
        std::fs::write(bin.join("release"), format!("#!/bin/sh\n{release}\n")).unwrap();
        std::process::Command::new("chmod").args(["-R", "+x"]).arg(&bin).status().unwrap();
    }
    let mut p = Platform::start_with(&[("PAAS_BUILDPACK_DIRS", &bps.path().display().to_string()), ("PAAS_MAX_SLUG_MB", "16")]);
    let app = unique_app("bp-bounded");
    let repo = fixture_repo(&p, "static");
    let dir = repo.path();
    p.create_app(dir, &app);

    let use_bp = |p: &mut Platform, name: &str| {
        let bp = bps.path().join(name).display().to_string();
        p.paas_ok(dir, &["config:set", "-a", &app, &format!("BUILDPACK_URL={bp}")]);
        p.git_ok(dir, &["commit", "-q", "--allow-empty", "-m", name]);
    };
    use_bp(&mut p, "noisy");
    let said = p.push_ok(dir, &app);
    assert!(said.contains("[line cut: over 10000 bytes]"), "the long line is cut and says so");
    assert!(said.contains("the line after"), "the next line arrives whole: {}", &said[said.len().saturating_sub(3000)..]);
    assert!(said.len() < 1_000_000, "the pusher got {} bytes, not 50 MB", said.len());
    p.wait_for_page(&app, "noisy ok");
    let status = std::fs::read_to_string(format!("/proc/{}/status", p.server_pid().unwrap())).unwrap();
    let rss_kb: u64 = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().trim().trim_end_matches(" kB").trim().parse().unwrap();
    assert!(rss_kb < 400_000, "the server's peak RSS was {rss_kb} kB");

    use_bp(&mut p, "fat");
    let (ok, said) = p.push(dir, &app);
    assert!(!ok, "{said}");
    assert!(said.contains("over 16 MiB, the slug limit") && said.contains("PAAS_MAX_SLUG_MB"), "{said}");

    use_bp(&mut p, "chatty");
    let (ok, said) = p.push(dir, &app);
    assert!(!ok, "{said}");
    assert!(said.contains("bin/release's output is over 64 KiB"), "{said}");
    // The release that served keeps serving.
    p.wait_for_page(&app, "noisy ok");
    let leftovers = std::fs::read_dir(p.data.path().join("tmp")).unwrap().count();
    assert_eq!(leftovers, 0, "no build files left in the scratch folder");
}

#[test]
fn a_build_without_process_types_is_released_with_no_dynos_until_a_procfile_names_them() {
    let mut p = Platform::start();
    let app = unique_app("bp-notypes");
    let repo = fixture_repo(&p, "python");
    let dir = repo.path();
    p.git_ok(dir, &["rm", "-q", "Procfile"]);
    p.git_ok(dir, &["commit", "-qm", "no Procfile"]);
    p.create_app(dir, &app);
    // Accepted, as on Heroku, with a warning naming what to add.
    let said = p.push_ok(dir, &app);
    assert!(said.contains("No process types") && said.contains("Add a Procfile"), "{said}");
    assert!(said.contains("deployed to paas as v1"), "{said}");
    let ps = p.paas_ok(dir, &["ps", "-a", &app]);
    assert!(!ps.contains("web.1"), "no dynos: {ps}");
    let out = p.paas(dir, &["ps:scale", "web=1", "-a", &app]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("declares no process types") && err.contains("add a Procfile"), "{err}");
    // A later push with a Procfile starts them.
    std::fs::write(dir.join("Procfile"), "web: python app.py\n").unwrap();
    p.git_ok(dir, &["add", "Procfile"]);
    p.git_ok(dir, &["commit", "-qm", "a Procfile"]);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("Process types -> web"), "{said}");
    p.wait_for_page(&app, "python ok");
}

#[test]
fn config_vars_reach_the_build_and_a_procfile_the_build_writes_is_released() {
    // A buildpack that prints what the build's environment holds and writes
    // the Procfile itself.
    let bp = tempfile::tempdir().unwrap();
    let bin = bp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let compile = "#!/bin/sh\necho \"env SAFE=[$SAFE] libpath=[${LIBRARY_PATH:-}] gitdir=[${GIT_DIR:-}]\"\nmkdir -p \"$1/www\"\necho \"built with $SAFE\" > \"$1/www/index.html\"\necho 'web: exec busybox httpd -f -p $PORT -h /app/www' > \"$1/Procfile\"\n";
    for (name, body) in [("detect", "#!/bin/sh\necho Env\n"), ("compile", compile), ("release", "#!/bin/sh\necho '---'\n")] {
        std::fs::write(bin.join(name), body).unwrap();
    }
    std::process::Command::new("chmod").args(["-R", "+x"]).arg(&bin).status().unwrap();
    let mut p = Platform::start_with(&[("PAAS_BUILDPACK_DIRS", &bp.path().display().to_string())]);
    let app = unique_app("bp-env");
    let repo = fixture_repo(&p, "static");
    let dir = repo.path();
    p.create_app(dir, &app);
    let url = bp.path().display().to_string();
    p.paas_ok(dir, &["config:set", "-a", &app, &format!("BUILDPACK_URL={url}"), "SAFE=s3cret-build-value", "LIBRARY_PATH=/nowhere", "GIT_DIR=/nowhere"]);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("env SAFE=[s3cret-build-value] libpath=[] gitdir=[]"), "exported, minus the blocklist: {said}");
    assert!(said.contains("Process types -> web"), "the Procfile the build wrote: {said}");
    p.wait_for_page(&app, "built with s3cret-build-value");

    // A Dockerfile gets the config vars it declares with ARG as build
    // arguments, and no others.
    let app2 = unique_app("bp-args");
    let repo2 = dockerfile_repo(&p, "main", "args");
    let dir2 = repo2.path();
    let dockerfile = std::fs::read_to_string(dir2.join("Dockerfile")).unwrap();
    std::fs::write(dir2.join("Dockerfile"), format!("{dockerfile}ARG SAFE\nRUN echo \"arg SAFE=[$SAFE] OTHER=[$OTHER]\"\n")).unwrap();
    p.git_ok(dir2, &["commit", "-qam", "an ARG"]);
    p.create_app(dir2, &app2);
    p.paas_ok(dir2, &["config:set", "-a", &app2, "SAFE=from-config", "OTHER=not-declared"]);
    let said = p.push_ok(dir2, &app2);
    assert!(said.contains("Build arguments from config vars: SAFE"), "{said}");
    assert!(said.contains("arg SAFE=[from-config] OTHER=[]"), "{said}");
}

#[test]
fn pipenv_poetry_and_uv_apps_build_serve_and_reuse_their_dependency_layer() {
    let mut p = Platform::start();
    for (manager, said_install) in [("pipenv", "Installing dependencies with Pipenv"), ("poetry", "Installing dependencies with Poetry"), ("uv", "Installing dependencies with uv")] {
        let app = unique_app(&format!("bp-{manager}"));
        let repo = fixture_repo(&p, &format!("python-{manager}"));
        let dir = repo.path();
        p.create_app(dir, &app);
        let said = p.push_ok(dir, &app);
        assert!(said.contains("Python app detected") && said.contains(said_install), "{manager}: {said}");
        p.wait_for_page(&app, &format!("python {manager} ok six=1.16.0"));
        // A warm push with the same lockfile installs nothing.
        p.git_ok(dir, &["commit", "-q", "--allow-empty", "-m", "again"]);
        let said = p.push_ok(dir, &app);
        assert!(said.contains("unchanged: reusing the virtualenv layer") && !said.contains(said_install), "{manager}: {said}");
        assert!(said.contains("Dependencies unchanged: reusing their image layer"), "{manager}: {said}");
        p.wait_for_page(&app, &format!("python {manager} ok six=1.16.0"));
    }
}

#[test]
fn python_builds_refuse_what_heroku_refuses_naming_the_file() {
    let mut p = Platform::start();
    let app = unique_app("bp-pyrefuse");
    let repo = fixture_repo(&p, "python-uv");
    let dir = repo.path();
    p.create_app(dir, &app);
    let refused = |p: &mut Platform, what: &str, change: &dyn Fn(&std::path::Path), want: &[&str]| {
        change(dir);
        p.git_ok(dir, &["add", "-A", "-f"]);
        p.git_ok(dir, &["commit", "-qm", what, "--allow-empty"]);
        let (ok, said) = p.push(dir, &app);
        assert!(!ok, "{what}: {said}");
        for w in want {
            assert!(said.contains(w), "{what}: no {w:?} in {said}");
        }
    };
    // The lockfile out of sync with pyproject.toml.
    refused(&mut p, "out of sync", &|d| {
        let t = std::fs::read_to_string(d.join("pyproject.toml")).unwrap().replace("six==1.16.0", "six==1.17.0");
        std::fs::write(d.join("pyproject.toml"), t).unwrap();
    }, &["uv sync --locked failed", "run `uv lock`"]);
    // Several managers' files at once.
    refused(&mut p, "two managers", &|d| std::fs::write(d.join("requirements.txt"), "six==1.16.0\n").unwrap(), &["Several Python package manager files", "requirements.txt (pip)", "uv.lock (uv)"]);
    std::fs::remove_file(dir.join("requirements.txt")).unwrap();
    // A committed virtualenv.
    refused(&mut p, "a venv", &|d| {
        std::fs::create_dir_all(d.join(".venv/bin")).unwrap();
        std::fs::write(d.join(".venv/bin/python"), "").unwrap();
    }, &["holds a .venv folder"]);
    std::fs::remove_dir_all(dir.join(".venv")).unwrap();
    // A version that never existed, by file and line.
    refused(&mut p, "bad version", &|d| std::fs::write(d.join(".python-version"), "# pinned\n\n3.12.999\n").unwrap(), &[".python-version line 3", "not a released Python version"]);
    // Pipenv without its lockfile.
    p.git_ok(dir, &["rm", "-q", "uv.lock", "pyproject.toml", ".python-version"]);
    refused(&mut p, "Pipfile alone", &|d| std::fs::write(d.join("Pipfile"), "[packages]\nsix = \"==1.16.0\"\n").unwrap(), &["Pipfile.lock was not found", "pipenv lock"]);
    let releases = p.paas_ok(dir, &["releases", "-a", &app]);
    assert!(releases.contains("no releases yet"), "{releases}");
}

/// Runs the Python buildpack's version reader on files in a new folder.
fn python_version(files: &[(&str, &[u8])]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../buildpacks/python/bin/python_version.py");
    let out = std::process::Command::new("python3").arg(script).arg(dir.path()).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn python_version_files_are_read_as_heroku_reads_them() {
    // Comments, blank lines and whitespace are allowed around one version.
    assert_eq!(python_version(&[(".python-version", b"# comments are supported\n\n  3.13  \n")]), (true, "3.13 .python-version".into()));
    // runtime.txt comes first.
    assert_eq!(python_version(&[("runtime.txt", b"python-3.12.4\n"), (".python-version", b"3.13\n")]), (true, "3.12.4 runtime.txt".into()));
    assert_eq!(python_version(&[("Pipfile.lock", br#"{"_meta": {"requires": {"python_version": "3.12"}}}"#)]), (true, "3.12 Pipfile.lock".into()));
    assert_eq!(python_version(&[]), (true, String::new()));
    for (files, want) in [
        (vec![(".python-version", b"\xef\xbb\xbf3.13\n".as_slice())], "byte order mark"),
        (vec![(".python-version", b"3.13\n3.12\n".as_slice())], "several versions (lines 1, 2)"),
        (vec![(".python-version", b"# only a comment\n".as_slice())], "has no version in it"),
        (vec![(".python-version", b"3.999\n".as_slice())], "3.999 is not a released Python version"),
        (vec![(".python-version", b"3.12.999\n".as_slice())], "3.12.999 is not a released Python version"),
        (vec![("runtime.txt", b"python-2.7.18\n".as_slice())], "runtime.txt line 1: Python 2.7.18 has reached its end of life"),
        (vec![("runtime.txt", b"3.13\n".as_slice())], "runtime.txt line 1"),
        (vec![(".python-version", b"latest\n".as_slice())], ".python-version line 1: 'latest' is not a Python version"),
    ] {
        let (ok, said) = python_version(&files);
        assert!(!ok && said.contains(want), "{files:?}: {said}");
    }
}

#[test]
fn python_hooks_and_django_collectstatic_run_and_fail_naming_what_to_do() {
    let mut p = Platform::start();
    let app = unique_app("bp-django");
    let repo = fixture_repo(&p, "python-django");
    let dir = repo.path();
    p.create_app(dir, &app);
    let said = p.push_ok(dir, &app);
    let pre = said.find("pre_compile ran").expect(&said);
    let install = said.find("Installing requirements with pip").expect(&said);
    let post = said.find("post_compile ran with django").expect(&said);
    let collect = said.find("Running Django collectstatic").expect(&said);
    assert!(pre < install && install < post && post < collect, "Heroku's order: {said}");
    assert!(said.contains("static file"), "collectstatic copied the files: {said}");
    p.wait_for_page(&app, "django ok");

    // Broken static settings refuse the push, naming the way out.
    let settings = std::fs::read_to_string(dir.join("settings.py")).unwrap();
    std::fs::write(dir.join("settings.py"), settings.replace("STATIC_ROOT =", "STATIC_ROOT_UNUSED =")).unwrap();
    p.git_ok(dir, &["commit", "-qam", "no STATIC_ROOT"]);
    let (ok, said) = p.push(dir, &app);
    assert!(!ok, "{said}");
    assert!(said.contains("collectstatic --noinput failed") && said.contains("DISABLE_COLLECTSTATIC=1"), "{said}");
    p.paas_ok(dir, &["config:set", "-a", &app, "DISABLE_COLLECTSTATIC=1"]);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("Skipping Django collectstatic (DISABLE_COLLECTSTATIC is set)"), "{said}");

    // A failing hook refuses the push, naming it.
    std::fs::write(dir.join("bin/post_compile"), "echo about to fail\nexit 3\n").unwrap();
    p.git_ok(dir, &["commit", "-qam", "a failing hook"]);
    let (ok, said) = p.push(dir, &app);
    assert!(!ok && said.contains("bin/post_compile failed"), "{said}");
}

#[test]
fn yarn_and_pnpm_apps_build_from_their_lockfiles_and_keep_their_tool_at_run_time() {
    let mut p = Platform::start();
    let app = unique_app("bp-yarn");
    let repo = fixture_repo(&p, "nodejs-yarn");
    let dir = repo.path();
    p.create_app(dir, &app);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("Installing yarn@1") && said.contains("yarn install --frozen-lockfile"), "{said}");
    assert!(!said.contains("npm ci"), "{said}");
    p.wait_for_page(&app, "node yarn ok is-number=true");
    // A yarn.lock out of step with package.json is refused.
    let package = std::fs::read_to_string(dir.join("package.json")).unwrap().replace("\"7.0.0\"", "\"6.0.0\"");
    std::fs::write(dir.join("package.json"), package).unwrap();
    p.git_ok(dir, &["commit", "-qam", "lockfile out of date"]);
    let (ok, said) = p.push(dir, &app);
    assert!(!ok && said.contains("yarn install --frozen-lockfile failed"), "{said}");

    // Yarn 2+ (a yarn.lock with __metadata, packageManager yarn@4).
    let app = unique_app("bp-berry");
    let repo = fixture_repo(&p, "nodejs-berry");
    let dir = repo.path();
    p.create_app(dir, &app);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("Installing @yarnpkg/cli-dist@4.5.3") && said.contains("yarn install --immutable"), "{said}");
    p.wait_for_page(&app, "node berry ok is-number=true");

    // pnpm with a workspace: the workspace package's dependencies install,
    // and pnpm (the version packageManager names) is there at run time.
    let app = unique_app("bp-pnpm");
    let repo = fixture_repo(&p, "nodejs-pnpm");
    let dir = repo.path();
    p.create_app(dir, &app);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("Installing pnpm@9.15.0") && said.contains("pnpm install --frozen-lockfile"), "{said}");
    p.wait_for_page(&app, "node pnpm ok workspace is-number=true");
    let version = p.paas_ok(dir, &["run", "-a", &app, "pnpm", "--version"]);
    assert_eq!(version.trim(), "9.15.0", "pnpm is there at run time");
    // A warm push installs from the cached store and serves again.
    std::fs::write(dir.join("server.js"), std::fs::read_to_string(dir.join("server.js")).unwrap().replace("node pnpm ok", "node pnpm again")).unwrap();
    p.git_ok(dir, &["commit", "-qam", "again"]);
    let said = p.push_ok(dir, &app);
    assert!(!said.contains("Installing pnpm@"), "pnpm comes from the cache: {said}");
    assert!(said.contains("Dependencies unchanged") && !said.contains("pnpm install --frozen-lockfile"), "the workspace's node_modules come from the cache: {said}");
    p.wait_for_page(&app, "node pnpm again workspace is-number=true");
}

#[test]
fn node_build_scripts_run_in_herokus_order_with_node_env_production_and_dev_dependencies_pruned() {
    let mut p = Platform::start();
    let app = unique_app("bp-nodebuild");
    let repo = fixture_repo(&p, "nodejs-build");
    let dir = repo.path();
    p.create_app(dir, &app);
    let said = p.push_ok(dir, &app);
    let order: Vec<usize> = ["marker-prebuild", "Installing dependencies with npm ci", "marker-build", "Pruning devDependencies", "marker-cleanup"]
        .iter()
        .map(|m| said.find(m).unwrap_or_else(|| panic!("no {m} in {said}")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "Heroku's order: {said}");
    p.wait_for_page(&app, "node build ok built NODE_ENV=production odd=true dev=pruned");
    // Heroku's opt-out keeps them; a warm push runs the build again.
    p.paas_ok(dir, &["config:set", "-a", &app, "NPM_CONFIG_PRODUCTION=false"]);
    p.git_ok(dir, &["commit", "-q", "--allow-empty", "-m", "keep dev"]);
    let said = p.push_ok(dir, &app);
    assert!(said.contains("Keeping devDependencies") && said.contains("marker-build"), "{said}");
    p.wait_for_page(&app, "dev=present");
    // A failing build script refuses the push, naming it.
    let package = std::fs::read_to_string(dir.join("package.json")).unwrap().replace("node build.js", "node build.js && exit 4");
    std::fs::write(dir.join("package.json"), package).unwrap();
    p.git_ok(dir, &["commit", "-qam", "a failing build"]);
    let (ok, said) = p.push(dir, &app);
    assert!(!ok && said.contains("the build script failed"), "{said}");
    p.wait_for_page(&app, "dev=present");
}

#[test]
fn node_builds_refuse_wrong_input_naming_the_field_or_files() {
    let mut p = Platform::start();
    let app = unique_app("bp-noderefuse");
    let repo = fixture_repo(&p, "nodejs");
    let dir = repo.path();
    p.create_app(dir, &app);
    let original = std::fs::read_to_string(dir.join("package.json")).unwrap();
    for (field, want) in [
        ("\"engines\": {\"node\": \"stable\"},", "engines.node \"stable\" is not a version range"),
        ("\"engines\": {\"node\": \">=99\"},", "engines.node \">=99\" names no Node.js version that exists"),
        ("\"engines\": {\"iojs\": \"3.x\"},", "engines.iojs: io.js is not supported"),
        ("\"engines\": {\"npm\": \"latest-ish\"},", "engines.npm \"latest-ish\" is not a version range"),
        ("\"packageManager\": \"yarn@1.22.22\",", "packageManager names yarn, but the lockfile is package-lock.json"),
        ("\"packageManager\": \"npm@not-a-version\",", "packageManager \"npm@not-a-version\" is not NAME@VERSION"),
    ] {
        std::fs::write(dir.join("package.json"), original.replacen('{', &format!("{{\n  {field}"), 1)).unwrap();
        p.git_ok(dir, &["commit", "-qam", field]);
        let (ok, said) = p.push(dir, &app);
        assert!(!ok && said.contains(want), "{field}: {said}");
    }
    std::fs::write(dir.join("package.json"), &original).unwrap();
    std::fs::write(dir.join("yarn.lock"), "# yarn lockfile v1\n").unwrap();
    std::fs::write(dir.join("pnpm-lock.yaml"), "lockfileVersion: '9.0'\n").unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "three lockfiles"]);
    let (ok, said) = p.push(dir, &app);
    assert!(!ok && said.contains("several package managers' lockfiles were found: package-lock.json, yarn.lock, pnpm-lock.yaml"), "{said}");
    // packageManager and engines that contradict each other.
    p.git_ok(dir, &["rm", "-q", "package-lock.json", "yarn.lock", "pnpm-lock.yaml"]);
    let both = "\"packageManager\": \"pnpm@9.0.0\",\n  \"engines\": {\"pnpm\": \"^8\"},";
    std::fs::write(dir.join("package.json"), original.replacen('{', &format!("{{\n  {both}"), 1)).unwrap();
    p.git_ok(dir, &["commit", "-qam", "pnpm 9 and ^8"]);
    let (ok, said) = p.push(dir, &app);
    assert!(!ok && said.contains("packageManager pnpm@9.0.0 does not satisfy engines.pnpm \"^8\""), "{said}");
    let releases = p.paas_ok(dir, &["releases", "-a", &app]);
    assert!(releases.contains("no releases yet"), "{releases}");
}

#[test]
fn buildpack_urls_to_private_addresses_are_refused_before_anything_is_fetched() {
    // As a server starts by default: no range allowed (the harness allows
    // loopback for its own receivers; this one says otherwise).
    let mut p = Platform::start_with(&[("PAAS_OUTBOUND_ALLOW", "")]);
    let app = unique_app("bp-private");
    let repo = fixture_repo(&p, "static");
    let dir = repo.path();
    p.create_app(dir, &app);
    for url in ["https://127.0.0.1/bp.git", "https://169.254.169.254/latest.git", "https://user:s3cret@10.1.2.3/bp.git", "https://localhost:8443/bp.git"] {
        p.paas_ok(dir, &["config:set", "-a", &app, &format!("BUILDPACK_URL={url}")]);
        p.git_ok(dir, &["commit", "-q", "--allow-empty", "-m", url]);
        let (ok, said) = p.push(dir, &app);
        assert!(!ok, "{url}: {said}");
        assert!(said.contains("is refused: it points to a loopback, link-local or private address") && said.contains("PAAS_OUTBOUND_ALLOW"), "{url}: {said}");
        assert!(!said.contains("s3cret") && !said.contains("Fetching buildpack"), "{url}: {said}");
    }
}

#[test]
fn pipenv_and_poetry_refuse_a_lockfile_out_of_sync() {
    let mut p = Platform::start();
    for (manager, file, from, to, want) in [
        ("pipenv", "Pipfile", "\"==1.16.0\"", "\"==1.17.0\"", "pipenv install --deploy failed"),
        ("poetry", "pyproject.toml", "six==1.16.0", "six==1.17.0", "poetry install failed"),
    ] {
        let app = unique_app(&format!("bp-{manager}-sync"));
        let repo = fixture_repo(&p, &format!("python-{manager}"));
        let dir = repo.path();
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(text.contains(from), "{manager}: {text}");
        std::fs::write(dir.join(file), text.replace(from, to)).unwrap();
        p.git_ok(dir, &["commit", "-qam", "a dependency changed, the lockfile not"]);
        p.create_app(dir, &app);
        let (ok, said) = p.push(dir, &app);
        assert!(!ok, "{manager}: {said}");
        assert!(said.contains(want) && said.contains(&format!("run `{manager} lock`")), "{manager}: {said}");
    }
}
