//! Liveness and readiness: `GET /health` answers while the process runs; `GET /ready` also
//! checks that the database (and Redis, when configured) answer.

use std::sync::Arc;

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use sea_orm::DatabaseConnection;

use crate::shared::Shared;
use crate::storage;

#[derive(Tags)]
enum MetaTags {
    /// Liveness and readiness.
    Meta,
}

/// `/health` and `/ready`.
pub struct MetaApi {
    db: DatabaseConnection,
    shared: Arc<Shared>,
}

impl MetaApi {
    /// The meta routes over this database and shared state.
    pub fn new(db: DatabaseConnection, shared: Arc<Shared>) -> Self {
        Self { db, shared }
    }
}

/// `GET /health`.
#[derive(Debug, Object)]
pub struct Health {
    /// Always `healthy` while the process serves requests.
    pub status: String,
    /// thub version.
    pub version: String,
}

/// `GET /ready`.
#[derive(Debug, Object)]
pub struct Readiness {
    /// `ready`, `degraded` (Redis does not answer: served on this instance's state) or
    /// `unavailable` (the database does not answer).
    pub status: String,
    /// `ok` or `unreachable`.
    pub database: String,
    /// `ok`, `unreachable`, or `disabled` when no Redis is configured.
    pub redis: String,
}

#[derive(ApiResponse)]
enum ReadyResponse {
    /// The database answers (Redis may not: requests are then served on this instance's state).
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// The database does not answer.
    #[oai(status = 503)]
    Unavailable(Json<Readiness>),
}

#[OpenApi(tag = "MetaTags::Meta")]
impl MetaApi {
    /// Liveness: answers as long as the process serves requests. Checks nothing else.
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> Json<Health> {
        Json(Health { status: "healthy".to_owned(), version: env!("CARGO_PKG_VERSION").to_owned() })
    }

    /// Readiness: 200 when the database answers, 503 otherwise. A Redis that does not answer
    /// shows as `degraded`, not as unready: taking every instance out of the balancer because
    /// a cache is away would turn a slower hub into no hub.
    #[oai(path = "/ready", method = "get")]
    async fn ready(&self) -> ReadyResponse {
        let database = storage::ping(&self.db).await;
        let redis = self.shared.ping().await;
        let status = match (database, redis) {
            (false, _) => "unavailable",
            (true, Some(false)) => "degraded",
            (true, _) => "ready",
        };
        let readiness = Readiness {
            status: status.to_owned(),
            database: if database { "ok" } else { "unreachable" }.to_owned(),
            redis: match redis {
                None => "disabled",
                Some(true) => "ok",
                Some(false) => "unreachable",
            }
            .to_owned(),
        };
        if database { ReadyResponse::Ready(Json(readiness)) } else { ReadyResponse::Unavailable(Json(readiness)) }
    }
}
