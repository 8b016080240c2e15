//! `/apps/{app}/addons` and `/apps/{app}/addon-attachments`: add-ons, their
//! attachments, upgrades, backups (list, capture, download, restore from a
//! backup or an uploaded archive) and backup schedules; see
//! [`crate::service::addons`]. An add-on is reached through an app that
//! owns it or has it attached.

use super::WaitQuery;
use crate::addons::backups::RestoreSource;
use crate::http::{ApiError, ApiResult, AppPath, AppState, Json};
use crate::service::addons;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::routing::{get, post, put};
use paas_wire::{Addon, AddonChange, AddonCreate, AttachmentCreate, Backup, BackupSchedule, Restore};

/// The largest archive a restore takes by upload.
const MAX_UPLOAD_BYTES: u64 = 64 << 30;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/apps/{app}/addons", get(list).post(create))
        .route("/apps/{app}/addons/{addon}", get(show).delete(destroy))
        .route("/apps/{app}/addons/{addon}/upgrade", post(upgrade))
        .route("/apps/{app}/addon-attachments", post(attach))
        .route("/apps/{app}/addon-attachments/{addon}", axum::routing::delete(detach))
        .route("/apps/{app}/addons/{addon}/backups", get(backups).post(capture))
        .route("/apps/{app}/addons/{addon}/backups/{backup}", get(download))
        .route("/apps/{app}/addons/{addon}/backups/{backup}/restore", post(restore_backup))
        .route("/apps/{app}/addons/{addon}/restores", post(restore_upload))
        .route("/apps/{app}/addons/{addon}/backup-schedule", put(schedule).delete(unschedule))
        .route("/apps/{app}/addons/{addon}/console", get(console))
}

#[derive(Debug, serde::Deserialize)]
struct DestroyQuery {
    confirm: Option<String>,
    #[serde(default)]
    force: bool,
}

