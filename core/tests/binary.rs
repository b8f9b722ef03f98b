//! The real `thub` binary: start-up in an empty folder, graceful stop, and the one-line errors
//! for bad configuration, a port in use, an unreachable or corrupt database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn thub(folder: &Path) -> Command {
    thub_tests::thub_command(env!("CARGO_BIN_EXE_thub"), folder)
}

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().expect("thub runs")
}

fn stderr_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    assert_eq!(stderr.lines().count(), 1, "one line on stderr, got: {stderr}");
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    stderr
}

/// Starts `thub serve --port 0` and waits for the start-up line; returns the child and address.
fn start(folder: &Path, extra: &[&str]) -> (Child, String) {
    let mut child = thub(folder)
        .args(["serve", "--port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("thub starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        let line = lines.next().expect("a start-up line before exit").expect("readable");
        let event: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if let Some(address) = event.get("address").and_then(|value| value.as_str()) {
            break address.to_owned();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, address)
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "thub did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_in_an_empty_folder_creates_its_database_and_stops_on_sigterm() {
    let folder = tempfile::tempdir().unwrap();
    let (mut child, address) = start(folder.path(), &[]);
    assert!(address.starts_with("127.0.0.1:"), "listens on loopback by default: {address}");

    let health = http_get(&address, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let ready = http_get(&address, "/ready");
    assert!(ready.contains("\"database\":\"ok\""), "{ready}");
    assert!(folder.path().join(".thub/thub.db").is_file(), "database created in the data folder");

    let status = terminate(&mut child);
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}

#[test]
fn a_clean_stop_leaves_no_wal_file() {
    let folder = tempfile::tempdir().unwrap();
    let (mut child, address) = start(folder.path(), &[]);
    let body = r#"{"username":"walter","email":"walter@example.com","full_name":"W","password":"Str0ng-pass"}"#;
    let registered = http_post_json(&address, "/api/v1/auth/register", body);
    assert!(registered.starts_with("HTTP/1.1 201"), "{registered}");
    assert!(folder.path().join(".thub/thub.db-wal").exists(), "writes go through the WAL while serving");
    assert!(terminate(&mut child).success());
    assert!(!folder.path().join(".thub/thub.db-wal").exists(), "the WAL is checkpointed and removed at stop");
    assert!(!folder.path().join(".thub/thub.db-shm").exists());
}

fn http_post_json(address: &str, path: &str, body: &str) -> String {
    http_post(address, path, "application/json", body)
}

fn http_post_form(address: &str, path: &str, form: &str) -> String {
    http_post(address, path, "application/x-www-form-urlencoded", form)
}

/// One `POST` on its own connection; the whole raw response.
fn http_post(address: &str, path: &str, content_type: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
}

#[test]
fn the_access_log_samples_successes_and_keeps_every_failure() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("thub.toml"), "[log]\naccess_sample_rate = 0.0\n").unwrap();
    let mut child = thub(folder.path())
        .args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (sender, lines) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let address = loop {
        let line = lines.recv_timeout(Duration::from_secs(20)).expect("a start-up line");
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if let Some(address) = event.get("address").and_then(|value| value.as_str()) {
            break address.to_owned();
        }
    };
    for _ in 0..3 {
        assert!(http_get(&address, "/health").starts_with("HTTP/1.1 200"));
    }
    assert!(http_get(&address, "/api/v1/no-such-route").starts_with("HTTP/1.1 404"));
    assert!(terminate(&mut child).success());
    let access: Vec<serde_json::Value> = lines
        .try_iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(&line).ok())
        .filter(|event| event["target"] == "thub::access")
        .collect();
    assert_eq!(access.len(), 1, "only the failure is logged: {access:?}");
    assert_eq!(access[0]["status"], 404);
    assert_eq!(access[0]["client"], "127.0.0.1");
}

