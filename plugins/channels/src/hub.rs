//! Channel membership and fan-out. Delivery never waits on a member: frames go into each
//! member's outbox, bounded in bytes (`send_queue_bytes`), and a member whose outbox would pass
//! its budget is closed with 1013, its waiting frames dropped at once.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{FutureExt, SinkExt, StreamExt};
use poem::web::websocket::{CloseCode, Message, WebSocketStream};
use thub_plugin_sdk::{Broker, PluginError};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::config::ChannelsConfig;

/// Broker topics of channel traffic: `channel:<name>`.
const TOPIC_PREFIX: &str = "channel:";

/// What a waiting frame costs a member's budget beyond its payload: its queue slot and its
/// header on the wire. It keeps a flood of empty frames bounded too.
const FRAME_OVERHEAD: usize = 32;

/// How long a member closed by the hub has to answer the close frame before its socket is
/// dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// A frame on its way to members; cheap to clone for fan-out.
#[derive(Debug, Clone)]
enum Frame {
    Text(Arc<str>),
    Binary(Arc<[u8]>),
}

impl Frame {
    /// What the frame costs a member's send budget.
    fn cost(&self) -> usize {
        FRAME_OVERHEAD
            + match self {
                Frame::Text(text) => text.len(),
                Frame::Binary(bytes) => bytes.len(),
            }
    }

    fn message(&self) -> Message {
        match self {
            Frame::Text(text) => Message::Text(text.to_string()),
            Frame::Binary(bytes) => Message::Binary(bytes.to_vec()),
        }
    }
}

/// Why the hub closes a connection.
type Close = (CloseCode, &'static str);

/// One member's frames waiting to be written, shared by the fan-out (which appends) and the
/// member's writer task (which takes them in batches).
#[derive(Default)]
struct Outbox {
    pending: Mutex<Pending>,
    /// Wakes the writer: frames arrived in an empty outbox, or the connection must close.
    wake: Notify,
}

/// What became of a frame handed to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pushed {
    Queued,
    /// The member was over its budget and is being closed (1013).
    OverBudget,
    /// The member is already closing.
    Closing,
}

#[derive(Default)]
struct Pending {
    frames: VecDeque<Frame>,
    /// The cost of the frames queued here and of the batch the writer is writing.
    bytes: usize,
    /// Set once the connection must close: the writer sends this close frame and stops.
    close: Option<Close>,
}

impl Outbox {
    /// Queues `frame` unless the member would then have more than `budget` bytes waiting (a
    /// frame always fits an empty outbox, so any frame the hub accepts can be delivered). Over
    /// budget the member is told to close with 1013 and what waits is dropped now.
    fn push(&self, frame: Frame, budget: usize) -> Pushed {
        let mut pending = lock(&self.pending);
        if pending.close.is_some() {
            return Pushed::Closing;
        }
        let cost = frame.cost();
        if pending.bytes > 0 && pending.bytes + cost > budget {
            pending.frames = VecDeque::new();
            pending.bytes = 0;
            pending.close = Some((CloseCode::Again, "too slow: more than the send budget was waiting"));
            drop(pending);
            self.wake.notify_one();
            return Pushed::OverBudget;
        }
        let was_empty = pending.frames.is_empty();
        pending.frames.push_back(frame);
        pending.bytes += cost;
        drop(pending);
        if was_empty {
            self.wake.notify_one();
        }
        Pushed::Queued
    }

    /// Tells the writer to send `close` and stop (the first reason given wins); what waits is
    /// dropped.
    fn close(&self, close: Close) {
        let mut pending = lock(&self.pending);
        pending.close.get_or_insert(close);
        pending.frames = VecDeque::new();
        drop(pending);
        self.wake.notify_one();
    }

    /// The frames waiting now (they stay counted until [`Outbox::written`]), or the close to send.
    fn take(&self) -> Result<VecDeque<Frame>, Close> {
        let mut pending = lock(&self.pending);
        match pending.close {
            Some(close) => Err(close),
            None => Ok(std::mem::take(&mut pending.frames)),
        }
    }

    /// A batch of `bytes` left the outbox for the socket.
    fn written(&self, bytes: usize) {
        let mut pending = lock(&self.pending);
        pending.bytes = pending.bytes.saturating_sub(bytes);
    }

    /// Resolves once the connection must close.
    async fn closing(&self) -> Close {
        loop {
            if let Some(close) = lock(&self.pending).close {
                return close;
            }
            self.wake.notified().await;
        }
    }
}

/// Every channel on this instance.
pub struct Channels {
    config: ChannelsConfig,
    instance: Uuid,
    members: Mutex<HashMap<String, HashMap<u64, Arc<Outbox>>>>,
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

