//! Graceful shutdown: a request in flight when the signal arrives still gets its answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use poem::Route;
use poem::endpoint::make;
use tokio::sync::Notify;

#[tokio::test]
async fn in_flight_requests_finish_after_shutdown_starts() {
    thub_core::app::install_crypto_providers();
    let listener = thub_core::server::bind("127.0.0.1", 0).await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // The handler says when it has started, then takes a while: the signal arrives mid-request.
    let started = Arc::new(Notify::new());
    let handler_started = started.clone();
    let slow = make(move |_| {
        let started = handler_started.clone();
        async move {
            started.notify_one();
            tokio::time::sleep(Duration::from_millis(300)).await;
            "finished"
        }
    });
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
    started.notified().await;
    stop.send(()).unwrap();

    let response = request.await.unwrap().expect("the in-flight request is answered");
    assert_eq!(response.text().await.unwrap(), "finished");
    server.await.unwrap().expect("server stops cleanly");
    // New connections are refused once stopped.
    assert!(std::net::TcpStream::connect(address).is_err());
}
