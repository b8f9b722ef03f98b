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
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self { max_readme_chars: 50_000, max_sync_endpoints: 100 }
    }
}
