//! Buildpack builds: for apps without a Dockerfile. Runs Heroku buildpack API
//! v2 buildpacks in a container from the stack's build image (the app's
//! source at `/app`, a per-app cache volume, the config as `ENV_DIR`, the
//! host's CA bundle), then makes the release image: the stack's run image
//! plus the built `/app`. The upload and the built `/app` go through
//! temporary files, streamed, so a large app never sits whole in memory.

use paas_wire::redact_url as redact;
use crate::output::Output;
use crate::runtime::{build_cache_volume, deps_image, BuildLimits, Runtime, TaskSpec};
use crate::source::{copy_tree, SourceFile};
use crate::stack::{Stack, CA_PATH_IN_CONTAINER};
use crate::tools::{self, FetchLimits};
use anyhow::{anyhow, bail, Context, Result};
use std::io::Write;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The built-in buildpacks, in detection order.
pub const BUILT_IN: &[&str] = &["python", "nodejs", "go", "static", "procfile"];

const DRIVER: &str = include_str!("buildpack_driver.sh");

/// Limits on fetching a buildpack from a git URL.
const FETCH_LIMITS: FetchLimits = FetchLimits { timeout: Duration::from_secs(120), max_bytes: 100 << 20 };

#[derive(Clone)]
pub struct BuildpackBuilder {
    runtime: Arc<dyn Runtime>,
    stack: Stack,
    /// `PAAS_BUILDPACKS_DIR`: where the built-in buildpacks are.
    dir: PathBuf,
    /// `PAAS_BUILDPACK_DIRS`: server folders custom buildpacks may come from.
    allowed_dirs: Vec<PathBuf>,
    /// Each app's last build container, for [`Self::warm_up`].
    last_task: Arc<std::sync::Mutex<std::collections::HashMap<String, TaskSpec>>>,
    /// Where buildpack URLs may be fetched from (`PAAS_OUTBOUND_ALLOW`).
    outbound: crate::outbound::OutboundPolicy,
}

/// What a buildpack build made.
pub struct Built {
    pub image: String,
    /// `default_process_types` from the buildpacks' `bin/release`.
    pub default_types: BTreeMap<String, String>,
    /// The Procfile as the build left it in `/app` (it may have written it).
    pub procfile: Option<String>,
}

impl BuildpackBuilder {
    pub fn new(runtime: Arc<dyn Runtime>, stack: Stack, dir: PathBuf, allowed_dirs: Vec<PathBuf>) -> Self {
        Self { runtime, stack, dir, allowed_dirs, last_task: Default::default(), outbound: Default::default() }
    }

    /// Lets buildpack URLs reach what `outbound` permits (by default, public
    /// addresses only).
    pub fn with_outbound(mut self, outbound: crate::outbound::OutboundPolicy) -> Self {
        self.outbound = outbound;
        self
    }

    /// Has the runtime make the container of the app's next build now, so
    /// that build skips creating and starting one (about 0.3 s). Called
    /// once a deploy is done, not during it: making a container then would
    /// slow the release image and the new dynos.
    pub fn warm_up(&self, app: &str) {
        let spec = self.last_task.lock().expect("last task lock").get(app).cloned();
        if let Some(spec) = spec {
            self.runtime.prepare_task(&spec);
        }
    }

    /// Forgets an app (destroyed).
    pub fn forget(&self, app: &str) {
        self.last_task.lock().expect("last task lock").remove(app);
    }

