//! The real `thub` binary: start-up in an empty folder, graceful stop, and the one-line errors
//! for bad configuration, a port in use, an unreachable or corrupt database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn thub(folder: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_thub"));
    command.current_dir(folder);
    // Tests never read the developer's environment.
    for (name, _) in std::env::vars() {
        if name.starts_with("THUB_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
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
fn unknown_config_key_is_one_line_naming_it() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("thub.toml"), "[server]\nprot = 8001\n").unwrap();
    let output = run(thub(folder.path()).arg("serve"));
    assert_eq!(output.status.code(), Some(1));
    let line = stderr_line(&output);
    assert!(line.contains("prot") && line.contains("thub.toml"), "{line}");
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

fn http_post_form(address: &str, path: &str, form: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
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
