//! Channel membership and fan-out. Delivery never waits on a member: frames go into each
//! member's bounded queue with `try_send`, and a member whose queue is full is dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use poem::web::websocket::{CloseCode, Message, WebSocketStream};
use thub_plugin_sdk::{Broker, PluginError};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::config::ChannelsConfig;

/// Broker topics of channel traffic: `channel:<name>`.
const TOPIC_PREFIX: &str = "channel:";

/// A frame on its way to members; cheap to clone for fan-out.
#[derive(Debug, Clone)]
enum Frame {
    Text(Arc<str>),
    Binary(Arc<[u8]>),
}

/// Why a connection is being closed, set by whoever decides it.
type Closing = Arc<Mutex<Option<(CloseCode, &'static str)>>>;

struct Member {
    queue: mpsc::Sender<Frame>,
    closing: Closing,
}

/// Every channel on this instance.
pub struct Channels {
    config: ChannelsConfig,
    instance: Uuid,
    members: Mutex<HashMap<String, HashMap<u64, Member>>>,
    next_id: AtomicU64,
    broker: Option<Arc<dyn Broker>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Channels {
    /// Channels on this instance; with a broker, also subscribed to the other instances' traffic.
    pub async fn start(config: ChannelsConfig, broker: Option<Arc<dyn Broker>>) -> Result<Arc<Self>, PluginError> {
        let channels = Arc::new(Self {
            config,
            instance: Uuid::new_v4(),
            members: Mutex::default(),
            next_id: AtomicU64::new(1),
            broker: broker.clone(),
        });
        if let Some(broker) = broker {
            let mut incoming = broker
                .subscribe(TOPIC_PREFIX)
                .await
                .map_err(|error| PluginError::Other(format!("channel fan-out: {error}")))?;
            let weak = Arc::downgrade(&channels);
            tokio::spawn(async move {
                while let Some((topic, payload)) = incoming.recv().await {
                    let Some(channels) = weak.upgrade() else { return };
                    if let (Some(channel), Some((origin, sender, frame))) =
                        (topic.strip_prefix(TOPIC_PREFIX), decode(&payload))
                    {
                        let except = (origin == channels.instance).then_some(sender);
                        channels.deliver(channel, except, frame);
                    }
                }
            });
        }
        Ok(channels)
    }

    /// The plugin's settings.
    pub fn config(&self) -> &ChannelsConfig {
        &self.config
    }

    /// Members per channel on this instance, by name.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let members = lock(&self.members);
        let mut counts: Vec<(String, usize)> =
            members.iter().map(|(name, members)| (name.clone(), members.len())).collect();
        counts.sort();
        counts
    }

    fn join(&self, channel: &str) -> (u64, mpsc::Receiver<Frame>, Closing) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, receiver) = mpsc::channel(self.config.queue_length.max(1));
        let closing = Closing::default();
        lock(&self.members)
            .entry(channel.to_owned())
            .or_default()
            .insert(id, Member { queue, closing: closing.clone() });
        (id, receiver, closing)
    }

    fn leave(&self, channel: &str, id: u64) {
        let mut members = lock(&self.members);
        if let Some(channel_members) = members.get_mut(channel) {
            channel_members.remove(&id);
            if channel_members.is_empty() {
                members.remove(channel);
            }
        }
    }

    /// Hands `frame` to every local member of `channel` but `except`, dropping members whose
    /// queue is full.
    fn deliver(&self, channel: &str, except: Option<u64>, frame: Frame) {
        let mut members = lock(&self.members);
        let Some(channel_members) = members.get_mut(channel) else { return };
        channel_members.retain(|id, member| {
            if Some(*id) == except {
                return true;
            }
            match member.queue.try_send(frame.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    *lock(&member.closing) = Some((CloseCode::Again, "too slow: messages were piling up"));
                    tracing::warn!(channel, member = id, "slow channel member disconnected");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        if channel_members.is_empty() {
            members.remove(channel);
        }
    }

    /// Sends `frame` from member `from` to the channel: through the broker when there is one
    /// (it comes back to this instance too), directly otherwise.
    async fn publish(&self, channel: &str, from: u64, frame: Frame) {
        if let Some(broker) = &self.broker {
            let payload = encode(self.instance, from, &frame);
            match broker.publish(&format!("{TOPIC_PREFIX}{channel}"), payload).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::error!(channel, error = %error, "channel fan-out failed; delivering locally only")
                }
            }
        }
        self.deliver(channel, Some(from), frame);
    }

    /// Serves one member until it leaves, is dropped, or goes silent.
    pub async fn run(self: Arc<Self>, channel: String, username: String, socket: WebSocketStream) {
        let (mut sink, mut stream) = socket.split();
        let (id, mut queue, closing) = self.join(&channel);
        tracing::info!(channel = %channel, username = %username, "websocket_connect");
        metrics::gauge!("thub_websocket_connections").increment(1.0);
        if self.config.presence {
            self.publish(&channel, id, presence(&channel, &username, "join")).await;
        }
        let ping = Duration::from_secs(self.config.ping_seconds.max(1));
        let writer_closing = closing.clone();
        let writer = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(ping);
            ticker.tick().await;
            loop {
                let message = tokio::select! {
                    frame = queue.recv() => match frame {
                        Some(Frame::Text(text)) => Message::Text(text.to_string()),
                        Some(Frame::Binary(bytes)) => Message::Binary(bytes.to_vec()),
                        None => {
                            let (code, reason) = lock(&writer_closing).take().unwrap_or((CloseCode::Normal, ""));
                            let _ = tokio::time::timeout(ping, sink.send(Message::Close(Some((code, reason.to_owned()))))).await;
                            return;
                        }
                    },
                    _ = ticker.tick() => Message::Ping(Vec::new()),
                };
                if !matches!(message, Message::Ping(_)) {
                    metrics::counter!("thub_websocket_messages_total", "direction" => "out").increment(1);
                }
                // A member that cannot take a frame within a ping interval is gone.
                if !matches!(tokio::time::timeout(ping, sink.send(message)).await, Ok(Ok(()))) {
                    return;
                }
            }
        });
        loop {
            let next = match tokio::time::timeout(ping * 2, stream.next()).await {
                Err(_) | Ok(None) => break,
                Ok(Some(next)) => next,
            };
            match next {
                Ok(Message::Text(text)) => {
                    metrics::counter!("thub_websocket_messages_total", "direction" => "in").increment(1);
                    self.publish(&channel, id, Frame::Text(text.into())).await
                }
                Ok(Message::Binary(bytes)) => {
                    metrics::counter!("thub_websocket_messages_total", "direction" => "in").increment(1);
                    self.publish(&channel, id, Frame::Binary(bytes.into())).await
                }
                Ok(Message::Close(_)) => break,
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Err(error) => {
                    if error.to_string().contains("too long") {
                        *lock(&closing) = Some((CloseCode::Size, "message too big"));
                    }
                    break;
                }
            }
        }
        self.leave(&channel, id);
        let _ = writer.await;
        if self.config.presence {
            self.publish(&channel, id, presence(&channel, &username, "leave")).await;
        }
        metrics::gauge!("thub_websocket_connections").decrement(1.0);
        tracing::info!(channel = %channel, username = %username, "websocket_disconnect");
    }
}

