//! Serving a built hub on a TCP listener until SIGINT/SIGTERM, letting in-flight requests finish.

use std::time::Duration;

use anyhow::Context;
use poem::listener::TcpAcceptor;
use poem::{Endpoint, Response, Server};

/// Binds `host:port`, with a one-line error saying what and where.
pub async fn bind(host: &str, port: u16) -> anyhow::Result<std::net::TcpListener> {
    let listener =
        tokio::net::TcpListener::bind((host, port)).await.with_context(|| format!("cannot listen on {host}:{port}"))?;
    listener.into_std().context("cannot hand over the listener")
}

/// Serves `endpoint` on an already bound listener until `shutdown` resolves, then gives
/// in-flight requests `grace` to finish.
pub async fn serve(
    endpoint: impl Endpoint<Output = Response> + 'static,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) -> anyhow::Result<()> {
    listener.set_nonblocking(true).context("cannot configure the listener")?;
    let acceptor = TcpAcceptor::from_std(listener).context("cannot adopt the listener")?;
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(endpoint, shutdown, Some(grace))
        .await
        .context("server error")
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
