//! The life of one call, shared by every hook: availability, the concurrency cap, a fresh
//! store, the deadline, metrics and the failure circuit. Routes and request middleware are
//! called through it here.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use super::bindings::typed;
use super::host::HostState;
use super::runtime::{self, CallFailure, Hook, Output, Prepared};
use super::slots::{Loaded, Slot};
use super::{Refusal, WasmHost, api};

impl WasmHost {
    /// Calls a plugin's route for `caller`. `path` is the part after `/plugins/<id>`.
    pub async fn handle_request(
        &self,
        id: &str,
        request: typed::thub::plugin::types::Request,
        caller: Option<thub_plugin_sdk::Principal>,
    ) -> Result<typed::thub::plugin::types::Response, Refusal> {
        let slot = self.slot(id).ok_or(Refusal::NotFound)?;
        let deadline = Duration::from_millis(self.config.request_timeout_ms);
        let request_id = request.request_id.clone();
        let outcome = self
            .call(&slot, request_id, caller, deadline, move |loaded, store| {
                Box::pin(async move { loaded.prepared.invoke(store, Hook::Request(request)).await })
            })
            .await?;
        let response = match outcome {
            Ok(Output::Response(response)) => response,
            Ok(Output::Done | Output::Verdict(_) | Output::Headers(_)) => {
                return Err(Refusal::Failed("the plugin gave no response".to_owned()));
            }
            Err(message) => {
                slot.errors.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::Failed(format!("the plugin returned an error: {message}")));
            }
        };
        if response.body.len() > self.config.max_response_bytes {
            slot.errors.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Failed(format!(
                "the response is larger than {} bytes",
                self.config.max_response_bytes
            )));
        }
        Ok(response)
    }

    /// Whether any plugin is a granted middleware (so requests need the detour).
    pub fn has_middleware(&self) -> bool {
        !self.middleware_ids().is_empty()
    }

    /// Whether any plugin wants `on-response` (so responses need the detour).
    pub fn has_response_middleware(&self) -> bool {
        !self.response_middleware_ids().is_empty()
    }

    fn middleware_ids(&self) -> Vec<String> {
        self.ordered_middleware(|manifest| manifest.middleware)
    }

    fn response_middleware_ids(&self) -> Vec<String> {
        self.ordered_middleware(|manifest| manifest.on_response)
    }

    /// The granted middleware plugins (those whose manifest `wants` the hook) in the order they
    /// run: those in `wasm.middleware_order` first, in that order, then the others by id. A
    /// fail-closed one still compiling counts.
    fn ordered_middleware(&self, wants: impl Fn(&super::manifest::Manifest) -> bool) -> Vec<String> {
        let mut ids: Vec<String> = self
            .all_slots()
            .into_iter()
            .filter(|(_, slot)| {
                let loaded = slot.current();
                wants(&loaded.services.manifest) && loaded.services.granted("middleware")
            })
            .map(|(id, _)| id)
            .collect();
        for manifest in self.compiling_manifests() {
            let grant = self.grant(&manifest.id);
            let granted = grant.capabilities.iter().any(|capability| capability == "middleware");
            if wants(&manifest) && granted && grant.fail_closed && !ids.contains(&manifest.id) {
                ids.push(manifest.id.clone());
            }
        }
        let rank =
            |id: &String| self.config.middleware_order.iter().position(|ordered| ordered == id).unwrap_or(usize::MAX);
        ids.sort_by(|left, right| rank(left).cmp(&rank(right)).then_with(|| left.cmp(right)));
        ids
    }

    /// Runs middleware plugins on `request`, in the operator's order: the first that answers
    /// ends the request. A middleware that fails, times out or is not ready lets the request
    /// through (fail-open), unless its grant says `fail_closed`: then the request is refused.
    pub async fn middleware(
        &self,
        request: &typed::thub::plugin::types::Request,
    ) -> Option<typed::thub::plugin::types::Response> {
        for id in self.middleware_ids() {
            let fail_closed = self.grant(&id).fail_closed;
            let Some(slot) = self.slot(&id) else {
                // Still compiling: only a fail-closed middleware is listed then.
                return Some(middleware_refusal(&id, "is starting"));
            };
            if matches!(slot.current().prepared, Prepared::Raw(_)) {
                continue;
            }
            let request = request.clone();
            let deadline = Duration::from_millis(self.config.middleware_timeout_ms);
            let verdict = self
                .call(&slot, request.request_id.clone(), None, deadline, move |loaded, store| {
                    Box::pin(async move { loaded.prepared.invoke(store, Hook::Middleware(request)).await })
                })
                .await;
            match verdict {
                Ok(Ok(Output::Verdict(typed::thub::plugin::types::Verdict::Respond(response)))) => {
                    return Some(response);
                }
                Ok(Ok(_)) => {}
                Ok(Err(message)) => {
                    tracing::warn!(plugin = %id, error = %message, "middleware returned an error; request let through")
                }
                Err(refusal) if fail_closed => {
                    tracing::warn!(plugin = %id, refusal = ?refusal, "fail-closed middleware failed; request refused");
                    return Some(middleware_refusal(&id, "failed"));
                }
                Err(refusal) => {
                    tracing::warn!(plugin = %id, refusal = ?refusal, "middleware failed; request let through")
                }
            }
        }
        None
    }

    /// Runs `on-response` plugins on `response` (status and headers; the body is not shown), in
    /// the operator's order; returns the headers they set. Failures set nothing (fail-open),
    /// unless the grant says `fail_closed`: then the answer is the refusal to send instead.
    pub async fn after_response(
        &self,
        request: &typed::thub::plugin::types::Request,
        response: &typed::thub::plugin::types::Response,
    ) -> Result<Vec<typed::thub::plugin::types::Header>, typed::thub::plugin::types::Response> {
        let mut set = Vec::new();
        for id in self.response_middleware_ids() {
            let fail_closed = self.grant(&id).fail_closed;
            let Some(slot) = self.slot(&id) else {
                return Err(middleware_refusal(&id, "is starting"));
            };
            let (request, response) = (request.clone(), response.clone());
            let deadline = Duration::from_millis(self.config.middleware_timeout_ms);
            let outcome = self
                .call(&slot, request.request_id.clone(), None, deadline, move |loaded, store| {
                    Box::pin(async move { loaded.prepared.invoke(store, Hook::AfterResponse(request, response)).await })
                })
                .await;
            match outcome {
                Ok(Ok(Output::Headers(headers))) => set.extend(headers),
                Ok(Ok(_)) => {}
                Ok(Err(message)) => {
                    tracing::warn!(plugin = %id, error = %message, "response middleware returned an error")
                }
                Err(refusal) if fail_closed => {
                    tracing::warn!(plugin = %id, refusal = ?refusal, "fail-closed response middleware failed; response refused");
                    return Err(middleware_refusal(&id, "failed"));
                }
                Err(refusal) => tracing::warn!(plugin = %id, refusal = ?refusal, "response middleware failed"),
            }
        }
        Ok(set)
    }

    /// The instance lifecycle every hook shares: availability, the concurrency cap, a fresh
    /// store, the deadline, metrics, and the failure circuit.
    pub(super) async fn call<T>(
        &self,
        slot: &Arc<Slot>,
        request_id: String,
        caller: Option<thub_plugin_sdk::Principal>,
        deadline: Duration,
        run: impl for<'a> FnOnce(
            Arc<Loaded>,
            &'a mut wasmtime::Store<HostState>,
        ) -> std::pin::Pin<Box<dyn Future<Output = wasmtime::Result<T>> + Send + 'a>>,
    ) -> Result<T, Refusal> {
        if let Some(problem) = slot.problem() {
            return Err(Refusal::Unavailable(problem));
        }
        let _permit = slot.permits.clone().try_acquire_owned().map_err(|_| Refusal::Busy)?;
        let loaded = slot.current();
        let id = loaded.services.id.clone();
        let memory = usize::try_from(self.config.memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        let mut store = runtime::store(&self.engine, loaded.services.clone(), request_id.clone(), caller, memory);
        let started = Instant::now();
        let outcome = runtime::with_deadline(deadline, run(loaded, &mut store)).await;
        store.data().flush_output();
        drop(store);
        slot.calls.fetch_add(1, Ordering::Relaxed);
        slot.busy_micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        metrics::counter!("thub_wasm_calls_total", "plugin" => id.to_string()).increment(1);
        metrics::histogram!("thub_wasm_call_duration_seconds", "plugin" => id.to_string())
            .record(started.elapsed().as_secs_f64());
        if outcome.is_err() {
            metrics::counter!("thub_wasm_errors_total", "plugin" => id.to_string()).increment(1);
        }
        match outcome {
            Ok(value) => {
                slot.failures.store(0, Ordering::Relaxed);
                Ok(value)
            }
            Err(failure) => {
                slot.errors.fetch_add(1, Ordering::Relaxed);
                let failures = slot.failures.fetch_add(1, Ordering::Relaxed) + 1;
                let reason = match &failure {
                    CallFailure::Timeout => format!("ran past its {} ms deadline", deadline.as_millis()),
                    CallFailure::Trap(message) => message.clone(),
                };
                tracing::error!(plugin = %id, request_id = %request_id, failures, reason = %reason, "wasm plugin call failed");
                if failures >= self.config.failure_threshold {
                    let disabled = format!("disabled after {failures} consecutive failures; last: {reason}");
                    *slot.tripped.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(disabled.clone());
                    self.events.emit("plugin.disabled", json!({"plugin_id": id.to_string(), "reason": disabled}));
                    tracing::error!(plugin = %id, "wasm plugin disabled after repeated failures");
                }
                Err(match failure {
                    CallFailure::Timeout => Refusal::Timeout,
                    CallFailure::Trap(message) => Refusal::Failed(message),
                })
            }
        }
    }
}

