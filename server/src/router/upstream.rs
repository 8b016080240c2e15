//! The router's HTTP/1.1 client to dynos: a request's head written as it
//! is, the answer's head parsed with `httparse` (hyper's parser) straight
//! from a read buffer each connection keeps, and the answer's body handed
//! on as it arrives, in the client connection's task. Hyper's client did
//! the same with a second state machine, a channel between a request and
//! its connection, and a new read buffer per answer: it was a quarter of
//! the router's instructions per request (`scripts/bench-router
//! CALLGRIND=`). Upgrades (WebSocket) still go through hyper's client
//! ([`super::exchange_upgrade`]).
//!
//! Idle connections wait in one [`Pool`] shared by the runtime's threads
//! and are looked at when taken: one the dyno closed meanwhile is dropped
//! for the next (a look costs no system call unless the connection was
//! woken since it was last read).

use super::{Failure, Forwarded, ToDyno};
use crate::runtime::Endpoint;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long connecting to a dyno may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The largest answer head (or chunked trailer) taken from a dyno, as
/// hyper's client allowed.
const MAX_HEAD: usize = 408 * 1024;

/// The most header fields an answer may have, as hyper's client allowed.
const MAX_HEADERS: usize = 100;

/// Bytes read at a time.
const READ_SIZE: usize = 8 * 1024;

/// A keep-alive connection to one dyno, used by one request at a time.
pub(super) struct Upstream {
    addr: Endpoint,
    stream: TcpStream,
    /// Read from the dyno and not yet handed on. Its allocation serves
    /// answer after answer: what was handed on has been written to the
    /// client (and let go) by the time the next answer is read.
    rbuf: BytesMut,
    /// A request's head (or a chunk of its body) as written.
    wbuf: Vec<u8>,
}

impl Upstream {
    pub(super) async fn open(addr: Endpoint) -> std::io::Result<TcpStream> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr.socket_addr()))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting timed out"))??;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    async fn connect(addr: Endpoint) -> std::io::Result<Self> {
        let stream = Self::open(addr).await?;
        Ok(Self { addr, stream, rbuf: BytesMut::with_capacity(READ_SIZE), wbuf: Vec::with_capacity(1024) })
    }

    /// Whether an idle connection is still open: the dyno has sent nothing
    /// on it (an end, or bytes nobody asked for) since its last answer.
    fn idle_alive(&self) -> bool {
        let mut probe = [0u8; 1];
        // No system call unless the connection was woken since it was last read.
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Sends `req` to the dyno at `addr` on an idle connection, or a new one,
    /// and waits for the answer's head. A request with a body is sent while
    /// the answer is awaited: a dyno may answer before it has read it all.
    ///
    /// A kept connection the dyno closed as it was taken (its keep-alive
    /// timeout) is left for another when writing the request's head on it
    /// fails (nothing was read). One that ends with no answer after the
    /// request went is the dyno's failure ([`Failure::Closed`]): the router
    /// sends a GET (HEAD, OPTIONS) without a body again, and no other
    /// request.
    pub(super) async fn exchange(addr: Endpoint, parts: &Parts, set: &Forwarded, mut body: ToDyno) -> Result<Response<DynoBody>, Failure> {
        let has_body = !body.is_end_stream();
        let length = parts.headers.contains_key(header::CONTENT_LENGTH);
        // A body without a length (its `Transfer-Encoding` is the client's
        // connection's, not forwarded) goes in chunks, or with the length
        // hyper knows of it.
        let added = match (has_body, length, body.size_hint().exact()) {
            (false, _, _) | (true, true, _) => Added::Nothing,
            (true, false, Some(n)) => Added::Length(n),
            (true, false, None) => Added::Chunked,
        };
        let head_only = parts.method == Method::HEAD;
        let mut kept = pool_take(addr);
        let mut up = loop {
            let reused = kept.is_some();
            let mut up = match kept.take() {
                Some(up) => up,
                // Boxed: a new connection is the rare case, and its future
                // would otherwise make every request's future larger.
                None => match Box::pin(Self::connect(addr)).await {
                    Ok(up) => up,
                    Err(e) => return Err(Failure::Refused(e)),
                },
            };
            write_head(&mut up.wbuf, parts, set, added);
            match up.stream.write_all(&up.wbuf).await {
                Ok(()) => break up,
                Err(_) if reused => kept = pool_take(addr),
                Err(e) => return Err(Failure::Closed(format!("writing the request failed: {e}"))),
            }
        };
        let (head, sent) = if has_body {
            let Upstream { stream, rbuf, wbuf, .. } = &mut up;
            let (mut reader, mut writer) = stream.split();
            let sending = send_body(&mut writer, &mut body, added == Added::Chunked, wbuf);
            let reading = read_head(&mut reader, rbuf, head_only);
            tokio::pin!(sending, reading);
            // Whether the body was all sent (Some(true)), or writing it to
            // the dyno failed (Some(false): its answer may have come).
            let mut sent = None;
            loop {
                tokio::select! {
                    biased;
                    head = &mut reading => break (head, sent == Some(true)),
                    result = &mut sending, if sent.is_none() => match result {
                        Ok(()) => sent = Some(true),
                        Err(BodyFailed::Dyno(e)) => {
                            tracing::debug!(addr = %addr, error = %e, "the request's body did not all go; reading the answer");
                            sent = Some(false);
                        }
                        // Nobody waits for an answer.
                        Err(BodyFailed::Client(e)) => return Err(Failure::Closed(e)),
                    },
                }
            }
        } else {
            (read_head(&mut up.stream, &mut up.rbuf, head_only).await, true)
        };
        if !sent {
            linger(body);
        }
        let head = head.map_err(Failure::Closed)?;
        let mut resp = Response::new(DynoBody { reusable: sent && head.keep_alive, framing: head.framing, up: Some(up) });
        *resp.status_mut() = head.status;
        *resp.headers_mut() = head.headers;
        Ok(resp)
    }
}