#[test]
fn security_decisions_are_audit_events_without_secrets() {
    let folder = tempfile::tempdir().unwrap();
    let mut child = thub(folder.path())
        .args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (sender, lines) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let address = loop {
        let line = lines.recv_timeout(Duration::from_secs(20)).expect("a start-up line");
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if let Some(address) = event.get("address").and_then(|value| value.as_str()) {
            break address.to_owned();
        }
    };
    let body = r#"{"username":"audrey","email":"audrey@example.com","full_name":"A","password":"Str0ng-pass"}"#;
    assert!(http_post_json(&address, "/api/v1/auth/register", body).starts_with("HTTP/1.1 201"));
    let failed = http_post_form(&address, "/api/v1/auth/login", "username=audrey&password=Wr0ng-guess");
    assert!(failed.starts_with("HTTP/1.1 401"), "{failed}");
    let ok = http_post_form(&address, "/api/v1/auth/login", "username=audrey&password=Str0ng-pass");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let token = ok.split("\"access_token\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let logout = {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "POST /api/v1/auth/logout HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    assert!(logout.starts_with("HTTP/1.1 204"), "{logout}");
    assert!(terminate(&mut child).success());

    let all: Vec<String> = lines.try_iter().collect();
    let audit: Vec<serde_json::Value> = all
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event.get("audit").is_some())
        .collect();
    let kinds: Vec<&str> = audit.iter().map(|event| event["audit"].as_str().unwrap()).collect();
    for expected in ["token.minted", "login.failed", "login.succeeded", "session.revoked"] {
        assert!(kinds.contains(&expected), "{expected} in {kinds:?}");
    }
    let failed = audit.iter().find(|event| event["audit"] == "login.failed").unwrap();
    assert_eq!(failed["reason"], "wrong_password");
    assert_eq!(failed["client"], "127.0.0.1");
    assert_eq!(failed["target"], "thub::audit");
    let everything = all.join("\n");
    assert!(!everything.contains("Str0ng-pass") && !everything.contains("Wr0ng-guess"), "no passwords");
    assert!(!everything.contains(&token), "no tokens");
}

#[test]
fn a_malformed_forwarded_header_and_the_connection_cap_are_logged_once() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(
        folder.path().join("thub.toml"),
        "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\nmax_connections = 2\n",
    )
    .unwrap();
    let mut child = thub(folder.path())
        .args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (sender, lines) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let address = loop {
        let line = lines.recv_timeout(Duration::from_secs(20)).expect("a start-up line");
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if let Some(address) = event.get("address").and_then(|value| value.as_str()) {
            break address.to_owned();
        }
    };
    let get_with = |header: &str| {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        write!(stream, "GET /health HTTP/1.1\r\nHost: x\r\n{header}\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    for _ in 0..3 {
        assert!(get_with("Forwarded: for=\"[garbage").starts_with("HTTP/1.1 200"), "ignored, not refused");
    }
    // Two idle connections fill the cap; a third waits and the limit is logged.
    let _first = std::net::TcpStream::connect(&address).unwrap();
    let _second = std::net::TcpStream::connect(&address).unwrap();
    let _third = std::net::TcpStream::connect(&address).unwrap();
    let mut logged_cap = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while !logged_cap && std::time::Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            logged_cap |= line.contains("connection limit reached");
            seen.push(line);
        }
    }
    assert!(logged_cap, "the cap is logged: {seen:?}");
    drop((_first, _second, _third));
    assert!(terminate(&mut child).success());
    seen.extend(lines.try_iter());
    let malformed = seen.iter().filter(|line| line.contains("malformed Forwarded")).count();
    assert_eq!(malformed, 1, "logged once, not per request: {seen:?}");
}

#[test]
fn unknown_config_key_is_one_line_naming_it() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("thub.toml"), "[server]\nprot = 8001\n").unwrap();
    let output = run(thub(folder.path()).arg("serve"));
    assert_eq!(output.status.code(), Some(1));
    let line = stderr_line(&output);
    assert!(line.contains("prot") && line.contains("thub.toml"), "{line}");
}

#[test]
fn a_trusted_proxy_that_is_not_a_cidr_is_one_line() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("thub.toml"), "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"nginx\"]\n")
        .unwrap();
    let output = run(thub(folder.path()).args(["serve", "--port", "0"]));
    assert_eq!(output.status.code(), Some(1));
    let line = stderr_line(&output);
    assert!(line.contains("trusted_proxies") && line.contains("\"nginx\"") && line.contains("CIDR"), "{line}");
}

