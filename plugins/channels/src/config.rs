//! `[plugins.channels]`.

use serde::{Deserialize, Serialize};

/// The channels plugin's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelsConfig {
    /// Largest frame a client may send; larger closes the connection with 1009.
    pub max_message_bytes: usize,
    /// Bytes of frames waiting to be written to one member (its send budget) before it is
    /// closed with 1013, as Centrifugo's `client_queue_max_size`: counted in bytes, not frames,
    /// so a burst of small frames fits while a member that stops reading cannot hold more.
    pub send_queue_bytes: usize,
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
            send_queue_bytes: 1 << 20,
            ping_seconds: 20,
            presence: false,
            max_channel_name_chars: 128,
        }
    }
}