    /// Builds `source` (a `git archive` tar). `chosen` names buildpacks
    /// (`BUILDPACK_URL` or app.json); empty means detect among the built-ins.
    #[allow(clippy::too_many_arguments)]
    pub async fn build(
        &self,
        app: &str,
        tag: &str,
        source: Arc<SourceFile>,
        config: &BTreeMap<String, String>,
        chosen: &[String],
        scratch: &Path,
        limits: BuildLimits,
        out: &Output,
    ) -> Result<Built> {
        if !crate::stack::is_ready(self.runtime.as_ref(), &self.stack).await? {
            bail!(
                "the buildpack stack ({}, {}) is not built on this server: run `paas-server stack:build` (a few minutes), or add a Dockerfile",
                self.stack.build,
                self.stack.run
            );
        }
        let workspace = tempfile::tempdir().context("cannot make a folder for buildpacks")?;
        let (dirs, mode) = if chosen.is_empty() {
            (BUILT_IN.iter().map(|n| self.dir.join(n)).collect::<Vec<_>>(), "detect")
        } else {
            let mut dirs = Vec::new();
            for (i, c) in chosen.iter().enumerate() {
                dirs.push(self.resolve(c, &workspace.path().join(i.to_string()), out).await?);
            }
            (dirs, "explicit")
        };
        let files = tempfile::Builder::new().prefix("buildpack-").tempdir_in(scratch)?;
        let upload_path = files.path().join("upload.tar");
        let count = {
            let config = config.clone();
            let path = upload_path.clone();
            tokio::task::spawn_blocking(move || build_upload(&source, &dirs, &config, &path)).await??
        };
        let paas_out = files.path().join("paas-out.tar");
        // The app's dependency layer, if a build made one on this run image:
        // the build container skips packing dependencies that did not change.
        let deps_image = deps_image(app);
        let run_id = self.runtime.image_id(&self.stack.run).await?.unwrap_or_default();
        let known_key = self
            .runtime
            .image_label(&deps_image, DEPS_LABEL)
            .await?
            .and_then(|l| l.split_once(' ').filter(|(_, base)| *base == run_id).map(|(k, _)| k.to_owned()));
        let mut env: BTreeMap<String, String> = BTreeMap::from([
            ("STACK".into(), "paas-trixie".into()),
            // Buildpacks may name things after the app (Go's binary).
            ("PAAS_APP".into(), app.to_owned()),
            ("HOME".into(), "/app".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ]);
        if let Some(key) = &known_key {
            env.insert("PAAS_DEPS_KNOWN".into(), key.clone());
        }
        if self.stack.ca_bundle().is_some() {
            for var in ["SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO", "CURL_CA_BUNDLE"] {
                env.insert(var.into(), CA_PATH_IN_CONTAINER.into());
            }
        }
        let spec = TaskSpec {
            name: format!("build-{app}"),
            image: self.stack.build.clone(),
            cmd: vec!["/bin/bash".into(), "/tmp/paas-build.sh".into(), mode.into(), count.to_string()],
            env,
            upload: Some(upload_path),
            volumes: vec![(build_cache_volume(app), "/tmp/cache".into())],
            ca_bundle: self.stack.ca_mount(),
            download: vec![("/tmp/paas-out".into(), paas_out.clone())],
            download_limit: Some(limits.output),
            commit: None,
            timeout: Some(limits.timeout),
            platform_step: false,
            memory: limits.memory,
            spare: true,
        };
        self.last_task.lock().expect("last task lock").insert(app.to_owned(), spec.clone());
        let started = std::time::Instant::now();
        let sink = out.sink(false);
        let result = self.runtime.run_task(&spec, &sink.tx).await;
        sink.close().await;
        let result = result.map_err(|e| {
            if let Some(too_large) = e.downcast_ref::<crate::runtime::OutputTooLarge>() {
                anyhow!(
                    "the built app (/app and its dependencies) is over {} MiB, the slug limit: remove what it does not need at run time, or raise PAAS_MAX_SLUG_MB on the server",
                    too_large.0 >> 20
                )
            } else if format!("{e:#}").contains("took longer than") {
                anyhow!(
                    "the build took longer than {} s, the build timeout: make it faster, or raise PAAS_BUILD_TIMEOUT_SECONDS on the server",
                    limits.timeout.as_secs()
                )
            } else {
                e
            }
        })?;
        if result.oom_killed {
            bail!(
                "the build was killed for using more than its memory limit of {} MiB: raise PAAS_BUILD_MEMORY on the server",
                limits.memory.unwrap_or_default() >> 20
            );
        }
        if result.exit_code != 0 {
            bail!("the buildpack build failed (exit {})", result.exit_code);
        }
        let unpacked = {
            let dir = files.path().to_path_buf();
            tokio::task::spawn_blocking(move || unpack_out(std::fs::File::open(paas_out)?, &dir)).await??
        };
        let bytes = std::fs::metadata(&unpacked.code).map(|m| m.len()).unwrap_or(0);
        tracing::info!(app, seconds = started.elapsed().as_secs_f64(), bytes, "buildpack container done");
        let started = std::time::Instant::now();

        // Dependencies are a layer of their own, made again only when their
        // key changed; the code is one small layer on top.
        let base = match (&unpacked.deps_key, &unpacked.deps) {
            (Some(key), Some(deps)) => {
                out.line("-----> Dependencies changed: making their image layer").await;
                let label = format!("{key} {run_id}");
                self.runtime
                    .image_from_files(&self.stack.run, deps, &deps_image, Some((DEPS_LABEL, &label)))
                    .await
                    .context("cannot make the dependency layer")?;
                deps_image.clone()
            }
            (Some(key), None) if known_key.as_ref() == Some(key) => {
                out.line("-----> Dependencies unchanged: reusing their image layer").await;
                deps_image.clone()
            }
            (Some(_), None) => bail!("the build container did not pack the changed dependencies: push again"),
            (None, _) => self.stack.run.clone(),
        };
        out.line("-----> Making the release image").await;
        let image = self.runtime.image_from_files(&base, &unpacked.code, tag, None).await;
        tracing::info!(app, seconds = started.elapsed().as_secs_f64(), "release image built");
        Ok(Built { image: image.context("cannot make the release image")?, default_types: unpacked.types, procfile: unpacked.procfile })
    }

    /// A buildpack named by `BUILDPACK_URL` or app.json, as a folder.
    async fn resolve(&self, name: &str, scratch: &Path, out: &Output) -> Result<PathBuf> {
        match classify(name, &self.allowed_dirs).map_err(|e| anyhow!(e))? {
            Source::BuiltIn { name: built_in, instead_of } => {
                if let Some(asked) = instead_of {
                    out.line(format!("-----> Using the built-in {built_in} buildpack for {asked}")).await;
                }
                Ok(self.dir.join(built_in))
            }
            Source::Folder(path) => Ok(path),
            Source::Git { url, reference, credentials } => {
                let shown = redact(name);
                // An https URL is fetched from the address checked here, and
                // only from it (git is told not to resolve it again, nor to
                // follow redirects).
                let pin = match reqwest::Url::parse(&url).ok().filter(|u| u.scheme() == "https") {
                    Some(parsed) => {
                        let host = parsed.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
                        let port = parsed.port_or_known_default().unwrap_or(443);
                        let addr = self.outbound.resolve(&host, port).await.map_err(|e| anyhow!("buildpack {shown} is refused: {e}"))?;
                        Some(tools::Pin { host, port, ip: addr.ip() })
                    }
                    None => None,
                };
                out.line(format!("-----> Fetching buildpack {shown}")).await;
                tools::git_clone(&url, reference.as_deref(), credentials.as_deref(), pin.as_ref(), scratch, FETCH_LIMITS)
                    .await
                    .with_context(|| format!("cannot fetch buildpack {shown}"))?;
                Ok(scratch.to_path_buf())
            }
        }
    }
}

/// Where a buildpack comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    /// A built-in buildpack; `instead_of` is the Heroku name or URL asked for.
    BuiltIn { name: &'static str, instead_of: Option<String> },
    /// A folder on the server, under one the operator allowed.
    Folder(PathBuf),
    /// A git repository to clone: the URL without credentials, the ref
    /// after `#`, and `user:password` from the URL, if any.
    Git { url: String, reference: Option<String>, credentials: Option<String> },
}

/// Heroku's official buildpacks that have a built-in counterpart here.
const HEROKU_URL_PREFIX: &str = "github.com/heroku/heroku-buildpack-";

/// Decides where a buildpack named by `BUILDPACK_URL` or app.json comes
/// from: a built-in name (also as `heroku/NAME` or Heroku's GitHub URL), an
/// `https://` git URL, or a server path / `file://` URL inside a folder the
/// operator listed in `PAAS_BUILDPACK_DIRS`. Anything else is refused, saying
/// what is allowed.
pub fn classify(name: &str, allowed_dirs: &[PathBuf]) -> Result<Source, String> {
    let name = name.trim();
    let built_ins = BUILT_IN.join(", ");
    if let Some(b) = BUILT_IN.iter().find(|b| **b == name) {
        return Ok(Source::BuiltIn { name: b, instead_of: None });
    }
    if let Some(short) = name.strip_prefix("heroku/") {
        return match BUILT_IN.iter().find(|b| **b == short) {
            Some(b) => Ok(Source::BuiltIn { name: b, instead_of: Some(name.to_owned()) }),
            None => Err(format!(
                "buildpack {name} has no built-in counterpart here (the built-ins are {built_ins}), and this host does not fetch Heroku's buildpacks by name: give its https:// git URL"
            )),
        };
    }
    let (base, reference) = match name.split_once('#') {
        Some((u, r)) => (u, Some(r.to_owned())),
        None => (name, None),
    };
    if reference.as_deref().is_some_and(|r| r.is_empty() || r.starts_with('-') || r.contains(char::is_whitespace)) {
        return Err(format!("buildpack {} names an invalid git ref after #", redact(name)));
    }
    if let Some(rest) = base.strip_prefix("https://").or_else(|| base.strip_prefix("http://")) {
        let host_path = rest.rsplit_once('@').map_or(rest, |(_, hp)| hp);
        if let Some(lang) = host_path.strip_prefix(HEROKU_URL_PREFIX) {
            let lang = lang.trim_end_matches('/').trim_end_matches(".git");
            if let Some(b) = BUILT_IN.iter().find(|b| **b == lang) {
                return Ok(Source::BuiltIn { name: b, instead_of: Some(redact(name)) });
            }
        }
    }
    if let Some(rest) = base.strip_prefix("https://") {
        // The authority ends at the first `/`, or with the URL when it has
        // no path; credentials are whatever it holds before its last `@`.
        let authority = rest.split('/').next().unwrap_or_default();
        let (credentials, host_path) = match authority.rsplit_once('@') {
            Some((userinfo, _)) => (Some(userinfo.to_owned()), rest[userinfo.len() + 1..].to_owned()),
            None => (None, rest.to_owned()),
        };
        if host_path.is_empty() || host_path.starts_with('/') || host_path.contains(char::is_whitespace) {
            return Err(format!("buildpack {} is not a valid https:// git URL", redact(name)));
        }
        return Ok(Source::Git { url: format!("https://{host_path}"), reference, credentials });
    }
    let local = match base.strip_prefix("file://") {
        Some(path) => Some(PathBuf::from(path)),
        None if base.starts_with('/') => Some(PathBuf::from(base)),
        None => None,
    };
    let Some(local) = local else {
        return Err(format!(
            "buildpack {} is not a built-in name ({built_ins}, also as heroku/NAME) or an https:// git URL",
            redact(name)
        ));
    };
    let refused = || {
        format!(
            "buildpack {name} is on this server: server paths and file:// URLs are refused unless the operator lists their folder in PAAS_BUILDPACK_DIRS; use a built-in name or an https:// git URL"
        )
    };
    // Resolve `..` and symlinks before checking where it is.
    let real = local.canonicalize().map_err(|_| refused())?;
    if !allowed_dirs.iter().filter_map(|d| d.canonicalize().ok()).any(|d| real.starts_with(&d)) {
        return Err(refused());
    }
    if base.starts_with("file://") && real.join(".git").exists() {
        return Ok(Source::Git { url: format!("file://{}", real.display()), reference, credentials: None });
    }
    if !real.join("bin").join("compile").is_file() {
        return Err(format!("buildpack {name} has no bin/compile: it is not a buildpack folder"));
    }
    Ok(Source::Folder(real))
}


/// Writes the tar unpacked at `/` in the build container to `dest`: the
/// source under `app/`, the buildpacks under `tmp/buildpacks/N/`, config vars
/// as files under `tmp/env/`, and the driver script. Returns the buildpack
/// count.
fn build_upload(source: &SourceFile, buildpacks: &[PathBuf], config: &BTreeMap<String, String>, dest: &Path) -> Result<usize> {
    let file = std::io::BufWriter::new(std::fs::File::create(dest)?);
    let mut tar = tar::Builder::new(file);
    tar.follow_symlinks(false);
    type Tar = tar::Builder<std::io::BufWriter<std::fs::File>>;
    let dir = |tar: &mut Tar, path: &str| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        tar.append_data(&mut h, path, std::io::empty())?;
        Ok(())
    };
    let file = |tar: &mut Tar, path: &str, body: &[u8], mode: u32| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode);
        h.set_size(body.len() as u64);
        tar.append_data(&mut h, path, body)?;
        Ok(())
    };
    for d in ["app", "tmp", "tmp/buildpacks", "tmp/env"] {
        dir(&mut tar, d)?;
    }
    copy_tree(source.open()?, &mut tar, "app/", |_| true)?;
    for (i, bp) in buildpacks.iter().enumerate() {
        if !bp.is_dir() {
            bail!("buildpack folder {} is missing: set PAAS_BUILDPACKS_DIR to the repo's buildpacks/", bp.display());
        }
        tar.append_dir_all(format!("tmp/buildpacks/{i}"), bp)?;
    }
    for (k, v) in config {
        file(&mut tar, &format!("tmp/env/{k}"), v.as_bytes(), 0o600)?;
    }
    file(&mut tar, "tmp/paas-build.sh", DRIVER.as_bytes(), 0o755)?;
    tar.into_inner()?.flush()?;
    Ok(buildpacks.len())
}