#[derive(Debug, serde::Deserialize)]
struct ConfirmQuery {
    confirm: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct UpgradeBody {
    version: Option<String>,
}

async fn list(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<Vec<Addon>>> {
    Ok(Json(addons::list(&state, &app).await?))
}

async fn show(State(state): State<AppState>, app: AppPath, Path((_, addon)): Path<(String, String)>) -> ApiResult<Json<Addon>> {
    Ok(Json(addons::show(&state, &app, &addon).await?))
}

async fn create(State(state): State<AppState>, app: AppPath, Query(wait): Query<WaitQuery>, Json(body): Json<AddonCreate>) -> ApiResult<Response> {
    let change = addons::create(&state, &app, &body, wait.duration()).await?;
    // A service that did not come up is an add-on in state `failed`: made,
    // and said so.
    Ok((StatusCode::CREATED, Json(change)).into_response())
}

async fn attach(
    State(state): State<AppState>,
    app: AppPath,
    Extension(by): Extension<crate::http::access::Principal>,
    Query(wait): Query<WaitQuery>,
    Json(body): Json<AttachmentCreate>,
) -> ApiResult<(StatusCode, Json<AddonChange>)> {
    Ok((StatusCode::CREATED, Json(addons::attach(&state, &app, &body, &by, wait.duration()).await?)))
}

async fn detach(State(state): State<AppState>, app: AppPath, Query(wait): Query<WaitQuery>, Path((_, addon)): Path<(String, String)>) -> ApiResult<Json<AddonChange>> {
    Ok(Json(addons::detach(&state, &app, &addon, wait.duration()).await?))
}

async fn destroy(State(state): State<AppState>, app: AppPath, Path((_, addon)): Path<(String, String)>, Query(q): Query<DestroyQuery>) -> ApiResult<Json<AddonChange>> {
    Ok(Json(addons::destroy(&state, &app, &addon, q.confirm.as_deref(), q.force).await?))
}

async fn upgrade(State(state): State<AppState>, app: AppPath, Path((_, addon)): Path<(String, String)>, Json(body): Json<UpgradeBody>) -> ApiResult<Json<AddonChange>> {
    Ok(Json(addons::upgrade(&state, &app, &addon, body.version.as_deref()).await?))
}

async fn backups(State(state): State<AppState>, app: AppPath, Path((_, addon)): Path<(String, String)>) -> ApiResult<Json<Vec<Backup>>> {
    Ok(Json(addons::backups(&state, &app, &addon).await?))
}

async fn capture(State(state): State<AppState>, app: AppPath, Path((_, addon)): Path<(String, String)>) -> ApiResult<(StatusCode, Json<Backup>)> {
    Ok((StatusCode::CREATED, Json(addons::capture(&state, &app, &addon).await?)))
}

/// The backup's file, streamed, with its SHA-256 in `X-Paas-Sha256` (the
/// CLI checks it) and its record as JSON when asked for JSON.
async fn download(
    State(state): State<AppState>,
    app: AppPath,
    Path((_, addon, backup)): Path<(String, String, String)>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let wants_json = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json"));
    if wants_json {
        return Ok(Json(addons::backup_file(&state, &app, &addon, &backup).await?.0).into_response());
    }
    backup_download(&state, &app, &addon, &backup).await
}

/// A backup's file as a download (the API's and the dashboard's).
pub(crate) async fn backup_download(state: &AppState, app: &crate::store::AppRow, addon: &str, backup: &str) -> ApiResult<Response> {
    let (record, path) = addons::backup_file(state, app, addon, backup).await?;
    let file = tokio::fs::File::open(&path).await.map_err(|e| ApiError::internal(format!("cannot open {}: {e}", path.display())))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024));
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, "application/octet-stream".parse().expect("a header value"));
    if let Some(size) = record.size {
        h.insert(header::CONTENT_LENGTH, size.into());
    }
    if let Some(sha) = record.sha256.as_deref().and_then(|s| s.parse().ok()) {
        h.insert("x-paas-sha256", sha);
    }
    let filename = format!("attachment; filename=\"{addon}-{}\"", record.id);
    if let Ok(v) = filename.parse() {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

async fn restore_backup(
    State(state): State<AppState>,
    app: AppPath,
    Path((_, addon, backup)): Path<(String, String, String)>,
    Query(q): Query<ConfirmQuery>,
) -> ApiResult<Json<Restore>> {
    Ok(Json(addons::restore(&state, &app, &addon, RestoreSource::Backup(backup), q.confirm.as_deref()).await?))
}

/// A restore from an archive in the request body, streamed to a temporary
/// file first (the archive is checked whole before anything is touched).
async fn restore_upload(
    State(state): State<AppState>,
    app: AppPath,
    Path((_, addon)): Path<(String, String)>,
    Query(q): Query<ConfirmQuery>,
    body: Body,
) -> ApiResult<Json<Restore>> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    // Found (and confirmed) before the upload is taken in.
    addons::show(&state, &app, &addon).await?;
    let dir = state.settings.scratch_dir();
    let file = tempfile::Builder::new()
        .prefix("restore-")
        .tempfile_in(&dir)
        .map_err(|e| ApiError::internal(format!("cannot make a temporary file in {}: {e}", dir.display())))?;
    let mut w = tokio::fs::File::from_std(file.reopen().map_err(ApiError::internal)?);
    let mut stream = body.into_data_stream();
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("the archive's upload broke off: {e}")))?;
        bytes += chunk.len() as u64;
        if bytes > MAX_UPLOAD_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                paas_wire::ErrorId::InvalidBackup,
                format!("the archive is over {} GiB: restore it with the service's own client over `paas run` instead", MAX_UPLOAD_BYTES >> 30),
            ));
        }
        w.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    w.flush().await.map_err(ApiError::internal)?;
    let restored = addons::restore(&state, &app, &addon, RestoreSource::Upload(file.path().to_path_buf()), q.confirm.as_deref()).await?;
    drop(file);
    Ok(Json(restored))
}

