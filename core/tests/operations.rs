//! The real binary's operations commands: `thub backup` while serving, `thub restore` with its
//! checks, and `thub doctor`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

fn thub(folder: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_thub"));
    command.current_dir(folder);
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

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_owned()
}

fn adduser(folder: &Path, username: &str) -> Output {
    let mut child = thub(folder)
        .args(["adduser", username])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"Str0ng-pass\n").unwrap();
    child.wait_with_output().unwrap()
}

fn exists(folder: &Path, username: &str) -> bool {
    let output = adduser(folder, username);
    if output.status.success() {
        // It was absent; put things back as they were.
        run(thub(folder).args(["deluser", username]));
        return false;
    }
    assert!(stderr(&output).contains("already exists"), "{}", stderr(&output));
    true
}

fn serve(folder: &Path) -> Child {
    let mut child =
        thub(folder).args(["serve", "--port", "0"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("a start-up line").unwrap();
        if line.contains("\"address\"") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    child
}

fn stop(child: &mut Child) {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();
}

#[test]
fn backup_while_serving_then_restore_brings_the_copy_back() {
    let folder = tempfile::tempdir().unwrap();
    assert!(adduser(folder.path(), "alice").status.success());
    let mut server = serve(folder.path());
    let backup = folder.path().join("backup.db");
    let output = run(thub(folder.path()).args(["backup", "backup.db"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("Backed up "), "{}", stdout(&output));
    assert!(backup.is_file());
    stop(&mut server);

    assert!(adduser(folder.path(), "bob").status.success(), "bob joins after the backup");
    let output = run(thub(folder.path()).args(["restore", "backup.db"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("Restored "), "{}", stdout(&output));
    assert!(stdout(&output).contains("before-restore"), "the replaced file is kept: {}", stdout(&output));
    assert!(exists(folder.path(), "alice"));
    assert!(!exists(folder.path(), "bob"), "the restored copy predates bob");
}

#[test]
fn backup_into_a_missing_folder_or_over_a_file_is_one_clear_line() {
    let folder = tempfile::tempdir().unwrap();
    assert!(adduser(folder.path(), "alice").status.success());
    let output = run(thub(folder.path()).args(["backup", "no/such/folder/backup.db"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("does not exist") && stderr(&output).lines().count() == 1, "{}", stderr(&output));
    std::fs::write(folder.path().join("taken.db"), "x").unwrap();
    let output = run(thub(folder.path()).args(["backup", "taken.db"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("already exists"), "{}", stderr(&output));
    assert_eq!(std::fs::read(folder.path().join("taken.db")).unwrap(), b"x");
}

#[test]
fn a_backup_that_runs_out_of_space_leaves_no_copy_and_the_live_database_intact() {
    let folder = tempfile::tempdir().unwrap();
    for name in ["alice", "bob", "carol"] {
        assert!(adduser(folder.path(), name).status.success());
    }
    // A file-size limit stands in for a full disk: writes past 64 KiB fail (EFBIG) instead of
    // killing the process, because SIGXFSZ is ignored.
    let binary = env!("CARGO_BIN_EXE_thub");
    let output = Command::new("bash")
        .current_dir(folder.path())
        .args(["-c", &format!("trap '' XFSZ; ulimit -f 64; exec '{binary}' backup full.db")])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("backup to") && message.contains("live database is untouched"), "{message}");
    assert!(!folder.path().join("full.db").exists(), "no partial copy is left");
    assert!(exists(folder.path(), "carol"));
}

#[test]
fn restore_refuses_what_is_not_a_thub_database_before_replacing_anything() {
    let folder = tempfile::tempdir().unwrap();
    assert!(adduser(folder.path(), "alice").status.success());
    let live = folder.path().join(".thub/thub.db");
    let before = std::fs::metadata(&live).unwrap().modified().unwrap();

    std::fs::write(folder.path().join("notes.txt"), "not a database at all").unwrap();
    let output = run(thub(folder.path()).args(["restore", "notes.txt"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not a SQLite database") && stderr(&output).contains("nothing was replaced"));

    // A SQLite file, but someone else's.
    let other = folder.path().join("other.db");
    Command::new("python3")
        .args([
            "-c",
            &format!(
                "import sqlite3; c = sqlite3.connect('{}'); c.execute('create table t (x)'); c.commit()",
                other.display()
            ),
        ])
        .status()
        .unwrap();
    let output = run(thub(folder.path()).args(["restore", "other.db"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not a thub database"), "{}", stderr(&output));

    let output = run(thub(folder.path()).args(["restore", "missing.db"]));
    assert_eq!(output.status.code(), Some(1));

    assert_eq!(std::fs::metadata(&live).unwrap().modified().unwrap(), before, "the live file was not touched");
    assert!(exists(folder.path(), "alice"));
}

#[test]
fn backup_on_postgresql_says_to_use_pg_dump() {
    let folder = tempfile::tempdir().unwrap();
    let output =
        run(thub(folder.path()).args(["backup", "x.dump"]).env("THUB_DATABASE__URL", "postgres://db.invalid/thub"));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("pg_dump"), "{}", stderr(&output));
}

#[test]
fn doctor_reports_each_item_and_fails_on_problems() {
    let folder = tempfile::tempdir().unwrap();
    let output = run(thub(folder.path()).arg("doctor"));
    assert_eq!(output.status.code(), Some(1), "no database yet is a problem");
    assert!(stdout(&output).contains("FAIL database"), "{}", stdout(&output));

    assert!(adduser(folder.path(), "alice").status.success());
    let output = run(thub(folder.path()).arg("doctor"));
    let report = stdout(&output);
    assert!(output.status.success(), "{report}{}", stderr(&output));
    for item in [
        "ok   database",
        "ok   signing keys",
        "ok   session secret",
        "ok   redis",
        "ok   plugins folder",
        "ok   tls",
        "ok   public_url",
    ] {
        assert!(report.contains(item), "{item} in {report}");
    }

    let output = run(thub(folder.path()).arg("doctor").env("THUB_REDIS__URL", "redis://127.0.0.1:1"));
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("FAIL redis"), "{}", stdout(&output));
    std::fs::write(
        folder.path().join("thub.toml"),
        "[server]\ntls_cert = \"missing.pem\"\ntls_key = \"missing-key.pem\"\n",
    )
    .unwrap();
    let output = run(thub(folder.path()).arg("doctor"));
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("FAIL tls"), "{}", stdout(&output));
}
