//! Serving a built hub on a TCP listener until SIGINT/SIGTERM, letting in-flight requests finish,
//! and keeping hostile or forgetful clients from holding the server: a deadline for request
//! headers, an idle keep-alive deadline, a body read timeout, a cap on open connections, and
//! `TCP_NODELAY` on every accepted socket.
//!
//! The connection loop is our own (hyper-util under poem's endpoint) because poem's `Server`
//! offers only an inactivity timeout, which would also cut idle WebSockets and slow handlers.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use poem::http::uri::Scheme;
use poem::http::{HeaderValue, StatusCode, header};
use poem::listener::{Acceptor, AcceptorExt, IntoTlsConfigStream};
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;

use crate::config::ServerConfig;

/// How long clients may take and how many may be connected at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From the connection opening (or the first byte of a follow-up request) to the end of the
    /// request headers.
    pub header_read: Duration,
    /// How long a keep-alive connection may sit idle between requests.
    pub keep_alive: Duration,
    /// Longest pause while a request body is arriving.
    pub body_read: Duration,
    /// Open connections at most (WebSockets included); further clients wait in the backlog.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// The limits `[server]` configures.
    pub fn from_config(server: &ServerConfig) -> Self {
        Self {
            header_read: Duration::from_secs(server.header_read_timeout_seconds.max(1)),
            keep_alive: Duration::from_secs(server.keep_alive_timeout_seconds.max(1)),
            body_read: Duration::from_secs(server.body_read_timeout_seconds.max(1)),
            max_connections: server.max_connections.max(1),
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self::from_config(&ServerConfig::default())
    }
}

/// Binds `host:port`, with a one-line error saying what and where.
pub async fn bind(host: &str, port: u16) -> anyhow::Result<std::net::TcpListener> {
    let listener =
        tokio::net::TcpListener::bind((host, port)).await.with_context(|| format!("cannot listen on {host}:{port}"))?;
    listener.into_std().context("cannot hand over the listener")
}

/// Raises this process's open-file limit to its hard limit, so the connection cap, not the
/// kernel, decides how many clients are served. Returns the soft limit now in force.
pub fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(error = %error, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(1024)
        }
    }
}

/// Serves `endpoint` on an already bound listener (over TLS when `tls` is given) until
/// `shutdown` resolves, then gives in-flight requests `grace` to finish.
pub async fn serve(
    endpoint: impl Endpoint<Output = Response> + 'static,
    listener: std::net::TcpListener,
    tls: Option<poem::listener::RustlsConfig>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) -> anyhow::Result<()> {
    listener.set_nonblocking(true).context("cannot configure the listener")?;
    let listener = tokio::net::TcpListener::from_std(listener).context("cannot adopt the listener")?;
    let acceptor = NoDelayAcceptor { listener };
    match tls {
        None => run(acceptor.boxed(), Arc::new(endpoint), limits, shutdown, grace).await,
        Some(config) => {
            let configs = IntoTlsConfigStream::into_stream(config).context("invalid TLS certificate or key")?;
            let acceptor = CertificateFirst { inner: acceptor, yielded: false }.rustls(configs).boxed();
            run(acceptor, Arc::new(endpoint), limits, shutdown, grace).await
        }
    }
}

async fn run<E: Endpoint<Output = Response> + 'static>(
    mut acceptor: poem::listener::BoxAcceptor,
    endpoint: Arc<E>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    let alive = Arc::new(ConnectionCount::default());
    tokio::pin!(shutdown);
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection limit reached: new clients wait until a connection closes (server.max_connections)"
                );
                tokio::select! {
                    () = &mut shutdown => break,
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => {
                            tracing::info!("connections below the limit again; accepting");
                            permit
                        }
                        Err(_) => break,
                    },
                }
            }
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = acceptor.accept() => accepted,
        };
        let (io, local_addr, remote_addr, scheme) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(error = %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let connection = Connection {
            endpoint: endpoint.clone(),
            local_addr,
            remote_addr,
            scheme,
            limits,
            activity: Arc::new(Activity::new(limits)),
        };
        let io = WatchedIo { inner: io, activity: connection.activity.clone(), _permit: permit };
        let stopping = stopping.clone();
        let guard = alive.enter();
        tokio::spawn(async move {
            connection.serve(io, stopping).await;
            drop(guard);
        });
    }
    drop(acceptor);
    let _ = stop.send(true);
    if tokio::time::timeout(grace, alive.all_closed()).await.is_err() {
        tracing::warn!(open = alive.count(), "shutdown grace period over; dropping open connections");
    }
    Ok(())
}

