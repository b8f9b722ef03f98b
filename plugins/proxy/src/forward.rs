//! Forwarding one request: authenticate, pick the upstream, build the URL without escaping the
//! base path, filter headers both ways, and stream bodies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use poem::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, Request, Response};
use thub_plugin_sdk::{ApiError, PluginError, require_user};

use crate::config::{ApiConfig, ProxyConfig};

/// Client request headers that are forwarded; everything else stays behind.
const FORWARDED_REQUEST_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "content-encoding",
    "content-language",
    "content-type",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "range",
    "user-agent",
    "x-requested-with",
];

/// Upstream response headers that are dropped: hop-by-hop, credentials, and the ones the hub
/// sets itself.
const DROPPED_RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "set-cookie",
    "authorization",
    "www-authenticate",
    "server",
    "date",
    "alt-svc",
    "strict-transport-security",
];

const DEFAULT_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

struct Upstream {
    base: reqwest::Url,
    headers: HeaderMap,
    methods: Vec<Method>,
    timeout: Duration,
    client: reqwest::Client,
}

/// Every configured upstream.
pub(crate) struct Proxy {
    upstreams: BTreeMap<String, Upstream>,
    max_body_bytes: usize,
}

impl Proxy {
    /// Validates the configuration, expands secret references, and builds one pooled client per
    /// upstream.
    pub(crate) fn new(config: ProxyConfig) -> Result<Self, PluginError> {
        let mut upstreams = BTreeMap::new();
        for (name, api) in config.apis {
            upstreams.insert(name.clone(), upstream(&name, api)?);
        }
        Ok(Self { upstreams, max_body_bytes: config.max_body_bytes })
    }
}

fn upstream(name: &str, api: ApiConfig) -> Result<Upstream, PluginError> {
    let invalid = |message: String| PluginError::Config(format!("plugins.proxy.apis.{name}: {message}"));
    let mut base =
        reqwest::Url::parse(&api.base_url).map_err(|error| invalid(format!("base_url {}: {error}", api.base_url)))?;
    if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
        return Err(invalid(format!("base_url {} must be an http(s) URL with a host", api.base_url)));
    }
    base.set_query(None);
    base.set_fragment(None);
    let mut headers = HeaderMap::new();
    for (header_name, value) in &api.headers {
        let value =
            thub_plugin_sdk::expand_secret(value).map_err(|error| invalid(format!("header {header_name}: {error}")))?;
        let header_name = HeaderName::try_from(header_name.as_str())
            .map_err(|error| invalid(format!("header {header_name}: {error}")))?;
        let value = HeaderValue::try_from(value)
            .map_err(|_| invalid(format!("header {header_name}: not a valid header value")))?;
        headers.insert(header_name, value);
    }
    let methods = if api.methods.is_empty() {
        DEFAULT_METHODS.iter().map(|method| (*method).to_owned()).collect()
    } else {
        api.methods
    };
    let methods = methods
        .iter()
        .map(|method| {
            Method::from_bytes(method.to_uppercase().as_bytes()).map_err(|_| invalid(format!("method {method}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let timeout = Duration::from_secs(api.timeout_seconds.max(1));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .map_err(|error| invalid(format!("cannot build a client: {error}")))?;
    Ok(Upstream { base, headers, methods, timeout, client })
}

/// The `/proxy/{api}/{path}` endpoint.
pub(crate) struct ProxyEndpoint {
    pub(crate) proxy: Arc<Proxy>,
}

fn proxy_error(status: StatusCode, code: &'static str, detail: String) -> ApiError {
    ApiError::new(status, code, detail)
}

/// Splits `/proxy/{api}/{rest}` (raw, still percent-encoded) into the API name and the rest.
fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/proxy/")?;
    Some(match rest.split_once('/') {
        Some((api, rest)) => (api, rest),
        None => (rest, ""),
    })
}

/// Whether a raw path has a `.` or `..` segment, spelled plainly or percent-encoded.
fn has_dot_segment(rest: &str) -> bool {
    rest.split('/').any(|segment| {
        let lower = segment.to_ascii_lowercase().replace("%2e", ".");
        lower == "." || lower == ".." || lower.contains("%2f") || lower.contains("%5c") || segment.contains('\\')
    })
}

impl Endpoint for ProxyEndpoint {
    type Output = Response;

    async fn call(&self, mut request: Request) -> poem::Result<Response> {
        let principal = require_user(&request).await?;
        let raw_path = request.uri().path().to_owned();
        let (api, rest) = split_path(&raw_path).ok_or_else(|| ApiError::not_found("route.not_found", "Not Found"))?;
        let upstream = self.proxy.upstreams.get(api).ok_or_else(|| {
            proxy_error(StatusCode::NOT_FOUND, "proxy.unknown_api", format!("API '{api}' not configured"))
        })?;
        if !upstream.methods.contains(request.method()) {
            return Err(proxy_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "proxy.method_not_allowed",
                format!("{} is not allowed for API '{api}'", request.method()),
            )
            .into());
        }
        if has_dot_segment(rest) {
            return Err(ApiError::bad_request(
                "proxy.bad_path",
                "Proxy paths may not contain '.', '..' or encoded slashes",
            )
            .into());
        }
        let declared =
            request.headers().get(header::CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.proxy.max_body_bytes as u64) {
            return Err(ApiError::payload_too_large("Request body too large").into());
        }

        let mut url = upstream.base.clone();
        let base_path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base_path}/{rest}"));
        url.set_query(request.uri().query());

        let mut headers = HeaderMap::new();
        for name in FORWARDED_REQUEST_HEADERS {
            for value in request.headers().get_all(*name) {
                headers.append(HeaderName::from_static(name), value.clone());
            }
        }
        for (name, value) in &upstream.headers {
            headers.insert(name.clone(), value.clone());
        }
        let method = request.method().clone();
        let limit = self.proxy.max_body_bytes;
        let mut seen = 0usize;
        let body = request.take_body().into_bytes_stream().map_err(std::io::Error::other).and_then(move |chunk| {
            seen += chunk.len();
            let result =
                if seen > limit { Err(std::io::Error::other("request body exceeds the limit")) } else { Ok(chunk) };
            futures_util::future::ready(result)
        });
        let has_body =
            declared.is_some_and(|length| length > 0) || request.headers().contains_key(header::TRANSFER_ENCODING);

        let mut outgoing = upstream.client.request(method.clone(), url).headers(headers);
        if has_body {
            outgoing = outgoing.body(reqwest::Body::wrap_stream(body));
        }
        let started = std::time::Instant::now();
        let sent = tokio::time::timeout(upstream.timeout, outgoing.send()).await;
        metrics::histogram!("thub_proxy_upstream_duration_seconds", "api" => api.to_owned())
            .record(started.elapsed().as_secs_f64());
        if !matches!(sent, Ok(Ok(_))) {
            metrics::counter!("thub_proxy_upstream_errors_total", "api" => api.to_owned()).increment(1);
        }
        let answer = match sent {
            Err(_) => {
                return Err(proxy_error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "proxy.timeout",
                    format!("Proxy request to '{api}' timed out"),
                )
                .into());
            }
            Ok(Err(error)) if error.is_timeout() => {
                return Err(proxy_error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "proxy.timeout",
                    format!("Proxy request to '{api}' timed out"),
                )
                .into());
            }
            Ok(Err(error)) => {
                if is_body_too_large(&error) {
                    return Err(ApiError::payload_too_large("Request body too large").into());
                }
                tracing::warn!(api_name = api, error = %error.without_url(), "proxy upstream failed");
                return Err(proxy_error(
                    StatusCode::BAD_GATEWAY,
                    "proxy.upstream_failed",
                    format!("Proxy request failed: upstream '{api}' is unreachable"),
                )
                .into());
            }
            Ok(Ok(answer)) => answer,
        };
        // One line per proxied request, beside the access log's: who used which API.
        tracing::info!(
            api_name = api,
            path = rest,
            method = %method,
            username = %principal.username,
            status_code = answer.status().as_u16(),
            "proxy_response"
        );

        let mut response = Response::builder().status(answer.status()).finish();
        for (name, value) in answer.headers() {
            if DROPPED_RESPONSE_HEADERS.contains(&name.as_str()) {
                continue;
            }
            if name == header::LOCATION {
                if let Some(rewritten) = rewrite_location(value, &upstream.base, api) {
                    response.headers_mut().append(name.clone(), rewritten);
                }
                continue;
            }
            response.headers_mut().append(name.clone(), value.clone());
        }
        let stream = answer.bytes_stream().map_err(std::io::Error::other);
        response.set_body(poem::Body::from_bytes_stream(stream));
        Ok(response)
    }
}