/// How long, and how much of, a client's request body the router reads
/// and drops after the dyno answered without reading it all.
const LINGER: std::time::Duration = std::time::Duration::from_secs(10);
const LINGER_BYTES: usize = 64 << 20;

/// Reads and drops what is left of the client's request body once the
/// dyno has answered early (a 413 before the body, say), for at most
/// [`LINGER`] and [`LINGER_BYTES`], as nginx's lingering close does. Dropped
/// at once, the connection closes with the client's bytes unread and the
/// kernel resets it: a client still writing its body then saw a broken pipe
/// instead of the answer (1 in 6 runs of the router's framing test).
fn linger(mut body: ToDyno) {
    use http_body_util::BodyExt;
    if body.is_end_stream() {
        return;
    }
    tokio::spawn(async move {
        let read = async {
            let mut bytes = 0;
            while let Some(Ok(frame)) = body.frame().await {
                bytes += frame.data_ref().map_or(0, Bytes::len);
                if bytes > LINGER_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, read).await;
    });
}

/// What the router adds to a request's head to frame its body.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Added {
    Nothing,
    Length(u64),
    Chunked,
}

/// `req`'s head as the dyno gets it: origin form, HTTP/1.1 (the client's
/// version is its connection's), its headers as [`super::forwarded`] left
/// them, then the router's own (`set`).
fn write_head(out: &mut Vec<u8>, parts: &Parts, set: &Forwarded, added: Added) {
    out.clear();
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in parts.headers.iter().chain(set.fields()) {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match added {
        Added::Nothing => {}
        Added::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Added::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Why a request's body did not all go to the dyno.
enum BodyFailed {
    /// The client's side broke off.
    Client(String),
    /// Writing to the dyno failed (it may have answered and closed).
    Dyno(String),
}

/// Copies the client's request body to the dyno (its trailers are not).
async fn send_body(to: &mut (impl AsyncWrite + Unpin), body: &mut ToDyno, chunked: bool, buf: &mut Vec<u8>) -> Result<(), BodyFailed> {
    use http_body_util::BodyExt;
    let written = |e: std::io::Error| BodyFailed::Dyno(format!("writing the request's body failed: {e}"));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyFailed::Client(format!("the client's request body broke off: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        if data.is_empty() {
            continue;
        }
        if chunked {
            buf.clear();
            buf.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            buf.extend_from_slice(&data);
            buf.extend_from_slice(b"\r\n");
            to.write_all(buf).await.map_err(written)?;
        } else {
            to.write_all(&data).await.map_err(written)?;
        }
    }
    if chunked {
        to.write_all(b"0\r\n\r\n").await.map_err(written)?;
    }
    Ok(())
}

/// An answer's head, parsed.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    framing: Framing,
    /// The dyno keeps the connection open after this answer.
    keep_alive: bool,
}

/// Reads until an answer's head is whole (past any `1xx` before it), and
/// parses it; the bytes after it stay in `buf`.
async fn read_head(from: &mut (impl AsyncRead + Unpin), buf: &mut BytesMut, head_only: bool) -> Result<Head, String> {
    let mut answered = false;
    loop {
        if !buf.is_empty() {
            answered = true;
            match parse_head(buf, head_only)? {
                Parsed::Head(head) => return Ok(head),
                Parsed::Interim => continue,
                Parsed::Partial if buf.len() >= MAX_HEAD => return Err(format!("the dyno's answer head is over {} KB", MAX_HEAD / 1024)),
                Parsed::Partial => {}
            }
        }
        let ended = match read_more(from, buf).await {
            Ok(0) => "the connection closed".to_owned(),
            Ok(_) => continue,
            Err(e) => format!("reading the answer failed: {e}"),
        };
        let when = if answered { "in the middle of the answer's head" } else { "before an answer" };
        return Err(format!("{ended} {when}"));
    }
}

/// Reads what has come into `buf`'s room (made if there is little).
async fn read_more(from: &mut (impl AsyncRead + Unpin), buf: &mut BytesMut) -> std::io::Result<usize> {
    std::future::poll_fn(|cx| poll_read_more(Pin::new(&mut *from), cx, buf)).await
}

fn poll_read_more(from: Pin<&mut impl AsyncRead>, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<std::io::Result<usize>> {
    if buf.capacity() - buf.len() < READ_SIZE / 4 {
        buf.reserve(READ_SIZE);
    }
    tokio_util::io::poll_read_buf(from, cx, buf)
}

enum Parsed {
    Head(Head),
    /// A `1xx` was taken out of the buffer; the answer's head comes next.
    Interim,
    Partial,
}

fn parse_head(buf: &mut BytesMut, head_only: bool) -> Result<Parsed, String> {
    // Left uninitialized: zeroing room for a hundred fields per answer
    // cost more than parsing one.
    let mut fields = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut parsed, &buf[..], &mut fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(format!("the dyno's answer has over {MAX_HEADERS} header fields")),
        Err(e) => return Err(format!("the dyno's answer is not HTTP/1.1: {e}")),
    };
    let code = parsed.code.unwrap_or_default();
    let status = StatusCode::from_u16(code).map_err(|_| format!("the dyno's answer has the status {code}"))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err("the dyno switched protocols without being asked to".to_owned());
    }
    if status.is_informational() {
        buf.advance(len);
        return Ok(Parsed::Interim);
    }
    // Where each field is in the head (offsets fit: a head is at most
    // MAX_HEAD), to share the head's bytes rather than copy each value;
    // kept on the stack for the usual few fields.
    let base = buf.as_ptr() as usize;
    let count = parsed.headers.len();
    let (mut few, mut many) = ([(0u32, 0u32, 0u32, 0u32); 24], Vec::new());
    let spans: &mut [(u32, u32, u32, u32)] = if count <= few.len() {
        &mut few[..count]
    } else {
        many.resize(count, (0, 0, 0, 0));
        &mut many
    };
    let at = |part: &[u8]| (part.as_ptr() as usize - base) as u32;
    for (span, field) in spans.iter_mut().zip(parsed.headers.iter()) {
        *span = (at(field.name.as_bytes()), field.name.len() as u32, at(field.value), field.value.len() as u32);
    }
    let http11 = parsed.version == Some(1);
    let head = buf.split_to(len).freeze();
    let mut headers = HeaderMap::with_capacity(count);
    let (mut length, mut chunked, mut coded, mut close) = (None::<u64>, false, false, !http11);
    for &(name_at, name_len, value_at, value_len) in spans.iter() {
        let (name_at, name_len, value_at, value_len) = (name_at as usize, name_len as usize, value_at as usize, value_len as usize);
        let name = HeaderName::from_bytes(&head[name_at..name_at + name_len]).map_err(|_| "the dyno's answer has an invalid header name".to_owned())?;
        let value = HeaderValue::from_maybe_shared(head.slice(value_at..value_at + value_len)).map_err(|_| format!("the dyno's answer has an invalid {name} header"))?;
        if name == header::CONTENT_LENGTH {
            let n = std::str::from_utf8(value.as_bytes()).ok().filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).and_then(|v| v.parse::<u64>().ok());
            match (n, length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Err("the dyno's answer has an invalid Content-Length".to_owned()),
            }
        } else if name == header::TRANSFER_ENCODING {
            coded = true;
            // `chunked` must be the last coding for the body to end by it.
            chunked = value.to_str().ok().and_then(|v| v.rsplit(',').next()).is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name == header::CONNECTION {
            for token in value.to_str().unwrap_or_default().split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") && !http11 {
                    close = false;
                }
            }
        }
        headers.append(name, value);
    }
    let no_body = head_only || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let framing = if no_body {
        Framing::Length(0)
    } else if coded {
        // A length beside a coding is a smuggler's: dropped, and the
        // connection is not kept (RFC 9112 6.3).
        if headers.remove(header::CONTENT_LENGTH).is_some() {
            close = true;
        }
        if chunked {
            Framing::Chunked(Chunks::default())
        } else {
            Framing::Close
        }
    } else {
        length.map_or(Framing::Close, Framing::Length)
    };
    let keep_alive = !close && !matches!(framing, Framing::Close);
    Ok(Parsed::Head(Head { status, headers, framing, keep_alive }))
}

