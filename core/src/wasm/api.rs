//! HTTP faces of the wasm host: the `/plugins/<id>/…` routes and the admin API
//! (`/api/v1/plugins`).

use std::sync::Arc;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{OpenApi, Tags};
use thub_plugin_sdk::{AdminUser, ApiError, current_request_id, optional_user};

use super::bindings::typed::thub::plugin::types::{Header, Principal, Request as PluginRequest};
use super::{PluginInfo, Refusal, WasmHost};

/// Seconds a caller is told to wait while a plugin compiles (a big one takes several).
const COMPILING_RETRY_AFTER: &str = "2";

/// Request headers a plugin never sees: credentials stay with the host.
const WITHHELD_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];

/// `/plugins/<id>` and `/plugins/<id>/<path…>`.
pub struct PluginRoutes {
    /// The host.
    pub host: Arc<WasmHost>,
}

fn refusal(id: &str, refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::NotFound => ApiError::not_found("plugins.not_found", "Not Found"),
        Refusal::Unavailable(reason) => {
            ApiError::unavailable("plugins.unavailable", format!("Plugin '{id}' is unavailable: {reason}"))
        }
        Refusal::Busy => ApiError::unavailable("plugins.busy", format!("Plugin '{id}' is busy; try again"))
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")),
        Refusal::Timeout => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "plugins.timeout", format!("Plugin '{id}' took too long"))
        }
        Refusal::Failed(reason) => {
            tracing::warn!(plugin = id, reason = %reason, "plugin call failed");
            ApiError::new(StatusCode::BAD_GATEWAY, "plugins.failed", format!("Plugin '{id}' failed"))
        }
    }
}

impl Endpoint for PluginRoutes {
    type Output = Response;

    async fn call(&self, mut request: Request) -> poem::Result<Response> {
        let raw_path = request.uri().path().to_owned();
        let rest = raw_path.strip_prefix("/plugins/").unwrap_or_default();
        let (id, path) = match rest.split_once('/') {
            Some((id, path)) => (id.to_owned(), format!("/{path}")),
            None => (rest.to_owned(), "/".to_owned()),
        };
        let Some(slot) = self.host.slot(&id) else {
            if self.host.compiling_route(&id, request.method().as_str(), &path) {
                return Err(ApiError::unavailable(
                    "plugins.compiling",
                    format!("Plugin '{id}' is starting (compiling); try again shortly"),
                )
                .with_header(header::RETRY_AFTER, HeaderValue::from_static(COMPILING_RETRY_AFTER))
                .into());
            }
            return Err(refusal(&id, Refusal::NotFound).into());
        };
        // Unknown routes are answered here, without instantiating anything.
        let public = slot
            .current()
            .services
            .manifest
            .route(request.method().as_str(), &path)
            .map(|route| route.public)
            .ok_or_else(|| refusal(&id, Refusal::NotFound))?;
        let principal = optional_user(&request).await?;
        if principal.is_none() && !public {
            return Err(ApiError::invalid_credentials().into());
        }
        let limit = self.host.config.max_request_bytes;
        let declared =
            request.headers().get(header::CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
        if declared.is_some_and(|length| length > limit) {
            return Err(ApiError::payload_too_large("Request body too large").into());
        }
        let body = request
            .take_body()
            .into_bytes_limit(limit)
            .await
            .map_err(|_| ApiError::payload_too_large("Request body too large"))?;
        let headers = request
            .headers()
            .iter()
            .filter(|(name, _)| !WITHHELD_HEADERS.contains(&name.as_str()))
            .filter_map(|(name, value)| Some(Header { name: name.to_string(), value: value.to_str().ok()?.to_owned() }))
            .collect();
        let plugin_request = PluginRequest {
            method: request.method().to_string(),
            path,
            query: request.uri().query().unwrap_or_default().to_owned(),
            headers,
            body: body.to_vec(),
            principal: Principal {
                user_id: principal.as_ref().map(|principal| principal.user_id),
                username: principal.as_ref().map(|principal| principal.username.clone()),
                role: principal.as_ref().map(|principal| principal.role.as_str().to_owned()),
            },
            request_id: current_request_id().unwrap_or_default(),
        };
        let answer =
            self.host.handle_request(&id, plugin_request, principal).await.map_err(|failure| refusal(&id, failure))?;
        Ok(plugin_response(answer))
    }
}

/// A plugin's response as an HTTP response; headers that are not valid are dropped.
pub(crate) fn plugin_response(answer: super::bindings::typed::thub::plugin::types::Response) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = Response::builder().status(status).body(answer.body);
    write_headers(&mut response, answer.headers, false);
    response.into_response()
}

