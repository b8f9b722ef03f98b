//! What a plugin instance may call: log, key-value storage, config, outbound HTTP, events (and,
//! from API 0.2, users and the registry: `host_v2.rs`). Each
//! call checks the operator's grant; nothing is granted by default. One [`HostState`] per
//! instance, i.e. per call.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use thub_plugin_sdk::{Clock, EventBus};
use tokio::sync::Semaphore;
use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::typed;
use super::entity::plugin_kv;
use super::manifest::Manifest;
use crate::config::WasmGrant;

/// Log lines one call may write; more are dropped (and counted).
const MAX_LOG_LINES: u32 = 100;
/// Longest log line kept.
const MAX_LOG_LINE: usize = 4096;
/// Key-value limits.
const MAX_KEY_BYTES: usize = 256;
const MAX_VALUE_BYTES: usize = 64 * 1024;
const MAX_STORE_BYTES: i64 = 10 * 1024 * 1024;
/// Outbound HTTP limits.
const MAX_HTTP_RESPONSE_BYTES: usize = 5 * 1024 * 1024;
const MAX_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The hub's services behind the `users` and `registry` interfaces (absent when the registry
/// plugin is switched off).
#[derive(Clone, Default)]
pub struct HostDirectory {
    /// Accounts, for `users`.
    pub accounts: Option<Arc<dyn thub_plugin_sdk::AccountDirectory>>,
    /// The registry plugin's service, for `registry`.
    pub registry: Option<Arc<thub_registry::RegistryService>>,
}

/// What every instance of one plugin shares.
pub(crate) struct PluginServices {
    pub(crate) directory: HostDirectory,
    pub(crate) id: Arc<str>,
    pub(crate) manifest: Manifest,
    pub(crate) grant: WasmGrant,
    pub(crate) db: DatabaseConnection,
    pub(crate) events: EventBus,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) http_permits: Semaphore,
}

impl PluginServices {
    pub(crate) fn granted(&self, capability: &str) -> bool {
        self.grant.capabilities.iter().any(|granted| granted == capability)
    }
}

/// The store data of one instance.
pub(crate) struct HostState {
    pub(crate) services: Arc<PluginServices>,
    pub(crate) request_id: String,
    /// Who the call is for (a route's signed-in caller), for what `registry` shows.
    pub(crate) caller: Option<thub_plugin_sdk::Principal>,
    pub(crate) limits: StoreLimits,
    wasi: WasiCtx,
    table: ResourceTable,
    output: MemoryOutputPipe,
    log_lines: u32,
}

impl HostState {
    /// A fresh state for one call: memory capped, WASI with no files, environment, arguments or
    /// network; stdout and stderr captured into the plugin's log.
    pub(crate) fn new(
        services: Arc<PluginServices>,
        request_id: String,
        caller: Option<thub_plugin_sdk::Principal>,
        memory_bytes: usize,
    ) -> Self {
        let output = MemoryOutputPipe::new(64 * 1024);
        let wasi = WasiCtxBuilder::new()
            .stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_bytes)
            .instances(32)
            .memories(8)
            .tables(32)
            .table_elements(10_000)
            .build();
        Self { services, request_id, caller, limits, wasi, table: ResourceTable::new(), output, log_lines: 0 }
    }

    /// Writes what the guest printed to stdout/stderr into the log, then forgets it.
    pub(crate) fn flush_output(&self) {
        let printed = self.output.contents();
        if printed.is_empty() {
            return;
        }
        for line in String::from_utf8_lossy(&printed).lines().take(MAX_LOG_LINES as usize) {
            tracing::info!(target: "thub::plugin", plugin = %self.services.id, request_id = %self.request_id, stream = "stdout", "{}", truncate(line));
        }
    }

    fn write_log(&mut self, level: &str, message: &str) {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES {
            if self.log_lines == MAX_LOG_LINES + 1 {
                tracing::warn!(target: "thub::plugin", plugin = %self.services.id, request_id = %self.request_id, "log limit reached; further lines of this call dropped");
            }
            return;
        }
        let message = truncate(message);
        let (plugin, request_id) = (&self.services.id, &self.request_id);
        match level {
            "error" => tracing::error!(target: "thub::plugin", plugin = %plugin, request_id = %request_id, "{message}"),
            "warn" => tracing::warn!(target: "thub::plugin", plugin = %plugin, request_id = %request_id, "{message}"),
            "info" => tracing::info!(target: "thub::plugin", plugin = %plugin, request_id = %request_id, "{message}"),
            _ => tracing::debug!(target: "thub::plugin", plugin = %plugin, request_id = %request_id, "{message}"),
        }
    }
}

