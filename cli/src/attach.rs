//! `paas run`: a one-off dyno attached over the API's WebSocket. With a
//! terminal on both stdin and stdout the local terminal goes raw and the
//! dyno gets a pseudo-terminal of the same size (kept in step on every
//! resize); Ctrl-C and Ctrl-\ are bytes to it like any other key. Otherwise
//! stdin, stdout and stderr are pipes, byte for byte, with the end of input
//! passed on and Ctrl-C, SIGTERM and SIGHUP sent to the process as signals.
//! The command's exit code becomes this one's. The terminal is restored on
//! every way out (exit, error, lost connection, panic).

use crate::client;
use anyhow::{anyhow, Context, Result};
use futures_util::{SinkExt, StreamExt};
use paas_wire::{ErrorBody, RunCreate, RunMessage, RUN_STDERR, RUN_STDIN, RUN_STDOUT};
use std::io::{IsTerminal, Read, Write};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

/// Exit code when the connection is lost before the command's end (as ssh).
const LOST: i32 = 255;

/// A command line from `paas run`'s arguments: one argument is a shell
/// command line as it is (`paas run "rake db:migrate && rake seed"`);
/// several are words, each quoted for the shell where it needs it
/// (`paas run sh -c 'exit 7'`).
pub fn command_line(args: &[String]) -> String {
    if let [one] = args {
        return one.clone();
    }
    args.iter()
        .map(|a| {
            let plain = !a.is_empty() && a.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `paas run` gets a terminal: both ends are one, unless `--no-tty`.
pub fn wants_tty(no_tty: bool) -> bool {
    !no_tty && std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Raw mode for as long as it lives.
struct RawMode;

impl RawMode {
    fn enable() -> Result<Self> {
        crossterm::terminal::enable_raw_mode().context("cannot put the terminal in raw mode")?;
        Ok(Self)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// Runs `req` attached and returns the exit code to leave with.
pub fn attached(app: &str, req: RunCreate) -> Result<i32> {
    attached_at(app, &["apps", app, "run"], req)
}

/// Attaches to the session the WebSocket at `path` (under the API's URL)
/// starts for `req`: `paas run`'s, or an add-on's console.
pub fn attached_at(app: &str, path: &[&str], mut req: RunCreate) -> Result<i32> {
    if req.tty {
        let (cols, rows) = crossterm::terminal::size().unwrap_or((80, 24));
        req.cols = Some(cols);
        req.rows = Some(rows);
        if let Ok(term) = std::env::var("TERM") {
            req.env.entry("TERM".into()).or_insert(term);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the client's runtime")?;
    let code = runtime.block_on(session(app, path, req));
    // The stdin reader may sit in a blocking read: do not wait for it.
    runtime.shutdown_background();
    code
}

fn session_url(path: &[&str], req: &RunCreate) -> Result<String> {
    let base = client::api_url()?;
    let mut url = reqwest::Url::parse(&base).map_err(|e| crate::exit::usage(format!("the API URL {base} is not a URL: {e}")))?;
    let scheme = match url.scheme() {
        "https" => "wss",
        "http" => "ws",
        _ => return Err(crate::exit::usage(format!("the API URL {base} is not http:// or https://"))),
    };
    url.set_scheme(scheme).map_err(|_| anyhow!("cannot make a WebSocket URL of {base}"))?;
    url.path_segments_mut().map_err(|_| anyhow!("the API URL {base} cannot take a path"))?.pop_if_empty().extend(path);
    url.query_pairs_mut().append_pair("spec", &serde_json::to_string(req)?);
    Ok(url.to_string())
}

/// What the server's refusal of the upgrade says (4xx: refused; else the
/// server could not be reached, or failed).
fn refusal(e: tokio_tungstenite::tungstenite::Error, base: &str) -> anyhow::Error {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Http(resp) => {
            let body = resp.body().clone().unwrap_or_default();
            let message = match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(e) => e.message,
                Err(_) => format!("the API answered {}: {}", resp.status(), String::from_utf8_lossy(&body).trim()),
            };
            if resp.status().is_client_error() {
                crate::exit::refused(message)
            } else {
                anyhow!(message)
            }
        }
        e => crate::exit::unreachable(format!("cannot reach the paas API at {base}: {e}")),
    }
}

/// Reads stdin in a thread of its own (a blocking read cannot be
/// cancelled); `None` is its end.
fn read_stdin() -> mpsc::Receiver<Option<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(8);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.blocking_send(None);
                    return;
                }
                Ok(n) => {
                    if tx.blocking_send(Some(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// With `PAAS_CA_FILE`, the attach connection trusts its CA beside the
/// public roots (as the API client does); without it, the default.
fn tls_connector() -> Result<Option<tokio_tungstenite::Connector>> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let Some(file) = std::env::var_os("PAAS_CA_FILE").filter(|f| !f.is_empty()) else {
        return Ok(None);
    };
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let certs = CertificateDer::pem_file_iter(&file).with_context(|| format!("cannot read PAAS_CA_FILE {}", file.to_string_lossy()))?;
    for cert in certs {
        roots.add(cert.context("PAAS_CA_FILE is not a PEM file of certificates")?).context("PAAS_CA_FILE holds a certificate rustls refuses")?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(config))))
}

fn control(message: &RunMessage) -> Message {
    Message::Text(serde_json::to_string(message).unwrap_or_default().into())
}

async fn session(app: &str, path: &[&str], req: RunCreate) -> Result<i32> {
    use tokio::signal::unix::{signal, SignalKind};
    let tty = req.tty;
    let base = client::api_url()?;
    let mut request = session_url(path, &req)?.into_client_request().context("cannot make the attach request")?;
    let auth = format!("Bearer {}", client::token()?);
    request.headers_mut().insert("Authorization", auth.parse().context("the token is not a header value")?);
    let (socket, _) = tokio_tungstenite::connect_async_tls_with_config(request, None, false, tls_connector()?)
        .await
        .map_err(|e| refusal(e, &base))?;
    let (mut to_server, mut from_server) = socket.split();

    // One task writes to the server: control messages first, then stdin.
    // Reading the server's messages never waits for a write, so a process
    // that is slow to read its input never stops its output (and a full
    // socket both ways never deadlocks).
    let (control_tx, mut control_rx) = mpsc::unbounded_channel::<Message>();
    let (data_tx, mut data_rx) = mpsc::channel::<Message>(8);
    let writer = tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                biased;
                Some(m) = control_rx.recv() => m,
                Some(m) = data_rx.recv() => m,
                else => break,
            };
            let closing = matches!(message, Message::Close(_));
            if to_server.send(message).await.is_err() || closing {
                break;
            }
        }
    });
    let mut stdin = read_stdin();
    let pump = tokio::spawn(async move {
        while let Some(data) = stdin.recv().await {
            let message = match data {
                Some(bytes) => {
                    let mut frame = Vec::with_capacity(bytes.len() + 1);
                    frame.push(RUN_STDIN);
                    frame.extend_from_slice(&bytes);
                    Message::Binary(frame.into())
                }
                None => control(&RunMessage::Eof),
            };
            let last = matches!(message, Message::Text(_));
            if data_tx.send(message).await.is_err() || last {
                break;
            }
        }
    });
    let send = |m: RunMessage| {
        let _ = control_tx.send(control(&m));
    };

    let mut raw = None;
    let mut started = false;
    let mut dyno = String::from("the one-off dyno");
    let mut resized = signal(SignalKind::window_change())?;
    let mut interrupted = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut terminated = signal(SignalKind::terminate())?;
    let mut hung_up = signal(SignalKind::hangup())?;
    let mut interrupts = 0;
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let outcome: Result<i32> = loop {
        tokio::select! {
            message = from_server.next() => {
                let message = match message {
                    Some(Ok(m)) => m,
                    Some(Err(_)) | None => break Err(anyhow!("the connection to the server was lost; {dyno} was stopped")),
                };
                match message {
                    Message::Binary(data) if !data.is_empty() => {
                        let written = if data[0] == RUN_STDERR {
                            let mut e = stderr.lock();
                            e.write_all(&data[1..]).and_then(|_| e.flush())
                        } else if data[0] == RUN_STDOUT {
                            let mut o = stdout.lock();
                            o.write_all(&data[1..]).and_then(|_| o.flush())
                        } else {
                            Ok(())
                        };
                        if written.is_err() {
                            // Nobody reads our output any more (`| head`).
                            break Ok(141);
                        }
                    }
                    Message::Text(t) => match serde_json::from_str::<RunMessage>(&t) {
                        Ok(RunMessage::Started { dyno: name, .. }) => {
                            if std::io::stderr().is_terminal() {
                                eprintln!("Running `{}` on {app}... up, {name}", req.command);
                            }
                            dyno = name;
                            started = true;
                            if tty {
                                raw = Some(RawMode::enable()?);
                            }
                        }
                        Ok(RunMessage::Exit { code, oom_killed, size, reason }) => {
                            drop(raw.take());
                            if oom_killed {
                                eprintln!(
                                    "paas: {dyno} was killed for using more memory than its limit ({size}): \
                                     give it more with `paas run --size 1G ...`"
                                );
                            } else if let Some(reason) = reason {
                                eprintln!("paas: {dyno} was stopped: {reason}");
                            }
                            let _ = control_tx.send(Message::Close(None));
                            break Ok(code.clamp(0, 255) as i32);
                        }
                        Ok(RunMessage::Error { message }) => break Err(anyhow!("{message}")),
                        _ => {}
                    },
                    Message::Close(_) => break Err(anyhow!("the server ended the session before {dyno} exited")),
                    _ => {}
                }
            }
            _ = resized.recv() => {
                if tty {
                    if let Ok((cols, rows)) = crossterm::terminal::size() {
                        send(RunMessage::Resize { cols, rows });
                    }
                }
            }
            // Without a terminal these reach us, not the dyno: pass them on.
            // Ctrl-C three times leaves without waiting for the process.
            _ = interrupted.recv() => {
                interrupts += 1;
                if interrupts >= 3 {
                    break Ok(130);
                }
                send(RunMessage::Signal { signal: "INT".into() });
            }
            _ = quit.recv() => {
                send(RunMessage::Signal { signal: "QUIT".into() });
            }
            _ = terminated.recv() => {
                send(RunMessage::Signal { signal: "TERM".into() });
            }
            _ = hung_up.recv() => {
                send(RunMessage::Signal { signal: "HUP".into() });
            }
        }
    };
    drop(raw);
    pump.abort();
    drop(control_tx);
    // The goodbye reaches the server before this process ends.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), writer).await;
    match outcome {
        Ok(code) => Ok(code),
        // The command ran: its exit code is unknown, as ssh says it.
        Err(e) if started => {
            eprintln!("paas: {e:#}");
            Ok(LOST)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_keep_words_and_take_one_argument_as_it_is() {
        let words = |a: &[&str]| command_line(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(words(&["sh", "-c", "exit 7"]), "sh -c 'exit 7'");
        assert_eq!(words(&["echo", "it's"]), "echo 'it'\\''s'");
        assert_eq!(words(&["rake db:migrate && rake seed"]), "rake db:migrate && rake seed");
        assert_eq!(words(&["ls", "-la", "/app"]), "ls -la /app");
        assert_eq!(words(&["printf", ""]), "printf ''");
    }
}