/// One accepted connection and what it needs to serve requests.
struct Connection<E> {
    endpoint: Arc<E>,
    local_addr: LocalAddr,
    remote_addr: RemoteAddr,
    scheme: Scheme,
    limits: ConnectionLimits,
    activity: Arc<Activity>,
}

impl<E: Endpoint<Output = Response> + 'static> Connection<E> {
    async fn serve<Io>(self, io: Io, mut stopping: watch::Receiver<bool>)
    where
        Io: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let activity = self.activity.clone();
        let remote = self.remote_addr.clone();
        let connection = Arc::new(self);
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let connection = connection.clone();
            async move { Ok::<_, std::convert::Infallible>(connection.respond(request).await) }
        });
        let mut builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        // Our own deadlines govern headers and idleness; hyper's header timer would also cut
        // idle keep-alive connections at the header deadline.
        builder.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(None);
        builder.http2().timer(hyper_util::rt::TokioTimer::new());
        let connection = builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(io), service);
        tokio::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => return,
            () = activity.expired() => {
                tracing::debug!(remote_addr = %remote, "closing a connection past its header or idle deadline");
                return;
            }
            _ = stopping.wait_for(|stop| *stop) => {}
        }
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
    }

    async fn respond(&self, request: hyper::Request<Incoming>) -> hyper::Response<ResponseBody> {
        let tracker = RequestTracker::start(self.activity.clone());
        let has_body = !request.body().is_end_stream();
        let mut request: poem::Request =
            (request, self.local_addr.clone(), self.remote_addr.clone(), self.scheme.clone()).into();
        let body_finished = Arc::new(AtomicBool::new(!has_body));
        if has_body {
            let body = request.take_body();
            request.set_body(timed_body(body, self.limits.body_read, body_finished.clone()));
        }
        let mut response = match self.endpoint.get_response(request).await {
            response if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
                self.activity.upgraded();
                response
            }
            response => response,
        };
        if !body_finished.load(Ordering::Acquire) {
            // Answered before the body arrived (an early 401 or 413): the unread rest makes the
            // connection unusable, so say it closes rather than leave keep-alive clients to fail
            // their next request.
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        let response: hyper::Response<http_body_util::combinators::BoxBody<hyper::body::Bytes, io::Error>> =
            response.into();
        response.map(|inner| ResponseBody { inner, _tracker: tracker })
    }
}

/// A request body that fails when the client pauses longer than `timeout` between chunks, and
/// records when it was read to the end.
fn timed_body(body: poem::Body, timeout: Duration, finished: Arc<AtomicBool>) -> poem::Body {
    let chunks = body.into_bytes_stream();
    let stream = futures_util::stream::unfold(Some(chunks), move |state| {
        let finished = finished.clone();
        async move {
            let mut chunks = state?;
            match tokio::time::timeout(timeout, chunks.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(chunks))),
                Ok(None) => {
                    finished.store(true, Ordering::Release);
                    None
                }
                Err(_) => Some((Err(io::Error::new(io::ErrorKind::TimedOut, BODY_READ_TIMED_OUT)), None)),
            }
        }
    });
    poem::Body::from_bytes_stream(stream)
}

/// The error a stalled request body ends with.
pub const BODY_READ_TIMED_OUT: &str = "request body read timed out";

/// The deadlines of one connection: before the first request's headers, between requests, and
/// none while a request is being served or after an upgrade to WebSocket.
struct Activity {
    limits: ConnectionLimits,
    state: Mutex<ActivityState>,
    /// Set while idle between requests, so reads can start the header deadline cheaply.
    idle: AtomicBool,
    changed: Notify,
}

struct ActivityState {
    in_flight: usize,
    upgraded: bool,
    deadline: Option<Instant>,
}

