//! The one typed configuration, and the only module that reads the environment.
//!
//! Layers, later wins: defaults in code → `thub.toml` in the hub folder (or `--config PATH`) →
//! `THUB_*` environment variables (nested keys joined with `__`, e.g. `THUB_SERVER__PORT=9000`)
//! → command-line flags. Unknown keys are a start-up error naming the key. A secret may be given
//! inline or as a path in the sibling `*_file` key. `config/thub.example.toml` documents every
//! key and a test keeps it equal to [`Config::default`].

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};
use thub_plugin_sdk::PluginSections;

/// The file name looked up in the hub folder when no `--config` is given.
pub const CONFIG_FILE: &str = "thub.toml";

/// Everything thub can be told.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listening, hub folder, limits.
    pub server: ServerConfig,
    /// Where data lives.
    pub database: DatabaseConfig,
    /// Shared state for several instances (revocation, rate limits, channel fan-out).
    pub redis: RedisConfig,
    /// Logging.
    pub log: LogConfig,
    /// Accounts and hub session tokens.
    pub auth: AuthConfig,
    /// The identity provider (satellite tokens).
    pub idp: IdpConfig,
    /// Built-in plugins, one `[plugins.<id>]` section each, read by the plugin it names.
    pub plugins: PluginSections,
    /// WebAssembly plugins: where they live, their limits, and what each is granted.
    pub wasm: WasmConfig,
    /// The Prometheus endpoint.
    pub metrics: MetricsConfig,
}

/// `[metrics]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` in the Prometheus text format.
    pub enabled: bool,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    pub token: Secret,
    /// Read the token from this file instead.
    pub token_file: Option<PathBuf>,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on (0 picks a free one).
    pub port: u16,
    /// The hub folder: static files, `thub.toml`. Relative paths are relative to the working folder.
    pub root: PathBuf,
    /// Where thub keeps its own files (the SQLite database); relative to `root`. Never served.
    pub data_dir: PathBuf,
    /// The URL users reach the hub at, e.g. `https://hub.example.com`. Empty: taken from each
    /// request. Decides the `Secure` cookie flag and the default token issuer.
    pub public_url: String,
    /// Extra origins allowed to call the API from browsers (CORS) and to open WebSockets.
    /// The hub's own origin is always allowed; nothing else is by default.
    pub cors_origins: Vec<String>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Compress responses (gzip, brotli) when the client accepts it.
    pub compression: bool,
    /// Seconds in-flight requests get to finish on SIGINT/SIGTERM.
    pub shutdown_grace_seconds: u64,
    /// TLS certificate chain (PEM). With `tls_key`, thub serves HTTPS. When both are empty, a
    /// mkcert-style pair in the hub folder (`NAME.pem` + `NAME-key.pem`) is used if there is
    /// exactly one.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` / `X-Forwarded-Proto` headers are
    /// believed, as CIDR blocks (`127.0.0.1/32`, `10.0.0.0/8`, `::1/128`; a bare address is one
    /// host). Empty: those headers are ignored and the socket's peer is the client.
    pub trusted_proxies: Vec<String>,
    /// Seconds a client has to send a request's headers: from the connection opening, or from
    /// the first byte of a follow-up request on a keep-alive connection.
    pub header_read_timeout_seconds: u64,
    /// Seconds a keep-alive connection may sit idle between requests before it is closed.
    pub keep_alive_timeout_seconds: u64,
    /// Longest pause, in seconds, while a request body is arriving; then the request fails (408).
    pub body_read_timeout_seconds: u64,
    /// Connections open at once (WebSockets included). At the cap, new clients wait in the
    /// listen backlog and one warning is logged. The open-file limit is raised at start-up.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 8000,
            root: PathBuf::from("."),
            data_dir: PathBuf::from(".thub"),
            public_url: String::new(),
            cors_origins: Vec::new(),
            max_body_bytes: 2 * 1024 * 1024,
            compression: true,
            shutdown_grace_seconds: 30,
            tls_cert: None,
            tls_key: None,
            trusted_proxies: Vec::new(),
            header_read_timeout_seconds: 10,
            keep_alive_timeout_seconds: 75,
            body_read_timeout_seconds: 30,
            max_connections: 10_000,
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`. Empty: a SQLite file `thub.db` in the data folder.
    pub url: Secret,
    /// Read the URL from this file instead (it may hold a password).
    pub url_file: Option<PathBuf>,
    /// Connection pool size.
    pub max_connections: u32,
    /// Seconds to wait for a connection before giving up.
    pub connect_timeout_seconds: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { url: Secret::default(), url_file: None, max_connections: 10, connect_timeout_seconds: 5 }
    }
}

/// `[redis]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://…`. Empty: shared state stays in this process (fine for one instance).
    pub url: Secret,
    /// Read the URL from this file instead.
    pub url_file: Option<PathBuf>,
    /// Prefix of every key thub writes, so several hubs can share one Redis.
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self { url: Secret::default(), url_file: None, key_prefix: "thub:".to_owned() }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter, e.g. `info` or `info,thub_core=debug`. `RUST_LOG` overrides it.
    pub filter: String,
    /// Share of successful (< 400) requests written to the access log, from 0.0 to 1.0 (0.01:
    /// one in a hundred). Failed requests are always logged.
    pub access_sample_rate: f64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { filter: "info".to_owned(), access_sample_rate: 1.0 }
    }
}