#[test]
fn malformed_config_file_is_one_line() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("thub.toml"), "[server\nport = \n").unwrap();
    let output = run(thub(folder.path()).arg("config"));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_line(&output).contains("thub.toml"));
}

#[test]
fn environment_overrides_file_and_flags_override_environment() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("thub.toml"), "[server]\nport = 9001\nhost = \"0.0.0.0\"\n").unwrap();
    let output = run(thub(folder.path()).arg("config").env("THUB_SERVER__PORT", "9002"));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("port = 9002"), "{text}");
    assert!(text.contains("host = \"0.0.0.0\""), "{text}");
}

#[test]
fn config_command_redacts_secrets() {
    let folder = tempfile::tempdir().unwrap();
    let output = run(thub(folder.path()).arg("config").env("THUB_AUTH__SECRET", "hunter2-secret"));
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(!text.contains("hunter2-secret"));
    assert!(text.contains("secret = \"<redacted>\""), "{text}");
}

#[test]
fn port_in_use_is_one_line() {
    let folder = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = run(thub(folder.path()).args(["serve", "--port", &port]));
    assert_eq!(output.status.code(), Some(1));
    let line = stderr_line(&output);
    assert!(line.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{line}");
}

#[test]
fn corrupt_sqlite_file_is_one_line() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::create_dir(folder.path().join(".thub")).unwrap();
    std::fs::write(folder.path().join(".thub/thub.db"), vec![0x42; 8192]).unwrap();
    let output = run(thub(folder.path()).args(["serve", "--port", "0"]));
    assert_eq!(output.status.code(), Some(1));
    let line = stderr_line(&output);
    assert!(line.contains("thub.db") && line.contains("not a database"), "{line}");
}

#[test]
fn unreachable_database_is_one_line() {
    let folder = tempfile::tempdir().unwrap();
    let output = run(thub(folder.path())
        .args(["serve", "--port", "0"])
        .env("THUB_DATABASE__URL", "postgres://thub:pw@127.0.0.1:1/thub")
        .env("THUB_DATABASE__CONNECT_TIMEOUT_SECONDS", "2"));
    assert_eq!(output.status.code(), Some(1));
    let line = stderr_line(&output);
    assert!(line.contains("cannot open database postgres://thub:***@127.0.0.1:1/thub"), "{line}");
}

#[test]
fn version_and_help() {
    let folder = tempfile::tempdir().unwrap();
    let output = run(thub(folder.path()).arg("--version"));
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).unwrap().trim(), format!("thub {}", env!("CARGO_PKG_VERSION")));
    let output = run(thub(folder.path()).args(["serve", "--help"]));
    assert!(String::from_utf8(output.stdout).unwrap().contains("--port"));
}

/// A minimal HTTP/1.1 GET over a raw socket, so this test needs no client crate set-up.
fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
}

fn run_with_stdin(command: &mut Command, stdin: &str) -> Output {
    use std::io::Write;
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("thub runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().expect("thub finishes")
}

#[test]
fn adduser_passwd_deluser_and_keys() {
    let folder = tempfile::tempdir().unwrap();

    // The password comes from stdin (never argv); it must meet the rules.
    let output = run_with_stdin(thub(folder.path()).args(["adduser", "alice", "--admin"]), "Str0ng-pass\n");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "User 'alice' added as an administrator.");

    let output = run_with_stdin(thub(folder.path()).args(["adduser", "ALICE"]), "Other-pass-1\n");
    assert_eq!(output.status.code(), Some(1), "an existing user is an error, not a silent success");
    assert!(stderr_line(&output).contains("already exists"));

    let output = run_with_stdin(thub(folder.path()).args(["adduser", "bob"]), "short\n");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_line(&output).contains("at least 8 characters"));

    let output = run_with_stdin(thub(folder.path()).args(["passwd", "alice"]), "N3w-password\n");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    // The new password logs in on a served hub; the old one does not.
    let (mut child, address) = start(folder.path(), &[]);
    let ok = http_post_form(&address, "/api/v1/auth/login", "username=alice&password=N3w-password");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let refused = http_post_form(&address, "/api/v1/auth/login", "username=alice&password=Str0ng-pass");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    terminate(&mut child);

    let output = run(thub(folder.path()).args(["keys", "rotate"]));
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("New signing key thub-"));

    let output = run(thub(folder.path()).args(["deluser", "alice"]));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "User 'alice' removed.");
    let output = run(thub(folder.path()).args(["deluser", "alice"]));
    assert!(output.status.success(), "deleting an absent user is a no-op");
    assert!(String::from_utf8_lossy(&output.stdout).contains("does not exist"));
}

