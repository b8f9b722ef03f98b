//! WebSocket channels: `WS /channel/{name}` relays every text and binary frame to every other
//! member of the channel, as Tufts Hub did, without its failure modes.
//!
//! - Routes: `GET /channel/{name}` (WebSocket upgrade; `session` cookie, `Authorization:
//!   Bearer` or `?token=`; the host refuses foreign `Origin`s); `GET /api/v1/channels` (member
//!   counts on this instance).
//! - Delivery: each connection has an outbox bounded in bytes (`send_queue_bytes`, 1 MiB, as
//!   Centrifugo) and its own writer task, which writes what waits in batches. A member that
//!   would pass its budget is closed with 1013 and what waited for it is dropped at once,
//!   instead of stalling the others; a burst of small frames fits. Frames above
//!   `max_message_bytes` close the sender with 1009. Pings every `ping_seconds`; a member silent
//!   for two intervals, or unable to take a batch within one, is dropped.
//! - Several instances: with Redis configured every frame goes through the broker, so members on
//!   other instances receive it too.
//! - Config: `[plugins.channels]` `max_message_bytes`, `send_queue_bytes`, `ping_seconds`,
//!   `presence`, `max_channel_name_chars`.
//! - Events: none (message contents are never logged). Tables: none.

pub mod api;
mod config;
mod hub;

use std::sync::Arc;

use poem::EndpointExt;
use thub_plugin_sdk::{Mount, Plugin, PluginContext, PluginError};

pub use api::ChannelsApi;
pub use config::ChannelsConfig;
pub use hub::Channels;

/// The channels plugin.
pub struct ChannelsPlugin;

impl Plugin for ChannelsPlugin {
    const ID: &'static str = "channels";
    type Config = ChannelsConfig;
    type Api = ChannelsApi;

    async fn build(context: &PluginContext, config: ChannelsConfig) -> Result<Mount<ChannelsApi>, PluginError> {
        let channels = Channels::start(config, context.broker.clone()).await?;
        context.provide(channels.clone());
        let socket = api::channel_socket.data(channels.clone()).boxed();
        Ok(Mount {
            api: ChannelsApi::new(channels),
            routes: vec![("/channel/:name".to_owned(), socket)],
            fallback: None,
        })
    }
}

/// Keeps `Arc` in the public signature readable.
pub type SharedChannels = Arc<Channels>;
