//! Stacks: the base, build and run images that buildpack builds use, built
//! from Debian packages so the platform works with no registry at all.
//! `paas-server stack:build` debootstraps Debian 13 (trixie, minbase) into a
//! folder, imports it as the base image, then installs the language runtimes
//! with apt in a container from it and commits the build and run images.
//! Idempotent: an image that exists is reused.
//!
//! Hosts with a registry can name ready images instead with
//! `PAAS_STACK_IMAGE` (the base), `PAAS_STACK_BUILD_IMAGE` and
//! `PAAS_STACK_RUN_IMAGE`.

use crate::runtime::{CommitSpec, Runtime, TaskSpec};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub use crate::settings::{DEFAULT_BASE, DEFAULT_BUILD, DEFAULT_RUN};

/// Where the host's CA bundle is mounted in build containers.
pub const CA_PATH_IN_CONTAINER: &str = "/etc/ssl/certs/ca-certificates.crt";

pub use crate::settings::Stack;

impl Stack {
    pub fn ca_mount(&self) -> Option<(PathBuf, String)> {
        self.ca_bundle().as_ref().map(|p| (p.clone(), CA_PATH_IN_CONTAINER.to_owned()))
    }
}

/// Packages of the build image: compilers and every runtime's tools.
const BUILD_PACKAGES: &[&str] = &[
    "ca-certificates", "busybox", "git", "build-essential", "pkg-config",
    "python3", "python3-venv", "python3-pip", "python3-dev",
    "nodejs", "npm", "golang-go",
];
/// Packages of the run image: runtimes only (npm too, for `npm start`).
const RUN_PACKAGES: &[&str] = &["ca-certificates", "busybox", "python3", "nodejs", "npm"];

/// Sources `.profile.d/*.sh` before the dyno's command, as on Heroku.
const LAUNCHER: &str = r#"#!/bin/sh
cd /app 2>/dev/null || true
for f in /app/.profile.d/*.sh; do
  [ -f "$f" ] && . "$f"
done
exec "$@"
"#;

/// Builds whatever stack image is missing, reporting progress as lines.
pub async fn build(runtime: &dyn Runtime, stack: &Stack, out: &mpsc::Sender<String>) -> Result<()> {
    let say = |s: String| async move {
        let _ = out.send(s).await;
    };
    if runtime.image_exists(&stack.base).await? {
        say(format!("-----> Base image {} exists", stack.base)).await;
    } else if stack.base != DEFAULT_BASE {
        bail!("PAAS_STACK_IMAGE {} is not on this host: pull or load it first", stack.base);
    } else {
        let started = Instant::now();
        say(format!("-----> Building the base image {} with debootstrap ({} minbase, about a minute)", stack.base, stack.suite)).await;
        let rootfs = debootstrap(stack).await?;
        say(format!("       debootstrap done in {:.0} s; importing", started.elapsed().as_secs_f64())).await;
        runtime.import_rootfs(rootfs, &stack.base).await?;
        say(format!("       {} ready", stack.base)).await;
    }
    for (image, packages, what, minutes) in [
        (&stack.build, BUILD_PACKAGES, "build", "two to three minutes"),
        (&stack.run, RUN_PACKAGES, "run", "about a minute"),
    ] {
        if runtime.image_exists(image).await? {
            say(format!("-----> {what} image {image} exists")).await;
            continue;
        }
        let started = Instant::now();
        say(format!("-----> Building the {what} image {image}: apt-get install {} ({minutes})", packages.join(" "))).await;
        install(runtime, stack, image, packages, out).await?;
        say(format!("       {image} ready in {:.0} s", started.elapsed().as_secs_f64())).await;
    }
    Ok(())
}

/// Whether the stack's build and run images are present.
pub async fn is_ready(runtime: &dyn Runtime, stack: &Stack) -> Result<bool> {
    Ok(runtime.image_exists(&stack.build).await? && runtime.image_exists(&stack.run).await?)
}

async fn debootstrap(stack: &Stack) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir().context("cannot make a folder for debootstrap")?;
    let root = dir.path().join("rootfs");
    crate::tools::debootstrap(&stack.suite, &root, &stack.mirror).await?;
    // The image's apt sources: the same mirror debootstrap used.
    std::fs::write(
        root.join("etc/apt/sources.list"),
        format!("deb {} {} main\n", stack.mirror, stack.suite),
    )?;
    crate::tools::tar_directory(&root).await
}

async fn install(runtime: &dyn Runtime, stack: &Stack, image: &str, packages: &[&str], out: &mpsc::Sender<String>) -> Result<()> {
    let then = format!(
        "mkdir -p /app\n\
         cat > /usr/local/bin/paas-launch <<'LAUNCHER'\n{LAUNCHER}LAUNCHER\n\
         chmod 755 /usr/local/bin/paas-launch\n"
    );
    let commit = CommitSpec {
        tag: image.to_owned(),
        entrypoint: Some(vec!["/usr/local/bin/paas-launch".into()]),
        working_dir: Some("/app".into()),
        env: vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "HOME=/app".into(),
            "LANG=C.UTF-8".into(),
            "STACK=paas-trixie".into(),
        ],
        user: None,
    };
    install_packages(runtime, stack, packages, &then, commit, out).await
}

/// Makes `commit.tag` from the base image: `apt-get install packages`,
/// then the fixed shell script `then` (as root), committed with `commit`'s
/// settings. No user input reaches the script.
pub(crate) async fn install_packages(
    runtime: &dyn Runtime,
    stack: &Stack,
    packages: &[&str],
    then: &str,
    commit: CommitSpec,
    out: &mpsc::Sender<String>,
) -> Result<()> {
    let image = commit.tag.clone();
    let script = format!(
        "set -e\n\
         export DEBIAN_FRONTEND=noninteractive\n\
         ca=''; [ -f /etc/paas/ca.crt ] && ca='-o Acquire::https::CAInfo=/etc/paas/ca.crt'\n\
         apt-get $ca -q update\n\
         apt-get $ca -q install -y --no-install-recommends {}\n\
         apt-get clean\n\
         rm -rf /var/lib/apt/lists/*\n\
         {then}",
        packages.join(" ")
    );
    let (tx, mut rx) = mpsc::channel::<String>(256);
    let forward = {
        let out = out.clone();
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                if line.starts_with("Setting up ") || line.starts_with("E:") || line.starts_with("W:") {
                    let _ = out.send(format!("       {line}")).await;
                }
            }
        })
    };
    let spec = TaskSpec {
        name: "stack".into(),
        image: stack.base.clone(),
        cmd: vec!["/bin/sh".into(), "-c".into(), script],
        ca_bundle: stack.ca_bundle().map(|p| (p, "/etc/paas/ca.crt".to_owned())),
        commit: Some(commit),
        timeout: Some(Duration::from_secs(30 * 60)),
        platform_step: true,
        spare: false,
        ..Default::default()
    };
    let result = runtime.run_task(&spec, &tx).await;
    drop(tx);
    let _ = forward.await;
    let result = result?;
    if result.exit_code != 0 {
        bail!("installing packages into {image} failed (exit {}): is the Debian mirror {} reachable?", result.exit_code, stack.mirror);
    }
    Ok(())
}