impl LogConfig {
    /// `access_sample_rate` as "one in N" (0: none).
    pub fn access_log_every(&self) -> u64 {
        if self.access_sample_rate.is_nan() || self.access_sample_rate <= 0.0 {
            return 0;
        }
        (1.0 / self.access_sample_rate.min(1.0)).round() as u64
    }
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// HS256 secret for hub access and refresh tokens. Empty: one is generated on first start
    /// and kept in the database, so every instance sharing it agrees.
    pub secret: Secret,
    /// Read the secret from this file instead.
    pub secret_file: Option<PathBuf>,
    /// Access-token (and `session` cookie) lifetime.
    pub access_token_minutes: i64,
    /// Refresh-token lifetime.
    pub refresh_token_days: i64,
    /// Shortest accepted password.
    pub min_password_length: usize,
    /// Failed logins per account per `login_window_seconds`; past it the account is locked
    /// (429) until the window ends. A successful login clears the count.
    pub login_attempts_per_account: u32,
    /// Failed logins per client address per `login_window_seconds` (password spraying across
    /// accounts).
    pub failed_logins_per_address: u32,
    /// The window of the two failed-login limits.
    pub login_window_seconds: u64,
    /// Login requests, successful or not, per client address per minute: bounds the password
    /// hashing one client can ask for.
    pub logins_per_address_per_minute: u32,
    /// Registrations per client address per minute.
    pub registrations_per_address_per_minute: u32,
    /// Token refreshes per session per minute.
    pub refreshes_per_session_per_minute: u32,
    /// Satellite and API tokens minted per user per minute.
    pub tokens_per_user_per_minute: u32,
    /// Whether `POST /api/v1/auth/register` is open to anyone.
    pub open_registration: bool,
    /// How long an authenticated session, API token or user stays in the in-process
    /// authentication cache; also the longest a change made where no invalidation reaches this
    /// instance (another process without Redis) can go unseen here. 0 turns the cache off.
    pub cache_seconds: u64,
    /// Most sessions, API tokens and users the cache holds (each).
    pub cache_entries: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            secret: Secret::default(),
            secret_file: None,
            access_token_minutes: 30,
            refresh_token_days: 7,
            min_password_length: 8,
            login_attempts_per_account: 10,
            failed_logins_per_address: 50,
            login_window_seconds: 300,
            logins_per_address_per_minute: 600,
            registrations_per_address_per_minute: 300,
            refreshes_per_session_per_minute: 30,
            tokens_per_user_per_minute: 120,
            open_registration: true,
            cache_seconds: 10,
            cache_entries: 20_000,
        }
    }
}

/// `[idp]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdpConfig {
    /// `iss` of satellite tokens. Empty: `server.public_url`, else `https://hub.syft.com`
    /// (the issuer syfthub satellites expect by default).
    pub issuer: String,
    /// Satellite-token lifetime.
    pub satellite_token_seconds: i64,
    /// Audiences (service names) anyone may request a token for, besides any active user's
    /// username.
    pub allowed_audiences: Vec<String>,
    /// RSA modulus size of generated signing keys.
    pub rsa_key_bits: usize,
    /// How long a rotated-out key stays in the JWKS, so tokens it signed still verify.
    pub key_overlap_hours: i64,
    /// `Cache-Control: max-age` of the JWKS, in seconds.
    pub jwks_max_age_seconds: u64,
}

