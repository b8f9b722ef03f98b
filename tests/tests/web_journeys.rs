//! The web UI in a real browser: starts a hub on a real socket and runs the Playwright journeys
//! (`tests/web/journeys.mjs`, Debian's Chromium, axe-core on every page). `scripts/test`
//! installs Chromium and the npm packages when they are missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use thub_tests::{Backend, TestHub};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_register_publish_find_star_organize_and_use_tokens_in_a_browser() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    assert!(
        folder.join("node_modules/playwright-core").is_dir() && folder.join("node_modules/axe-core").is_dir(),
        "the journeys need their npm packages: run scripts/test (or npm ci in tests/web)"
    );
    // A real clock: the browser and the hub agree on cookie and token lifetimes.
    let hub = TestHub::start_now(Backend::Sqlite).await;
    let server = hub.serve().await;
    let run = tokio::process::Command::new("node")
        .arg(folder.join("journeys.mjs"))
        .env("THUB_URL", server.url(""))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the journeys finish within four minutes")
        .expect("node runs (scripts/test installs it with the browser)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "journeys failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("journeys done"), "{stdout}");
    server.stop().await;
}