impl Activity {
    fn new(limits: ConnectionLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(ActivityState {
                in_flight: 0,
                upgraded: false,
                deadline: Some(Instant::now() + limits.header_read),
            }),
            idle: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn update(&self, change: impl FnOnce(&mut ActivityState)) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut state);
        drop(state);
        self.changed.notify_waiters();
    }

    /// Bytes arrived: an idle keep-alive connection now has `header_read` to finish its headers.
    fn bytes_read(&self) {
        if self.idle.swap(false, Ordering::AcqRel) {
            let header_read = self.limits.header_read;
            // The header deadline runs until the request starts; later reads change nothing.
            self.update(|state| {
                if state.in_flight == 0 && !state.upgraded {
                    state.deadline = Some(Instant::now() + header_read);
                }
            });
        }
    }

    fn request_started(&self) {
        self.idle.store(false, Ordering::Release);
        self.update(|state| {
            state.in_flight += 1;
            state.deadline = None;
        });
    }

    fn request_finished(&self) {
        let keep_alive = self.limits.keep_alive;
        self.update(|state| {
            state.in_flight = state.in_flight.saturating_sub(1);
            if state.in_flight == 0 && !state.upgraded {
                state.deadline = Some(Instant::now() + keep_alive);
                self.idle.store(true, Ordering::Release);
            }
        });
    }

    fn upgraded(&self) {
        self.idle.store(false, Ordering::Release);
        self.update(|state| {
            state.upgraded = true;
            state.deadline = None;
        });
    }

    fn deadline(&self) -> Option<Instant> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).deadline
    }

    /// Resolves once the current deadline passes without being moved.
    async fn expired(&self) {
        loop {
            let changed = self.changed.notified();
            match self.deadline() {
                Some(deadline) if deadline <= Instant::now() => return,
                Some(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// Marks a request in flight until its response body is dropped (fully written or abandoned).
struct RequestTracker(Arc<Activity>);

impl RequestTracker {
    fn start(activity: Arc<Activity>) -> Self {
        activity.request_started();
        Self(activity)
    }
}

impl Drop for RequestTracker {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body that keeps its request counted as in flight while it is being written.
struct ResponseBody {
    inner: http_body_util::combinators::BoxBody<hyper::body::Bytes, io::Error>,
    _tracker: RequestTracker,
}

impl HttpBody for ResponseBody {
    type Data = hyper::body::Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket of a connection: reports reads to its [`Activity`] and holds the connection's
/// slot under the cap until the socket closes (after a WebSocket upgrade too).
struct WatchedIo<Io> {
    inner: Io,
    activity: Arc<Activity>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl<Io: AsyncRead + Unpin> AsyncRead for WatchedIo<Io> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        poll
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for WatchedIo<Io> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Open HTTP connections (not upgraded sockets), so shutdown can wait for them.
#[derive(Default)]
struct ConnectionCount {
    open: AtomicUsize,
    closed: Notify,
}

struct ConnectionGuard(Arc<ConnectionCount>);

impl ConnectionCount {
    fn enter(self: &Arc<Self>) -> ConnectionGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        ConnectionGuard(self.clone())
    }

    fn count(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    async fn all_closed(&self) {
        loop {
            let closed = self.closed.notified();
            if self.count() == 0 {
                return;
            }
            closed.await;
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.closed.notify_waiters();
        }
    }
}

/// Accepts TCP connections with `TCP_NODELAY` set: responses go out at once instead of waiting
/// for the client's delayed ACK (Nagle's algorithm costs ~40 ms per small response otherwise).
struct NoDelayAcceptor {
    listener: tokio::net::TcpListener,
}

impl Acceptor for NoDelayAcceptor {
    type Io = tokio::net::TcpStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.listener.local_addr().map(|address| vec![LocalAddr(Addr::SocketAddr(address))]).unwrap_or_default()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (stream, remote) = self.listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr()?;
        Ok((stream, LocalAddr(Addr::SocketAddr(local)), RemoteAddr(Addr::SocketAddr(remote)), Scheme::HTTP))
    }
}

/// Lets poem's TLS acceptor load its certificate before it takes a connection. It waits for the
/// certificate and for connections in one `select!`, so a connection already queued when serving
/// starts (we bind before building the hub) could win and be dropped for want of a certificate.
/// Yielding once on the first accept makes the certificate win.
struct CertificateFirst<A> {
    inner: A,
    yielded: bool,
}

impl<A: Acceptor> Acceptor for CertificateFirst<A> {
    type Io = A::Io;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        if !self.yielded {
            self.yielded = true;
            tokio::task::yield_now().await;
        }
        self.inner.accept().await
    }
}

/// Resolves on the first SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested, finishing in-flight requests");
}
