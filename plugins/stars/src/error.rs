//! The stars error enum and the one match from variants to HTTP.

use thub_plugin_sdk::ApiError;
use thub_registry::RegistryError;

/// What can go wrong with stars.
#[derive(Debug, thiserror::Error)]
pub enum StarsError {
    /// The endpoint does not exist, or the caller may not see it (the registry's rule).
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Storage failed.
    #[error("database error")]
    Database(#[from] sea_orm::DbErr),
}

impl From<StarsError> for ApiError {
    fn from(error: StarsError) -> Self {
        match error {
            StarsError::Registry(error) => error.into(),
            StarsError::Database(error) => error.into(),
        }
    }
}
