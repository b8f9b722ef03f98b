//! `[plugins.site]`.

use serde::{Deserialize, Serialize};

/// The site plugin's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    /// Watch the folder and tell open pages to reload on change (`thub serve --reload`).
    pub reload: bool,
    /// More names never to serve, besides the built-in list: exact file names (`notes.txt`) or
    /// extensions (`*.bak`), matched case-insensitively at any depth.
    pub deny: Vec<String>,
}