fn presence(channel: &str, username: &str, event: &str) -> Frame {
    let text =
        serde_json::json!({"type": "presence", "event": event, "user": username, "channel": channel}).to_string();
    Frame::Text(text.into())
}

/// `kind (1) | instance (16) | member (8, little-endian) | payload`.
fn encode(instance: Uuid, member: u64, frame: &Frame) -> Vec<u8> {
    let (kind, payload): (u8, &[u8]) = match frame {
        Frame::Text(text) => (0, text.as_bytes()),
        Frame::Binary(bytes) => (1, bytes),
    };
    let mut encoded = Vec::with_capacity(25 + payload.len());
    encoded.push(kind);
    encoded.extend_from_slice(instance.as_bytes());
    encoded.extend_from_slice(&member.to_le_bytes());
    encoded.extend_from_slice(payload);
    encoded
}

fn decode(encoded: &[u8]) -> Option<(Uuid, u64, Frame)> {
    let kind = *encoded.first()?;
    let instance = Uuid::from_slice(encoded.get(1..17)?).ok()?;
    let member = u64::from_le_bytes(encoded.get(17..25)?.try_into().ok()?);
    let payload = encoded.get(25..)?;
    let frame = match kind {
        0 => Frame::Text(std::str::from_utf8(payload).ok()?.into()),
        1 => Frame::Binary(payload.into()),
        _ => return None,
    };
    Some((instance, member, frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip() {
        let instance = Uuid::new_v4();
        let (origin, member, frame) = decode(&encode(instance, 42, &Frame::Binary(vec![0, 1, 255].into()))).unwrap();
        assert_eq!((origin, member), (instance, 42));
        assert!(matches!(frame, Frame::Binary(bytes) if bytes.as_ref() == [0, 1, 255]));
        assert!(decode(&[9; 30]).is_none());
        assert!(decode(&[0; 5]).is_none());
    }

    #[tokio::test]
    async fn a_full_queue_drops_that_member_only() {
        let config = ChannelsConfig { queue_length: 2, ..ChannelsConfig::default() };
        let channels = Channels::start(config, None).await.unwrap();
        let (slow, _slow_queue, slow_closing) = channels.join("room");
        let (fast, mut fast_queue, _) = channels.join("room");
        let (sender, _, _) = channels.join("room");
        for index in 0..3 {
            channels.deliver("room", Some(sender), Frame::Text(format!("m{index}").into()));
            // The fast member keeps reading.
            assert!(fast_queue.recv().await.is_some());
        }
        assert_eq!(channels.counts(), vec![("room".to_owned(), 2)], "the slow member was dropped");
        assert_eq!(lock(&slow_closing).map(|(code, _)| code), Some(CloseCode::Again));
        let _ = (slow, fast);
    }
}