/// The label a dependency image carries: its key and the run image it was
/// made on.
const DEPS_LABEL: &str = "paas.deps";

/// What the build container left in `/tmp/paas-out`, unpacked to files.
struct Unpacked {
    types: BTreeMap<String, String>,
    /// `/app` without the dependency folders, as a tar.
    code: PathBuf,
    /// The dependency folders, as a tar, when they changed.
    deps: Option<PathBuf>,
    deps_key: Option<String>,
    procfile: Option<String>,
}

/// Unpacks the downloaded `/tmp/paas-out` (a tar of tars) into `dir`,
/// streaming, and reads every `release-N.yml` (a later buildpack's process
/// types override an earlier one's).
fn unpack_out(tar: impl std::io::Read, dir: &Path) -> Result<Unpacked> {
    let mut files = Vec::new();
    let (mut code, mut deps, mut deps_key, mut procfile) = (None, None, None, None);
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let name = path.rsplit('/').next().unwrap_or_default().to_owned();
        match name.as_str() {
            "code.tar" | "deps.tar" => {
                let target = dir.join(&name);
                std::io::copy(&mut entry, &mut std::fs::File::create(&target)?)?;
                if name == "code.tar" { code = Some(target) } else { deps = Some(target) }
            }
            "deps-key" => {
                let key = read_capped(&mut entry, "deps-key", 4096)?;
                deps_key = Some(key.trim().to_owned()).filter(|k| !k.is_empty());
            }
            "Procfile" => procfile = Some(read_capped(&mut entry, "the Procfile the build left", MAX_RELEASE_YAML)?),
            n if n.starts_with("release-") && n.ends_with(".yml") => {
                let i: usize = n["release-".len()..n.len() - 4].parse().unwrap_or(0);
                let text = read_capped(&mut entry, "bin/release's output", MAX_RELEASE_YAML)?;
                files.push((i, text));
            }
            _ => {}
        }
    }
    let code = code.ok_or_else(|| anyhow!("the build container's output is missing the app"))?;
    Ok(Unpacked { types: release_types(files)?, code, deps, deps_key, procfile })
}

