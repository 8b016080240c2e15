//! The git receiver: smart HTTP `git push` served by the real
//! `git receive-pack --stateless-rpc` (run by [`crate::tools`]) into one bare
//! repository per app, and the internal endpoint its pre-receive hook
//! streams the pushed tree to. A push flows one way from here: the tree to
//! the builder, the image to the release service, which has the scheduler
//! converge. This module holds no build or release logic of its own.

use paas_wire::ErrorId;
use crate::actor::Actor;
use crate::http::{ApiError, ApiResult, AppPath, AppState};
use crate::output::Output;
use crate::release::Deployable;
use crate::settings::Settings;
use crate::source::SourceFile;
use crate::store::AppRow;
use anyhow::{bail, Context, Result};
use paas_wire::DeployState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::TryStreamExt;
use paas_wire::AppName;
use std::path::PathBuf;
use std::time::Duration;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tokio_util::io::{ReaderStream, StreamReader};
use tracing::{info, warn};

/// The last line of the internal build response: how the build ended.
pub const RESULT_OK: &str = "\u{0}paas-result ok";
pub const RESULT_FAILED: &str = "\u{0}paas-result failed";

/// Header that carries the hook secret.
pub const HOOK_TOKEN_HEADER: &str = "x-paas-hook-token";
/// Header that names the push (see [`crate::actor::Pushes`]).
pub const PUSH_HEADER: &str = "x-paas-push";

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/{repo}/info/refs", get(info_refs))
        .route("/{repo}/git-receive-pack", post(receive_pack))
}

/// `POST /apps/{app}/builds`: a build from an uploaded tree (`paas deploy`),
/// behind the token and access check like the API.
pub fn archive_router() -> axum::Router<AppState> {
    axum::Router::new().route("/apps/{app}/builds", post(archive_build))
}

pub fn internal_router() -> axum::Router<AppState> {
    axum::Router::new().route("/internal/apps/{app}/builds", post(internal_build))
}

/// Creates the app's bare repo if missing and (re)writes its pre-receive
/// hook, which execs this binary so no pushed string ever meets a shell.
pub fn ensure_repo(settings: &Settings, app: &AppName) -> Result<PathBuf> {
    let path = settings.repo_path(app.as_str());
    if !path.join("HEAD").exists() {
        git2::Repository::init_bare(&path).with_context(|| format!("cannot create repo {}", path.display()))?;
    }
    let exe = settings.hook_exe.to_str().context("the paas-server path is not UTF-8")?;
    if exe.contains('\'') {
        bail!("the paas-server path {exe:?} contains a quote: install it elsewhere");
    }
    let hook = path.join("hooks").join("pre-receive");
    std::fs::create_dir_all(hook.parent().expect("hook path has a parent"))?;
    let script = format!("#!/bin/sh\nexec '{exe}' hook:pre-receive\n");
    if std::fs::read_to_string(&hook).ok().as_deref() != Some(script.as_str()) {
        std::fs::write(&hook, script)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(path)
}

/// The app's bare repo, made when missing.
fn repo_of(state: &AppState, app: &AppRow) -> ApiResult<PathBuf> {
    let name = AppName::parse(&app.name)?;
    ensure_repo(&state.settings, &name).map_err(ApiError::internal)
}

#[derive(serde::Deserialize)]
struct ServiceQuery {
    service: Option<String>,
}

fn pkt_line(s: &str) -> String {
    format!("{:04x}{s}", s.len() + 4)
}

async fn info_refs(State(state): State<AppState>, app: AppPath, Query(q): Query<ServiceQuery>) -> ApiResult<Response> {
    if q.service.as_deref() != Some("git-receive-pack") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorId::PushOnly,
            "this remote only accepts pushes (git-receive-pack over smart HTTP); cloning is not supported",
        ));
    }
    let path = repo_of(&state, &app)?;
    let refs = crate::tools::git_advertise_refs(&path).await.map_err(|e| ApiError::internal(format!("{e:#}")))?;
    let mut body = pkt_line("# service=git-receive-pack\n").into_bytes();
    body.extend_from_slice(b"0000");
    body.extend_from_slice(&refs);
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-git-receive-pack-advertisement"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

