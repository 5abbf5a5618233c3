//! The accept loop and the bounds on every connection.
//!
//! Accepting never waits: a connection over the per-address cap is closed at once,
//! every other one is served with hyper-util, and a watchdog per connection closes it
//! when its client stalls it:
//!
//! - no complete request head within [`Timeouts::head`] of the accept (a client that
//!   sends nothing at all too; hyper's own header timer only starts once the HTTP
//!   version is known, i.e. after the first bytes), or of the first byte of a later
//!   request on a kept-alive HTTP/1 connection;
//! - no request in flight for [`Timeouts::idle`];
//! - an answer waiting to be written and no byte written for [`Timeouts::write`], so
//!   memory held for a client that does not read is freed.
//!
//! On close, the read side is drained (at most [`LINGER_BYTES`], [`LINGER_TIME`]):
//! closing a socket with unread input resets it, and a client still sending a body
//! the server refused (413) would see the reset instead of the answer.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, Version};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use crate::config::{Config, Timeouts};
use crate::metrics::METRICS;
use crate::proxy::TrustedProxies;

/// Longest pause between two pieces of a request body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this much unread input is drained before a connection is closed.
pub const LINGER_BYTES: usize = 1024 * 1024;
/// …and for at most this long.
pub const LINGER_TIME: Duration = Duration::from_secs(5);
/// HTTP/2 streams open at once on one connection.
pub const H2_MAX_STREAMS: u32 = 64;
/// How long graceful shutdown waits for open connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What a connection is bounded by.
#[derive(Clone, Debug)]
pub struct Limits {
    pub timeouts: Timeouts,
    pub max_per_address: usize,
    pub trusted: TrustedProxies,
}

impl Limits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            timeouts: config.timeouts,
            max_per_address: config.max_connections_per_ip,
            trusted: config.trusted_proxies.clone(),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open
/// connections finish (at most 10 s).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        BODY_READ_TIMEOUT,
    ));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // Our watchdog keeps the head deadlines: hyper's header timer would also run
    // while a kept-alive connection waits for its next request, closing it after
    // 10 s instead of the idle timeout.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_send_buf_size(64 * 1024)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let table = Arc::new(PerAddress::default());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = if limits.trusted.contains(peer.ip()) {
            None
        } else {
            match table.take(peer.ip(), limits.max_per_address) {
                Some(slot) => Some(slot),
                None => {
                    METRICS.connection_closed("per_address_limit");
                    tracing::debug!(peer = %peer.ip(), "connection over the per-address cap closed");
                    drop(stream);
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new(limits.timeouts));
        let io = TokioIo::new(Watched::new(stream, activity.clone()));
        let service = Tracked {
            router: router.clone(),
            peer,
            activity: activity.clone(),
        };
        let conn = builder.serve_connection(io, service).into_owned();
        let conn = graceful.watch(conn);
        METRICS.connections_open.inc();
        tokio::spawn(async move {
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                },
                reason = activity.expired() => {
                    METRICS.connection_closed(reason);
                    tracing::debug!(reason, "connection closed by its deadline");
                }
            }
            METRICS.connections_open.dec();
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 10 s of graceful shutdown");
    }
}

/// Open connections per client address (IPv6 per /64).
#[derive(Debug, Default)]
struct PerAddress {
    open: Mutex<HashMap<String, usize>>,
}

/// One counted connection; gives its place back when dropped.
#[derive(Debug)]
struct Slot {
    table: Arc<PerAddress>,
    key: String,
}

