//! The engine's HTTP API spoken directly (hyper, one connection a request)
//! for what bollard 0.18 cannot do: a streamed build context, and an
//! attach whose stdin can be half-closed (`POST /containers/ID/attach`,
//! upgraded to a raw stream, demultiplexed into chunks).

use super::DockerRuntime;
use anyhow::{anyhow, Context, Result};
use tokio::sync::mpsc;

/// A connection to the engine's socket, whichever kind `DOCKER_HOST` names.
trait EngineIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> EngineIo for T {}

impl DockerRuntime {
    /// Sends one request to the engine on a connection of its own (hyper),
    /// for what bollard 0.18 cannot do: a streamed build context, an attach
    /// whose stdin can be half-closed. The connection allows upgrades.
    pub(super) async fn engine_request<B>(&self, request: hyper::Request<B>) -> Result<hyper::Response<hyper::body::Incoming>>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        use hyper_util::rt::TokioIo;
        let host = self.host.as_deref().unwrap_or("unix:///var/run/docker.sock");
        let io: Box<dyn EngineIo> = if let Some(path) = host.strip_prefix("unix://") {
            Box::new(
                tokio::net::UnixStream::connect(path)
                    .await
                    .with_context(|| format!("cannot reach the Docker engine at {path}"))?,
            )
        } else if let Some(addr) = host.strip_prefix("tcp://").or_else(|| host.strip_prefix("http://")) {
            Box::new(
                tokio::net::TcpStream::connect(addr)
                    .await
                    .with_context(|| format!("cannot reach the Docker engine at {addr}"))?,
            )
        } else {
            anyhow::bail!("DOCKER_HOST {host} is not unix:// or tcp://");
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .context("cannot talk HTTP to the Docker engine")?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "engine connection ended");
            }
        });
        Ok(sender.send_request(request).await?)
    }

    /// The API path with the negotiated version: `/v1.41/...`.
    pub(super) fn api_path(&self, path: &str) -> String {
        let version = self.docker.client_version();
        format!("/v{}.{}{path}", version.major_version, version.minor_version)
    }

    /// Attaches to a created container's stdin, stdout and stderr (`POST
    /// /containers/ID/attach`, upgraded to a raw stream). Shutting the input
    /// down half-closes the connection, which the engine passes on as the
    /// end of the process's stdin. Without a TTY the output is multiplexed
    /// (an 8-byte header per frame: stream, 0, 0, 0, length); with one it
    /// is the terminal's bytes as they come.
    pub(super) async fn attach(&self, id: &str, tty: bool) -> Result<crate::runtime::Attachment> {
        let uri = self.api_path(&format!("/containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1"));
        self.hijack(uri, bytes::Bytes::new(), tty).await.context("cannot attach to the container")
    }

    /// Starts a created exec attached (`POST /exec/ID/start`, upgraded to a
    /// raw stream as an attach is): its stdin can be half-closed.
    pub(super) async fn start_exec_attached(&self, exec: &str) -> Result<crate::runtime::Attachment> {
        let uri = self.api_path(&format!("/exec/{exec}/start"));
        let body = bytes::Bytes::from_static(br#"{"Detach":false,"Tty":false}"#);
        self.hijack(uri, body, false).await.context("cannot start the exec")
    }

    /// A POST the engine answers by taking the connection over: the
    /// process's stdin one way, its output (multiplexed without a TTY) the
    /// other.
    async fn hijack(&self, uri: String, body: bytes::Bytes, tty: bool) -> Result<crate::runtime::Attachment> {
        let request = hyper::Request::post(uri)
            .header(hyper::header::HOST, "docker")
            .header(hyper::header::CONNECTION, "Upgrade")
            .header(hyper::header::UPGRADE, "tcp")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(body))
            .context("cannot make the request")?;
        let response = self.engine_request(request).await?;
        if response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS && !response.status().is_success() {
            anyhow::bail!("the Docker engine refused ({})", response.status());
        }
        let upgraded = hyper::upgrade::on(response)
            .await
            .context("the engine did not hand over the stream")?;
        let (mut read, write) = tokio::io::split(hyper_util::rt::TokioIo::new(upgraded));
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut buf = bytes::BytesMut::with_capacity(64 * 1024);
            loop {
                if tty {
                    buf.reserve(64 * 1024);
                    match read.read_buf(&mut buf).await {
                        Ok(0) => break,
                        Ok(_) => {
                            let data = buf.split().freeze();
                            if tx
                                .send(Ok(crate::runtime::OutputChunk { stderr: false, data }))
                                .await
                                .is_err()
                            {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(anyhow!(e).context("the attach stream broke"))).await;
                            break;
                        }
                    }
                    continue;
                }
                let mut header = [0u8; 8];
                match read.read_exact(&mut header).await {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                    Err(e) => {
                        let _ = tx.send(Err(anyhow!(e).context("the attach stream broke"))).await;
                        break;
                    }
                }
                let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
                let mut data = vec![0u8; len];
                if let Err(e) = read.read_exact(&mut data).await {
                    let _ = tx.send(Err(anyhow!(e).context("the attach stream broke"))).await;
                    break;
                }
                let chunk = crate::runtime::OutputChunk {
                    stderr: header[0] == 2,
                    data: data.into(),
                };
                if tx.send(Ok(chunk)).await.is_err() {
                    break;
                }
            }
        });
        Ok(crate::runtime::Attachment {
            input: Box::pin(write),
            output: rx,
        })
    }
}