/// The answer when a fail-closed middleware cannot decide: 503, in the hub's error shape.
fn middleware_refusal(id: &str, what: &str) -> typed::thub::plugin::types::Response {
    let body = json!({
        "detail": format!("Request refused: the middleware plugin '{id}' {what}; try again"),
        "code": "plugins.middleware_unavailable",
    });
    typed::thub::plugin::types::Response {
        status: 503,
        headers: vec![
            typed::thub::plugin::types::Header {
                name: "content-type".to_owned(),
                value: "application/json".to_owned(),
            },
            typed::thub::plugin::types::Header { name: "retry-after".to_owned(), value: "2".to_owned() },
        ],
        body: body.to_string().into_bytes(),
    }
}

/// Wraps `inner` so granted middleware plugins see every request (except the plugin routes and
/// the plugin admin API) before routing (`on-request`), and its response's status and headers
/// after (`on-response`, which may set headers). Headers only; fail-open unless a grant says
/// otherwise.
pub fn middleware<E: poem::Endpoint + 'static>(
    inner: E,
    host: Option<Arc<WasmHost>>,
) -> impl poem::Endpoint<Output = poem::Response> {
    use poem::{EndpointExt, IntoResponse};
    inner.around(move |inner, request| {
        let host = host.clone();
        async move {
            let path = request.uri().path();
            let exempt = path.starts_with("/plugins/") || path.starts_with("/api/v1/plugins");
            let Some(host) = host.filter(|host| !exempt && (host.has_middleware() || host.has_response_middleware()))
            else {
                return inner.call(request).await.map(IntoResponse::into_response);
            };
            let seen = typed::thub::plugin::types::Request {
                method: request.method().to_string(),
                path: path.to_owned(),
                query: request.uri().query().unwrap_or_default().to_owned(),
                headers: visible_headers(request.headers()),
                body: Vec::new(),
                principal: typed::thub::plugin::types::Principal { user_id: None, username: None, role: None },
                request_id: thub_plugin_sdk::current_request_id().unwrap_or_default(),
            };
            if host.has_middleware()
                && let Some(answer) = host.middleware(&seen).await
            {
                return Ok(api::plugin_response(answer));
            }
            let mut response = inner.call(request).await.map(IntoResponse::into_response)?;
            if host.has_response_middleware() {
                let shown = typed::thub::plugin::types::Response {
                    status: response.status().as_u16(),
                    headers: visible_headers(response.headers()),
                    body: Vec::new(),
                };
                match host.after_response(&seen, &shown).await {
                    Ok(headers) => api::set_headers(&mut response, headers),
                    Err(refusal) => return Ok(api::plugin_response(refusal)),
                }
            }
            Ok(response)
        }
    })
}

/// Headers a middleware may see: never credentials or cookies.
fn visible_headers(headers: &poem::http::HeaderMap) -> Vec<typed::thub::plugin::types::Header> {
    headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "authorization" | "cookie" | "proxy-authorization" | "set-cookie"))
        .filter_map(|(name, value)| {
            Some(typed::thub::plugin::types::Header { name: name.to_string(), value: value.to_str().ok()?.to_owned() })
        })
        .collect()
}