async fn schedule(State(state): State<AppState>, app: AppPath, Path((_, addon)): Path<(String, String)>, Json(body): Json<BackupSchedule>) -> ApiResult<Json<Addon>> {
    Ok(Json(addons::schedule(&state, &app, &addon, Some(&body)).await?))
}

async fn unschedule(State(state): State<AppState>, app: AppPath, Path((_, addon)): Path<(String, String)>) -> ApiResult<Json<Addon>> {
    Ok(Json(addons::schedule(&state, &app, &addon, None).await?))
}

#[async_trait::async_trait]
impl super::run::Controls for crate::addons::Addons {
    async fn resize(&self, id: &crate::runtime::DynoId, cols: u16, rows: u16) -> anyhow::Result<()> {
        self.runtime().resize_addon_client(id, cols, rows).await
    }

    async fn signal(&self, id: &crate::runtime::DynoId, signal: &str) -> anyhow::Result<()> {
        self.runtime().signal(id, signal).await
    }
}

#[derive(Debug, serde::Deserialize)]
struct ConsoleQuery {
    /// A [`paas_wire::RunCreate`] as JSON: its `tty`, size and `TERM`.
    spec: String,
}

/// `pg:psql` and `redis:cli`: the service's own client, attached over a
/// WebSocket exactly as `paas run` is (the same messages, the same cap of
/// sessions, the same idle timeout).
async fn console(
    State(state): State<AppState>,
    app: AppPath,
    Path((_, addon)): Path<(String, String)>,
    Query(query): Query<ConsoleQuery>,
    ws: axum::extract::ws::WebSocketUpgrade,
) -> ApiResult<Response> {
    let req: paas_wire::RunCreate = serde_json::from_str(&query.spec)
        .map_err(|e| ApiError::bad_request(format!("the spec parameter is not a run request ({e}): send JSON like {{\"command\":\"\",\"tty\":true}}")))?;
    let addon = state.addons.find_for(&app, &addon).await?;
    let slot = state.run_sessions.try_take().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            paas_wire::ErrorId::TooManySessions,
            "the server holds as many attached sessions as it allows (PAAS_API_MAX_UPGRADED): end one first",
        )
    })?;
    let tty = req.tty.then(|| (req.cols.unwrap_or(80), req.rows.unwrap_or(24)));
    let (addons, idle, lifetime) = (state.addons.clone(), state.run_sessions.idle, state.one_offs.max_lifetime());
    Ok(ws
        .on_upgrade(move |socket| async move {
            use futures_util::{SinkExt, StreamExt};
            use paas_wire::RunMessage;
            let (mut to_client, from_client) = socket.split();
            let (id, attachment) = match addons.start_console(&addon, tty, req.env.get("TERM").cloned()).await {
                Ok(started) => started,
                Err(e) => {
                    let _ = to_client.send(super::run::text(&RunMessage::Error { message: format!("the console could not start: {e}") })).await;
                    let _ = to_client.close().await;
                    return;
                }
            };
            let client = if addon.service == "postgresql" { "psql" } else { "redis-cli" };
            let _ = to_client.send(super::run::text(&RunMessage::Started { dyno: format!("{client} on {}", addon.name), release_version: 0 })).await;
            let controls = std::sync::Arc::new(addons.clone());
            let pumped = super::run::pump(&mut to_client, from_client, attachment, controls, id.clone(), idle, lifetime).await;
            let exit = addons.end_console(&id, pumped.why.is_some()).await;
            if !pumped.client_gone {
                let message = RunMessage::Exit {
                    code: exit.exit_code.unwrap_or(255),
                    oom_killed: false,
                    size: String::new(),
                    reason: pumped.why,
                };
                let _ = to_client.send(super::run::text(&message)).await;
                let _ = to_client.close().await;
            }
            drop(slot);
        })
        .into_response())
}