impl Default for IdpConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            satellite_token_seconds: 60,
            allowed_audiences: vec!["syftai-space".to_owned()],
            rsa_key_bits: 2048,
            key_overlap_hours: 24,
            jwks_max_age_seconds: 3600,
        }
    }
}

/// `[wasm]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WasmConfig {
    /// Load WebAssembly plugins at all.
    pub enabled: bool,
    /// The plugins folder: one sub-folder per plugin with `plugin.toml` and its `.wasm`.
    /// Relative paths are relative to the data folder.
    pub dir: PathBuf,
    /// Linear memory per instance, in MiB.
    pub memory_mb: u64,
    /// Calls of one plugin running at once; more are answered 503.
    pub max_concurrency: usize,
    /// Wall-clock limit of a route call, in milliseconds.
    pub request_timeout_ms: u64,
    /// Wall-clock limit of a middleware call (which then lets the request through).
    pub middleware_timeout_ms: u64,
    /// Wall-clock limit of an event delivery.
    pub event_timeout_ms: u64,
    /// Wall-clock limit of a scheduled task.
    pub task_timeout_ms: u64,
    /// Consecutive failures (traps, timeouts) after which a plugin is disabled.
    pub failure_threshold: u32,
    /// Largest request body handed to a plugin.
    pub max_request_bytes: usize,
    /// Largest response a plugin may return.
    pub max_response_bytes: usize,
    /// Shortest interval of a scheduled task, in seconds.
    pub min_schedule_seconds: u64,
    /// Compiled components, cached across restarts. Relative paths are relative to the data
    /// folder.
    pub cache_dir: PathBuf,
    /// Largest component loaded, in MiB (Python and JavaScript components are 12–18 MiB).
    pub max_component_mb: u64,
    /// Instances alive at once across all plugins, pre-reserved in the pooling allocator (each
    /// slot reserves address space, committed only when used). 0 allocates on demand instead.
    pub pool_instances: u32,
    /// KiB of each freed instance memory (and table) kept mapped for the next call, the pages
    /// the call wrote set back to the image (with `PAGEMAP_SCAN`; without it at most 64 KiB).
    pub pool_keep_resident_kb: usize,
    /// Middleware plugins listed here run first, in this order; the others after, by id.
    pub middleware_order: Vec<String>,
    /// What each plugin may do, by plugin id. Nothing is granted by default: an ungranted
    /// plugin can only log.
    pub grants: std::collections::BTreeMap<String, WasmGrant>,
}

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: PathBuf::from("plugins"),
            memory_mb: 64,
            max_concurrency: 16,
            request_timeout_ms: 5_000,
            middleware_timeout_ms: 100,
            event_timeout_ms: 10_000,
            task_timeout_ms: 30_000,
            failure_threshold: 10,
            max_request_bytes: 1 << 20,
            max_response_bytes: 4 << 20,
            min_schedule_seconds: 60,
            cache_dir: PathBuf::from("wasm-cache"),
            max_component_mb: 32,
            pool_instances: 128,
            pool_keep_resident_kb: 1024,
            middleware_order: Vec::new(),
            grants: std::collections::BTreeMap::new(),
        }
    }
}

/// `[wasm.grants.<plugin id>]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WasmGrant {
    /// Granted capabilities: `kv`, `http`, `emit`, `config`, `middleware`, `events`, `tasks`.
    pub capabilities: Vec<String>,
    /// Hosts outbound HTTP may reach (with `http`), e.g. `api.example.com`.
    pub http_hosts: Vec<String>,
    /// Let outbound HTTP reach private and loopback addresses (off: SSRF protection).
    pub allow_private_network: bool,
    /// Its middleware is critical: when it fails, times out or is not ready yet, requests are
    /// refused (503) instead of let through.
    pub fail_closed: bool,
    /// Values for the config keys the manifest declares; `${env:NAME}` or `${file:PATH}` keep
    /// secrets out of this file. Literal values are not printed.
    #[serde(serialize_with = "thub_plugin_sdk::serialize_redacted")]
    pub config: std::collections::BTreeMap<String, String>,
}

