//! `[plugins.proxy]` and `[plugins.proxy.apis.<name>]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The proxy plugin's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Largest request body forwarded, in bytes.
    pub max_body_bytes: usize,
    /// The upstreams, by the name used in `/proxy/{name}/…`.
    pub apis: BTreeMap<String, ApiConfig>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self { max_body_bytes: 10 << 20, apis: BTreeMap::new() }
    }
}

/// One upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// `https://api.example.com/v1`: requests go to this URL plus the rest of the path.
    pub base_url: String,
    /// Headers added to every request (they override the client's). Values may be
    /// `${env:NAME}` or `${file:/path}` so secrets stay out of this file.
    #[serde(default, serialize_with = "thub_plugin_sdk::serialize_redacted")]
    pub headers: BTreeMap<String, String>,
    /// Seconds to wait for the response to start, and between chunks of it.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Allowed methods (default: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS).
    #[serde(default)]
    pub methods: Vec<String>,
}

fn default_timeout() -> u64 {
    30
}
