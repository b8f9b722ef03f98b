//! Serving a built hub on a TCP listener until SIGINT/SIGTERM, letting in-flight requests finish.

use std::time::Duration;

use anyhow::Context;
use poem::http::uri::Scheme;
use poem::listener::{Acceptor, AcceptorExt, IntoTlsConfigStream, TcpAcceptor};
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, Response, Server};

/// Binds `host:port`, with a one-line error saying what and where.
pub async fn bind(host: &str, port: u16) -> anyhow::Result<std::net::TcpListener> {
    let listener =
        tokio::net::TcpListener::bind((host, port)).await.with_context(|| format!("cannot listen on {host}:{port}"))?;
    listener.into_std().context("cannot hand over the listener")
}

/// Serves `endpoint` on an already bound listener (over TLS when `tls` is given) until
/// `shutdown` resolves, then gives in-flight requests `grace` to finish.
pub async fn serve(
    endpoint: impl Endpoint<Output = Response> + 'static,
    listener: std::net::TcpListener,
    tls: Option<poem::listener::RustlsConfig>,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) -> anyhow::Result<()> {
    listener.set_nonblocking(true).context("cannot configure the listener")?;
    let acceptor = TcpAcceptor::from_std(listener).context("cannot adopt the listener")?;
    let acceptor = match tls {
        None => acceptor.boxed(),
        Some(config) => {
            let configs = IntoTlsConfigStream::into_stream(config).context("invalid TLS certificate or key")?;
            CertificateFirst { inner: acceptor, yielded: false }.rustls(configs).boxed()
        }
    };
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(endpoint, shutdown, Some(grace))
        .await
        .context("server error")
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

    async fn accept(&mut self) -> std::io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
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