async fn receive_pack(State(state): State<AppState>, AppPath(app): AppPath, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    // Only git sends a pack: a form or a `fetch` from a page cannot send
    // this content type without asking first (CORS), and is not asked back.
    let git_type = headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes() == b"application/x-git-receive-pack-request");
    if !git_type {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorId::NotGit,
            "git-receive-pack takes what git sends (Content-Type: application/x-git-receive-pack-request): push with `git push paas main`",
        ));
    }
    let path = repo_of(&state, &app)?;
    let hook_url = state.settings.api_url();
    let actor = Actor::current().ok_or_else(|| ApiError::internal("a push without an actor"))?;
    let push = state.pushes.begin(actor);
    let env = [
        ("PAAS_HOOK_URL", hook_url.as_str()),
        ("PAAS_HOOK_TOKEN", state.hook_token.as_str()),
        ("PAAS_HOOK_APP", app.name.as_str()),
        ("PAAS_HOOK_PUSH", push.id.as_str()),
    ];
    let mut child = crate::tools::git_receive_pack(&path, &env, state.settings.builds.max_push_bytes).map_err(|e| ApiError::internal(format!("{e:#}")))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let reader = StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    tokio::spawn(async move {
        let copied = if gzip {
            let mut r = async_compression::tokio::bufread::GzipDecoder::new(reader);
            tokio::io::copy(&mut r, &mut stdin).await
        } else {
            let mut r = reader;
            tokio::io::copy(&mut r, &mut stdin).await
        };
        if let Err(e) = copied {
            warn!(error = %e, "push body ended early");
        }
        drop(stdin);
    });
    // The child must outlive the response stream: reap it when stdout ends.
    // So must the push's record, which its hook's build looks up.
    let stream = ReaderStream::new(stdout).chain(futures_util::stream::once(async move {
        let _ = child.wait().await;
        drop(push);
        Ok(bytes::Bytes::new())
    }));
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-git-receive-pack-result"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(serde::Deserialize)]
struct BuildQuery {
    commit: String,
}

/// Called by the pre-receive hook with the pushed tree as a tar body; answers
/// with the build output, line by line, then a result line.
async fn internal_build(
    State(state): State<AppState>,
    Path(app): Path<String>,
    Query(q): Query<BuildQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let presented = headers.get(HOOK_TOKEN_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !state.hook_token_ok(presented) {
        return Err(ApiError::unauthorized());
    }
    if q.commit.len() != 40 || !q.commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request("commit must be a 40-character hex object name"));
    }
    // Looked up only after the hook's secret matched: no AppPath here, so a
    // caller without it cannot learn which apps exist.
    let app = crate::http::extract::find_app(&state, &app).await?;
    let push = headers.get(PUSH_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let actor = state.pushes.actor(push).ok_or_else(|| ApiError::bad_request("the push this build belongs to is over or unknown: push again"))?;
    // The tree goes to a temporary file as it arrives: never whole in memory.
    let source = SourceFile::receive(&state.settings.scratch_dir(), body.into_data_stream(), state.settings.builds.max_push_bytes)
        .await
        .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    Ok(build_and_stream(state, app, Start::Tree(q.commit, source), actor))
}

/// What a build starts from.
enum Start {
    /// A tree (a push, or an upload) and its commit or checksum.
    Tree(String, SourceFile),
    /// An image the engine has or pulls, the process types given, and who
    /// asked (an image another app runs must be theirs too).
    Image(String, Option<String>, Box<crate::http::access::Principal>),
}

