//! One-off dynos over the API. `GET /apps/{app}/run?spec=JSON` (a
//! [`RunCreate`]) is checked like any request (token, app, release, size)
//! and then upgraded to a WebSocket attached to a new `run.N`: binary
//! messages carry stdin, stdout and stderr (first byte [`RUN_STDIN`],
//! [`RUN_STDOUT`], [`RUN_STDERR`]), text messages are [`RunMessage`]s
//! (started, resize, end of input, signal, exit). The dyno lives as long as
//! the connection: a client that goes stops it. `POST /apps/{app}/dynos`
//! starts a detached one, whose output goes to the app's log.

use paas_wire::ErrorId;
use crate::http::{AppPath, ApiError, ApiResult, AppState, Json};
use crate::oneoff::{OneOffs, Prepared, Started};
use crate::runtime::{Attachment, DynoId};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use paas_wire::{Dyno, RunCreate, RunMessage, RUN_SIGNALS, RUN_STDERR, RUN_STDIN, RUN_STDOUT};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// The largest message a client may send (its stdin comes in pieces).
const MAX_MESSAGE_BYTES: usize = 4 << 20;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/apps/{app}/run", get(attach))
}

/// The detached run: `POST /apps/{app}/dynos` (routed with the dynos).
pub(super) async fn create_detached(
    State(state): State<AppState>,
    app: AppPath,
    Json(req): Json<RunCreate>,
) -> ApiResult<(StatusCode, Json<Dyno>)> {
    let prepared = state.one_offs.prepare(&app, &req, false).await?;
    let started = state.one_offs.start(prepared, false).await?;
    Ok((StatusCode::CREATED, Json(crate::service::dynos::one_off_to_wire(&started.one_off))))
}

#[derive(Debug, serde::Deserialize)]
struct AttachQuery {
    /// A [`RunCreate`] as JSON.
    spec: String,
}

async fn attach(
    State(state): State<AppState>,
    app: AppPath,
    Query(query): Query<AttachQuery>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let req: RunCreate = serde_json::from_str(&query.spec)
        .map_err(|e| ApiError::bad_request(format!("the spec parameter is not a run request ({e}): send JSON like {{\"command\":\"bash\"}}")))?;
    let prepared = state.one_offs.prepare(&app, &req, req.tty).await?;
    let one_offs = state.one_offs.clone();
    let idle = state.run_sessions.idle;
    let slot = state.run_sessions.try_take().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorId::TooManySessions,
            "the server holds as many attached `paas run` sessions as it allows (PAAS_API_MAX_UPGRADED): end one, or use `paas run:detached`",
        )
    })?;
    Ok(ws
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            session(one_offs, app.0.name, prepared, socket, idle).await;
            drop(slot);
        })
        .into_response())
}

pub(crate) fn text(message: &RunMessage) -> Message {
    Message::Text(serde_json::to_string(message).unwrap_or_default().into())
}

/// What a session's client may ask of the process behind it.
#[async_trait::async_trait]
pub(crate) trait Controls: Send + Sync + 'static {
    async fn resize(&self, id: &DynoId, cols: u16, rows: u16) -> anyhow::Result<()>;
    async fn signal(&self, id: &DynoId, signal: &str) -> anyhow::Result<()>;
}

#[async_trait::async_trait]
impl Controls for OneOffs {
    async fn resize(&self, id: &DynoId, cols: u16, rows: u16) -> anyhow::Result<()> {
        OneOffs::resize(self, id, cols, rows).await
    }

    async fn signal(&self, id: &DynoId, signal: &str) -> anyhow::Result<()> {
        OneOffs::signal(self, id, signal).await
    }
}

/// How a session's pumping ended.
pub(crate) struct Pumped {
    /// The client left (it is told nothing more).
    pub client_gone: bool,
    /// Why the process is being ended early, if it is.
    pub why: Option<String>,
}

