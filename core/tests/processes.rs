//! Two real `thub` processes sharing PostgreSQL and Redis: they migrate one database together,
//! and a session revoked through one is refused by the other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use thub_tests::{Backend, PASSWORD, TestDatabase, postgres_url, redis_url};

struct Instance {
    child: Child,
    base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(folder: &std::path::Path, database: &str, redis: &str, prefix: &str) -> Instance {
    let mut command = Command::new(env!("CARGO_BIN_EXE_thub"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("THUB_")) {
        command.env_remove(name);
    }
    let mut child = command
        .current_dir(folder)
        .args(["serve", "--port", "0"])
        .env("THUB_DATABASE__URL", database)
        .env("THUB_REDIS__URL", redis)
        .env("THUB_REDIS__KEY_PREFIX", prefix)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("start-up line").unwrap();
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if let Some(address) = event["address"].as_str() {
            break address.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Instance { child, base: format!("http://{address}") }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_holds_across_two_processes() {
    if postgres_url().is_none() || redis_url().is_none() {
        eprintln!("skipped: TEST_DATABASE_URL and TEST_REDIS_URL are both needed");
        return;
    }
    let folder_a = tempfile::tempdir().unwrap();
    let folder_b = tempfile::tempdir().unwrap();
    let database = TestDatabase::create(Backend::Postgres, folder_a.path()).await;
    let prefix = format!("thub-test:{}:", uuid::Uuid::new_v4().simple());
    let redis = redis_url().unwrap();
    // Both start at once on an empty database: migrations serialise on the advisory lock.
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| start(folder_a.path(), &database.url, &redis, &prefix));
        let b = scope.spawn(|| start(folder_b.path(), &database.url, &redis, &prefix));
        (a.join().unwrap(), b.join().unwrap())
    });

    let http = thub_tests::http_client();
    let registered: serde_json::Value = http
        .post(format!("{}/api/v1/auth/register", a.base))
        .json(&serde_json::json!({"username": "alice", "email": "alice@example.com", "full_name": "A", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!("Bearer {}", registered["access_token"].as_str().unwrap());
    let me = |base: &str| http.get(format!("{base}/api/v1/auth/me")).header("authorization", bearer.clone()).send();

    assert_eq!(me(&b.base).await.unwrap().status(), 200, "a session from A works on B (shared secret)");
    let logout = http
        .post(format!("{}/api/v1/auth/logout", b.base))
        .header("authorization", bearer.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    assert_eq!(me(&a.base).await.unwrap().status(), 401, "revoked on B, refused on A");
    assert_eq!(me(&b.base).await.unwrap().status(), 401);
}