/// Builds and deploys what `start` names as `actor` in a task of its own,
/// answering with the output line by line and then a result line.
fn build_and_stream(state: AppState, app: AppRow, start: Start, actor: Actor) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(1024);
    tokio::spawn(async move {
        let out = Output::new(tx.clone()).with_app_log(state.logs.clone(), &app.name);
        let job = async {
            match start {
                Start::Tree(commit, source) => deploy_push(&state, &app, &commit, source, &out).await,
                Start::Image(reference, types, by) => {
                    let built = match state.builder.adopt_image(&app, &reference, types.as_deref(), &out).await {
                        Ok(built) => image_is_theirs(&state, &app, &by, &built.image).await.map(|()| built),
                        Err(e) => Err(e),
                    };
                    match built {
                        Ok(built) => release_build(&state, &app, built, &out).await,
                        Err(e) => {
                            out.warn(format!("{e:#}")).await;
                            out.warn("Deploy rejected: the running release is unchanged").await;
                            Err(e)
                        }
                    }
                }
            }
        };
        let last = match actor.scope(job).await {
            Ok(()) => RESULT_OK,
            Err(e) => {
                warn!(app = %app.name, error = %format!("{e:#}"), "push rejected");
                RESULT_FAILED
            }
        };
        let _ = tx.send(last.to_owned()).await;
    });
    let stream = ReceiverStream::new(rx).map(|line| Ok::<_, std::io::Error>(format!("{line}\n")));
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], Body::from_stream(stream)).into_response()
}

/// Refuses image references an app may not deploy: the platform's own
/// images (`paas/...`: other apps' builds, the stack, add-ons), its own
/// registry (`PAAS_REGISTRY`, which holds every app's images), a bare image
/// ID, and a registry on an address the outbound policy refuses (as a drain's).
async fn check_image_reference(state: &AppState, reference: &str) -> ApiResult<()> {
    let refuse = |why: String| ApiError::new(StatusCode::FORBIDDEN, ErrorId::Forbidden, why);
    if reference.starts_with("sha256:") || (reference.len() == 64 && reference.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(ApiError::bad_request("name the image by repository and tag or digest (`myapp:1.2`, `myapp@sha256:...`), not by a bare ID"));
    }
    let (registry, repository) = match reference.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => (Some(first), rest),
        _ => (None, reference),
    };
    if repository.starts_with("paas/") {
        return Err(refuse(format!("{reference} is one of the platform's own images (other apps' builds, the stack, add-ons): deploy an image of your own")));
    }
    let Some(registry) = registry else { return Ok(()) };
    if state.settings.hosts.registry.as_deref().is_some_and(|own| own.eq_ignore_ascii_case(registry)) {
        return Err(refuse(format!("{registry} is the platform's own registry, which holds every app's images: deploy from another registry")));
    }
    // `host`, `host:port`, `[v6]` or `[v6]:port`.
    let (host, port) = match registry.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse().unwrap_or(443)),
        _ => (registry, 443),
    };
    if let Err(e) = state.settings.server.outbound.resolve(host, port).await {
        return Err(refuse(format!("the registry {registry} cannot be used: {e}")));
    }
    Ok(())
}

/// An image some other app's release runs may be deployed only by someone
/// who may deploy that app too.
async fn image_is_theirs(state: &AppState, app: &AppRow, by: &crate::http::access::Principal, image: &str) -> Result<()> {
    for app_id in state.store.apps_with_image(image).await? {
        if app_id == app.id {
            continue;
        }
        let Some(other) = state.store.app_by_id(&app_id).await? else { continue };
        let role = crate::http::access::standing(state, by, &other).await.map_err(|e| anyhow::anyhow!(e.message))?.role();
        if role < Some(crate::http::access::Role::Developer) {
            bail!("that image is another app's build, which you may not deploy: deploy an image of your own");
        }
    }
    Ok(())
}

