//! The official Python clients, unchanged, against a real thub on a real socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use thub_tests::{Backend, TestHub, on_every_backend, run_python};

on_every_backend!(syfthub_sdk_accounts_and_pyjwt, syfthub_sdk_registry);

async fn syfthub_sdk_accounts_and_pyjwt(backend: Backend) {
    let hub = TestHub::start_now(backend).await;
    let server = hub.serve().await;
    let output = run_python("sdk_accounts.py", &[&server.url("")]).await;
    assert!(output.contains("all checks passed"), "{output}");
}

async fn syfthub_sdk_registry(backend: Backend) {
    let hub = TestHub::start_now(backend).await;
    let server = hub.serve().await;
    let output = run_python("sdk_registry.py", &[&server.url("")]).await;
    assert!(output.contains("all checks passed"), "{output}");
}
