//! Small response and parameter types every plugin needs.

use poem_openapi::ApiResponse;

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
