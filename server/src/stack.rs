//! Stacks: the base, build and run images that buildpack builds use, built
//! from Debian packages so the platform works with no registry at all.
//! `paas-server stack:build` runs `buildpacks/stack/build`, which
//! bootstraps Debian 13 (trixie, minbase) with mmdebstrap, imports it as the
//! base image, then installs the language runtimes with apt in a container
//! from it and commits the build and run images. Idempotent: an image that
//! exists is reused. It is a shell script so that scripts/start and
//! scripts/test run it while cargo still compiles this binary.
//!
//! Hosts with a registry can name ready images instead with
//! `PAAS_STACK_IMAGE` (the base), `PAAS_STACK_BUILD_IMAGE` and
//! `PAAS_STACK_RUN_IMAGE`.

use crate::runtime::{CommitSpec, Runtime, TaskSpec};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

pub use crate::settings::{DEFAULT_BASE, DEFAULT_BUILD, DEFAULT_MIRROR, DEFAULT_RUN, DEFAULT_SUITE};

/// Where the host's CA bundle is mounted in build containers.
pub const CA_PATH_IN_CONTAINER: &str = "/etc/ssl/certs/ca-certificates.crt";

pub use crate::settings::Stack;

impl Stack {
    pub fn ca_mount(&self) -> Option<(PathBuf, String)> {
        self.ca_bundle().as_ref().map(|p| (p.clone(), CA_PATH_IN_CONTAINER.to_owned()))
    }
}

/// The script that makes the stack's images (`buildpacks/stack/build`):
/// shell, so scripts/start can run it while cargo still compiles this
/// binary, and this binary runs the same text.
const BUILD_SCRIPT: &str = include_str!("../../buildpacks/stack/build");
/// The in-container part of an image made of Debian packages: `apt-get
/// install` of its arguments (`buildpacks/stack/apt-install`).
const APT_INSTALL: &str = include_str!("../../buildpacks/stack/apt-install");

/// Builds whatever stack image is missing, reporting progress as lines:
/// runs [`BUILD_SCRIPT`] with the stack's settings.
pub async fn build(stack: &Stack, out: &mpsc::Sender<String>) -> Result<()> {
    let ca = stack.ca_bundle().map(|p| p.display().to_string()).unwrap_or_default();
    let env = [
        ("PAAS_STACK_IMAGE", stack.base.as_str()),
        ("PAAS_STACK_BUILD_IMAGE", stack.build.as_str()),
        ("PAAS_STACK_RUN_IMAGE", stack.run.as_str()),
        ("PAAS_DEBIAN_SUITE", stack.suite.as_str()),
        ("PAAS_DEBIAN_MIRROR", stack.mirror.as_str()),
        ("PAAS_CA_BUNDLE", ca.as_str()),
        ("PAAS_STACK_APT_INSTALL", APT_INSTALL),
    ];
    crate::tools::run_fixed_script(BUILD_SCRIPT, &env, out).await.context("the stack's images could not be made")
}

/// Whether the stack's build and run images are present.
pub async fn is_ready(runtime: &dyn Runtime, stack: &Stack) -> Result<bool> {
    Ok(runtime.image_exists(&stack.build).await? && runtime.image_exists(&stack.run).await?)
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
    let script = format!("{APT_INSTALL}{then}");
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
        cmd: ["/bin/sh", "-c", &script, "sh"].into_iter().chain(packages.iter().copied()).map(str::to_owned).collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_script_has_the_settings_defaults() {
        for line in [
            format!("default_base={DEFAULT_BASE}\n"),
            format!("default_build={DEFAULT_BUILD}\n"),
            format!("default_run={DEFAULT_RUN}\n"),
            format!("suite=${{PAAS_DEBIAN_SUITE:-{DEFAULT_SUITE}}}\n"),
            format!("mirror=${{PAAS_DEBIAN_MIRROR:-{DEFAULT_MIRROR}}}\n"),
        ] {
            assert!(BUILD_SCRIPT.contains(&line), "buildpacks/stack/build should say {line:?}, as settings.rs does");
        }
    }
}
