//! Dev/prod parity on the real engine: a staging build promoted to
//! production serves there with production's config and the very same
//! image, nothing rebuilt, and rolls back; a directory, a tarball and an
//! image built with `docker build` deploy without `git push`; maintenance
//! mode's page comes from the real router at once, `paas run` still works,
//! and a restart keeps it.

use crate::harness::*;
use std::path::Path;
use std::time::Duration;

/// The image ID the app's running web dynos were made from, once they all
/// run one (the old release's leave after the new ones serve).
fn web_image(p: &Platform, app: &str) -> String {
    poll(Duration::from_secs(30), "the web dynos to run one image", || {
        let ids = p.running(app, "web");
        let mut images: Vec<String> = ids
            .iter()
            .map(|id| text(&p.docker().args(["inspect", "--format", "{{.Image}}", id]).output().unwrap().stdout).trim().to_owned())
            .collect();
        images.dedup();
        (images.len() == 1).then(|| images.remove(0))
    })
}

#[test]
fn a_promoted_build_serves_in_production_with_its_config_and_rolls_back() {
    let mut p = Platform::start();
    let (staging, production) = (unique_app("stage"), unique_app("prod"));
    let repo = dockerfile_repo(&p, "main", "parity");
    let dir = repo.path();
    p.create_app(dir, &staging);
    p.create_app(dir, &production);
    let pipeline = unique_app("pipe");
    p.paas_ok(dir, &["pipelines:create", &pipeline]);
    p.paas_ok(dir, &["pipelines:add", &pipeline, "-a", &staging, "--stage", "staging"]);
    p.paas_ok(dir, &["pipelines:add", &pipeline, "-a", &production, "--stage", "production"]);
    p.paas_ok(dir, &["config:set", "GREETING=from-staging", "--no-wait", "-a", &staging]);
    p.paas_ok(dir, &["config:set", "GREETING=from-production", "--no-wait", "-a", &production]);
    p.push_ok(dir, &staging);
    p.wait_for_page(&staging, "greeting: from-staging");

    let said = p.paas_ok(dir, &["pipelines:promote", "-a", &staging]);
    assert!(said.contains(&production), "{said}");
    p.wait_for_page(&production, "greeting: from-production");
    assert_eq!(web_image(&p, &production), web_image(&p, &staging), "production runs the very image staging does");
    let builds: Vec<serde_json::Value> = p.api().get(p.url(&format!("/apps/{production}/builds"))).send().unwrap().json().unwrap();
    assert!(builds.is_empty(), "nothing was built for production: {builds:?}");

    // A second change; promote it; roll production back.
    std::fs::write(dir.join("Procfile"), std::fs::read_to_string(dir.join("Procfile")).unwrap().replace("greeting:", "greeting v2:")).unwrap();
    p.git_ok(dir, &["commit", "-qam", "v2"]);
    p.push_ok(dir, &staging);
    let diff = p.paas_ok(dir, &["pipelines:diff", "-a", &staging]);
    assert!(diff.contains("by 1 commit") && diff.contains("v2"), "{diff}");
    p.paas_ok(dir, &["pipelines:promote", "-a", &staging]);
    p.wait_for_page(&production, "greeting v2: from-production");
    let releases: Vec<serde_json::Value> = p.api().get(p.url(&format!("/apps/{production}/releases"))).send().unwrap().json().unwrap();
    let first_promotion = releases.iter().rev().find(|r| r["description"].as_str().unwrap().starts_with("Promote")).unwrap()["version"].as_i64().unwrap();
    p.paas_ok(dir, &["releases:rollback", &format!("v{first_promotion}"), "-a", &production]);
    poll(Duration::from_secs(60), "the rollback to serve", || {
        p.get(&production, "/").filter(|(s, b)| *s == 200 && b.contains("greeting: from-production")).map(|_| ())
    });
    p.paas_ok(dir, &["pipelines:destroy", &pipeline]);
    // The apps stay (as on Heroku) until destroyed, with their images.
    // Staging first, while production still runs the image promoted to
    // it: the promotion tagged it for production too, so staging's tag
    // goes and production's destroy then removes the image.
    let mut images = Vec::new();
    for app in [&staging, &production] {
        let ids = p.docker().args(["images", "-q", "--no-trunc", "--filter", &format!("reference=paas/{app}")]).output().unwrap();
        images.extend(text(&ids.stdout).lines().map(str::to_owned));
    }
    assert!(!images.is_empty(), "the apps have images");
    for app in [&staging, &production] {
        p.paas_ok(dir, &["apps:destroy", "--confirm", app, "-a", app]);
        poll(Duration::from_secs(60), "the destroyed app's images gone", || {
            let left = p.docker().args(["images", "-q", "--filter", &format!("reference=paas/{app}")]).output().ok()?;
            text(&left.stdout).trim().is_empty().then_some(())
        });
    }
    // Not only untagged: the images themselves are gone.
    poll(Duration::from_secs(60), "both apps' images removed", || {
        images.iter().all(|id| !p.docker().args(["image", "inspect", id]).output().unwrap().status.success()).then_some(())
    });
}

