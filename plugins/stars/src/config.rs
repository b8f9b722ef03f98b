//! `[plugins.stars]`: nothing besides `enabled` yet.

use serde::{Deserialize, Serialize};

/// The stars plugin's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StarsConfig {}