/// A tiny HTTP server on a thread: `routes` maps a path to a body; everything else is 404.
fn stub_server(routes: Vec<(&'static str, Vec<u8>)>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 4096];
            let read = stream.read(&mut buffer).unwrap_or(0);
            let request = String::from_utf8_lossy(&buffer[..read]).into_owned();
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
            match routes.iter().find(|(route, _)| *route == path) {
                Some((_, body)) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(body);
                }
                None => {
                    let _ = write!(stream, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                }
            }
        }
    });
    format!("http://{address}")
}

fn offline_zip(version: &str) -> Vec<u8> {
    use std::io::Write;
    let mut bytes = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut bytes);
    let options = zip::write::SimpleFileOptions::default();
    for (name, text) in [("core.js", "export{}"), ("core.css", "body{}"), ("worker.js", "//")] {
        zip.start_file(format!("offline_{version}/pyscript/{name}"), options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.start_file("../../escape.txt", options).unwrap();
    zip.write_all(b"never written outside").unwrap();
    zip.finish().unwrap();
    bytes.into_inner()
}

#[test]
fn new_creates_a_pyscript_project() {
    let folder = tempfile::tempdir().unwrap();
    let cache = folder.path().join("cache");
    let new = |args: &[&str]| run(thub(folder.path()).arg("new").args(args).env("XDG_CACHE_HOME", &cache));

    let output = new(&["demo", "--version", "2025.12.1"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let index = std::fs::read_to_string(folder.path().join("demo/index.html")).unwrap();
    assert!(index.contains("https://pyscript.net/releases/2025.12.1/core.js"));
    assert!(index.contains("<script type=\"mpy\" src=\"./main.py\" config=\"./settings.json\" terminal>"));
    assert_eq!(std::fs::read_to_string(folder.path().join("demo/main.py")).unwrap(), "print(\"Hello, World!\")\n");
    assert_eq!(std::fs::read_to_string(folder.path().join("demo/settings.json")).unwrap(), "{}\n");
    assert!(
        std::fs::read_to_string(folder.path().join("demo/style.css")).unwrap().contains("prefers-color-scheme: dark")
    );
    let ignore = std::fs::read_to_string(folder.path().join("demo/.gitignore")).unwrap();
    assert!(ignore.contains("config.json") && ignore.contains("*.pem") && ignore.contains("__pycache__/"));

    // An existing folder is refused, with a non-zero exit, before any network call.
    let output = new(&["demo", "--pyscript-url", "http://127.0.0.1:1"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_line(&output).contains("already exists"));
    // Names and versions are checked; the title is escaped.
    for bad in ["../x", "a/b", ".hidden", ""] {
        assert_eq!(new(&[bad, "--version", "2025.12.1"]).status.code(), Some(1), "{bad}");
    }
    assert_eq!(new(&["v", "--version", "latest"]).status.code(), Some(1));
    assert!(new(&["<b>x&y", "--version", "2025.12.1"]).status.success());
    assert!(
        std::fs::read_to_string(folder.path().join("<b>x&y/index.html"))
            .unwrap()
            .contains("<title>&lt;b&gt;x&amp;y</title>")
    );

    // The latest version is looked up; when it cannot be, the fallback is said out loud.
    let releases = stub_server(vec![
        ("/version.json", b"\"2026.1.1\"".to_vec()),
        ("/releases/2026.1.1/offline_2026.1.1.zip", offline_zip("2026.1.1")),
    ]);
    let output = new(&["latest", "--pyscript-url", &releases]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("2026.1.1"));
    let output = new(&["fallback", "--pyscript-url", "http://127.0.0.1:1"]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("Could not look up the latest PyScript version") && stdout.contains("2025.11.2"),
        "{stdout}"
    );

    // Offline: assets downloaded once into the cache and copied; a hostile zip entry is ignored.
    let output = new(&["offline", "--offline", "--pyscript-url", &releases]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(folder.path().join("offline/pyscript/core.js").is_file());
    assert!(std::fs::read_to_string(folder.path().join("offline/index.html")).unwrap().contains("./pyscript/core.js"));
    assert!(cache.join("thub/pyscript/2026.1.1/pyscript/core.css").is_file());
    assert!(!folder.path().join("escape.txt").exists() && !cache.join("thub/escape.txt").exists());

    // Offline without the network: the newest cached version (by number) when none was asked
    // for; a named version that cannot be had is an error and leaves nothing behind.
    std::fs::create_dir_all(cache.join("thub/pyscript/2025.12.1/pyscript")).unwrap();
    for file in ["core.js", "core.css"] {
        std::fs::write(cache.join("thub/pyscript/2025.12.1/pyscript").join(file), "x").unwrap();
    }
    let output = new(&["cached", "--offline", "--pyscript-url", "http://127.0.0.1:1"]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("2026.1.1"), "2026.1.1 beats 2025.12.1");
    let output = new(&["named", "--offline", "--version", "2025.12.9", "--pyscript-url", "http://127.0.0.1:1"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(!folder.path().join("named").exists());
}

#[test]
fn import_brings_tufts_users_and_proxies() {
    use sha2::Digest;
    let folder = tempfile::tempdir().unwrap();
    let salt = [7u8; 32];
    let mut hash = sha2::Sha256::new();
    hash.update(salt);
    hash.update(b"password123");
    let config = serde_json::json!({
        "users": {"test": [hex::encode(hash.finalize()), hex::encode(salt)], "bad name!": ["x", "y"]},
        "proxies": {"weather": {"base_url": "https://api.weather.example/v1", "headers": {"X-Key": "k"}}},
        "jwt": {"secret": "ignored", "expiry_hours": 24},
    });
    std::fs::write(folder.path().join("config.json"), config.to_string()).unwrap();
    let output = run(thub(folder.path()).arg("import"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(report.contains("imported user 'test'") && report.contains("skipped user 'bad name!'"), "{report}");
    assert!(report.contains("imported proxy 'weather'"), "{report}");
    let output = run(thub(folder.path()).arg("config"));
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        shown.contains("[plugins.proxy.apis.weather]") && shown.contains("https://api.weather.example/v1"),
        "{shown}"
    );
    assert!(!shown.contains("X-Key = \"k\""), "literal header values are redacted");

    // The imported password works (and is upgraded on that login).
    let (mut child, address) = start(folder.path(), &[]);
    for _ in 0..2 {
        let ok = http_post_form(&address, "/api/v1/auth/login", "username=test&password=password123");
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    }
    let refused = http_post_form(&address, "/api/v1/auth/login", "username=test&password=password124");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    terminate(&mut child);

    // Importing again changes nothing.
    let output = run(thub(folder.path()).arg("import"));
    assert!(String::from_utf8_lossy(&output.stdout).contains("skipped user 'test': already exists"));
    let output = run(thub(folder.path()).args(["import", "missing.json"]));
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn serves_https_with_a_mkcert_style_pair_in_the_folder() {
    let folder = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    std::fs::write(folder.path().join("localhost+1.pem"), certified.cert.pem()).unwrap();
    std::fs::write(folder.path().join("localhost+1-key.pem"), certified.key_pair.serialize_pem()).unwrap();
    let (mut child, address) = start(folder.path(), &[]);
    thub_core::app::install_crypto_providers();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder().tls_danger_accept_invalid_certs(true).build().unwrap();
        let response = client.get(format!("https://{address}/health")).send().await.expect("https answers");
        assert_eq!(response.status(), 200);
        assert!(client.get(format!("http://{address}/health")).send().await.is_err(), "plain HTTP is not spoken");
    });
    terminate(&mut child);
}