/// How an answer's body ends.
enum Framing {
    /// After this many bytes more.
    Length(u64),
    Chunked(Chunks),
    /// When the dyno closes the connection.
    Close,
}

/// Where a chunked body's reader is (RFC 9112 7.1).
#[derive(Default, Debug, PartialEq, Eq)]
enum Chunks {
    /// In a chunk's size line: the size so far; whether it had a digit.
    #[default]
    Size,
    SizeDigits(u64),
    /// In a chunk extension (ignored), after the size.
    Extension(u64),
    /// After the size line's `\r`.
    SizeEnd(u64),
    /// In a chunk: bytes left.
    Data(u64),
    /// After a chunk's data: its `\r\n`.
    DataEnd { cr: bool },
    /// In the trailer section (dropped): at a line's start or not, bytes read.
    Trailer { line_start: bool, read: usize },
    /// After the trailer section's last `\r`.
    End,
    Done,
}

impl Chunks {
    /// The next piece of data in `buf`, taken out of it; None when the body
    /// is done ([`Self::Done`]) or `buf` holds no more of it yet.
    fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, &'static str> {
        let mut used = 0;
        let result = loop {
            if let Chunks::Data(left) = self {
                buf.advance(used);
                used = 0;
                if buf.is_empty() {
                    break Ok(None);
                }
                let take = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                *left -= take as u64;
                if *left == 0 {
                    *self = Chunks::DataEnd { cr: false };
                }
                break Ok(Some(buf.split_to(take).freeze()));
            }
            if *self == Chunks::Done {
                break Ok(None);
            }
            let Some(&b) = buf.get(used) else { break Ok(None) };
            used += 1;
            *self = match (std::mem::take(self), b) {
                (Chunks::Size, b) => Chunks::SizeDigits(hex(b).ok_or("a chunk size is not hexadecimal")?),
                (Chunks::SizeDigits(n), b) if hex(b).is_some() => {
                    if n >> 60 != 0 {
                        break Err("a chunk size is too large");
                    }
                    Chunks::SizeDigits(n << 4 | hex(b).unwrap_or_default())
                }
                (Chunks::SizeDigits(n), b';' | b' ' | b'\t') | (Chunks::Extension(n), _) if b != b'\r' && b != b'\n' => Chunks::Extension(n),
                (Chunks::SizeDigits(n) | Chunks::Extension(n), b'\r') => Chunks::SizeEnd(n),
                (Chunks::SizeDigits(n) | Chunks::Extension(n) | Chunks::SizeEnd(n), b'\n') => match n {
                    0 => Chunks::Trailer { line_start: true, read: 0 },
                    n => Chunks::Data(n),
                },
                (Chunks::DataEnd { cr: false }, b'\r') => Chunks::DataEnd { cr: true },
                (Chunks::DataEnd { .. }, b'\n') => Chunks::Size,
                (Chunks::Trailer { line_start: true, .. }, b'\r') => Chunks::End,
                (Chunks::Trailer { line_start: true, .. } | Chunks::End, b'\n') => Chunks::Done,
                (Chunks::Trailer { read, .. }, b) if read < MAX_HEAD => Chunks::Trailer { line_start: b == b'\n', read: read + 1 },
                (Chunks::Trailer { .. }, _) => break Err("a chunked body's trailer is too large"),
                _ => break Err("a chunked body is malformed"),
            };
        };
        buf.advance(used);
        result
    }
}