/// A directory holding the fixture app, with `marker`.
fn fixture_dir(marker: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_fixture_app(dir.path(), marker);
    dir
}

fn tarball_of(dir: &Path) -> tempfile::NamedTempFile {
    let tarball = tempfile::Builder::new().suffix(".tar.gz").tempfile().unwrap();
    let made = std::process::Command::new("tar").args(["-czf", tarball.path().to_str().unwrap(), "-C", dir.to_str().unwrap(), "."]).status().unwrap();
    assert!(made.success());
    tarball
}

#[test]
fn a_directory_a_tarball_and_an_image_deploy_without_git_push() {
    let mut p = Platform::start();
    let app = unique_app("nogit");
    let here = tempfile::tempdir().unwrap();
    p.create_app(here.path(), &app);

    let dir = fixture_dir("from-a-directory");
    let said = p.paas_ok(here.path(), &["deploy", dir.path().to_str().unwrap(), "-a", &app]);
    assert!(said.contains("Building with the Dockerfile"), "{said}");
    p.wait_for_page(&app, "marker: from-a-directory");
    // secret.txt is in the fixture's .dockerignore: not in the image.
    let page = p.get(&app, "/").unwrap().1;
    assert!(!page.contains("secret.txt"), "{page}");

    let dir = fixture_dir("from-a-tarball");
    let tarball = tarball_of(dir.path());
    p.paas_ok(here.path(), &["deploy", tarball.path().to_str().unwrap(), "-a", &app]);
    p.wait_for_page(&app, "marker: from-a-tarball");

    // An image built here with `docker build`, its process types in a label.
    let image = format!("paas-test/{app}:1");
    p.build_image(
        &image,
        &format!(
            "FROM {BASE_IMAGE}\nRUN mkdir -p /www && echo '<p>built elsewhere</p>' > /www/index.html\n\
             LABEL paas.procfile=\"web: exec httpd -f -p \\$PORT -h /www\"\n"
        ),
    );
    let said = p.paas_ok(here.path(), &["deploy", "--image", &image, "-a", &app]);
    assert!(said.contains("Process types -> web"), "{said}");
    p.wait_for_page(&app, "built elsewhere");
    let id = text(&p.docker().args(["image", "inspect", "--format", "{{.Id}}", &image]).output().unwrap().stdout).trim().to_owned();
    assert_eq!(web_image(&p, &app), id, "released by its ID, which no later tag moves");
    // Another app's build, under a name of its own, is not a developer's
    // of this app only to take.
    let other = unique_app("nogit2");
    p.create_app(here.path(), &other);
    let dev = format!("dev-{other}@example.com");
    p.add_user(&dev);
    p.paas_ok(here.path(), &["access:add", &dev, "--role", "developer", "-a", &other]);
    let token = p.token_of(&dev);
    let copy = format!("paas-test/{app}-copy:1");
    assert!(p.docker().args(["tag", &id, &copy]).status().unwrap().success());
    let out = p.paas_cmd(here.path(), &["deploy", "--image", &copy, "-a", &other]).env("PAAS_TOKEN", &token).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stdout).contains("another app's build"), "{}", text(&out.stdout));
    let _ = p.docker().args(["rmi", &copy]).output();
    // An image the engine cannot have is refused before any release.
    let out = p.paas(here.path(), &["deploy", "--image", "paas-test/no-such-image:0", "-a", &app]);
    assert!(!out.status.success());
    assert!(text(&out.stdout).contains("cannot pull it"), "{}", text(&out.stdout));
    p.wait_for_page(&app, "built elsewhere");
    p.paas_ok(here.path(), &["apps:destroy", "--confirm", &app, "-a", &app]);
    // Its builds' images go; the image it was given, which another tag
    // names, stays (it is not the platform's to delete).
    poll(Duration::from_secs(30), "the app's build images to go", || {
        let left = text(&p.docker().args(["images", "-q", &format!("paas/{app}")]).output().unwrap().stdout);
        left.trim().is_empty().then_some(())
    });
    let kept = p.docker().args(["image", "inspect", &image]).output().unwrap();
    assert!(kept.status.success(), "the image it was given is kept");
    let _ = p.docker().args(["rmi", "-f", &image]).output();
}

