//! `/api/v1/endpoints/{id}/star`, `/unstar` and `/starred`: parse → authorize → call the service → map
//! the error.

use std::sync::Arc;

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use thub_plugin_sdk::{ApiError, CurrentUser, NoContent};

use crate::service::StarsService;

#[derive(Tags)]
enum StarsTags {
    /// Stars on endpoints.
    #[oai(rename = "stars")]
    Stars,
}

/// A star's state after the call.
#[derive(Debug, Object)]
pub struct StarState {
    /// Whether the caller has starred the endpoint now.
    pub starred: bool,
    /// Whether this call changed it (false when it was already starred).
    pub changed: bool,
}

/// `GET …/starred`.
#[derive(Debug, Object)]
pub struct Starred {
    /// Whether the caller has starred the endpoint.
    pub starred: bool,
}

#[derive(Debug, ApiResponse)]
enum StarResponse {
    /// Starred (now or already).
    #[oai(status = 201)]
    Created(Json<StarState>),
}

/// The stars routes.
pub struct StarsApi {
    service: Arc<StarsService>,
}

impl StarsApi {
    /// Routes over the service.
    pub fn new(service: Arc<StarsService>) -> Self {
        Self { service }
    }
}

#[OpenApi(prefix_path = "/api/v1/endpoints", tag = "StarsTags::Stars")]
impl StarsApi {
    /// Star an endpoint the caller may see. Starring twice is harmless.
    #[oai(path = "/:endpoint_id/star", method = "post")]
    async fn star(&self, user: CurrentUser, endpoint_id: Path<i64>) -> Result<StarResponse, ApiError> {
        let changed = self.service.star(&user.0, endpoint_id.0).await?;
        Ok(StarResponse::Created(Json(StarState { starred: true, changed })))
    }

    /// Remove the caller's star. Unstarring what is not starred is harmless.
    #[oai(path = "/:endpoint_id/star", method = "delete")]
    async fn unstar(&self, user: CurrentUser, endpoint_id: Path<i64>) -> Result<NoContent, ApiError> {
        self.service.unstar(&user.0, endpoint_id.0).await?;
        Ok(NoContent::NoContent)
    }

    /// Star an endpoint, as the official TypeScript SDK and web app send it (no body); answers
    /// 200 with the state after the call.
    #[oai(path = "/:endpoint_id/star", method = "patch")]
    async fn star_by_patch(&self, user: CurrentUser, endpoint_id: Path<i64>) -> Result<Json<StarState>, ApiError> {
        let changed = self.service.star(&user.0, endpoint_id.0).await?;
        Ok(Json(StarState { starred: true, changed }))
    }

    /// Remove the caller's star, as the official TypeScript SDK and web app send it (no body);
    /// answers 200 with the state after the call.
    #[oai(path = "/:endpoint_id/unstar", method = "patch")]
    async fn unstar_by_patch(&self, user: CurrentUser, endpoint_id: Path<i64>) -> Result<Json<StarState>, ApiError> {
        let changed = self.service.unstar(&user.0, endpoint_id.0).await?;
        Ok(Json(StarState { starred: false, changed }))
    }

    /// Whether the caller has starred an endpoint they may see.
    #[oai(path = "/:endpoint_id/starred", method = "get")]
    async fn starred(&self, user: CurrentUser, endpoint_id: Path<i64>) -> Result<Json<Starred>, ApiError> {
        Ok(Json(Starred { starred: self.service.starred(&user.0, endpoint_id.0).await? }))
    }
}