impl PerAddress {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Slot> {
        let key = crate::proxy::address_key(ip);
        let mut open = self.open.lock().ok()?;
        let n = open.entry(key.clone()).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            table: self.clone(),
            key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.table.open.lock()
            && let Some(n) = open.get_mut(&self.key)
        {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// What a connection's watchdog sees: updated by the IO wrapper and the service.
#[derive(Debug)]
struct Activity {
    state: Mutex<State>,
    changed: Notify,
    timeouts: Timeouts,
}

#[derive(Debug)]
struct State {
    accepted: Instant,
    /// Request heads received.
    heads: u64,
    /// Requests whose answer body has not been dropped yet.
    in_flight: usize,
    /// Of those, answers produced and waiting to be written.
    answered: usize,
    /// Since when no request is in flight.
    idle_since: Instant,
    /// First byte of a next request on an idle HTTP/1 connection.
    head_started: Option<Instant>,
    /// Last byte written, or last answer produced.
    progress: Instant,
    /// The socket refused the last write (its buffer is full).
    write_blocked: bool,
    http2: bool,
}

impl Activity {
    fn new(timeouts: Timeouts) -> Self {
        let now = Instant::now();
        Self {
            state: Mutex::new(State {
                accepted: now,
                heads: 0,
                in_flight: 0,
                answered: 0,
                idle_since: now,
                head_started: None,
                progress: now,
                write_blocked: false,
                http2: false,
            }),
            changed: Notify::new(),
            timeouts,
        }
    }

    fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> Option<R> {
        self.state.lock().ok().map(|mut s| f(&mut s))
    }

    /// The next deadline and what it is for; None while a handler is working.
    fn deadline(&self) -> Option<(Instant, &'static str)> {
        let t = self.timeouts;
        self.update(|s| {
            if s.heads == 0 {
                Some((s.accepted + t.head, "head_timeout"))
            } else if s.write_blocked || s.answered > 0 {
                Some((s.progress + t.write, "write_stalled"))
            } else if s.in_flight > 0 {
                None
            } else if let Some(first) = s.head_started {
                Some((first + t.head, "head_timeout"))
            } else {
                Some((s.idle_since + t.idle, "idle"))
            }
        })
        .flatten()
    }

    /// Completes when the connection has outlived a deadline.
    async fn expired(&self) -> &'static str {
        loop {
            match self.deadline() {
                Some((at, reason)) if at <= Instant::now() => return reason,
                Some((at, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }

    fn read(&self) {
        let started = self.update(|s| {
            let idle = s.heads > 0 && s.in_flight == 0 && !s.http2;
            let first = idle && s.head_started.is_none();
            if first {
                s.head_started = Some(Instant::now());
            }
            first
        });
        if started == Some(true) {
            self.changed.notify_one();
        }
    }

    fn wrote(&self) {
        self.update(|s| {
            s.progress = Instant::now();
            s.write_blocked = false;
        });
    }

    fn write_blocked(&self) {
        let first = self.update(|s| !std::mem::replace(&mut s.write_blocked, true));
        if first == Some(true) {
            self.changed.notify_one();
        }
    }

    fn request(self: &Arc<Self>, version: Version) -> InFlight {
        self.update(|s| {
            s.heads += 1;
            s.in_flight += 1;
            s.head_started = None;
            s.http2 |= version == Version::HTTP_2;
        });
        InFlight {
            activity: self.clone(),
            answered: false,
        }
    }
}

/// A request from its head to the end of its answer.
#[derive(Debug)]
struct InFlight {
    activity: Arc<Activity>,
    answered: bool,
}

impl InFlight {
    fn answered(&mut self) {
        self.answered = true;
        self.activity.update(|s| {
            s.answered += 1;
            s.progress = Instant::now();
        });
        self.activity.changed.notify_one();
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let answered = self.answered;
        self.activity.update(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            if answered {
                s.answered = s.answered.saturating_sub(1);
            }
            if s.in_flight == 0 {
                s.idle_since = Instant::now();
            }
        });
        self.activity.changed.notify_one();
    }
}

/// The router as a hyper service that tells the watchdog about each request.
#[derive(Clone, Debug)]
struct Tracked {
    router: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<TrackedBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        use tower::ServiceExt;
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let mut guard = self.activity.request(req.version());
        let answer = self.router.clone().oneshot(req);
        Box::pin(async move {
            let resp = answer.await?;
            guard.answered();
            Ok(resp.map(|body| TrackedBody {
                body,
                _guard: guard,
            }))
        })
    }
}

/// An answer body that ends its request's time in flight when hyper drops it.
#[derive(Debug)]
struct TrackedBody {
    body: Body,
    _guard: InFlight,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, reporting reads and writes to the watchdog, with a lingering close.
#[derive(Debug)]
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    closing: Closing,
}

#[derive(Debug)]
enum Closing {
    Open,
    Draining {
        until: Pin<Box<Sleep>>,
        drained: usize,
    },
    Done,
}

impl Watched {
    fn new(stream: TcpStream, activity: Arc<Activity>) -> Self {
        Self {
            stream,
            activity,
            closing: Closing::Open,
        }
    }

    fn wrote(&self, r: &Poll<io::Result<usize>>) {
        match r {
            Poll::Ready(Ok(n)) if *n > 0 => self.activity.wrote(),
            Poll::Pending => self.activity.write_blocked(),
            _ => {}
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.wrote(&r);
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.wrote(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    /// Sends FIN, then reads and discards what the client is still sending (so the
    /// close does not reset the connection before the client has read our answer).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.closing {
                Closing::Open => {
                    let r = ready!(Pin::new(&mut this.stream).poll_shutdown(cx));
                    if r.is_err() {
                        this.closing = Closing::Done;
                        return Poll::Ready(r);
                    }
                    this.closing = Closing::Draining {
                        until: Box::pin(tokio::time::sleep(LINGER_TIME)),
                        drained: 0,
                    };
                }
                Closing::Draining { until, drained } => {
                    if until.as_mut().poll(cx).is_ready() {
                        this.closing = Closing::Done;
                        continue;
                    }
                    let mut scratch = [0u8; 16 * 1024];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                            *drained += buf.filled().len();
                            if *drained >= LINGER_BYTES {
                                this.closing = Closing::Done;
                            }
                        }
                        Poll::Ready(_) => this.closing = Closing::Done,
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Closing::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}