#[test]
fn an_image_deploy_pulls_from_a_registry_the_outbound_policy_allows() {
    let registry = Registry::start(None);
    let mut p = Platform::start_with(&[("PAAS_OUTBOUND_ALLOW", "127.0.0.1/32")]);
    let app = unique_app("pulled");
    let here = tempfile::tempdir().unwrap();
    p.create_app(here.path(), &app);
    // Built here, pushed to the registry, and gone from the engine: the deploy must pull it.
    let image = format!("127.0.0.1:{}/team/{app}:1", registry.port);
    p.build_image(&image, &format!("FROM {BASE_IMAGE}\nRUN mkdir -p /www && echo '<p>pulled from a registry</p>' > /www/index.html\nCMD httpd -f -p $PORT -h /www\n"));
    let pushed = p.docker().args(["push", &image]).output().unwrap();
    assert!(pushed.status.success(), "{}", text(&pushed.stderr));
    let id = text(&p.docker().args(["image", "inspect", "--format", "{{.Id}}", &image]).output().unwrap().stdout).trim().to_owned();
    assert!(p.docker().args(["rmi", &image]).status().unwrap().success());
    let said = p.paas_ok(here.path(), &["deploy", "--image", &image, "-a", &app]);
    assert!(said.contains(&format!("Pulling {image}")) && said.contains("the web process runs the image's own command"), "{said}");
    p.wait_for_page(&app, "pulled from a registry");
    assert_eq!(web_image(&p, &app), id, "the very image pushed");
    p.paas_ok(here.path(), &["apps:destroy", "--confirm", &app, "-a", &app]);
    let _ = p.docker().args(["rmi", "-f", &image]).output();
}

#[test]
fn maintenance_mode_on_the_real_router_lets_one_off_dynos_run_and_survives_a_restart() {
    let mut p = Platform::start();
    let app = unique_app("maint");
    let repo = dockerfile_repo(&p, "main", "maint");
    // The app's own page, a file in its build.
    std::fs::write(repo.path().join("maintenance.html"), "<h1>Moving house: back at noon</h1>\n").unwrap();
    p.git_ok(repo.path(), &["add", "-A"]);
    p.git_ok(repo.path(), &["commit", "-qm", "a maintenance page"]);
    p.create_app(repo.path(), &app);
    p.push_ok(repo.path(), &app);
    p.wait_for_page(&app, "marker: maint");
    p.paas_ok(repo.path(), &["maintenance:on", "-a", &app]);
    let (status, body) = p.get(&app, "/").unwrap();
    assert_eq!(status, 503, "the next request: {body}");
    assert_eq!(body, "<h1>Moving house: back at noon</h1>\n", "the build's page");
    let out = p.paas_ok(repo.path(), &["run", "-a", &app, "echo", "migrating"]);
    assert!(out.contains("migrating"), "{out}");
    p.terminate(Duration::from_secs(30));
    p.boot();
    assert_eq!(p.get(&app, "/").unwrap().0, 503, "kept through a restart");
    poll(Duration::from_secs(30), "the build's page after the restart", || {
        p.get(&app, "/").filter(|(s, b)| *s == 503 && b.contains("Moving house")).map(|_| ())
    });
    p.paas_ok(repo.path(), &["maintenance:off", "-a", &app]);
    p.wait_for_page(&app, "marker: maint");
}