    fn join(&self, channel: &str) -> (u64, Arc<Outbox>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let outbox = Arc::new(Outbox::default());
        lock(&self.members).entry(channel.to_owned()).or_default().insert(id, outbox.clone());
        (id, outbox)
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

    /// Hands `frame` to every local member of `channel` but `except`, dropping members over
    /// their send budget.
    fn deliver(&self, channel: &str, except: Option<u64>, frame: Frame) {
        let budget = self.config.send_queue_bytes;
        let mut members = lock(&self.members);
        let Some(channel_members) = members.get_mut(channel) else { return };
        channel_members.retain(|id, outbox| {
            if Some(*id) == except {
                return true;
            }
            match outbox.push(frame.clone(), budget) {
                Pushed::Queued => true,
                Pushed::OverBudget => {
                    metrics::counter!("thub_websocket_slow_disconnects_total").increment(1);
                    tracing::warn!(
                        channel,
                        member = id,
                        budget,
                        "slow channel member disconnected (over its send budget)"
                    );
                    false
                }
                Pushed::Closing => false,
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
        let (sink, mut stream) = socket.split();
        let (id, outbox) = self.join(&channel);
        tracing::info!(channel = %channel, username = %username, "websocket_connect");
        metrics::gauge!("thub_websocket_connections").increment(1.0);
        if self.config.presence {
            self.publish(&channel, id, presence(&channel, &username, "join")).await;
        }
        let ping = Duration::from_secs(self.config.ping_seconds.max(1));
        let mut writer = tokio::spawn(write(outbox.clone(), sink, ping));
        let mut close = (CloseCode::Normal, "");
        let writer_finished = loop {
            let next = tokio::select! {
                next = tokio::time::timeout(ping * 2, stream.next()) => match next {
                    Err(_) | Ok(None) => break false,
                    Ok(Some(next)) => next,
                },
                _ = &mut writer => break true,
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
                Ok(Message::Close(_)) => break false,
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Err(error) => {
                    if error.to_string().contains("too long") {
                        close = (CloseCode::Size, "message too big");
                    }
                    break false;
                }
            }
        };
        self.leave(&channel, id);
        outbox.close(close);
        if writer_finished {
            // The hub closed the connection (over budget, or the member stopped taking frames):
            // give the client a moment to answer the close frame, so it is read before the socket
            // goes.
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                while let Some(Ok(message)) = stream.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        } else {
            let _ = writer.await;
        }
        if self.config.presence {
            self.publish(&channel, id, presence(&channel, &username, "leave")).await;
        }
        metrics::gauge!("thub_websocket_connections").decrement(1.0);
        tracing::info!(channel = %channel, username = %username, "websocket_disconnect");
    }
}

/// A member's writer: takes what waits in `outbox` in batches and writes each batch with one
/// flush (small frames share system calls), pings every `ping`, and ends with the close frame
/// the outbox asks for. A member that cannot take a batch within `ping` is gone.
async fn write(outbox: Arc<Outbox>, mut sink: SplitSink<WebSocketStream, Message>, ping: Duration) {
    let mut ticker = tokio::time::interval(ping);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        let frames = match outbox.take() {
            Ok(frames) => frames,
            Err((code, reason)) => {
                let _ = tokio::time::timeout(ping, sink.send(Message::Close(Some((code, reason.to_owned()))))).await;
                return;
            }
        };
        if frames.is_empty() {
            tokio::select! {
                () = outbox.wake.notified() => {}
                _ = ticker.tick() => {
                    if !matches!(tokio::time::timeout(ping, sink.send(Message::Ping(Vec::new()))).await, Ok(Ok(()))) {
                        return;
                    }
                }
            }
            continue;
        }
        let bytes: usize = frames.iter().map(Frame::cost).sum();
        let count = frames.len() as u64;
        // Under steady traffic the writer is never idle: pings ride along with the frames.
        let ping_due = ticker.tick().now_or_never().is_some();
        let batch = async {
            if ping_due {
                sink.feed(Message::Ping(Vec::new())).await?;
            }
            for frame in &frames {
                sink.feed(frame.message()).await?;
            }
            sink.flush().await
        };
        tokio::select! {
            written = tokio::time::timeout(ping, batch) => {
                if !matches!(written, Ok(Ok(()))) {
                    return;
                }
                metrics::counter!("thub_websocket_messages_total", "direction" => "out").increment(count);
                outbox.written(bytes);
            }
            // Over budget while a batch was stuck: the next round sends the close frame.
            _ = outbox.closing() => {}
        }
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
    async fn a_member_over_its_byte_budget_is_dropped_and_its_frames_freed() {
        // A budget of ten 68-byte frames (36 bytes of text plus the per-frame overhead).
        let frame = |index: usize| Frame::Text(format!("{index:036}").into());
        let config = ChannelsConfig { send_queue_bytes: 10 * frame(0).cost(), ..ChannelsConfig::default() };
        let channels = Channels::start(config, None).await.unwrap();
        let (_, slow) = channels.join("room");
        let (_, fast) = channels.join("room");
        let (sender, _) = channels.join("room");
        for index in 0..10 {
            channels.deliver("room", Some(sender), frame(index));
        }
        // The fast member's writer takes its frames and writes them; the slow one's never does.
        let batch = fast.take().unwrap();
        assert_eq!(batch.len(), 10);
        fast.written(batch.iter().map(Frame::cost).sum());
        assert_eq!(channels.counts(), vec![("room".to_owned(), 3)], "exactly at the budget: still there");
        channels.deliver("room", Some(sender), frame(10));
        assert_eq!(channels.counts(), vec![("room".to_owned(), 2)], "one byte over: the slow member was dropped");
        assert_eq!(
            slow.take().map(|frames| frames.len()),
            Err((CloseCode::Again, "too slow: more than the send budget was waiting"))
        );
        let pending = lock(&slow.pending);
        assert_eq!((pending.frames.len(), pending.frames.capacity(), pending.bytes), (0, 0, 0), "its frames are freed");
        drop(pending);
        assert_eq!(fast.take().unwrap().len(), 1, "the fast member goes on");
    }

    #[tokio::test]
    async fn a_frame_larger_than_the_budget_still_reaches_an_idle_member() {
        let config = ChannelsConfig { send_queue_bytes: 16, ..ChannelsConfig::default() };
        let channels = Channels::start(config, None).await.unwrap();
        let (_, member) = channels.join("room");
        channels.deliver("room", None, Frame::Binary(vec![7; 1000].into()));
        assert_eq!(member.take().unwrap().len(), 1);
        assert_eq!(channels.counts(), vec![("room".to_owned(), 1)]);
    }
}
