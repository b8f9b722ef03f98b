//! The channel socket (`GET /channel/{name}`) and `GET /api/v1/channels`.

use std::sync::Arc;

use poem::web::websocket::{WebSocket, WebSocketConfig};
use poem::web::{Data, Path};
use poem::{IntoResponse, Request, Response, handler};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};
use thub_plugin_sdk::{ApiError, CurrentUser, require_user};

use crate::hub::Channels;

/// The read buffer of a channel socket.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// How much of a batch of outgoing frames is buffered before it is written to the socket.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

#[derive(Tags)]
enum ChannelTags {
    /// WebSocket channels.
    #[oai(rename = "channels")]
    Channels,
}

/// A channel and how many members it has on this instance.
#[derive(Debug, Object)]
pub struct ChannelCount {
    /// Channel name.
    pub name: String,
    /// Connected members on this instance.
    pub connections: u64,
}

/// `GET /api/v1/channels`.
pub struct ChannelsApi {
    channels: Arc<Channels>,
}

impl ChannelsApi {
    /// Routes over the channels.
    pub fn new(channels: Arc<Channels>) -> Self {
        Self { channels }
    }
}

#[OpenApi(prefix_path = "/api/v1/channels", tag = "ChannelTags::Channels")]
impl ChannelsApi {
    /// Open channels and their member counts on this instance (members connect with a
    /// WebSocket to `/channel/{name}`).
    #[oai(path = "/", method = "get")]
    async fn list(&self, _user: CurrentUser) -> Json<Vec<ChannelCount>> {
        Json(
            self.channels
                .counts()
                .into_iter()
                .map(|(name, connections)| ChannelCount { name, connections: connections as u64 })
                .collect(),
        )
    }
}

/// `GET /channel/{name}`: the WebSocket upgrade, for logged-in users only.
#[handler]
pub(crate) async fn channel_socket(
    request: &Request,
    Path(name): Path<String>,
    socket: WebSocket,
    channels: Data<&Arc<Channels>>,
) -> poem::Result<Response> {
    let principal = require_user(request).await?;
    let config = channels.config();
    if name.is_empty() || name.chars().count() > config.max_channel_name_chars || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "channels.invalid_name",
            format!("Channel names are 1 to {} printable characters", config.max_channel_name_chars),
        )
        .into());
    }
    let mut limits = WebSocketConfig::default();
    limits.max_message_size = Some(config.max_message_bytes);
    limits.max_frame_size = Some(config.max_message_bytes);
    // tungstenite allocates (and zero-fills) its read buffer up front: 128 KiB by default, which
    // made an idle socket cost 133 KB. Members mostly send small frames; a larger one grows the
    // buffer while it arrives.
    limits.read_buffer_size = READ_BUFFER_BYTES;
    // Frames are written in batches and flushed once per batch; past this much the batch is
    // written out early. The buffer starts empty, so idle sockets do not pay for it.
    limits.write_buffer_size = WRITE_BUFFER_BYTES;
    let channels = Arc::clone(&channels);
    let username = principal.username;
    Ok(socket.config(limits).on_upgrade(move |stream| channels.run(name, username, stream)).into_response())
}
