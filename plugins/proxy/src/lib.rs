//! The API proxy: `/proxy/{api}/{path}` forwards a logged-in user's request to a configured
//! upstream and adds its secret headers, which the browser never sees.
//!
//! - Routes: every method on `/proxy/{api}` and `/proxy/{api}/{path…}`.
//! - Only configured upstreams are contacted. `.` and `..` segments are refused, so a request
//!   cannot leave the base path. The query string goes through untouched (repeated keys too).
//! - Request headers: an allow-list (content type, accept, language, caching and range headers)
//!   from the client, never its `Cookie` or `Authorization`; configured headers override.
//!   Response headers: hop-by-hop and sensitive ones (`Set-Cookie`, `WWW-Authenticate`, …) are
//!   dropped; a `Location` inside the upstream base is rewritten to the proxy path.
//! - Bodies stream both ways (server-sent events pass through as they come), capped at
//!   `max_body_bytes` on the way in. Each API has its own pooled client and timeout (until the
//!   response starts, and between chunks). Failures: 404 unknown API, 405 method not allowed
//!   for that API, 502 upstream unreachable, 504 upstream too slow.
//! - Config: `[plugins.proxy]` `max_body_bytes`; `[plugins.proxy.apis.<name>]` `base_url`,
//!   `headers` (values may be `${env:NAME}` or `${file:PATH}`), `timeout_seconds`, `methods`.
//! - Logs one `proxy_response` line per answered request (API, path, method, user, status;
//!   failures a warning instead) — never headers, query strings or bodies.

mod config;
mod forward;

use std::sync::Arc;

use poem::EndpointExt;
use thub_plugin_sdk::{Mount, Plugin, PluginContext, PluginError};

pub use config::{ApiConfig, ProxyConfig};

/// The proxy plugin.
pub struct ProxyPlugin;

impl Plugin for ProxyPlugin {
    const ID: &'static str = "proxy";
    type Config = ProxyConfig;
    type Api = ();

    async fn build(_context: &PluginContext, config: ProxyConfig) -> Result<Mount<()>, PluginError> {
        let proxy = Arc::new(forward::Proxy::new(config)?);
        let endpoint = forward::ProxyEndpoint { proxy }.map_to_response().boxed();
        let endpoint: Arc<poem::endpoint::BoxEndpoint<'static>> = Arc::new(endpoint);
        let route = |endpoint: &Arc<poem::endpoint::BoxEndpoint<'static>>| {
            let endpoint = endpoint.clone();
            poem::endpoint::make(move |request| {
                let endpoint = endpoint.clone();
                async move { poem::Endpoint::call(endpoint.as_ref(), request).await }
            })
            .boxed()
        };
        Ok(Mount {
            api: (),
            routes: vec![
                ("/proxy/:api".to_owned(), route(&endpoint)),
                ("/proxy/:api/*path".to_owned(), route(&endpoint)),
            ],
            fallback: None,
        })
    }
}