/// Sets the headers an `on-response` hook returned, replacing those of the same name.
pub(crate) fn set_headers(response: &mut Response, headers: Vec<Header>) {
    write_headers(response, headers, true);
}

fn write_headers(response: &mut Response, headers: Vec<Header>, replace: bool) {
    for Header { name, value } in headers {
        let lower = name.to_ascii_lowercase();
        // The hub owns cookies and the connection.
        if matches!(lower.as_str(), "set-cookie" | "connection" | "transfer-encoding" | "content-length") {
            continue;
        }
        if let (Ok(name), Ok(value)) = (header::HeaderName::try_from(name), HeaderValue::try_from(value)) {
            if replace {
                response.headers_mut().insert(name, value);
            } else {
                response.headers_mut().append(name, value);
            }
        }
    }
}

#[derive(Tags)]
enum PluginTags {
    /// WebAssembly plugins (administrators).
    #[oai(rename = "plugins")]
    Plugins,
}

/// `/api/v1/plugins`.
pub struct PluginsApi {
    host: Option<Arc<WasmHost>>,
}

impl PluginsApi {
    /// The admin API over the host (`None` when WebAssembly plugins are switched off).
    pub fn new(host: Option<Arc<WasmHost>>) -> Self {
        Self { host }
    }

    fn host(&self) -> Result<&Arc<WasmHost>, ApiError> {
        self.host.as_ref().ok_or_else(|| {
            ApiError::unavailable("plugins.off", "WebAssembly plugins are switched off ([wasm] enabled = false)")
        })
    }

    fn known(&self, id: &str) -> Result<&Arc<WasmHost>, ApiError> {
        let host = self.host()?;
        if host.list().iter().any(|plugin| plugin.id == id) {
            Ok(host)
        } else {
            Err(ApiError::not_found("plugins.not_found", format!("No plugin '{id}'")))
        }
    }
}

#[OpenApi(prefix_path = "/api/v1/plugins", tag = "PluginTags::Plugins")]
impl PluginsApi {
    /// Every WebAssembly plugin with its state and metrics.
    #[oai(path = "/", method = "get")]
    async fn list(&self, _admin: AdminUser) -> Result<Json<Vec<PluginInfo>>, ApiError> {
        Ok(Json(self.host()?.list()))
    }

    /// Switch a plugin on (also clears a failure trip).
    #[oai(path = "/:id/enable", method = "post")]
    async fn enable(&self, _admin: AdminUser, id: Path<String>) -> Result<thub_plugin_sdk::NoContent, ApiError> {
        self.known(&id.0)?.set_enabled(&id.0, true).await?;
        crate::audit::plugin_switched(&id.0, true);
        Ok(thub_plugin_sdk::NoContent::NoContent)
    }

    /// Switch a plugin off on every instance.
    #[oai(path = "/:id/disable", method = "post")]
    async fn disable(&self, _admin: AdminUser, id: Path<String>) -> Result<thub_plugin_sdk::NoContent, ApiError> {
        self.known(&id.0)?.set_enabled(&id.0, false).await?;
        crate::audit::plugin_switched(&id.0, false);
        Ok(thub_plugin_sdk::NoContent::NoContent)
    }

    /// Load a plugin again from its folder (in-flight calls finish on the old version).
    #[oai(path = "/:id/reload", method = "post")]
    async fn reload(&self, _admin: AdminUser, id: Path<String>) -> Result<thub_plugin_sdk::NoContent, ApiError> {
        self.host()?.reload(&id.0).await.map_err(|error| {
            ApiError::bad_request("plugins.load_failed", format!("Plugin '{}' did not load: {error}", id.0))
        })?;
        Ok(thub_plugin_sdk::NoContent::NoContent)
    }
}
