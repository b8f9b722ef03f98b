//! The static site: login first, then files with caching headers and ranges; every hole of
//! Tufts Hub's section 5 stays closed; routes keep their priority over files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use poem::http::StatusCode;
use thub_tests::{Backend, Session, TestHub};

/// A hub whose folder holds a small PyScript app, secrets, and traps.
async fn site() -> (TestHub, Session) {
    let hub = TestHub::start_with(Backend::Sqlite, |config| {
        config.server.data_dir = "data".into();
    })
    .await;
    let root = hub.dir.path();
    for dir in ["examples/test", "static", "sub", ".git", "empty", "alice"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for (file, text) in [
        ("index.html", "<html><body>home</body></html>"),
        ("test.html", "<p>test page</p>"),
        ("main.py", "print('hi')\n"),
        ("examples/index.html", "examples index"),
        ("examples/test/index.html", "nested"),
        ("static/app.js", "console.log(1)"),
        ("config.json", "{\"jwt\":{\"secret\":\"s3cret\"}}"),
        ("sub/config.json", "{}"),
        ("thub.toml", ""),
        ("server-key.pem", "KEY"),
        ("Upper.PEM", "KEY"),
        (".env", "TOKEN=1"),
        (".git/config", "[core]"),
        ("alice/index.html", "alice's folder"),
        ("big.bin", &"0123456789".repeat(1000)),
    ] {
        std::fs::write(root.join(file), text).unwrap();
    }
    // A sibling folder whose name starts with the hub folder's name, and a symlink out.
    let sibling = std::path::PathBuf::from(format!("{}2", root.display()));
    std::fs::create_dir_all(&sibling).unwrap();
    std::fs::write(sibling.join("secret.txt"), "sibling secret").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(sibling.join("secret.txt"), root.join("link.txt")).unwrap();
    let session = hub.register("viewer").await;
    (hub, session)
}

async fn get(hub: &TestHub, session: Option<&Session>, path: &str) -> poem::test::TestResponse {
    let client = hub.client();
    let mut request = client.get(path).header("accept", "text/html");
    if let Some(session) = session {
        request = request.header("cookie", format!("session={}", session.access));
    }
    request.send().await
}

#[tokio::test]
async fn login_comes_first() {
    let (hub, session) = site().await;
    let response = get(&hub, None, "/test.html?x=1&y=2").await;
    response.assert_status(StatusCode::SEE_OTHER);
    response.assert_header("location", "/login?next=/test.html%3Fx%3D1%26y%3D2");
    // API-like clients get a 401, not a login page with status 200.
    let response = hub.client().get("/test.html").header("accept", "application/json").send().await;
    response.assert_status(StatusCode::UNAUTHORIZED);
    // A bad cookie is no login either.
    let response =
        hub.client().get("/test.html").header("cookie", "session=forged").header("accept", "text/html").send().await;
    response.assert_status(StatusCode::SEE_OTHER);
    // Bearer works like the cookie.
    let response = hub.client().get("/test.html").header("authorization", session.bearer()).send().await;
    response.assert_status_is_ok();
    response.assert_text("<p>test page</p>").await;
}

#[tokio::test]
async fn files_with_types_caching_ranges_and_folders() {
    let (hub, session) = site().await;
    let response = get(&hub, Some(&session), "/main.py").await;
    response.assert_status_is_ok();
    let headers = response.0.headers().clone();
    assert!(headers["content-type"].to_str().unwrap().contains("python"), "{headers:?}");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["cross-origin-embedder-policy"], "require-corp");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert!(headers.contains_key("last-modified"));

    let response = hub
        .client()
        .get("/main.py")
        .header("cookie", format!("session={}", session.access))
        .header("if-none-match", etag)
        .send()
        .await;
    response.assert_status(StatusCode::NOT_MODIFIED);

    let response = hub
        .client()
        .get("/big.bin")
        .header("cookie", format!("session={}", session.access))
        .header("range", "bytes=10-19")
        .send()
        .await;
    response.assert_status(StatusCode::PARTIAL_CONTENT);
    response.assert_header("content-range", "bytes 10-19/10000");
    response.assert_text("0123456789").await;

    let response = hub.client().head("/test.html").header("cookie", format!("session={}", session.access)).send().await;
    response.assert_status_is_ok();
    response.assert_header("content-length", "16");

    // Folders: index.html, with a redirect that adds the slash so relative links work.
    get(&hub, Some(&session), "/").await.assert_text("<html><body>home</body></html>").await;
    let response = get(&hub, Some(&session), "/examples").await;
    response.assert_status(StatusCode::PERMANENT_REDIRECT);
    response.assert_header("location", "/examples/");
    get(&hub, Some(&session), "/examples/").await.assert_text("examples index").await;
    get(&hub, Some(&session), "/examples/test/").await.assert_text("nested").await;
    // The project's own static/ folder is not shadowed (a Tufts Hub gap).
    get(&hub, Some(&session), "/static/app.js").await.assert_text("console.log(1)").await;

    // Misses: a 404 page for browsers, JSON for API clients; no folder listings.
    for missing in ["/nope.html", "/empty/", "/empty"] {
        let response = get(&hub, Some(&session), missing).await;
        response.assert_status(StatusCode::NOT_FOUND);
        let page = response.0.into_body().into_string().await.unwrap();
        for expected in ["404", "Page Not Found", "hide and seek", "Take Me Home"] {
            assert!(page.contains(expected), "{missing}: {page}");
        }
    }
    let response = hub.client().get("/nope.html").header("authorization", session.bearer()).send().await;
    response.assert_status(StatusCode::NOT_FOUND);
    response.assert_content_type("application/json");
}