fn truncate(text: &str) -> &str {
    match text.char_indices().nth(MAX_LOG_LINE) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

// ----- log -----

impl typed::thub::plugin::types::Host for HostState {}

impl typed::thub::plugin::log::Host for HostState {
    async fn log(&mut self, level: typed::thub::plugin::types::Level, message: String) {
        use typed::thub::plugin::types::Level;
        let level = match level {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug | Level::Trace => "debug",
        };
        self.write_log(level, &message);
    }
}

// ----- key-value -----

impl typed::thub::plugin::kv::Host for HostState {
    async fn get(&mut self, key: String) -> Option<Vec<u8>> {
        if !self.services.granted("kv") {
            return None;
        }
        plugin_kv::Entity::find_by_id((self.services.id.to_string(), key))
            .one(&self.services.db)
            .await
            .ok()
            .flatten()
            .map(|row| row.value)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        if !self.services.granted("kv") {
            return Err("capability kv is not granted".to_owned());
        }
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(format!("keys are 1 to {MAX_KEY_BYTES} bytes"));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!("values are at most {MAX_VALUE_BYTES} bytes"));
        }
        let services = &self.services;
        let used = stored_bytes(&services.db, &services.id).await.map_err(|error| error.to_string())?;
        if used + value.len() as i64 > MAX_STORE_BYTES {
            return Err(format!("the plugin's store is full ({MAX_STORE_BYTES} bytes)"));
        }
        plugin_kv::Entity::insert(plugin_kv::ActiveModel {
            plugin_id: Set(services.id.to_string()),
            key: Set(key),
            value: Set(value),
            updated_at: Set(services.clock.now()),
        })
        .on_conflict(
            OnConflict::columns([plugin_kv::Column::PluginId, plugin_kv::Column::Key])
                .update_columns([plugin_kv::Column::Value, plugin_kv::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(&services.db)
        .await
        .map(|_| ())
        .map_err(|error| {
            tracing::error!(plugin = %services.id, error = %error, "plugin kv write failed");
            "storage failed".to_owned()
        })
    }

    async fn delete(&mut self, key: String) {
        if self.services.granted("kv") {
            let _ = plugin_kv::Entity::delete_by_id((self.services.id.to_string(), key)).exec(&self.services.db).await;
        }
    }

    async fn list_keys(&mut self, prefix: String, limit: u32) -> Vec<String> {
        if !self.services.granted("kv") {
            return Vec::new();
        }
        let rows = plugin_kv::Entity::find()
            .filter(plugin_kv::Column::PluginId.eq(self.services.id.to_string()))
            .filter(plugin_kv::Column::Key.starts_with(&prefix))
            .order_by_asc(plugin_kv::Column::Key)
            .limit(u64::from(limit.min(1000)))
            .all(&self.services.db)
            .await
            .unwrap_or_default();
        rows.into_iter().map(|row| row.key).collect()
    }
}

async fn stored_bytes(db: &DatabaseConnection, plugin: &str) -> Result<i64, sea_orm::DbErr> {
    use sea_orm::sea_query::Expr;
    // LENGTH counts bytes of a blob on SQLite and of a bytea on PostgreSQL; the cast keeps
    // PostgreSQL's SUM (numeric) an integer.
    let total: Option<i64> = plugin_kv::Entity::find()
        .select_only()
        .expr(Expr::cust("CAST(COALESCE(SUM(LENGTH(value)), 0) AS BIGINT)"))
        .filter(plugin_kv::Column::PluginId.eq(plugin))
        .into_tuple()
        .one(db)
        .await?;
    Ok(total.unwrap_or(0))
}

// ----- config -----

impl typed::thub::plugin::config::Host for HostState {
    async fn get(&mut self, key: String) -> Option<String> {
        let services = &self.services;
        if !services.granted("config") || !services.manifest.config_keys.contains(&key) {
            return None;
        }
        services.grant.config.get(&key).cloned()
    }
}

// ----- events -----

impl typed::thub::plugin::hub::Host for HostState {
    async fn emit(&mut self, kind: String, data_json: String) -> Result<(), String> {
        let services = &self.services;
        if !services.granted("emit") {
            return Err("capability emit is not granted".to_owned());
        }
        let kind_ok = !kind.is_empty()
            && kind.len() <= 64
            && kind
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'.' | b'_' | b'-'));
        if !kind_ok {
            return Err("event kinds are 1 to 64 lowercase letters, digits, '.', '_' or '-'".to_owned());
        }
        if data_json.len() > MAX_VALUE_BYTES {
            return Err("event data is at most 64 KiB".to_owned());
        }
        let data: serde_json::Value =
            serde_json::from_str(&data_json).map_err(|error| format!("event data is not JSON: {error}"))?;
        if !data.is_object() {
            return Err("event data must be a JSON object".to_owned());
        }
        services.events.emit(&format!("plugin.{}.{kind}", services.id), data);
        Ok(())
    }
}