/// The most of a buildpack's `bin/release` output read (Heroku's are a few
/// lines).
const MAX_RELEASE_YAML: u64 = 64 * 1024;

/// A small file of the build's output, read whole only when it is at most
/// `limit` bytes.
fn read_capped(entry: &mut impl std::io::Read, what: &str, limit: u64) -> Result<String> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(entry, limit + 1), &mut text)
        .with_context(|| format!("{what} is not text"))?;
    if text.len() as u64 > limit {
        bail!("{what} is over {} KiB: a buildpack's bin/release prints a short YAML document, and a Procfile a few lines", limit >> 10);
    }
    Ok(text)
}

/// The process types of every buildpack's `bin/release`, in order.
fn release_types(mut files: Vec<(usize, String)>) -> Result<BTreeMap<String, String>> {
    files.sort();
    let mut types = BTreeMap::new();
    for (_, text) in files {
        types.extend(parse_release_yaml(&text)?);
    }
    Ok(types)
}

/// The `default_process_types` map of a `bin/release` YAML document: the
/// subset of YAML buildpacks print (a block map of `name: command`, or `{}`).
pub fn parse_release_yaml(text: &str) -> Result<BTreeMap<String, String>> {
    let mut types = BTreeMap::new();
    let mut inside = false;
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') || line.trim() == "---" {
            continue;
        }
        let indented = line.starts_with(' ') || line.starts_with('\t');
        if !indented {
            inside = false;
            if let Some(rest) = line.strip_prefix("default_process_types:") {
                let rest = rest.trim();
                if rest.is_empty() {
                    inside = true;
                } else if rest != "{}" {
                    bail!("bin/release printed default_process_types in a form paas does not read: {rest}");
                }
            }
            continue;
        }
        if inside {
            let Some((name, command)) = line.trim().split_once(':') else {
                bail!("bin/release printed a line paas does not read: {line:?}");
            };
            let name = paas_wire::ProcessType::parse(name.trim()).map_err(|e| anyhow!("bin/release: {e}"))?;
            let command = command.trim();
            let command = command
                .strip_prefix('"')
                .and_then(|c| c.strip_suffix('"'))
                .or_else(|| command.strip_prefix('\'').and_then(|c| c.strip_suffix('\'')))
                .unwrap_or(command);
            types.insert(name.to_string(), command.to_owned());
        }
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heroku_names_and_urls_are_the_built_ins() {
        let built = |n: &str| match classify(n, &[]) {
            Ok(Source::BuiltIn { name, .. }) => name,
            other => panic!("{n}: {other:?}"),
        };
        assert_eq!(built("python"), "python");
        assert_eq!(built("heroku/nodejs"), "nodejs");
        assert_eq!(built("https://github.com/heroku/heroku-buildpack-python"), "python");
        assert_eq!(built("https://github.com/heroku/heroku-buildpack-go.git"), "go");
        assert_eq!(built("https://github.com/heroku/heroku-buildpack-nodejs.git#v250"), "nodejs");
        assert_eq!(built("https://github.com/heroku/heroku-buildpack-static"), "static");
        let e = classify("heroku/ruby", &[]).unwrap_err();
        assert!(e.contains("no built-in counterpart") && e.contains("https://"), "{e}");
    }

    #[test]
    fn only_https_and_allowed_folders() {
        assert_eq!(
            classify("https://user:s3cret@example.com/bp.git#main", &[]).unwrap(),
            Source::Git { url: "https://example.com/bp.git".into(), reference: Some("main".into()), credentials: Some("user:s3cret".into()) }
        );
        // With no path, the credentials still come out of the URL (they
        // reached git's argv before).
        assert_eq!(
            classify("https://user:s3cret@example.com", &[]).unwrap(),
            Source::Git { url: "https://example.com".into(), reference: None, credentials: Some("user:s3cret".into()) }
        );
        assert_eq!(
            classify("https://example.com/a@b", &[]).unwrap(),
            Source::Git { url: "https://example.com/a@b".into(), reference: None, credentials: None }
        );
        for bad in ["http://example.com/bp.git", "git://example.com/bp.git", "ssh://git@example.com/bp", "example.com/bp", "https:///x"] {
            assert!(classify(bad, &[]).is_err(), "{bad}");
        }
        let e = classify("https://a:b@example.com/bp#--upload-pack=x", &[]).unwrap_err();
        assert!(!e.contains(":b@"), "credentials are redacted: {e}");
        // Server paths: refused unless under an allowed folder, `..` or not.
        let dir = tempfile::tempdir().unwrap();
        let bp = dir.path().join("bp");
        std::fs::create_dir_all(bp.join("bin")).unwrap();
        std::fs::write(bp.join("bin/compile"), "#!/bin/sh\n").unwrap();
        let e = classify(&bp.display().to_string(), &[]).unwrap_err();
        assert!(e.contains("PAAS_BUILDPACK_DIRS"), "{e}");
        assert!(classify("file:///etc", &[dir.path().to_path_buf()]).is_err());
        let sneaky = format!("{}/../../etc", bp.display());
        assert!(classify(&sneaky, &[dir.path().to_path_buf()]).is_err());
        assert_eq!(classify(&bp.display().to_string(), &[dir.path().to_path_buf()]).unwrap(), Source::Folder(bp.canonicalize().unwrap()));
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(redact("https://user:pw@example.com/x.git"), "https://***@example.com/x.git");
        assert_eq!(redact("https://example.com/a@b"), "https://example.com/a@b");
        assert_eq!(redact("heroku/python"), "heroku/python");
    }

    #[test]
    fn release_yaml() {
        let t = parse_release_yaml("---\ndefault_process_types:\n  web: npm start\n  worker: \"node w.js\"\naddons: []\n").unwrap();
        assert_eq!(t["web"], "npm start");
        assert_eq!(t["worker"], "node w.js");
        assert!(parse_release_yaml("---\ndefault_process_types: {}\n").unwrap().is_empty());
        assert!(parse_release_yaml("---\nconfig_vars:\n  A: b\n").unwrap().is_empty());
        assert!(parse_release_yaml("default_process_types:\n  Bad Name: x\n").is_err());
    }

    #[test]
    fn nodejs_web_process_is_what_npm_start_runs() {
        let release = Path::new(env!("CARGO_MANIFEST_DIR")).join("../buildpacks/nodejs/bin/release");
        let web = |package: &str, server_js: bool| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("package.json"), package).unwrap();
            if server_js {
                std::fs::write(dir.path().join("server.js"), "").unwrap();
            }
            let out = std::process::Command::new("bash").arg(&release).arg(dir.path()).output().unwrap();
            assert!(out.status.success());
            let types = parse_release_yaml(&String::from_utf8(out.stdout).unwrap()).unwrap();
            types["web"].clone()
        };
        assert_eq!(web(r#"{"scripts": {"start": "node app.js --port $PORT"}}"#, false), "node app.js --port $PORT");
        assert_eq!(web(r#"{"name": "x"}"#, true), "node server.js", "npm's default start");
        // Only npm runs prestart and poststart; odd or broken files too.
        assert_eq!(web(r#"{"scripts": {"prestart": "x", "start": "node a.js"}}"#, true), "npm start");
        assert_eq!(web(r#"{"name": "x"}"#, false), "npm start");
        assert_eq!(web("{not json", true), "npm start");
        assert_eq!(web(r#"{"scripts": {"start": "a\nb"}}"#, false), "npm start");
    }

    #[test]
    fn upload_layout() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "index.html", &b"hi"[..]).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let src = SourceFile::from_bytes(scratch.path(), &b.into_inner().unwrap()).unwrap();
        let bp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(bp.path().join("bin")).unwrap();
        std::fs::write(bp.path().join("bin/compile"), "#!/bin/sh\n").unwrap();
        let config = BTreeMap::from([("GREETING".to_owned(), "hi".to_owned())]);
        let dest = scratch.path().join("upload.tar");
        let n = build_upload(&src, &[bp.path().to_path_buf()], &config, &dest).unwrap();
        assert_eq!(n, 1);
        let tar_bytes = std::fs::read(&dest).unwrap();
        let mut names = Vec::new();
        for e in tar::Archive::new(&tar_bytes[..]).entries().unwrap() {
            names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
        }
        for want in ["app/index.html", "tmp/buildpacks/0/bin/compile", "tmp/env/GREETING", "tmp/paas-build.sh"] {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
    }
}
