//! The git receiver: smart HTTP `git push` served by the real
//! `git receive-pack --stateless-rpc` into one bare repository per app, and
//! the internal endpoint its pre-receive hook streams the pushed tree to.
//! The only module that runs git; git always gets an argv array, never a
//! shell line.

use crate::api::{hook_token_ok, ApiError, ApiResult, AppState};
use crate::builder::Output;
use crate::settings::Settings;
use anyhow::{bail, Context, Result};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::TryStreamExt;
use paas_wire::AppName;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::process::Command;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tokio_util::io::{ReaderStream, StreamReader};
use tracing::{info, warn};

/// The last line of the internal build response: how the build ended.
pub const RESULT_OK: &str = "\u{0}paas-result ok";
pub const RESULT_FAILED: &str = "\u{0}paas-result failed";

/// Header that carries the hook secret.
pub const HOOK_TOKEN_HEADER: &str = "x-paas-hook-token";

/// Largest pushed tree the builder accepts.
const MAX_SOURCE_BYTES: usize = 1 << 30;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/{repo}/info/refs", get(info_refs))
        .route("/{repo}/git-receive-pack", post(receive_pack))
}

pub fn internal_router() -> axum::Router<AppState> {
    axum::Router::new().route("/internal/apps/{app}/builds", post(internal_build))
}

/// Creates the app's bare repo if missing and (re)writes its pre-receive
/// hook, which execs this binary so no pushed string ever meets a shell.
pub fn ensure_repo(settings: &Settings, app: &AppName) -> Result<PathBuf> {
    let path = settings.repos_dir().join(format!("{app}.git"));
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

/// `myapp.git` -> the app, which must exist.
async fn repo_app(state: &AppState, repo: &str) -> ApiResult<(crate::store::AppRow, PathBuf)> {
    let name = repo.strip_suffix(".git").unwrap_or(repo);
    let app = state.app(name).await?;
    let name = AppName::parse(&app.name)?;
    let path = ensure_repo(&state.settings, &name).map_err(ApiError::internal)?;
    Ok((app, path))
}

#[derive(serde::Deserialize)]
struct ServiceQuery {
    service: Option<String>,
}

fn pkt_line(s: &str) -> String {
    format!("{:04x}{s}", s.len() + 4)
}

async fn info_refs(
    State(state): State<AppState>,
    Path(repo): Path<String>,
    Query(q): Query<ServiceQuery>,
) -> ApiResult<Response> {
    if q.service.as_deref() != Some("git-receive-pack") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "push_only",
            "this remote only accepts pushes (git-receive-pack over smart HTTP); cloning is not supported",
        ));
    }
    let (_, path) = repo_app(&state, &repo).await?;
    let out = Command::new("git")
        .args(["receive-pack", "--stateless-rpc", "--advertise-refs"])
        .arg(&path)
        .output()
        .await
        .map_err(ApiError::internal)?;
    if !out.status.success() {
        return Err(ApiError::internal(String::from_utf8_lossy(&out.stderr)));
    }
    let mut body = pkt_line("# service=git-receive-pack\n").into_bytes();
    body.extend_from_slice(b"0000");
    body.extend_from_slice(&out.stdout);
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-git-receive-pack-advertisement"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

async fn receive_pack(
    State(state): State<AppState>,
    Path(repo): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (app, path) = repo_app(&state, &repo).await?;
    let hook_url = state.settings.api_url();
    let mut child = Command::new("git")
        .args(["receive-pack", "--stateless-rpc"])
        .arg(&path)
        .env("PAAS_HOOK_URL", hook_url)
        .env("PAAS_HOOK_TOKEN", state.hook_token.as_str())
        .env("PAAS_HOOK_APP", &app.name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(ApiError::internal)?;
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
    let stream = ReaderStream::new(stdout).chain(futures_util::stream::once(async move {
        let _ = child.wait().await;
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
    if !hook_token_ok(&state, presented) {
        return Err(ApiError::unauthorized());
    }
    if q.commit.len() != 40 || !q.commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request("commit must be a 40-character hex object name"));
    }
    let app = state.app(&app).await?;
    let source = axum::body::to_bytes(body, MAX_SOURCE_BYTES)
        .await
        .map_err(|_| ApiError::bad_request("the pushed tree is larger than 1 GiB"))?
        .to_vec();
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(1024);
    let builder = state.builder.clone();
    tokio::spawn(async move {
        let out = Output::new(tx.clone());
        let last = match builder.build_and_release(&app, &q.commit, source, &out).await {
            Ok(release) => {
                info!(app = %app.name, release = release.version, "deployed");
                RESULT_OK
            }
            Err(e) => {
                warn!(app = %app.name, error = %format!("{e:#}"), "build failed");
                RESULT_FAILED
            }
        };
        let _ = tx.send(last.to_owned()).await;
    });
    let stream = ReceiverStream::new(rx).map(|line| Ok::<_, std::io::Error>(format!("{line}\n")));
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], Body::from_stream(stream)).into_response())
}
