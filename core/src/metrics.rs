//! Metrics: recorded through the `metrics` facade everywhere (core and plugins), rendered in the
//! Prometheus text format by `metrics-exporter-prometheus` at `GET /metrics` when
//! `[metrics] enabled` (optionally behind `Authorization: Bearer <[metrics] token>`).
//!
//! Series: `thub_http_requests_total` and `thub_http_request_duration_seconds` by method, route
//! template and status; `thub_db_pool_connections` (in use, idle, max) and
//! `thub_db_pool_acquire_seconds` sampled at each scrape; `thub_redis_errors_total`;
//! `thub_websocket_connections` and `thub_websocket_messages_total` (channels);
//! `thub_proxy_upstream_duration_seconds` and `thub_proxy_upstream_errors_total` (proxy);
//! `thub_wasm_calls_total`, `thub_wasm_errors_total` and `thub_wasm_call_duration_seconds`
//! (WebAssembly plugins, by plugin); `thub_wasm_outbox_pending` and `thub_wasm_outbox_dead`
//! sampled at each scrape. The recorder is process-wide; without `[metrics] enabled` none is
//! installed and recording costs nothing.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use poem::http::{StatusCode, header};
use poem::{Endpoint, Request, Response};
use sea_orm::{ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait, QueryFilter};
use subtle::ConstantTimeEq;
use thub_plugin_sdk::ApiError;

/// Latency buckets in seconds, from a cache hit to a slow upstream.
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Installs the process-wide Prometheus recorder (once) and returns its handle.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = builder.set_buckets(BUCKETS).unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            handle
        })
        .clone()
}

/// One Redis command failed.
pub fn redis_error() {
    metrics::counter!("thub_redis_errors_total").increment(1);
}

/// Records one HTTP request under its route template.
pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let labels = [("method", method.to_owned()), ("route", route.to_owned()), ("status", status.to_string())];
    metrics::counter!("thub_http_requests_total", &labels).increment(1);
    metrics::histogram!("thub_http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
}

/// The route template a request matched (`/api/v1/users/:id`), filled in by [`templated`]
/// while routing and read by the access log and metrics at the edge.
#[derive(Debug, Clone, Default)]
pub struct RouteSlot(pub Arc<OnceLock<Arc<str>>>);

impl RouteSlot {
    /// The template, or `unmatched`.
    pub fn template(&self) -> &str {
        self.0.get().map_or("unmatched", |template| template)
    }
}

/// Wraps a routed endpoint so the route template it was matched under reaches the edge.
pub fn templated<E: Endpoint + 'static>(inner: E) -> impl Endpoint<Output = E::Output> {
    Templated(inner)
}

struct Templated<E>(E);

impl<E: Endpoint> Endpoint for Templated<E> {
    type Output = E::Output;

    async fn call(&self, request: Request) -> poem::Result<Self::Output> {
        if let (Some(slot), Some(pattern)) = (request.data::<RouteSlot>(), request.data::<poem::PathPattern>()) {
            let _ = slot.0.set(pattern.0.clone());
        }
        self.0.call(request).await
    }
}

/// `GET /metrics`.
pub struct MetricsEndpoint {
    handle: PrometheusHandle,
    token: String,
    db: DatabaseConnection,
}

impl MetricsEndpoint {
    /// The endpoint; an empty `token` leaves it open (bind it to a private network then).
    pub fn new(handle: PrometheusHandle, token: String, db: DatabaseConnection) -> Self {
        Self { handle, token, db }
    }

    fn authorized(&self, request: &Request) -> bool {
        if self.token.is_empty() {
            return true;
        }
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .unwrap_or_default();
        bool::from(presented.as_bytes().ct_eq(self.token.as_bytes()))
    }

    async fn sample(&self) {
        let (in_use, idle, max) = match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size() as usize - pool.num_idle(), pool.num_idle(), pool.options().get_max_connections())
            }
            _ => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size() as usize - pool.num_idle(), pool.num_idle(), pool.options().get_max_connections())
            }
        };
        metrics::gauge!("thub_db_pool_connections", "state" => "in_use").set(in_use as f64);
        metrics::gauge!("thub_db_pool_connections", "state" => "idle").set(idle as f64);
        metrics::gauge!("thub_db_pool_connections", "state" => "max").set(f64::from(max));
        // How long a request waits for a connection right now: the scrape takes one itself.
        let started = Instant::now();
        let acquired = match self.db.get_database_backend() {
            DbBackend::Postgres => self.db.get_postgres_connection_pool().acquire().await.is_ok(),
            _ => self.db.get_sqlite_connection_pool().acquire().await.is_ok(),
        };
        if acquired {
            metrics::histogram!("thub_db_pool_acquire_seconds").record(started.elapsed().as_secs_f64());
        }
        use crate::wasm::entity::outbox;
        let pending = outbox::Entity::find().filter(outbox::Column::Dead.eq(false)).count(&self.db).await;
        let dead = outbox::Entity::find().filter(outbox::Column::Dead.eq(true)).count(&self.db).await;
        if let (Ok(pending), Ok(dead)) = (pending, dead) {
            metrics::gauge!("thub_wasm_outbox_pending").set(pending as f64);
            metrics::gauge!("thub_wasm_outbox_dead").set(dead as f64);
        }
    }
}

impl Endpoint for MetricsEndpoint {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        if !self.authorized(&request) {
            return Err(ApiError::unauthorized("metrics.unauthorized", "A valid metrics token is required").into());
        }
        self.sample().await;
        self.handle.run_upkeep();
        Ok(Response::builder()
            .status(StatusCode::OK)
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(self.handle.render()))
    }
}
