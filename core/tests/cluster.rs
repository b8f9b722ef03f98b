//! The cluster suite: nginx in front of three `thub` processes (this build's binary) on one
//! PostgreSQL database and a `redis-server` the suite starts and stops itself. It checks what a
//! deployment of several instances must hold: revocation everywhere, channel fan-out across
//! instances, rate limits across instances and per client behind the proxy, a Redis kill and
//! restart (no revoked token accepted at any moment; service returns by itself), a `kill -9` of
//! one instance under write load (every acknowledged write present afterwards), and dropped
//! PostgreSQL connections (the pool recovers). It ends with one summary line.
//!
//! Needs `TEST_DATABASE_URL`, `nginx` and `redis-server` (`scripts/test` installs the latter
//! two when missing); says "skipped" otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "correct-horse-1";
const FAILED_LOGINS_PER_ADDRESS: u32 = 5;

/// Counts for the summary line.
#[derive(Default)]
struct Tally {
    checks: AtomicU64,
    requests: AtomicU64,
    revoked_probes: AtomicU64,
    revoked_accepted: AtomicU64,
    writes_acknowledged: AtomicU64,
    retries: AtomicU64,
}

impl Tally {
    fn check(&self, name: &str) {
        self.checks.fetch_add(1, Ordering::Relaxed);
        eprintln!("cluster: ok - {name}");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn find_program(name: &str) -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    candidates.map(|folder| folder.join(name)).find(|path| path.is_file())
}

/// One `thub serve` process.
struct Instance {
    child: Child,
    address: String,
}

impl Instance {
    fn start(folder: &Path) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_thub"));
        for (name, _) in std::env::vars() {
            if name.starts_with("THUB_") || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        let mut child = command
            .current_dir(folder)
            .args(["serve", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("thub starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let address = loop {
            let line = lines.next().expect("a start-up line before exit").unwrap();
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if let Some(address) = event.get("address").and_then(|value| value.as_str()) {
                break address.to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("thub stderr: {line}");
            }
        });
        Self { child, address }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

/// A `redis-server` on its own port.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server listens");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// nginx in front of the instances.
struct Nginx {
    child: Child,
    port: u16,
}

impl Nginx {
    fn start(binary: &Path, folder: &Path, upstreams: &[String]) -> Self {
        let port = free_port();
        for temp in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(folder.join(temp)).unwrap();
        }
        let servers: String = upstreams
            .iter()
            .map(|address| format!("        server {address} max_fails=1 fail_timeout=2s;\n"))
            .collect();
        let folder_text = folder.display();
        let config = format!(
            r#"worker_processes 1;
daemon off;
pid {folder_text}/nginx.pid;
error_log {folder_text}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {folder_text}/body;
    proxy_temp_path {folder_text}/proxy;
    fastcgi_temp_path {folder_text}/fastcgi;
    uwsgi_temp_path {folder_text}/uwsgi;
    scgi_temp_path {folder_text}/scgi;
    upstream thub {{
{servers}        keepalive 32;
    }}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 10m;
        location / {{
            proxy_pass http://thub;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_read_timeout 3600s;
        }}
    }}
}}
"#
        );
        let config_path = folder.join("nginx.conf");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new(binary)
            .args(["-c", &config_path.display().to_string(), "-p", &folder_text.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx listens");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: the master must take its worker down with it.
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

struct Cluster {
    http: reqwest::Client,
    instances: Vec<Instance>,
    nginx: Nginx,
    redis: Redis,
    db: DatabaseConnection,
    tally: Arc<Tally>,
}

impl Cluster {
    async fn login(&self, url: &str, username: &str, client: &str) -> reqwest::Response {
        self.tally.requests.fetch_add(1, Ordering::Relaxed);
        self.http
            .post(url)
            .header("x-forwarded-for", client)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("username={username}&password={PASSWORD}"))
            .send()
            .await
            .unwrap()
    }

    async fn token(&self, url: &str, username: &str) -> String {
        let response = self.login(url, username, "198.51.100.200").await;
        assert_eq!(response.status(), 200, "{username} logs in");
        let body: serde_json::Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn register(&self, username: &str, client: &str) -> Result<reqwest::StatusCode, reqwest::Error> {
        self.tally.requests.fetch_add(1, Ordering::Relaxed);
        let response = self
            .http
            .post(self.nginx.url("/api/v1/auth/register"))
            .header("x-forwarded-for", client)
            .json(&serde_json::json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "full_name": username,
                "password": PASSWORD,
            }))
            .send()
            .await?;
        Ok(response.status())
    }

    async fn me(&self, url: &str, token: &str) -> Option<u16> {
        self.tally.requests.fetch_add(1, Ordering::Relaxed);
        let response = self.http.get(url).bearer_auth(token).send().await.ok()?;
        Some(response.status().as_u16())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_behind_nginx_holds_together() {
    let Some(server) = std::env::var("TEST_DATABASE_URL").ok().filter(|url| !url.is_empty()) else {
        eprintln!("skipped: TEST_DATABASE_URL not set");
        return;
    };
    let (Some(nginx_binary), Some(_)) = (find_program("nginx"), find_program("redis-server")) else {
        eprintln!("skipped: nginx or redis-server not installed (scripts/test installs them)");
        return;
    };
    thub_core::app::install_crypto_providers();
    let started = Instant::now();
    let folder = tempfile::tempdir().unwrap();

    // A fresh database of our own.
    let name = format!("thub_cluster_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&server).await.unwrap();
    admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.unwrap();
    let url = with_database(&server, &name);

    let mut redis = Redis { port: free_port(), child: None };
    redis.start();

    let mut instances = Vec::new();
    for index in 0..3 {
        let root = folder.path().join(format!("instance-{index}"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(
            root.join("thub.toml"),
            format!(
                r#"[server]
trusted_proxies = ["127.0.0.1/32"]
[database]
url = "{url}"
[redis]
url = "redis://127.0.0.1:{port}"
[log]
filter = "info"
access_sample_rate = 0.0
[auth]
failed_logins_per_address = {FAILED_LOGINS_PER_ADDRESS}
[metrics]
enabled = true
[wasm]
enabled = false
"#,
                port = redis.port
            ),
        )
        .unwrap();
        instances.push(root);
    }
    // Three instances start at once on the empty database.
    let roots = instances.clone();
    let instances: Vec<Instance> = std::thread::scope(|scope| {
        let handles: Vec<_> = roots.iter().map(|root| scope.spawn(move || Instance::start(root))).collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    let nginx_folder = folder.path().join("nginx");
    std::fs::create_dir_all(&nginx_folder).unwrap();
    let upstreams: Vec<String> = instances.iter().map(|instance| instance.address.clone()).collect();
    let nginx = Nginx::start(&nginx_binary, &nginx_folder, &upstreams);
    let db = Database::connect(&url).await.unwrap();
    let mut cluster = Cluster {
        http: reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap(),
        instances,
        nginx,
        redis,
        db,
        tally: Arc::new(Tally::default()),
    };

    let keys = count(&cluster.db, "SELECT COUNT(*) FROM signing_keys").await;
    assert_eq!(keys, 1, "instances that started together made one signing key");
    cluster.tally.check("one signing key for three instances started together");

    for username in ["alice", "bob", "carol"] {
        assert_eq!(cluster.register(username, "198.51.100.200").await.unwrap(), 201);
    }

    // 1. Logout on one instance is refused by the others.
    let alice = cluster.token(&cluster.instances[0].url("/api/v1/auth/login"), "alice").await;
    for instance in &cluster.instances {
        assert_eq!(cluster.me(&instance.url("/api/v1/auth/me"), &alice).await, Some(200));
    }
    let logout = cluster.http.post(cluster.instances[0].url("/api/v1/auth/logout")).bearer_auth(&alice).send().await;
    assert_eq!(logout.unwrap().status(), 204);
    for instance in &cluster.instances[1..] {
        assert_eq!(cluster.me(&instance.url("/api/v1/auth/me"), &alice).await, Some(401));
    }
    cluster.tally.check("a logout on one instance is refused by the others");

    // 2. A channel message published through one instance reaches every instance.
    let bob = cluster.token(&cluster.nginx.url("/api/v1/auth/login"), "bob").await;
    assert_fan_out(&cluster, &bob, "before").await;
    cluster.tally.check("a channel message reaches subscribers on every instance");

    // 3. Rate limits hold across instances and per client behind the proxy.
    let through_proxy = cluster.nginx.url("/api/v1/auth/login");
    for _ in 0..FAILED_LOGINS_PER_ADDRESS {
        let response = cluster
            .http
            .post(&through_proxy)
            .header("x-forwarded-for", "203.0.113.50")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("username=nobody&password=wrong-guess")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let limited = cluster.login(&through_proxy, "carol", "203.0.113.50").await;
    assert_eq!(limited.status(), 429, "the limit holds whichever instance nginx picks");
    assert!(limited.headers().contains_key("retry-after"));
    for instance in &cluster.instances {
        // Directly too: the counter is shared, keyed by the client behind the proxy.
        let direct = cluster.login(&instance.url("/api/v1/auth/login"), "carol", "203.0.113.50").await;
        assert_eq!(direct.status(), 429);
    }
    assert_eq!(
        cluster.login(&through_proxy, "carol", "203.0.113.51").await.status(),
        200,
        "another client is not limited"
    );
    cluster.tally.check("rate limits hold across instances and per client behind the proxy");

    // 4. Redis killed and restarted: a revoked token is never accepted, service returns.
    let revoked = cluster.token(&through_proxy, "carol").await;
    let logout = cluster.http.post(cluster.nginx.url("/api/v1/auth/logout")).bearer_auth(&revoked).send().await;
    assert_eq!(logout.unwrap().status(), 204);
    let stop_probing = Arc::new(AtomicBool::new(false));
    let probes = {
        let urls: Vec<String> = cluster.instances.iter().map(|instance| instance.url("/api/v1/auth/me")).collect();
        let (http, tally, stop, token) =
            (cluster.http.clone(), cluster.tally.clone(), stop_probing.clone(), revoked.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for url in &urls {
                    if let Ok(response) = http.get(url).bearer_auth(&token).send().await {
                        tally.revoked_probes.fetch_add(1, Ordering::Relaxed);
                        if response.status() == 200 {
                            tally.revoked_accepted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    cluster.redis.kill();
    // During the outage: authenticated requests are served, and a logout still holds everywhere.
    let during = cluster.token(&through_proxy, "bob").await;
    for instance in &cluster.instances {
        assert_eq!(cluster.me(&instance.url("/api/v1/auth/me"), &during).await, Some(200), "served without Redis");
    }
    let ready = cluster.http.get(cluster.nginx.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "instances stay in the balancer while Redis is away");
    assert_eq!(ready.json::<serde_json::Value>().await.unwrap()["status"], "degraded");
    let logout = cluster.http.post(cluster.instances[2].url("/api/v1/auth/logout")).bearer_auth(&during).send().await;
    assert_eq!(logout.unwrap().status(), 204);
    for instance in &cluster.instances {
        assert_eq!(cluster.me(&instance.url("/api/v1/auth/me"), &during).await, Some(401));
    }
    cluster.redis.start();
    assert_fan_out(&cluster, &bob, "after").await;
    stop_probing.store(true, Ordering::Relaxed);
    probes.await.unwrap();
    assert!(cluster.tally.revoked_probes.load(Ordering::Relaxed) > 0);
    assert_eq!(cluster.tally.revoked_accepted.load(Ordering::Relaxed), 0, "no revoked token accepted at any moment");
    cluster.tally.check("Redis killed and restarted: no revoked token accepted, service returns by itself");

    // 5. One instance killed -9 under write load: clients retry; acknowledged writes persist.
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (http, nginx_url, tally, acknowledged) = (
                cluster.http.clone(),
                cluster.nginx.url("/api/v1/auth/register"),
                cluster.tally.clone(),
                acknowledged.clone(),
            );
            tokio::spawn(async move {
                for index in 0..12 {
                    let username = format!("w{writer}n{index}");
                    let deadline = Instant::now() + Duration::from_secs(30);
                    loop {
                        tally.requests.fetch_add(1, Ordering::Relaxed);
                        let sent = http
                            .post(&nginx_url)
                            .header("x-forwarded-for", format!("198.51.100.{}", 10 + writer))
                            .json(&serde_json::json!({
                                "username": username, "email": format!("{username}@example.com"),
                                "full_name": username, "password": PASSWORD,
                            }))
                            .send()
                            .await;
                        match sent.map(|response| response.status().as_u16()) {
                            Ok(201) => {
                                acknowledged.lock().unwrap().push(username.clone());
                                break;
                            }
                            // A retry of a write that landed before its answer was lost.
                            Ok(400 | 409) => break,
                            _ => {
                                assert!(Instant::now() < deadline, "{username} is written within 30 s");
                                tally.retries.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    // Kill one instance once writes are flowing.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acknowledged.lock().unwrap().len() < 8 {
        assert!(Instant::now() < deadline, "writes flow");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.instances[1].kill_hard();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    cluster.tally.writes_acknowledged.store(acknowledged.len() as u64, Ordering::Relaxed);
    for username in &acknowledged {
        let present = count(&cluster.db, &format!("SELECT COUNT(*) FROM users WHERE username = '{username}'")).await;
        assert_eq!(present, 1, "acknowledged write {username} is present");
    }
    cluster.tally.check("kill -9 under write load: every acknowledged write is present");

    // 6. PostgreSQL connections dropped: the pools recover.
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await
        .unwrap();
    let token = cluster.token_eventually(&through_proxy, "bob").await;
    for instance in [&cluster.instances[0], &cluster.instances[2]] {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if cluster.me(&instance.url("/api/v1/auth/me"), &token).await == Some(200) {
                break;
            }
            assert!(Instant::now() < deadline, "the pool of {} recovers", instance.address);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    cluster.tally.check("PostgreSQL connections dropped: the pools recover");

    let metrics = cluster.http.get(cluster.nginx.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("thub_http_requests_total"), "metrics are served behind the proxy");
    cluster.tally.check("metrics are served");

    let tally = &cluster.tally;
    println!(
        "cluster summary: {} checks passed, 0 failed; 3 instances, {} requests, {} revoked-token probes ({} accepted), {} acknowledged writes, {} retries, {:.1} s",
        tally.checks.load(Ordering::Relaxed),
        tally.requests.load(Ordering::Relaxed) + tally.revoked_probes.load(Ordering::Relaxed),
        tally.revoked_probes.load(Ordering::Relaxed),
        tally.revoked_accepted.load(Ordering::Relaxed),
        tally.writes_acknowledged.load(Ordering::Relaxed),
        tally.retries.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    );
    drop(cluster);
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await.ok();
}

impl Cluster {
    /// Logs in, retrying while the pools reconnect.
    async fn token_eventually(&self, url: &str, username: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let response = self.login(url, username, "198.51.100.201").await;
            if response.status() == 200 {
                let body: serde_json::Value = response.json().await.unwrap();
                return body["access_token"].as_str().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "login recovers after the connections were dropped");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A member on every instance; messages are sent through instance 0 until every other member
/// got one (fan-out may need a moment to resume after Redis returns).
async fn assert_fan_out(cluster: &Cluster, token: &str, tag: &str) {
    let channel = format!("room-{tag}");
    let mut sockets = Vec::new();
    for instance in &cluster.instances {
        let url = format!("ws://{}/channel/{channel}?token={token}", instance.address);
        sockets.push(tokio_tungstenite::connect_async(url).await.expect("channel joined").0);
    }
    let mut sender = sockets.remove(0);
    let mut pending: Vec<_> = sockets.into_iter().collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut attempt = 0;
    while !pending.is_empty() {
        assert!(Instant::now() < deadline, "fan-out reaches every instance ({tag})");
        attempt += 1;
        sender.send(Message::text(format!("{tag} {attempt}"))).await.unwrap();
        let mut still = Vec::new();
        for mut socket in pending {
            let got = async {
                loop {
                    match socket.next().await {
                        Some(Ok(Message::Text(text))) if text.starts_with(tag) => return true,
                        Some(Ok(_)) => continue,
                        _ => return false,
                    }
                }
            };
            match tokio::time::timeout(Duration::from_millis(200), got).await {
                Ok(true) => {}
                _ => still.push(socket),
            }
        }
        pending = still;
    }
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row =
        db.query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_owned())).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server, None),
    };
    let scheme_end = base.find("://").map(|index| index + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}
