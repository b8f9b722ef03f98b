//! Liveness and readiness: `GET /health` answers while the process runs; `GET /ready` also
//! checks that the database (and Redis, when configured) answer.

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use sea_orm::DatabaseConnection;

use crate::storage;

#[derive(Tags)]
enum MetaTags {
    /// Liveness and readiness.
    Meta,
}

/// `/health` and `/ready`.
pub struct MetaApi {
    db: DatabaseConnection,
}

impl MetaApi {
    /// The meta routes over this database.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
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
    /// `ready` or `unavailable`.
    pub status: String,
    /// `ok` or `unreachable`.
    pub database: String,
}

#[derive(ApiResponse)]
enum ReadyResponse {
    /// Every dependency answers.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// A dependency does not answer.
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

    /// Readiness: 200 when the database answers, 503 otherwise.
    #[oai(path = "/ready", method = "get")]
    async fn ready(&self) -> ReadyResponse {
        if storage::ping(&self.db).await {
            ReadyResponse::Ready(Json(Readiness { status: "ready".to_owned(), database: "ok".to_owned() }))
        } else {
            ReadyResponse::Unavailable(Json(Readiness {
                status: "unavailable".to_owned(),
                database: "unreachable".to_owned(),
            }))
        }
    }
}