/// A build from an uploaded tree: a tar, gzipped (`application/gzip`) or
/// not (`application/x-tar`), capped like a push. The build records the
/// SHA-256 of what was uploaded where a push records its commit.
async fn archive_build(
    State(state): State<AppState>,
    AppPath(app): AppPath,
    principal: Option<axum::Extension<crate::http::access::Principal>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let kind = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let gzip = match kind.split(';').next().unwrap_or_default().trim() {
        "application/gzip" | "application/x-gzip" | "application/x-tar+gzip" => true,
        "application/x-tar" => false,
        "application/json" => {
            let bytes = axum::body::to_bytes(body, 64 * 1024).await.map_err(|e| ApiError::bad_request(format!("the request body: {e}")))?;
            let wanted: paas_wire::ImageDeploy = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::bad_request(format!("the body is not an image deploy ({e}): send {{\"image\": \"REF\"}}")))?;
            if wanted.image.trim().is_empty() || wanted.image.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ApiError::bad_request("name the image as `docker` does: `myapp:1.2`, `registry:5000/myapp@sha256:...`"));
            }
            let reference = wanted.image.trim().to_owned();
            check_image_reference(&state, &reference).await?;
            let procfile = (!wanted.process_types.is_empty())
                .then(|| wanted.process_types.iter().map(|(t, c)| format!("{t}: {c}\n")).collect::<String>());
            let actor = Actor::current().ok_or_else(|| ApiError::internal("a build without an actor"))?;
            let by = principal.ok_or_else(|| ApiError::internal("a build without a principal"))?.0;
            return Ok(build_and_stream(state, app, Start::Image(reference, procfile, Box::new(by)), actor));
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorId::BadRequest,
                "send the tree as a tar (Content-Type: application/x-tar) or a gzipped tar (application/gzip), or an image as JSON (application/json, {\"image\": \"REF\"}): `paas deploy` makes either",
            ))
        }
    };
    let actor = Actor::current().ok_or_else(|| ApiError::internal("a build without an actor"))?;
    let hasher = std::sync::Arc::new(std::sync::Mutex::new(<sha2::Sha256 as sha2::Digest>::new()));
    let fed = hasher.clone();
    let upload = body.into_data_stream().map(move |chunk| {
        if let Ok(bytes) = &chunk {
            sha2::Digest::update(&mut *fed.lock().expect("hasher poisoned"), bytes);
        }
        chunk.map_err(std::io::Error::other)
    });
    let limit = state.settings.builds.max_push_bytes;
    let scratch = state.settings.scratch_dir();
    let received = if gzip {
        let reader = async_compression::tokio::bufread::GzipDecoder::new(StreamReader::new(upload));
        SourceFile::receive(&scratch, ReaderStream::new(reader), limit).await
    } else {
        SourceFile::receive(&scratch, upload, limit).await
    };
    let source = received.map_err(|e| match e.downcast_ref::<crate::source::TooLarge>() {
        Some(too_large) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorId::BadRequest, too_large.to_string()),
        None => ApiError::bad_request(format!("the upload is not a readable tar: {e:#}")),
    })?;
    let digest = hex::encode(sha2::Digest::finalize(std::mem::take(&mut *hasher.lock().expect("hasher poisoned"))));
    Ok(build_and_stream(state, app, Start::Tree(digest, source), actor))
}

/// A push's way through the platform: build with the app's config, release
/// through the release service, converge, and tell the pusher how it went.
/// An error rejects the push; once a release is made the push is accepted,
/// whatever the dynos do, and the pusher is told the truth about them.
async fn deploy_push(state: &AppState, app: &AppRow, commit: &str, source: SourceFile, out: &Output) -> Result<()> {
    let config = state.releases.config(app).await?;
    let built = state.builder.build(app, commit, source, &config, out).await?;
    crate::twelve::Observer::new(state.store.clone(), state.logs.clone()).record(&app.id, &app.name, &built.build_id, &built.findings).await;
    release_build(state, app, built, out).await
}

/// What the release service is handed of a build.
pub fn deployable(built: crate::builder::Built) -> Deployable {
    Deployable {
        build_id: built.build_id,
        commit: built.commit,
        image: built.image,
        process_types: built.process_types,
        initial_formation: built.app_json.formation.iter().map(|(t, f)| (t.to_string(), f.quantity.0)).collect(),
        initial_sizes: built.app_json.formation.iter().filter_map(|(t, f)| Some((t.to_string(), f.size?.0.to_string()))).collect(),
        health_path: built.app_json.web_health_path(),
        healthchecks: built.app_json.checks(),
        env: built.app_json.env.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        tasks: built.app_json.tasks.clone(),
    }
}

