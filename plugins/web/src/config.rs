//! `[plugins.web]`: the web UI's settings.

use serde::{Deserialize, Serialize};

/// `[plugins.web]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Endpoints per page on explore and owner pages.
    pub page_size: u64,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self { page_size: 24 }
    }
}