/// A secret string: never printed. `Debug` and `Serialize` show `<redacted>` when it is set.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// A secret holding `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call only where it is used, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no value is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "<redacted>" })
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0.is_empty() { "" } else { "<redacted>" })
    }
}

/// Where configuration comes from, besides the built-in defaults.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// `--config PATH`; when absent, `thub.toml` in the working folder if it exists.
    pub file: Option<PathBuf>,
    /// Whether to read `THUB_*` environment variables.
    pub environment: bool,
    /// Flag overrides, applied last.
    pub overrides: Overrides,
}

/// Command-line flags that override configuration.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--host`.
    pub host: Option<String>,
    /// `--port`.
    pub port: Option<u16>,
    /// Plugin settings given as flags (`--reload` is `[plugins.site] reload = true`), as
    /// `(plugin id, key, value)`.
    pub plugin_settings: Vec<(&'static str, &'static str, serde_json::Value)>,
}

impl Config {
    /// Loads configuration from `sources`, then reads `*_file` secrets and resolves paths.
    pub fn load(sources: &ConfigSources) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        match &sources.file {
            Some(path) => {
                anyhow::ensure!(path.is_file(), "config file {} not found", path.display());
                figment = figment.merge(Toml::file_exact(path));
            }
            None if Path::new(CONFIG_FILE).is_file() => {
                figment = figment.merge(Toml::file_exact(CONFIG_FILE));
            }
            None => {}
        }
        if sources.environment {
            figment = figment.merge(Env::prefixed("THUB_").split("__"));
            // The conventional variable wins over `log.filter`, as operators expect.
            if let Ok(filter) = std::env::var("RUST_LOG") {
                figment = figment.merge(figment::providers::Serialized::default("log.filter", filter));
            }
        }
        let mut config: Config = figment.extract().map_err(|error| {
            // figment names the key and the source ("for key `server.prot` in thub.toml").
            anyhow::anyhow!("invalid configuration: {}", one_line(&error))
        })?;
        if let Some(host) = &sources.overrides.host {
            config.server.host = host.clone();
        }
        if let Some(port) = sources.overrides.port {
            config.server.port = port;
        }
        for (id, key, value) in &sources.overrides.plugin_settings {
            config.plugins.set_key(id, key, value.clone());
        }
        config.read_secret_files()?;
        Ok(config)
    }

    /// Parses a TOML document on top of the defaults (no environment, no files).
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        Figment::new()
            .merge(Toml::string(text))
            .extract()
            .map_err(|error| anyhow::anyhow!("invalid configuration: {}", one_line(&error)))
    }

    /// The effective configuration as TOML, secrets redacted (`thub config`). The built-in
    /// plugins' sections are shown as each plugin reads them, defaults included.
    pub fn to_redacted_toml(&self) -> anyhow::Result<String> {
        let plugins = crate::plugins::effective_sections(&self.plugins)?;
        let mut document = toml::Value::try_from(self).context("cannot render the configuration")?;
        let plugins = toml::Value::try_from(plugins).context("cannot render the plugin sections")?;
        if let toml::Value::Table(table) = &mut document {
            table.insert("plugins".to_owned(), plugins);
        }
        toml::to_string_pretty(&document).context("cannot render the configuration")
    }

    /// The hub folder, absolute.
    pub fn root(&self) -> anyhow::Result<PathBuf> {
        let root = std::path::absolute(&self.server.root)
            .with_context(|| format!("cannot resolve hub folder {}", self.server.root.display()))?;
        Ok(root)
    }

    /// The WebAssembly plugins folder, absolute.
    pub fn wasm_dir(&self) -> anyhow::Result<PathBuf> {
        Ok(self.data_dir()?.join(&self.wasm.dir))
    }

    /// The data folder, absolute.
    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        Ok(self.root()?.join(&self.server.data_dir))
    }

    /// The database URL, defaulting to the SQLite file in the data folder.
    pub fn database_url(&self) -> anyhow::Result<String> {
        if !self.database.url.is_empty() {
            return Ok(self.database.url.expose().to_owned());
        }
        let file = self.data_dir()?.join("thub.db");
        Ok(format!("sqlite://{}", file.display()))
    }

    fn read_secret_files(&mut self) -> anyhow::Result<()> {
        read_secret_file(&mut self.database.url, self.database.url_file.as_deref(), "database.url")?;
        read_secret_file(&mut self.redis.url, self.redis.url_file.as_deref(), "redis.url")?;
        read_secret_file(&mut self.auth.secret, self.auth.secret_file.as_deref(), "auth.secret")?;
        read_secret_file(&mut self.metrics.token, self.metrics.token_file.as_deref(), "metrics.token")?;
        Ok(())
    }
}

