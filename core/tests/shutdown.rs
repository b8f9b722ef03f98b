//! Graceful shutdown: a request in flight when the signal arrives still gets its answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use poem::{Route, handler};

#[handler]
async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(300)).await;
    "finished"
}

#[tokio::test]
async fn in_flight_requests_finish_after_shutdown_starts() {
    thub_core::app::install_crypto_providers();
    let listener = thub_core::server::bind("127.0.0.1", 0).await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = thub_core::http::observe(Route::new().at("/slow", slow), Default::default());
    let server = tokio::spawn(thub_core::server::serve(
        app,
        listener,
        None,
        thub_core::server::ConnectionLimits::default(),
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));

    let client = reqwest::Client::new();
    let request = tokio::spawn(async move { client.get(format!("http://{address}/slow")).send().await });
    // Let the request reach the handler, then ask the server to stop.
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();

    let response = request.await.unwrap().expect("the in-flight request is answered");
    assert_eq!(response.text().await.unwrap(), "finished");
    server.await.unwrap().expect("server stops cleanly");
    // New connections are refused once stopped.
    assert!(std::net::TcpStream::connect(address).is_err());
}
