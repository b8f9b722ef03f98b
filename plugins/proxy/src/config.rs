//! `[plugins.proxy]` and `[plugins.proxy.apis.<name>]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};

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
    #[serde(default, serialize_with = "redacted")]
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

/// Literal header values may be secrets: `thub config` shows only `${…}` references.
fn redacted<S: Serializer>(headers: &BTreeMap<String, String>, serializer: S) -> Result<S::Ok, S::Error> {
    let shown: BTreeMap<&String, &str> = headers
        .iter()
        .map(|(name, value)| {
            (name, if value.starts_with("${") && value.ends_with('}') { value.as_str() } else { "<redacted>" })
        })
        .collect();
    shown.serialize(serializer)
}

/// Expands `${env:NAME}` and `${file:PATH}` in a header value.
pub(crate) fn expand(value: &str) -> Result<String, String> {
    let Some(reference) = value.strip_prefix("${").and_then(|rest| rest.strip_suffix('}')) else {
        return Ok(value.to_owned());
    };
    if let Some(name) = reference.strip_prefix("env:") {
        return std::env::var(name).map_err(|_| format!("environment variable {name} is not set"));
    }
    if let Some(path) = reference.strip_prefix("file:") {
        return std::fs::read_to_string(path)
            .map(|text| text.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|error| format!("cannot read {path}: {error}"));
    }
    Err(format!("unknown reference ${{{reference}}}: use ${{env:NAME}} or ${{file:PATH}}"))
}