/// Files served whole are kept in memory; an edited file is served as it now is, the same
/// length and a new modification time included, and its headers follow it.
#[tokio::test]
async fn an_edited_file_is_served_as_it_now_is() {
    let (hub, session) = site().await;
    let file = hub.dir.path().join("test.html");
    let first = get(&hub, Some(&session), "/test.html").await;
    let etag = first.0.headers()["etag"].to_str().unwrap().to_owned();
    first.assert_text("<p>test page</p>").await;
    get(&hub, Some(&session), "/test.html").await.assert_text("<p>test page</p>").await;

    // Same length, new bytes, the clock a second on (some file systems count whole seconds).
    std::fs::write(&file, "<p>edited  page<").unwrap();
    let later = std::fs::metadata(&file).unwrap().modified().unwrap() + std::time::Duration::from_secs(1);
    std::fs::File::options().write(true).open(&file).unwrap().set_modified(later).unwrap();
    let edited = get(&hub, Some(&session), "/test.html").await;
    assert_ne!(edited.0.headers()["etag"].to_str().unwrap(), etag, "the tag follows the file");
    edited.assert_text("<p>edited  page<").await;
    get(&hub, Some(&session), "/test.html").await.assert_text("<p>edited  page<").await;

    // Another length.
    std::fs::write(&file, "<p>shorter</p>").unwrap();
    get(&hub, Some(&session), "/test.html").await.assert_text("<p>shorter</p>").await;
    // Gone: not found, whatever was kept.
    std::fs::remove_file(&file).unwrap();
    get(&hub, Some(&session), "/test.html").await.assert_status(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn no_trick_reaches_a_secret() {
    let (hub, session) = site().await;
    for path in [
        "/config.json",
        "/./config.json",
        "/x/../config.json",
        "/sub/../config.json",
        "/sub/config.json",
        "/CONFIG.json",
        "/thub.toml",
        "/server-key.pem",
        "/server-key.pem/",
        "/Upper.PEM",
        "/.env",
        "/.git/config",
        "/%2e%2e/config.json",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2fconfig.json",
        "/sub%2f..%2fconfig.json",
        "/link.txt",
        "/data/thub.db",
        "/test.db",
        "/%2e%2e/",
        "/examples/..%2F..%2Fconfig.json",
        "/..\\config.json",
    ] {
        let response = get(&hub, Some(&session), path).await;
        let status = response.0.status();
        let body = response.0.into_body().into_string().await.unwrap();
        assert!(status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST, "{path}: {status}");
        assert!(!body.contains("s3cret") && !body.contains("KEY") && !body.contains("TOKEN"), "{path} leaked");
    }
    // The sibling folder (same name prefix) is outside.
    let sibling_name = hub.dir.path().file_name().unwrap().to_str().unwrap().to_owned();
    let response = get(&hub, Some(&session), &format!("/../{sibling_name}2/secret.txt")).await;
    response.assert_status(StatusCode::NOT_FOUND);
    let response = get(&hub, Some(&session), &format!("/%2e%2e/{sibling_name}2/secret.txt")).await;
    response.assert_status(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn routes_and_owner_pages_win_over_files() {
    let (hub, session) = site().await;
    // A user named like a folder: /alice is their owner page, not the folder.
    let alice = hub.register("alice").await;
    hub.endpoint(&alice, serde_json::json!({"name": "Model", "type": "model"})).await;
    let (status, listed) = hub.get_json(Some(&session), "/alice").await;
    assert_eq!(status, 200);
    assert_eq!(listed[0]["slug"], "model");
    // ...but paths the owner pages do not claim still reach the folder.
    get(&hub, Some(&session), "/alice/index.html").await.assert_text("alice's folder").await;
    // API and meta routes always win.
    hub.client().get("/health").send().await.assert_status_is_ok();
    hub.client().get("/login").send().await.assert_status_is_ok();
}

#[tokio::test]
async fn owner_paths_that_name_nothing_are_404_for_api_clients_and_files_still_need_a_login() {
    let (hub, _session) = site().await;
    let alice = hub.register("alice").await;
    hub.endpoint(&alice, serde_json::json!({"name": "Model", "type": "model"})).await;
    std::fs::create_dir_all(hub.dir.path().join("notes")).unwrap();
    std::fs::write(hub.dir.path().join("notes/todo"), "a file named like a slug").unwrap();
    let client = hub.client();
    let anonymous_json = |path: &'static str| client.get(path).header("accept", "application/json").send();

    // No such owner, or no such endpoint of a real owner: 404 JSON, not the site's 401.
    for path in ["/nobody/model", "/alice/nothing", "/nobody", "/nobody/"] {
        let response = anonymous_json(path).await;
        response.assert_status(StatusCode::NOT_FOUND);
        response.assert_content_type("application/json");
        assert!(thub_tests::json(response).await["detail"].is_string(), "{path}");
    }
    // The owner pages still answer what exists.
    anonymous_json("/alice/model").await.assert_status_is_ok();
    // Real files and folders at such paths stay behind the login, for API clients and browsers.
    anonymous_json("/notes/todo").await.assert_status(StatusCode::UNAUTHORIZED);
    anonymous_json("/examples").await.assert_status(StatusCode::UNAUTHORIZED);
    anonymous_json("/test.html").await.assert_status(StatusCode::UNAUTHORIZED);
    // A browser asking for an owner-shaped path that is no owner and no file gets the web's
    // 404 page, not a login redirect; a real file there still wants a login.
    let page = get(&hub, None, "/nobody/model").await;
    page.assert_status(StatusCode::NOT_FOUND);
    page.assert_content_type("text/html; charset=utf-8");
    get(&hub, None, "/notes/todo").await.assert_status(StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn without_an_index_the_root_is_the_welcome_document() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let response = hub.client().get("/").send().await;
    response.assert_status_is_ok();
    assert_eq!(thub_tests::json(response).await["docs"], "/docs");
}

#[tokio::test]
async fn live_reload_tells_pages_when_files_change() {
    let hub = TestHub::start_with(Backend::Sqlite, |config| {
        config.plugins.set_key("site", "reload", serde_json::json!(true))
    })
    .await;
    std::fs::write(hub.dir.path().join("page.html"), "<html><body>v1</body></html>").unwrap();
    let session = hub.register("viewer").await;
    let page = get(&hub, Some(&session), "/page.html").await.0.into_body().into_string().await.unwrap();
    assert!(page.contains("v1<script>new EventSource('/_thub/reload')"), "{page}");

    let server = hub.serve().await;
    let client = thub_tests::http_client();
    let mut events = client.get(server.url("/_thub/reload")).send().await.unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    std::fs::write(hub.dir.path().join("page.html"), "<html><body>v2</body></html>").unwrap();
    let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let chunk = events.chunk().await.unwrap().unwrap();
            let text = String::from_utf8_lossy(&chunk).into_owned();
            if text.contains("reload") {
                return text;
            }
        }
    })
    .await
    .expect("a reload event after the change");
    assert!(chunk.contains("event: reload"), "{chunk}");
}

#[tokio::test]
async fn the_example_apps_serve_and_their_config_parses() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let proxy_config = std::fs::read_to_string(examples.join("pyscript-proxy/thub.toml")).unwrap();
    let config = thub_core::Config::from_toml(&proxy_config).unwrap();
    assert!(config.plugins.section::<thub_proxy::ProxyPlugin>().unwrap().settings.apis.contains_key("weather"));
    for app in ["pyscript-chat", "pyscript-proxy"] {
        let root = examples.join(app);
        let hub = TestHub::start_with(Backend::Sqlite, |config| {
            config.server.root = root.clone();
            config.server.data_dir = std::env::temp_dir().join(format!("thub-example-{}", uuid::Uuid::new_v4()));
        })
        .await;
        let session = hub.register("viewer").await;
        for file in ["/", "/main.py", "/settings.json"] {
            get(&hub, Some(&session), file).await.assert_status_is_ok();
        }
        if app == "pyscript-proxy" {
            get(&hub, Some(&session), "/thub.toml").await.assert_status(StatusCode::NOT_FOUND);
        }
    }
}
