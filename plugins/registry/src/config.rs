//! `[plugins.registry]`.

use serde::{Deserialize, Serialize};

/// The registry plugin's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Longest accepted README, in characters.
    pub max_readme_chars: usize,
    /// Most endpoints one `POST /api/v1/endpoints/sync` may carry.
    pub max_sync_endpoints: usize,
    /// How long an anonymous public listing (browse, trending, owner pages) and what discovery
    /// finds (explore, search) are served from memory, and how long the search index goes
    /// without comparing itself with the database: the longest a change made on another
    /// instance takes to show here. 0: no caching, and the index compares at every search.
    pub listing_cache_seconds: u64,
    /// Most bytes each of the four read caches (answers, discoveries, owners, endpoints by
    /// slug) holds. 0: nothing is cached.
    pub listing_cache_bytes: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            max_readme_chars: 50_000,
            max_sync_endpoints: 100,
            listing_cache_seconds: 2,
            listing_cache_bytes: 8 * 1024 * 1024,
        }
    }
}