/// A build's way on: its app.json add-ons, the release, the dynos, and
/// the truth about them told to `out`.
async fn release_build(state: &AppState, app: &AppRow, built: crate::builder::Built, out: &Output) -> Result<()> {
    // app.json's add-ons, on the first deploy: attached before the release
    // is made, so its config (and its release phase) has their URLs.
    if let Err(e) = state.addons.provision_declared(app, &built.app_json.addons, out).await {
        out.warn(format!("{e}")).await;
        out.warn("Push rejected").await;
        bail!("{e}");
    }
    let release = match state.releases.deploy(app, deployable(built), out).await {
        Ok(r) => r,
        Err(e) => {
            out.warn(format!("{e}")).await;
            out.warn("Push rejected").await;
            return Err(e.into());
        }
    };
    out.heading(format!("Releasing v{}", release.version)).await;
    out.heading("Launching...").await;
    // As long as a boot may take, and then some: a push waits for the truth.
    let wait = state.settings.dynos.boot_timeout * 2 + Duration::from_secs(60);
    let deploy = state.releases.converge_built(app, release.version, wait, || state.builder.warm_up(&app.name)).await;
    info!(app = %app.name, release = release.version, state = ?deploy.state, "deployed");
    // Old releases' images go (PAAS_KEEP_RELEASES), in the background.
    let (store, runtime, keep) = (state.store.clone(), state.scheduler.runtime().clone(), state.settings.builds.keep_releases);
    tokio::spawn(async move {
        if let Err(e) = crate::gc::collect(&store, runtime.as_ref(), keep, false, crate::gc::LEFTOVER_AGE).await {
            tracing::warn!(error = %format!("{e:#}"), "cannot remove old release images");
        }
    });
    match deploy.state {
        DeployState::Serving | DeployState::Superseded => {
            if !deploy.started.is_empty() {
                out.body(format!("started {}", deploy.started.join(", "))).await;
            }
            if deploy.state == DeployState::Superseded {
                out.body(&deploy.message).await;
            }
            if deploy.state == DeployState::Serving {
                for warning in state.releases.postdeploy(app, &release, out).await {
                    out.warn(warning).await;
                }
            }
            out.body(format!("{} deployed to paas as v{}", state.web_url(&app.name), release.version)).await;
        }
        DeployState::Pending => {
            out.warn(&deploy.message).await;
            out.body(format!("{} released as v{} (see `paas ps`)", state.web_url(&app.name), release.version)).await;
        }
        DeployState::Failed => {
            for line in deploy.message.lines() {
                out.warn(line).await;
            }
            out.warn("Push rejected: the new release's dynos did not come up").await;
            bail!("v{} did not come up", release.version);
        }
    }
    Ok(())
}

/// `git log --oneline theirs..ours` in the bare repository at `repo`.
pub fn commits_between(repo: &std::path::Path, ours: &str, theirs: &str) -> Result<Vec<String>, String> {
    const MOST: usize = 200;
    let repo = git2::Repository::open_bare(repo).map_err(|e| format!("the repository cannot be read: {}", e.message()))?;
    let oid = |s: &str| git2::Oid::from_str(s).map_err(|e| e.message().to_owned());
    let (ours, theirs) = (oid(ours)?, oid(theirs)?);
    if repo.find_commit(theirs).is_err() {
        return Err(format!("{} is not in this app's history (it was pushed elsewhere)", &theirs.to_string()[..7]));
    }
    let mut walk = repo.revwalk().map_err(|e| e.message().to_owned())?;
    walk.push(ours).map_err(|e| e.message().to_owned())?;
    walk.hide(theirs).map_err(|e| e.message().to_owned())?;
    let mut out = Vec::new();
    for oid in walk.take(MOST) {
        let oid = oid.map_err(|e| e.message().to_owned())?;
        let commit = repo.find_commit(oid).map_err(|e| e.message().to_owned())?;
        out.push(format!("{} {}", &oid.to_string()[..7], commit.summary().unwrap_or("")));
    }
    Ok(out)
}
