//! The HTTP listeners' accept loop, hardened against clients that hold
//! connections open: a cap on open connections per listener (the API and
//! the router have their own, so a flood of one never starves the other), a
//! time limit on reading a request's headers, which also closes keep-alive
//! connections left idle that long, and a cap on the header size. Upgrades
//! (WebSocket) are allowed; with a TLS acceptor, connections are TLS (the
//! router's HTTPS listener). On shutdown it stops accepting and lets each
//! connection finish its request in flight.
//!
//! An upgraded connection leaves hyper (and the listener's cap) once it
//! switches protocols, so upgrades are counted by [`Upgrades`], a cap of
//! their own, and joined by [`join_idle`], which ends them when neither side
//! sends anything for a while.

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// What one listener allows a client.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Longest a client may take to send a request's headers, and longest
    /// a keep-alive connection may sit idle.
    pub header_timeout: Duration,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
}

/// Marks a request that came over TLS, with the port it came to.
#[derive(Debug, Clone, Copy)]
pub struct Https {
    pub port: u16,
}

/// One accepted connection, as its service sees it.
#[derive(Debug, Clone)]
pub struct Conn {
    pub peer: std::net::SocketAddr,
    /// Set when the connection is a TLS one.
    pub https: Option<Https>,
    /// [`Limits::max_header_bytes`]: a larger request head gets a 431.
    pub max_head: usize,
    /// For a service that [`TimesHeads`]: told when a request is served
    /// and when its response is done.
    pub clock: HeadClock,
}

/// A service that tells its connection's [`HeadClock`] when a request
/// starts being served ([`HeadClock::busy`]) and when its response is done
/// ([`HeadClock::waiting`]); the listener then closes a connection that
/// waits longer than the header timeout for a request's head with one
/// timer per connection, where hyper's header timeout sets and cancels a
/// timer (and allocates it) for every request.
pub trait TimesHeads {
    const TIMES_HEADS: bool;
}

/// Since when a connection waits for a request's head: from when it opened
/// and from when each response was done; not while a request is served.
#[derive(Debug, Clone)]
pub struct HeadClock(Arc<Clock>);

#[derive(Debug)]
struct Clock {
    base: tokio::time::Instant,
    /// Requests being served (one at a time on HTTP/1; counted, so a
    /// response done after the next request came cannot mark it waiting).
    serving: std::sync::atomic::AtomicU32,
    /// Milliseconds from `base` to when the last response was done.
    since: std::sync::atomic::AtomicU64,
}

impl HeadClock {
    fn new() -> Self {
        Self(Arc::new(Clock { base: tokio::time::Instant::now(), serving: Default::default(), since: Default::default() }))
    }

