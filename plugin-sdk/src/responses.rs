//! Small response and parameter types every plugin needs.

use poem_openapi::ApiResponse;

use crate::ApiError;

/// `204 No Content`.
#[derive(Debug, ApiResponse)]
pub enum NoContent {
    /// Done; nothing to return.
    #[oai(status = 204)]
    NoContent,
}

/// The default page size of `?limit=`.
pub fn default_limit() -> u64 {
    10
}

/// The default offset of `?skip=`.
pub fn default_skip() -> u64 {
    0
}

/// Checks `?limit=` (1–100) and returns `(skip, limit)`; anything else is a 422 naming the
/// parameter. Clients page with `skip=page*limit&limit=limit` and stop at a short page.
pub fn page(skip: u64, limit: u64) -> Result<(u64, u64), ApiError> {
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_field(
            &["query", "limit"],
            "Input should be between 1 and 100",
            serde_json::Value::from(limit),
        ));
    }
    Ok((skip, limit))
}