/// The offline PyScript asset cache of `thub new --offline`: `$XDG_CACHE_HOME/thub/pyscript`,
/// else `~/.cache/thub/pyscript`.
pub fn pyscript_cache() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("thub").join("pyscript")
}

fn read_secret_file(target: &mut Secret, file: Option<&Path>, key: &str) -> anyhow::Result<()> {
    let Some(file) = file else { return Ok(()) };
    anyhow::ensure!(target.is_empty(), "set either {key} or {key}_file, not both");
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {key}_file {}", file.display()))?;
    *target = Secret::new(text.trim_end_matches(['\r', '\n']));
    Ok(())
}

fn one_line(error: &figment::Error) -> String {
    error.to_string().replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../config/thub.example.toml");

    /// The example with the built-in plugins' sections resolved, and the defaults likewise: the
    /// plugins, not this module, know their sections.
    fn resolved(config: &Config) -> toml::Value {
        let rendered = config.to_redacted_toml().expect("renders");
        toml::from_str(&rendered).expect("rendered config is TOML")
    }

    #[test]
    fn example_file_equals_the_defaults() {
        let example = Config::from_toml(EXAMPLE).expect("example parses");
        assert_eq!(resolved(&example), resolved(&Config::default()));
    }

    #[test]
    fn example_file_documents_every_key() {
        let defaults = resolved(&Config::default());
        let example: toml::Value = toml::from_str(EXAMPLE).expect("example is TOML");
        let mut missing = Vec::new();
        missing_keys(&defaults, &example, "", &mut missing);
        assert!(missing.is_empty(), "keys missing from config/thub.example.toml: {missing:?}");
    }

    fn missing_keys(defaults: &toml::Value, example: &toml::Value, path: &str, missing: &mut Vec<String>) {
        let toml::Value::Table(defaults) = defaults else { return };
        for (key, value) in defaults {
            let key_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            match example.get(key) {
                Some(example_value) => missing_keys(value, example_value, &key_path, missing),
                None => missing.push(key_path),
            }
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = Config::from_toml("[server]\nprot = 1\n").expect_err("unknown key");
        let message = error.to_string();
        assert!(message.contains("prot"), "{message}");
    }

    #[test]
    fn unknown_plugins_and_plugin_keys_are_named() {
        let config = Config::from_toml("[plugins.registy]\nenabled = true\n").expect("raw sections parse");
        let error = crate::plugins::effective_sections(&config.plugins).expect_err("unknown plugin");
        assert!(error.to_string().contains("unknown plugin `registy`"), "{error}");
        let config = Config::from_toml("[plugins.channels]\nqueue_lenght = 5\n").expect("raw sections parse");
        let error = crate::plugins::effective_sections(&config.plugins).expect_err("unknown key");
        assert!(error.to_string().contains("queue_lenght"), "{error}");
    }

    #[test]
    fn wrong_types_are_named() {
        let error = Config::from_toml("[server]\nport = \"eighty\"\n").expect_err("wrong type");
        assert!(error.to_string().contains("port"), "{error}");
    }

    #[test]
    fn secrets_are_redacted() {
        let mut config = Config::default();
        config.auth.secret = Secret::new("hunter2");
        config.database.url = Secret::new("postgres://user:pw@db/thub");
        let rendered = config.to_redacted_toml().expect("renders");
        assert!(!rendered.contains("hunter2"));
        assert!(!rendered.contains("pw@db"));
        assert!(rendered.contains("<redacted>"));
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn secret_files_are_read_and_exclusive() {
        let dir = std::env::temp_dir().join(format!("thub-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let secret = dir.join("secret");
        std::fs::write(&secret, "s3cret\n").expect("write");
        let mut config = Config::default();
        config.auth.secret_file = Some(secret.clone());
        config.read_secret_files().expect("reads");
        assert_eq!(config.auth.secret.expose(), "s3cret");
        // Both inline and file is ambiguous.
        config.read_secret_files().expect_err("both set");
        std::fs::remove_dir_all(dir).ok();
    }
}
