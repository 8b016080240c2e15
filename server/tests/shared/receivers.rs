//! Log drain receivers for the tests, on loopback: a syslog receiver that
//! reads RFC 6587 octet-counted frames, and an HTTPS receiver with a
//! certificate of its own that records each POST.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncReadExt;

/// A syslog receiver on loopback: octet-counted RFC 5424 frames.
pub async fn syslog_receiver() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                while let Ok(n) = s.read(&mut chunk).await {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    // Octet counting: LEN SP MSG (MSG is LEN bytes).
                    while let Some(sp) = buf.iter().position(|b| *b == b' ') {
                        let len: usize = std::str::from_utf8(&buf[..sp]).unwrap().parse().expect("a frame length");
                        if buf.len() < sp + 1 + len {
                            break;
                        }
                        let msg = String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap();
                        buf.drain(..sp + 1 + len);
                        sink.lock().unwrap().push(msg);
                    }
                }
            });
        }
    });
    (port, got)
}

/// What an HTTPS drain receiver took: each accepted request's headers and body.
pub type Posts = Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>;

/// An HTTPS receiver on loopback with a certificate of its own; returns
/// its port, the CA file a drain must trust, and what it receives.
pub async fn https_receiver(dir: &std::path::Path) -> (u16, std::path::PathBuf, Posts) {
    https_receiver_answering(dir, Arc::new(AtomicU16::new(200))).await
}

/// An HTTPS receiver that answers every POST with `status` (as it is at
/// the time); it keeps only what it accepts (2xx).
pub async fn https_receiver_answering(dir: &std::path::Path, status: Arc<AtomicU16>) -> (u16, std::path::PathBuf, Posts) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let ca = dir.join("drain-ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let posts: Posts = Arc::default();
    let sink = posts.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, sink, status) = (acceptor.clone(), sink.clone(), status.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (sink, status) = (sink.clone(), status.clone());
                    async move {
                        use http_body_util::BodyExt;
                        let headers = req.headers().clone();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let code = status.load(Ordering::SeqCst);
                        if (200..300).contains(&code) {
                            sink.lock().unwrap().push((headers, String::from_utf8_lossy(&body).into_owned()));
                        }
                        let mut response = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::new()));
                        *response.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, ca, posts)
}

