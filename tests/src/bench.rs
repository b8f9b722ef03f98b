//! A small closed-loop load generator for `bench`: N concurrent clients send one kind of request
//! for a fixed time; we report requests/s and latency percentiles. Figures on a shared machine
//! are noisy, so every suite also measures a trivial route in the same run and reports ratios.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One measured scenario.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Scenario name.
    pub name: String,
    /// Completed requests per second.
    pub per_second: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th-percentile latency.
    pub p99: Duration,
    /// Requests that did not answer as expected.
    pub errors: usize,
}

impl Measurement {
    /// A table row; `baseline` gives the ratio column.
    pub fn row(&self, baseline: Option<&Measurement>) -> String {
        let ratio = baseline.map_or(String::from("-"), |base| format!("{:.3}", self.per_second / base.per_second));
        format!(
            "| {} | {:.0} | {:.2} | {:.2} | {} | {} |",
            self.name,
            self.per_second,
            self.p50.as_secs_f64() * 1000.0,
            self.p99.as_secs_f64() * 1000.0,
            ratio,
            self.errors
        )
    }
}

/// The header of [`Measurement::row`] tables.
pub const TABLE_HEADER: &str =
    "| scenario | req/s | p50 ms | p99 ms | req/s ÷ baseline | errors |\n|---|---|---|---|---|---|";

/// Runs `request` from `concurrency` loops for `duration` (after a short warm-up). `request`
/// returns whether the answer was the expected one.
pub async fn measure<F, Fut>(name: &str, concurrency: usize, duration: Duration, request: F) -> Measurement
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    // Warm-up: connections, caches.
    for _ in 0..concurrency.min(8) {
        request().await;
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let begun = Instant::now();
                if !request().await {
                    errors += 1;
                }
                latencies.push(begun.elapsed());
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut task_latencies, task_errors) = task.await.unwrap_or_default();
        latencies.append(&mut task_latencies);
        errors += task_errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let percentile = |fraction: f64| {
        latencies
            .get(((latencies.len() as f64 * fraction) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Measurement {
        name: name.to_owned(),
        per_second: latencies.len() as f64 / elapsed,
        p50: percentile(0.50),
        p99: percentile(0.99),
        errors,
    }
}

/// What [`requests`] hands to [`measure`]: one request, answering whether it got a 2xx.
pub type Attempt = Pin<Box<dyn Future<Output = bool> + Send>>;

/// A request source for [`measure`]: each call sends what `build` makes on `client`, expects a
/// 2xx and reads the body.
pub fn requests<B>(client: &reqwest::Client, build: B) -> impl Fn() -> Attempt + Send + Sync + 'static
where
    B: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let client = client.clone();
    move || {
        let request = build(&client);
        Box::pin(async move {
            // The body is read to the end, as a real client would: an unread body also keeps
            // the connection from going back to the pool.
            match request.send().await {
                Ok(response) if response.status().is_success() => response.bytes().await.is_ok(),
                _ => false,
            }
        })
    }
}

/// [`requests`] of a plain `GET url`.
pub fn get(client: &reqwest::Client, url: String) -> impl Fn() -> Attempt + Send + Sync + 'static {
    requests(client, move |http| http.get(&url))
}

/// A real `thub serve` in its own process, for figures an in-process hub cannot give (its
/// memory, what its log costs): started in `folder` on a free port with the `thub.toml` found
/// there, its JSON log written to `folder/thub.log`, killed on drop.
pub struct ThubProcess {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    log: PathBuf,
}

impl ThubProcess {
    /// The `thub` binary beside the running executable: Cargo puts every binary of a profile in
    /// one folder, and `scripts/bench` builds it (`cargo build --release -p thub-core --bin
    /// thub`) before running the bench.
    pub fn binary() -> PathBuf {
        let exe = std::env::current_exe().expect("the bench's own path");
        let binary = exe.with_file_name("thub");
        assert!(
            binary.is_file(),
            "{} is missing: build it first (cargo build --release -p thub-core --bin thub; scripts/bench does)",
            binary.display()
        );
        binary
    }

    /// Starts `thub serve --port 0` in `folder` and waits (up to 60 s) for its listening line.
    pub async fn start(folder: &Path) -> Self {
        let log = folder.join("thub.log");
        let file = std::fs::File::create(&log).expect("log file");
        let binary = Self::binary();
        let child = crate::thub_command(binary.to_str().expect("utf-8 path"), folder)
            .args(["serve", "--port", "0"])
            .stdout(file)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("thub starts");
        let mut process = Self { child, addr: String::new(), log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while process.addr.is_empty() {
            assert!(Instant::now() < deadline, "thub did not say where it listens within 60 s");
            if let Some(status) = process.child.try_wait().expect("child status") {
                panic!("thub exited at start ({status}); see {}", process.log.display());
            }
            let text = std::fs::read_to_string(&process.log).unwrap_or_default();
            if let Some(address) = text
                .lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .find_map(|event| event["address"].as_str().map(str::to_owned))
            {
                process.addr = address;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        process
    }

    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Its resident memory (`VmRSS` in /proc/PID/status), in bytes.
    pub fn rss(&self) -> u64 {
        self.status_kib("VmRSS") * 1024
    }

    /// A `kB` line of its `/proc/PID/status` (`VmRSS`, `VmHWM`), in KiB.
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("/proc status");
        status
            .lines()
            .find_map(|line| {
                line.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok()
            })
            .unwrap_or_else(|| panic!("no {field} line in /proc/{}/status", self.child.id()))
    }

    /// Bytes it has written to its log so far.
    pub fn log_bytes(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |metadata| metadata.len())
    }
}

impl Drop for ThubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Raises this process's soft open-file limit to at least `needed` (up to the hard limit).
/// Returns the soft limit before and after.
pub fn raise_open_file_limit(needed: u64) -> (u64, u64) {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((1024, 1024));
    if soft >= needed {
        return (soft, soft);
    }
    let wanted = needed.min(hard);
    match rlimit::setrlimit(rlimit::Resource::NOFILE, wanted, hard) {
        Ok(()) => (soft, wanted),
        Err(_) => (soft, soft),
    }
}

/// Registers `username` (password [`crate::PASSWORD`]) on the hub at `base` over HTTP and returns
/// its access token.
pub async fn register(client: &reqwest::Client, base: &str, username: &str) -> String {
    let registered: serde_json::Value = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&serde_json::json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "full_name": format!("{username} Example"),
            "password": crate::PASSWORD,
        }))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("a JSON answer");
    registered["access_token"].as_str().unwrap_or_else(|| panic!("{username} not registered: {registered}")).to_owned()
}