fn hex(b: u8) -> Option<u64> {
    (b as char).to_digit(16).map(u64::from)
}

/// A dyno's answer's body on its way to the client, read from the
/// connection it came on, which goes back to the pool when the body is
/// done and the connection can carry another request.
pub(super) struct DynoBody {
    up: Option<Upstream>,
    framing: Framing,
    /// The request was all sent and the dyno keeps the connection.
    reusable: bool,
}

/// Whether a body so framed has been all read.
fn ended(framing: &Framing) -> bool {
    matches!(framing, Framing::Length(0) | Framing::Chunked(Chunks::Done))
}

impl DynoBody {
    fn done(&self) -> bool {
        ended(&self.framing)
    }

    /// Gives the connection back once the body is done (and nothing
    /// follows it), else closes it.
    fn finish(&mut self) {
        if let Some(up) = self.up.take() {
            if self.reusable && self.done() && up.rbuf.is_empty() {
                pool_put(up);
            }
        }
    }
}

impl Drop for DynoBody {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Body for DynoBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            if this.done() {
                this.finish();
                return Poll::Ready(None);
            }
            let Some(up) = this.up.as_mut() else { return Poll::Ready(None) };
            let buf = &mut up.rbuf;
            let data = match &mut this.framing {
                Framing::Length(left) if !buf.is_empty() => {
                    let take = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                    *left -= take as u64;
                    Some(buf.split_to(take).freeze())
                }
                Framing::Close if !buf.is_empty() => Some(buf.split().freeze()),
                Framing::Chunked(chunks) => chunks.next(buf).map_err(|e| format!("the dyno's answer broke off: {e}"))?,
                _ => None,
            };
            if let Some(data) = data {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            if ended(&this.framing) {
                continue;
            }
            let read = ready!(poll_read_more(Pin::new(&mut up.stream), cx, &mut up.rbuf));
            match read {
                Ok(0) if matches!(this.framing, Framing::Close) => {
                    this.framing = Framing::Length(0);
                    this.up = None;
                    return Poll::Ready(None);
                }
                Ok(0) => return Poll::Ready(Some(Err("the dyno closed the connection before the answer's end".into()))),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

/// Idle keep-alive connections to dynos, by address, shared by the
/// runtime's threads. (A pool per thread churned: a client connection's
/// task takes a connection on the thread it runs on and gives it back on
/// the one it runs on then, so one thread's pool emptied, and opened new
/// connections, while the other's filled past its cap and closed them.)
struct Pool {
    idle: crate::FastMap<Endpoint, Vec<(Upstream, std::time::Instant)>>,
    swept: std::time::Instant,
}

static POOL: std::sync::LazyLock<std::sync::Mutex<Pool>> =
    std::sync::LazyLock::new(|| std::sync::Mutex::new(Pool { idle: crate::FastMap::default(), swept: std::time::Instant::now() }));

/// How long an idle connection to a dyno is kept.
const POOL_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// Idle connections kept per dyno (as nginx's `keepalive 64`).
const POOL_PER_DYNO: usize = 64;

/// The newest idle connection to `addr` that is still open, if any (those
/// closed meanwhile are dropped).
fn pool_take(addr: Endpoint) -> Option<Upstream> {
    loop {
        let up = POOL.lock().expect("pool poisoned").idle.get_mut(&addr)?.pop().map(|(up, _)| up)?;
        if up.idle_alive() {
            return Some(up);
        }
    }
}

/// Keeps a connection whose answer is done for a later request; now and
/// then forgets those idle too long (dynos that went away included).
/// Connections let go are closed after the lock is.
fn pool_put(up: Upstream) {
    let now = std::time::Instant::now();
    let mut closed = Vec::new();
    {
        let mut pool = POOL.lock().expect("pool poisoned");
        if now.duration_since(pool.swept) > POOL_IDLE {
            pool.swept = now;
            for kept in pool.idle.values_mut() {
                closed.extend(kept.extract_if(.., |(_, since)| now.duration_since(*since) >= POOL_IDLE));
            }
            pool.idle.retain(|_, kept| !kept.is_empty());
        }
        let kept = pool.idle.entry(up.addr).or_default();
        if kept.len() >= POOL_PER_DYNO {
            closed.push(kept.remove(0));
        }
        kept.push((up, now));
    }
    drop(closed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    /// Feeds `wire` to a chunk reader `step` bytes at a time; what it read.
    fn dechunk(wire: &[u8], step: usize) -> Result<(Vec<u8>, Chunks, usize), &'static str> {
        let (mut chunks, mut buf, mut out) = (Chunks::default(), BytesMut::new(), Vec::new());
        for piece in wire.chunks(step) {
            buf.extend_from_slice(piece);
            while let Some(data) = chunks.next(&mut buf)? {
                out.extend_from_slice(&data);
            }
        }
        Ok((out, chunks, buf.len()))
    }

    #[test]
    fn a_chunked_body_reads_the_same_whatever_pieces_it_comes_in() {
        let wire = b"5\r\nhello\r\n1;ext=\"x\"\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, wire.len()] {
            let (out, state, left) = dechunk(wire, step).unwrap();
            assert_eq!(out, b"hello 0123456789", "in pieces of {step}");
            assert_eq!(state, Chunks::Done);
            assert_eq!(left, 4, "what follows the body stays in the buffer");
        }
        let (out, state, _) = dechunk(b"3\nabc\n0\n\n", 1).unwrap();
        assert_eq!((out.as_slice(), state), (&b"abc"[..], Chunks::Done), "bare line feeds are read too");
    }

    #[test]
    fn a_malformed_chunked_body_is_an_error_not_a_guess() {
        for wire in [&b"z\r\n"[..], b"5\r\nhelloX\r\n", b"ffffffffffffffffff\r\n", b"\r\n"] {
            assert!(dechunk(wire, 1).is_err(), "{:?}", String::from_utf8_lossy(wire));
        }
    }

    fn head(wire: &str, head_only: bool) -> Result<Head, String> {
        let mut buf = BytesMut::from(wire);
        loop {
            match parse_head(&mut buf, head_only)? {
                Parsed::Head(h) => return Ok(h),
                Parsed::Interim => continue,
                Parsed::Partial => return Err("partial".to_owned()),
            }
        }
    }

    #[test]
    fn an_answer_head_says_how_its_body_ends_and_whether_the_connection_stays() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A: b\r\n\r\n", false).unwrap();
        assert!(matches!(h.framing, Framing::Length(12)) && h.keep_alive);
        assert_eq!(h.headers["x-a"], "b");
        let h = head("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n", false).unwrap();
        assert!(h.status == StatusCode::CREATED && matches!(h.framing, Framing::Chunked(_)) && h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", false).unwrap();
        assert!(matches!(h.framing, Framing::Chunked(_)) && !h.keep_alive && !h.headers.contains_key(header::CONTENT_LENGTH));
        let h = head("HTTP/1.1 200 OK\r\n\r\n", false).unwrap();
        assert!(matches!(h.framing, Framing::Close) && !h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\n", false).unwrap();
        assert!(matches!(h.framing, Framing::Length(7)) && !h.keep_alive);
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\n", false).unwrap();
        assert!(!h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", true).unwrap();
        assert!(matches!(h.framing, Framing::Length(0)) && h.keep_alive, "an answer to HEAD has no body");
        let h = head("HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n", false).unwrap();
        assert!(matches!(h.framing, Framing::Length(0)));
        for bad in ["HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 101 Switching Protocols\r\n\r\n", "SSH-2.0\r\n\r\n"] {
            assert!(head(bad, false).is_err(), "{bad:?}");
        }
        assert_eq!(head("HTTP/1.1 200 OK\r\nContent-Le", false).err().as_deref(), Some("partial"));
    }

    /// What a dyno sends is the app's to choose: mangled answers (bytes
    /// changed, cut, repeated) are parsed or refused, never a panic, and a
    /// chunked body never yields more than was sent.
    #[test]
    fn mangled_answers_from_a_dyno_are_refused_or_read_never_a_panic() {
        let seeds: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.0 304 Not Modified\r\nConnection: keep-alive, close\r\nContent-Length: 12\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\nxy",
        ];
        // xorshift: the same cases on every run.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below.max(1) as u64) as usize
        };
        let specials = b"\r\n:;, 0fF-\x00\x7f\xff";
        for case in 0..20_000 {
            let mut wire = seeds[case % seeds.len()].to_vec();
            for _ in 0..1 + next(4) {
                if wire.is_empty() {
                    wire.push(b'H');
                }
                let at = next(wire.len());
                match next(4) {
                    0 => wire[at] = specials[next(specials.len())],
                    1 => wire.truncate(at),
                    2 => wire.insert(at, specials[next(specials.len())]),
                    _ => {
                        let piece = wire[at..(at + next(8)).min(wire.len())].to_vec();
                        wire.splice(at..at, piece);
                    }
                }
            }
            let mut buf = BytesMut::from(&wire[..]);
            let head = loop {
                match parse_head(&mut buf, case % 7 == 0) {
                    Ok(Parsed::Interim) => continue,
                    Ok(Parsed::Head(head)) => break Some(head),
                    Ok(Parsed::Partial) | Err(_) => break None,
                }
            };
            if let Some(Head { framing: Framing::Chunked(mut chunks), .. }) = head {
                let sent = buf.len();
                let (mut got, mut pieces) = (0, BytesMut::new());
                for piece in buf.chunks(1 + next(5)) {
                    pieces.extend_from_slice(piece);
                    while let Ok(Some(data)) = chunks.next(&mut pieces) {
                        got += data.len();
                    }
                }
                assert!(got <= sent, "case {case}: {got} bytes out of {sent}");
            }
        }
    }

    #[test]
    fn a_request_head_is_written_in_origin_form_with_its_body_framed() {
        let (mut parts, ()) = Request::builder().method("POST").uri("/a?b=c").header("host", "x.example").header("x-y", "z").body(()).unwrap().into_parts();
        let mut out = Vec::new();
        let value = HeaderValue::from_static;
        let set = Forwarded { for_: Some(value("192.0.2.7")), proto: value("https"), host: value("x.example"), port: value("443"), request_id: value("r-1"), start: value("17") };
        write_head(&mut out, &parts, &set, Added::Chunked);
        let want = "POST /a?b=c HTTP/1.1\r\nhost: x.example\r\nx-y: z\r\nx-forwarded-for: 192.0.2.7\r\nx-forwarded-proto: https\r\nx-forwarded-host: x.example\r\nx-forwarded-port: 443\r\nx-request-id: r-1\r\nx-request-start: 17\r\ntransfer-encoding: chunked\r\n\r\n";
        assert_eq!(String::from_utf8(out.clone()).unwrap(), want);
        parts.uri = "/".parse().unwrap();
        write_head(&mut out, &parts, &Forwarded { for_: None, ..set }, Added::Length(3));
        assert!(!String::from_utf8_lossy(&out).contains("x-forwarded-for"));
        assert!(out.ends_with(b"content-length: 3\r\n\r\n") && out.starts_with(b"POST / HTTP/1.1\r\n"));
    }
}