// ----- outbound HTTP -----

impl typed::thub::plugin::http::Host for HostState {
    async fn fetch(
        &mut self,
        request: typed::thub::plugin::http::Outgoing,
    ) -> Result<typed::thub::plugin::http::Incoming, String> {
        let services = self.services.clone();
        let outcome = fetch(&services, request).await;
        if let Err(reason) = &outcome {
            tracing::warn!(target: "thub::plugin", plugin = %services.id, request_id = %self.request_id, reason = %reason, "outbound request refused or failed");
        }
        outcome
    }
}

async fn fetch(
    services: &PluginServices,
    request: typed::thub::plugin::http::Outgoing,
) -> Result<typed::thub::plugin::http::Incoming, String> {
    if !services.granted("http") {
        return Err("capability http is not granted".to_owned());
    }
    let url = reqwest::Url::parse(&request.url).map_err(|error| format!("bad URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("only http and https URLs".to_owned());
    }
    let host = url.host_str().ok_or("the URL has no host")?.to_lowercase();
    if !services.grant.http_hosts.iter().any(|allowed| allowed.eq_ignore_ascii_case(&host)) {
        return Err(format!("host {host} is not granted"));
    }
    let port = url.port_or_known_default().ok_or("no port")?;
    // Resolve once, check every address, and connect to exactly those: a DNS answer that
    // changes between the check and the connection cannot redirect us inward.
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|error| format!("cannot resolve {host}: {error}"))?
        .collect();
    if addresses.is_empty() {
        return Err(format!("{host} has no addresses"));
    }
    if !services.grant.allow_private_network && addresses.iter().any(|address| is_internal(address.ip())) {
        return Err(format!("{host} resolves to a private or loopback address"));
    }
    let _permit = tokio::time::timeout(MAX_HTTP_TIMEOUT, services.http_permits.acquire())
        .await
        .map_err(|_| "too many outbound requests at once".to_owned())?
        .map_err(|_| "outbound requests are closed".to_owned())?;
    let timeout =
        Duration::from_millis(u64::from(request.timeout_ms)).clamp(Duration::from_millis(1), MAX_HTTP_TIMEOUT);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve_to_addrs(&host, &addresses)
        .timeout(timeout)
        .build()
        .map_err(|error| format!("client: {error}"))?;
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|_| "bad method".to_owned())?;
    let mut outgoing = client.request(method, url);
    for header in request.headers {
        outgoing = outgoing.header(header.name, header.value);
    }
    let mut answer =
        outgoing.body(request.body).send().await.map_err(|error| format!("request failed: {}", error.without_url()))?;
    let status = answer.status().as_u16();
    let headers = answer
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some(typed::thub::plugin::types::Header { name: name.to_string(), value: value.to_str().ok()?.to_owned() })
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) =
        answer.chunk().await.map_err(|error| format!("reading the response: {}", error.without_url()))?
    {
        if body.len() + chunk.len() > MAX_HTTP_RESPONSE_BYTES {
            return Err(format!("response larger than {MAX_HTTP_RESPONSE_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(typed::thub::plugin::http::Incoming { status, headers, body })
}

/// Loopback, private, link-local, shared, unspecified, multicast and documentation ranges.
pub(crate) fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [first, second, ..] = ip.octets();
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_multicast()
                || ip.is_broadcast()
                || ip.is_documentation()
                || (first == 100 && (64..128).contains(&second))
                || first == 0
        }
        IpAddr::V6(ip) => {
            if let Some(mapped) = ip.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(mapped));
            }
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_internal;

    #[test]
    fn internal_addresses_are_recognised() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }
}