fn is_body_too_large(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.to_string().contains("request body exceeds the limit") {
            return true;
        }
        source = current.source();
    }
    false
}

/// Rewrites a `Location` pointing inside the upstream base to the proxy path; any other
/// location becomes absolute.
fn rewrite_location(value: &HeaderValue, base: &reqwest::Url, api: &str) -> Option<HeaderValue> {
    let location = value.to_str().ok()?;
    let Ok(absolute) = base.join(location) else { return Some(value.clone()) };
    let base_path = base.path().trim_end_matches('/');
    let same_origin = absolute.origin() == base.origin();
    let inside = absolute.path() == base_path || absolute.path().starts_with(&format!("{base_path}/"));
    if !(same_origin && inside) {
        // Outside the proxied base: point the client at the upstream itself (without our
        // headers), never at an unrelated path of the hub.
        return HeaderValue::from_str(absolute.as_str()).ok();
    }
    let rest = absolute.path()[base_path.len()..].trim_start_matches('/');
    let mut rewritten = format!("/proxy/{api}/{rest}");
    if let Some(query) = absolute.query() {
        rewritten.push('?');
        rewritten.push_str(query);
    }
    HeaderValue::from_str(&rewritten).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_found_however_spelled() {
        for hostile in ["..", "a/../b", "%2e%2E/x", "a/.%2e/b", ".", "a/%2F..", "x%5c..", "a\\b"] {
            assert!(has_dot_segment(hostile), "{hostile}");
        }
        for fine in ["", "a/b", "a..b/c", "v1/chat.completions", "%20x"] {
            assert!(!has_dot_segment(fine), "{fine}");
        }
    }

    #[test]
    fn locations_inside_the_base_are_rewritten() {
        let base = reqwest::Url::parse("https://api.example.com/v1").unwrap();
        let rewrite = |location: &str| {
            rewrite_location(&HeaderValue::from_str(location).unwrap(), &base, "ex")
                .map(|value| value.to_str().unwrap().to_owned())
        };
        assert_eq!(rewrite("https://api.example.com/v1/jobs/7?x=1").as_deref(), Some("/proxy/ex/jobs/7?x=1"));
        assert_eq!(rewrite("/v1/jobs/8").as_deref(), Some("/proxy/ex/jobs/8"));
        assert_eq!(rewrite("https://elsewhere.example/v1/x").as_deref(), Some("https://elsewhere.example/v1/x"));
        assert_eq!(rewrite("/v2/other").as_deref(), Some("https://api.example.com/v2/other"));
    }
}