/// Carries a session both ways until the process's output ends, its client
/// leaves, nothing passes either way for `idle`, or `lifetime` runs out:
/// the client's stdin to the process (by a task of its own, so a process
/// that does not read never holds its output up), its output to the
/// client, and the client's resizes and signals to `controls`.
pub(crate) async fn pump(
    to_client: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    mut from_client: futures_util::stream::SplitStream<WebSocket>,
    attachment: Attachment,
    controls: std::sync::Arc<dyn Controls>,
    id: DynoId,
    idle: std::time::Duration,
    lifetime: std::time::Duration,
) -> Pumped {
    let (mut input, mut output) = (attachment.input, attachment.output);
    let (stdin_tx, mut stdin_rx) = mpsc::channel::<Option<Bytes>>(16);
    let writer = tokio::spawn(async move {
        while let Some(data) = stdin_rx.recv().await {
            let written = match data {
                Some(data) => input.write_all(&data).await,
                None => input.shutdown().await,
            };
            if written.is_err() {
                break;
            }
        }
        // Keeps the stream open until the session ends.
        std::future::pending::<()>().await;
    });
    // Anything from the client counts as activity, as the process's output does.
    let activity = std::sync::Arc::new(tokio::sync::Notify::new());
    let client_activity = activity.clone();
    let mut reader = tokio::spawn(async move {
        while let Some(Ok(message)) = from_client.next().await {
            client_activity.notify_one();
            match message {
                Message::Binary(data) if data.first() == Some(&RUN_STDIN) => {
                    let sent = stdin_tx.send(Some(data.slice(1..))).await;
                    // The process's stdin is gone: nothing more to pass on.
                    if sent.is_err() {
                        break;
                    }
                }
                Message::Text(t) => match serde_json::from_str::<RunMessage>(&t) {
                    Ok(RunMessage::Resize { cols, rows }) => {
                        if let Err(e) = controls.resize(&id, cols.max(1), rows.max(1)).await {
                            tracing::debug!(error = %format!("{e:#}"), "cannot resize");
                        }
                    }
                    Ok(RunMessage::Eof) => {
                        let _ = stdin_tx.send(None).await;
                    }
                    Ok(RunMessage::Signal { signal }) if RUN_SIGNALS.contains(&signal.as_str()) => {
                        if let Err(e) = controls.signal(&id, &signal).await {
                            tracing::debug!(error = %format!("{e:#}"), "cannot signal");
                        }
                    }
                    _ => tracing::debug!(message = %t, "ignored a message from a session's client"),
                },
                Message::Close(_) => break,
                _ => {}
            }
        }
    });
    let ends = tokio::time::sleep(lifetime);
    tokio::pin!(ends);
    let quiet = tokio::time::sleep(idle);
    tokio::pin!(quiet);
    let mut why = None;
    let mut client_gone = false;
    loop {
        tokio::select! {
            chunk = output.recv() => match chunk {
                Some(Ok(chunk)) => {
                    let mut frame = Vec::with_capacity(chunk.data.len() + 1);
                    frame.push(if chunk.stderr { RUN_STDERR } else { RUN_STDOUT });
                    frame.extend_from_slice(&chunk.data);
                    quiet.as_mut().reset(tokio::time::Instant::now() + idle);
                    if to_client.send(Message::Binary(frame.into())).await.is_err() {
                        client_gone = true;
                        break;
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %format!("{e:#}"), "a session's output broke off");
                    break;
                }
                None => break,
            },
            _ = &mut reader => {
                client_gone = true;
                break;
            }
            _ = activity.notified() => quiet.as_mut().reset(tokio::time::Instant::now() + idle),
            _ = &mut quiet => {
                why = Some(format!("its session carried nothing either way for {} s (PAAS_RUN_IDLE_SECONDS)", idle.as_secs()));
                break;
            }
            _ = &mut ends => {
                why = Some(format!("it reached the longest a one-off dyno may run ({} s)", lifetime.as_secs()));
                break;
            }
        }
    }
    if client_gone {
        why = Some("its client disconnected".to_owned());
    }
    writer.abort();
    reader.abort();
    Pumped { client_gone, why }
}

/// One attached run, from start to exit (or to its client's leaving).
async fn session(one_offs: OneOffs, app: String, prepared: Prepared, socket: WebSocket, idle: std::time::Duration) {
    let (mut to_client, from_client) = socket.split();
    let Started { one_off, attachment } = match one_offs.start(prepared, true).await {
        Ok(s) => s,
        Err(e) => {
            let message = format!("the one-off dyno could not start: {e:#}");
            let _ = to_client.send(text(&RunMessage::Error { message })).await;
            let _ = to_client.close().await;
            return;
        }
    };
    let (name, container_id) = (one_off.dyno.name(), one_off.dyno.id.clone());
    let release_version = one_off.dyno.release_version;
    let Some(attachment) = attachment else {
        one_offs.finish(&app, &name, &container_id, Some("it started without its streams")).await;
        return;
    };
    let _ = to_client.send(text(&RunMessage::Started { dyno: name.clone(), release_version })).await;
    let lifetime = one_offs.max_lifetime();
    let controls = std::sync::Arc::new(one_offs.clone());
    let Pumped { client_gone, why } = pump(&mut to_client, from_client, attachment, controls, container_id.clone(), idle, lifetime).await;
    let exit = one_offs.stop_and_log(&app, &name, &container_id, why.as_deref()).await;
    if !client_gone {
        let message = RunMessage::Exit {
            code: exit.exit_code.unwrap_or(255),
            oom_killed: exit.oom_killed,
            size: one_off.dyno.size(),
            reason: why.or(exit.error.filter(|e| !e.is_empty())),
        };
        let _ = to_client.send(text(&message)).await;
        let _ = to_client.close().await;
    }
    // Off the client's clock.
    one_offs.remove(&app, &name, &container_id).await;
}
