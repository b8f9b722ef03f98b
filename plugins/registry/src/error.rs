//! The registry error enum and the one match from variants to HTTP.

use serde_json::json;
use thub_plugin_sdk::{ApiError, FieldError};

/// What can go wrong in the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Invalid input.
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// No such endpoint, or the caller may not see it.
    #[error("endpoint not found")]
    NotFound,
    /// No such owner.
    #[error("owner not found")]
    OwnerNotFound(String),
    /// The endpoint exists but needs a login to see.
    #[error("authentication required")]
    LoginRequired,
    /// The caller may see but not change it.
    #[error("permission denied")]
    Forbidden,
    /// Creating under an organization needs membership.
    #[error("not a member")]
    NotMember,
    /// The slug is used by another endpoint of the same owner.
    #[error("slug taken")]
    SlugTaken,
    /// A sync batch failed validation: `(index, field, error)` per problem.
    #[error("sync batch invalid")]
    SyncInvalid(Vec<(usize, String, String)>),
    /// The organizations plugin refused or failed.
    #[error(transparent)]
    Organizations(#[from] thub_organizations::OrganizationsError),
    /// Storage failed.
    #[error("database error")]
    Database(#[from] sea_orm::DbErr),
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        use RegistryError::*;
        match error {
            Validation(errors) => ApiError::validation(errors),
            NotFound => ApiError::not_found("registry.not_found", "Endpoint not found"),
            OwnerNotFound(owner) => ApiError::not_found("registry.owner_not_found", format!("'{owner}' not found")),
            LoginRequired => {
                ApiError::unauthorized("registry.login_required", "Authentication required to access this endpoint")
            }
            Forbidden => ApiError::forbidden("registry.forbidden", "Permission denied: insufficient permissions"),
            NotMember => ApiError::forbidden("registry.not_member", "Permission denied: not a member of organization"),
            SlugTaken => ApiError::bad_request("registry.slug_taken", "slug already exists - already taken"),
            SyncInvalid(problems) => {
                let errors: Vec<_> = problems
                    .into_iter()
                    .map(|(index, field, error)| json!({"index": index, "field": field, "error": error}))
                    .collect();
                ApiError::with_detail(
                    poem::http::StatusCode::BAD_REQUEST,
                    "registry.sync_invalid",
                    json!({"code": "VALIDATION_ERROR", "message": "One or more endpoints are invalid; nothing was changed", "errors": errors}),
                )
            }
            Organizations(error) => error.into(),
            Database(error) => error.into(),
        }
    }
}

impl From<RegistryError> for poem::Error {
    fn from(error: RegistryError) -> Self {
        ApiError::from(error).into()
    }
}