    /// A request's head came: its request is being served.
    pub fn busy(&self) {
        self.0.serving.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// A response is done: unless another request is served, the
    /// connection waits for the next head from now.
    pub fn waiting(&self) {
        let at = u64::try_from(self.0.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.since.store(at, std::sync::atomic::Ordering::Relaxed);
        self.0.serving.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Since when the connection waits; None while a request is served.
    fn since(&self) -> Option<tokio::time::Instant> {
        match self.0.serving.load(std::sync::atomic::Ordering::Relaxed) {
            0 => Some(self.0.base + Duration::from_millis(self.0.since.load(std::sync::atomic::Ordering::Relaxed))),
            _ => None,
        }
    }

    /// Resolves once the connection has waited `limit` for a head. Its one
    /// timer is set again only when it fires (at most once a `limit`).
    async fn expired(&self, limit: Duration) {
        loop {
            let now = tokio::time::Instant::now();
            let wake = match self.since() {
                Some(since) if since + limit <= now => return,
                Some(since) => since + limit,
                None => now + limit,
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

impl Conn {
    /// The 431 for a request whose head is over the limit; None for the rest.
    pub fn refuse_large_head<B>(&self, req: &hyper::Request<B>) -> Option<hyper::Response<bytes::Bytes>> {
        (head_size(req) > self.max_head).then(|| {
            hyper::Response::builder()
                .status(axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
                .header("connection", "close")
                .body(bytes::Bytes::from(format!("request headers over {} bytes\n", self.max_head)))
                .expect("static response parts are valid")
        })
    }
}

/// An axum app (the API's, the metrics listener's) as a service per
/// connection: its requests carry the peer ([`ConnectInfo`]) and [`Https`].
pub fn axum<S: AxumApp>(app: S) -> impl Fn(Conn) -> AxumConn<S> + Clone + Send + 'static {
    move |conn| AxumConn { app: app.clone(), conn }
}

/// What [`axum`] takes: an axum app, or any service like one.
pub trait AxumApp:
    tower::Service<axum::http::Request<axum::body::Body>, Response = axum::response::Response, Error = std::convert::Infallible, Future: Send + 'static>
    + Clone
    + Send
    + 'static
{
}

impl<T> AxumApp for T where
    T: tower::Service<axum::http::Request<axum::body::Body>, Response = axum::response::Response, Error = std::convert::Infallible, Future: Send + 'static>
        + Clone
        + Send
        + 'static
{
}

/// See [`axum`].
pub struct AxumConn<S> {
    app: S,
    conn: Conn,
}

/// The API's requests are not counted per request: hyper times their heads.
impl<S> TimesHeads for AxumConn<S> {
    const TIMES_HEADS: bool = false;
}

impl<S: AxumApp> hyper::service::Service<hyper::Request<Incoming>> for AxumConn<S> {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        if let Some(refused) = self.conn.refuse_large_head(&req) {
            return Box::pin(std::future::ready(Ok(refused.map(axum::body::Body::from))));
        }
        req.extensions_mut().insert(ConnectInfo(self.conn.peer));
        if let Some(h) = self.conn.https {
            req.extensions_mut().insert(h);
        }
        Box::pin(self.app.clone().oneshot(req.map(axum::body::Body::new)))
    }
}

/// Serves `listener` until `shutdown` resolves, each connection with the
/// service `make` gives it; then waits for the open connections' requests
/// in flight (the caller bounds how long). With `tls`, each connection is
/// a TLS one (the handshake must finish within the header timeout).
pub async fn serve<F, S, B>(
    listener: TcpListener,
    make: F,
    limits: Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) where
    F: Fn(Conn) -> S + Clone + Send + 'static,
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>, Error = std::convert::Infallible>
        + TimesHeads
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let port = listener.local_addr().map_or(0, |a| a.port());
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut open = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment
                    // instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let make = make.clone();
        let mut stop = stop_rx.clone();
        let tls = tls.clone();
        open.spawn(async move {
            let _permit = permit;
            let https = tls.is_some().then_some(Https { port });
            let clock = HeadClock::new();
            let service = make(Conn { peer, https, max_head: limits.max_header_bytes, clock: clock.clone() });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).max_buf_size(limits.max_header_bytes.max(8192)).keep_alive(true);
            let heads = match S::TIMES_HEADS {
                true => {
                    // hyper's own (on by default with a timer) would set a
                    // timer on every request again.
                    http.header_read_timeout(None);
                    Some((clock, limits.header_timeout))
                }
                false => {
                    http.header_read_timeout(limits.header_timeout);
                    None
                }
            };
            match tls {
                None => drive(http.serve_connection(TokioIo::new(stream), service).with_upgrades(), &mut stop, heads).await,
                Some(acceptor) => {
                    let Ok(Ok(stream)) = tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await else {
                        return; // a handshake that failed or never finished
                    };
                    drive(http.serve_connection(TokioIo::new(stream), service).with_upgrades(), &mut stop, heads).await
                }
            }
        });
        // Forget finished connections as we go.
        while open.try_join_next().is_some() {}
    }
    let _ = stop_tx.send(true);
    while open.join_next().await.is_some() {}
}

/// The size of a request's head: its target and headers (counted, not
/// formatted: this runs on every request).
fn head_size<B>(req: &hyper::Request<B>) -> usize {
    let uri = req.uri();
    let target = uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(1, |p| p.as_str().len());
    target + req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum::<usize>()
}

/// Runs a connection to its end, or, when the listener stops, lets its
/// request in flight finish and then closes it; with `heads`, closes it
/// once it has waited the header timeout for a request's head.
async fn drive<C>(conn: C, stop: &mut watch::Receiver<bool>, heads: Option<(HeadClock, Duration)>)
where
    C: Future + GracefulConnection,
{
    tokio::pin!(conn);
    let expired = async {
        match &heads {
            Some((clock, limit)) => clock.expired(*limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = conn.as_mut() => {}
        // Dropped: the connection closes, as hyper's header timeout does.
        () = expired => {}
        _ = async { let _ = stop.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful();
            let _ = conn.await;
        }
    }
}

/// hyper's upgradeable connections, over any I/O.
trait GracefulConnection {
    fn graceful(self: std::pin::Pin<&mut Self>);
}

impl<I, S> GracefulConnection for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// The cap on upgraded connections of one listener, and their idle timeout.
#[derive(Clone, Debug)]
pub struct Upgrades {
    slots: Arc<Semaphore>,
    /// How long an upgraded connection may carry nothing either way.
    pub idle: Duration,
}

impl Upgrades {
    pub fn new(max: usize, idle: Duration) -> Self {
        Self { slots: Arc::new(Semaphore::new(max.max(1))), idle }
    }

    /// A slot for one more upgraded connection, held until it ends; None
    /// when the cap is reached.
    pub fn try_take(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }
}

/// Copies both ways between two connections until both sides have closed,
/// either fails, or neither sent anything for `idle`. Half-closes are
/// passed on. Returns whether it ended for idleness.
pub async fn join_idle<A, B>(a: A, b: B, idle: Duration) -> std::io::Result<bool>
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let (mut abuf, mut bbuf) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    let (mut a_open, mut b_open) = (true, true);
    // One timer for the connection, pushed back on every read (not a new
    // one per chunk).
    let quiet = tokio::time::sleep(idle);
    tokio::pin!(quiet);
    while a_open || b_open {
        tokio::select! {
            n = ar.read(&mut abuf), if a_open => match n? {
                0 => { a_open = false; bw.shutdown().await?; }
                n => bw.write_all(&abuf[..n]).await?,
            },
            n = br.read(&mut bbuf), if b_open => match n? {
                0 => { b_open = false; aw.shutdown().await?; }
                n => aw.write_all(&bbuf[..n]).await?,
            },
            _ = &mut quiet => return Ok(true),
        }
        quiet.as_mut().reset(tokio::time::Instant::now() + idle);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn joined_connections_copy_both_ways_and_end_when_idle() {
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (dyno, mut dyno_peer) = tokio::io::duplex(64);
        let joined = tokio::spawn(join_idle(client, dyno, Duration::from_secs(55)));
        client_peer.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        dyno_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        dyno_peer.write_all(b"pong").await.unwrap();
        client_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
        // 54 s of silence, a byte, 54 more: still open.
        tokio::time::sleep(Duration::from_secs(54)).await;
        client_peer.write_all(b"x").await.unwrap();
        dyno_peer.read_exact(&mut buf[..1]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(54)).await;
        assert!(!joined.is_finished());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(joined.await.unwrap().unwrap(), "ended for idleness");
        // Both ends see the close.
        assert_eq!(client_peer.read(&mut buf).await.unwrap(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_waits_for_a_head_only_as_long_as_the_limit_and_not_while_served() {
        let limit = Duration::from_secs(10);
        let clock = HeadClock::new();
        let started = tokio::time::Instant::now();
        clock.expired(limit).await;
        assert_eq!(started.elapsed(), limit, "from when it opened");

        // Served for longer than the limit: not expired meanwhile.
        let clock = HeadClock::new();
        clock.busy();
        let watch = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.expired(limit).await })
        };
        tokio::time::sleep(Duration::from_secs(25)).await;
        assert!(!watch.is_finished(), "a request being served is not a head being waited for");
        // Done: the limit runs from then.
        let done = tokio::time::Instant::now();
        clock.waiting();
        watch.await.unwrap();
        assert!(done.elapsed() >= limit && done.elapsed() < limit + Duration::from_secs(11), "{:?}", done.elapsed());
    }

    #[test]
    fn the_cap_counts_held_slots() {
        let u = Upgrades::new(2, Duration::from_secs(1));
        let a = u.try_take().unwrap();
        let _b = u.try_take().unwrap();
        assert!(u.try_take().is_none());
        drop(a);
        assert!(u.try_take().is_some());
    }
}
