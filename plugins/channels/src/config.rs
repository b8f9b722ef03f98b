//! `[plugins.channels]`.

use serde::{Deserialize, Serialize};

/// The channels plugin's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelsConfig {
    /// Largest frame a client may send; larger closes the connection with 1009.
    pub max_message_bytes: usize,
    /// Frames waiting for a slow member before it is disconnected.
    pub queue_length: usize,
    /// Seconds between pings; a member silent for two intervals is dropped.
    pub ping_seconds: u64,
    /// Tell members when someone joins or leaves (`{"type":"presence",…}` text frames).
    pub presence: bool,
    /// Longest channel name.
    pub max_channel_name_chars: usize,
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 1 << 20,
            queue_length: 256,
            ping_seconds: 20,
            presence: false,
            max_channel_name_chars: 128,
        }
    }
}
