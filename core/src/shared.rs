//! State several instances must agree on: revocation marks, rate-limit counters, and the
//! invalidation channel that keeps each instance's authentication cache true (see
//! `accounts::cache`). In Redis when `[redis] url` is set (so every instance sees the same), in
//! this process otherwise.
//!
//! Redis is a cache and a meeting point, never the truth: revocation always lands in the
//! database first (see `accounts::sessions`), and marks read here only ever say "revoked", so a
//! flushed or restarted Redis can make checks slower, never let a revoked token back in. When
//! Redis stops answering, counters fall back to this process (limits then hold per instance)
//! and Redis is left alone for a few seconds before the next try; nothing here fails a request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use thub_plugin_sdk::{ApiError, Broker, BrokerMessage};
use tokio::sync::mpsc;

use crate::storage::redact_url;

/// How long Redis is left alone after it failed to answer.
const REDIS_BACKOFF: Duration = Duration::from_secs(2);

/// Shared state: Redis-backed or process-local.
pub struct Shared {
    redis: Option<ConnectionManager>,
    client: Option<redis::Client>,
    prefix: String,
    local: Mutex<HashMap<String, (u64, u64)>>,
    /// Revocation marks seen by this instance, until they expire.
    revoked: Mutex<HashMap<String, Instant>>,
    /// Set while Redis is failing: when to try it again.
    redis_down_until: Mutex<Option<Instant>>,
    pending_acks: PendingAcks,
}

/// The outcome of counting one hit against a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Under the limit.
    Allowed,
    /// Over the limit; retry after this many seconds.
    Exceeded {
        /// Seconds until the window ends.
        retry_after: u64,
    },
}

impl Shared {
    /// Process-local state (one instance).
    pub fn local() -> Self {
        Self::with(None, None, String::new())
    }

    fn with(redis: Option<ConnectionManager>, client: Option<redis::Client>, prefix: String) -> Self {
        Self {
            redis,
            client,
            prefix,
            local: Mutex::default(),
            revoked: Mutex::default(),
            redis_down_until: Mutex::default(),
            pending_acks: PendingAcks::default(),
        }
    }

    /// Redis-backed state. An invalid URL is an error; a Redis that does not answer yet is not:
    /// the instance starts on its own state (logged) and uses Redis as soon as it answers, so
    /// an instance restarted during an outage does not stay down with it.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let shown = redact_url(url);
        let client = redis::Client::open(url).map_err(|error| anyhow::anyhow!("invalid Redis URL {shown}: {error}"))?;
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|error| anyhow::anyhow!("cannot use Redis {shown}: {error}"))?;
        let shared = Self::with(Some(manager), Some(client), prefix.to_owned());
        if shared.ping().await != Some(true) {
            tracing::warn!(redis = %shown, "redis does not answer; starting on this instance's state until it does");
            *shared.redis_down_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
                Some(Instant::now() + REDIS_BACKOFF);
        }
        Ok(shared)
    }

    /// `None` without Redis; otherwise whether Redis answers a PING.
    pub async fn ping(&self) -> Option<bool> {
        let mut redis = self.redis.clone()?;
        let answer: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut redis).await;
        if answer.is_ok() {
            self.redis_answered();
        }
        Some(answer.is_ok())
    }

    /// Whether Redis backs this state.
    pub fn is_redis(&self) -> bool {
        self.redis.is_some()
    }

    /// The Redis connection and key prefix, for features with their own Redis needs (channel
    /// fan-out).
    pub fn redis(&self) -> Option<(ConnectionManager, &str)> {
        Some((self.redis.clone()?, &self.prefix))
    }

    /// The Redis connection, unless there is none or it is resting after a failure.
    fn usable_redis(&self) -> Option<ConnectionManager> {
        let redis = self.redis.as_ref()?;
        let down_until = *self.redis_down_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match down_until {
            Some(until) if Instant::now() < until => None,
            _ => Some(redis.clone()),
        }
    }

    fn redis_failed(&self, error: &redis::RedisError) {
        crate::metrics::redis_error();
        let mut down_until = self.redis_down_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if down_until.is_none() {
            tracing::warn!(error = %error, "redis is not answering; using this instance's state until it returns");
        }
        *down_until = Some(Instant::now() + REDIS_BACKOFF);
    }

    fn redis_answered(&self) {
        let mut down_until = self.redis_down_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if down_until.take().is_some() {
            tracing::info!("redis answers again; shared state restored");
        }
    }

    /// Notes that `key` (e.g. `session:<id>`) was revoked, for `ttl`: in this process and, with
    /// Redis, for every instance. The database already holds the revocation; this only spares
    /// lookups, so a Redis failure is logged and otherwise ignored.
    pub async fn mark_revoked(&self, key: &str, ttl: Duration) {
        self.remember_revoked(key, ttl);
        if let Some(mut redis) = self.usable_redis() {
            let seconds = ttl.as_secs().max(1);
            let result: redis::RedisResult<()> =
                redis.set_ex(format!("{}revoked:{key}", self.prefix), 1, seconds).await;
            match result {
                Ok(()) => self.redis_answered(),
                Err(error) => self.redis_failed(&error),
            }
        }
    }

    fn remember_revoked(&self, key: &str, ttl: Duration) {
        let now = Instant::now();
        let mut revoked = self.revoked.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if revoked.len() >= 10_000 {
            revoked.retain(|_, until| *until > now);
        }
        revoked.insert(key.to_owned(), now + ttl);
    }

    /// Whether `key` is known to be revoked (in this process or in Redis). `false` means "not
    /// known here": the caller asks the database, which is the truth.
    pub async fn known_revoked(&self, key: &str) -> bool {
        {
            let revoked = self.revoked.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if revoked.get(key).is_some_and(|until| *until > Instant::now()) {
                return true;
            }
        }
        let Some(mut redis) = self.usable_redis() else { return false };
        let ttl: redis::RedisResult<i64> = redis.ttl(format!("{}revoked:{key}", self.prefix)).await;
        match ttl {
            Ok(seconds) => {
                self.redis_answered();
                // -2: no such key; -1: no expiry (never written by us, but still a mark).
                if seconds == -2 {
                    return false;
                }
                self.remember_revoked(key, Duration::from_secs(seconds.max(1) as u64));
                true
            }
            Err(error) => {
                self.redis_failed(&error);
                false
            }
        }
    }

    /// Counts a hit on `key` in a fixed window of `window` and says whether `limit` is passed.
    /// `now` is Unix seconds (from the injected clock).
    pub async fn hit(&self, key: &str, limit: u32, window: Duration, now: u64) -> Limit {
        let (window, slot, retry_after) = fixed_window(window, now);
        let count = match self.usable_redis() {
            Some(mut redis) => {
                let redis_key = self.limit_key(key, slot);
                let answer: redis::RedisResult<(u64,)> = redis::pipe()
                    .atomic()
                    .incr(&redis_key, 1)
                    .expire(&redis_key, window as i64)
                    .ignore()
                    .query_async(&mut redis)
                    .await;
                match answer {
                    Ok((count,)) => {
                        self.redis_answered();
                        Some(count)
                    }
                    Err(error) => {
                        self.redis_failed(&error);
                        None
                    }
                }
            }
            None => None,
        };
        let count = count.unwrap_or_else(|| self.local_hit(key, slot));
        if count > u64::from(limit) { Limit::Exceeded { retry_after } } else { Limit::Allowed }
    }

    fn local_hit(&self, key: &str, slot: u64) -> u64 {
        let mut counters = self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget finished windows so the map stays small.
        if counters.len() >= 10_000 {
            counters.retain(|_, (counter_slot, _)| *counter_slot >= slot);
        }
        let entry = counters.entry(key.to_owned()).or_insert((slot, 0));
        if entry.0 != slot {
            *entry = (slot, 0);
        }
        entry.1 += 1;
        entry.1
    }

    fn local_count(&self, key: &str, slot: u64) -> u64 {
        let counters = self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        counters.get(key).filter(|(counter_slot, _)| *counter_slot == slot).map_or(0, |(_, count)| *count)
    }

    /// Whether `key` is already past `limit` in the current window, without counting a hit.
    pub async fn peek(&self, key: &str, limit: u32, window: Duration, now: u64) -> Limit {
        let (_, slot, retry_after) = fixed_window(window, now);
        let count = match self.usable_redis() {
            Some(mut redis) => {
                let answer: redis::RedisResult<Option<u64>> = redis.get(self.limit_key(key, slot)).await;
                match answer {
                    Ok(count) => {
                        self.redis_answered();
                        Some(count.unwrap_or(0))
                    }
                    Err(error) => {
                        self.redis_failed(&error);
                        None
                    }
                }
            }
            None => None,
        };
        let count = count.unwrap_or_else(|| self.local_count(key, slot));
        if count >= u64::from(limit) { Limit::Exceeded { retry_after } } else { Limit::Allowed }
    }

    /// Forgets the counter of `key` in the current window (a successful login clears the
    /// per-account failure count).
    pub async fn reset(&self, key: &str, window: Duration, now: u64) {
        let (_, slot, _) = fixed_window(window, now);
        self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(key);
        if let Some(mut redis) = self.usable_redis() {
            let answer: redis::RedisResult<()> = redis.del(self.limit_key(key, slot)).await;
            match answer {
                Ok(()) => self.redis_answered(),
                Err(error) => self.redis_failed(&error),
            }
        }
    }

    /// The Redis key of `key`'s counter in window `slot`.
    fn limit_key(&self, key: &str, slot: u64) -> String {
        format!("{}limit:{key}:{slot}", self.prefix)
    }
}

/// The channel on which instances tell each other which credentials and users changed:
/// `<nonce> <message>`.
const INVALIDATION_CHANNEL: &str = "auth:invalidate";
/// The channel on which each instance acknowledges an invalidation it applied: `<nonce>`.
const ACK_CHANNEL: &str = "auth:applied";

/// How often a live invalidation subscription is pinged, and how long the answer may take: a
/// subscription that went silent without its socket closing is known lost within both.
const SUBSCRIPTION_PING: Duration = Duration::from_secs(1);

/// How long a publisher waits for every subscribed instance to acknowledge an invalidation.
/// An instance that has not acknowledged by then has lost its subscription (and so bypasses
/// its cache) or is gone.
const ACK_WAIT: Duration = Duration::from_secs(1);

/// What a follower of the invalidation channel is told.
pub trait InvalidationFollower: Send + Sync + 'static {
    /// The subscription is live (`true`: from now on every message arrives) or lost.
    fn live(&self, live: bool);
    /// A message published by some instance (this one included).
    fn message(&self, message: &str);
}

/// Acknowledgements awaited by this instance's publishers, by nonce.
type PendingAcks = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<()>>>>;

impl Shared {
    /// Tells every instance about a committed change on the invalidation channel and waits
    /// (at most `ACK_WAIT`) until every instance that received it has applied it, so that when
    /// this returns no live instance still accepts what changed. Without Redis, or when Redis
    /// fails, nobody else hears it: the others' cache lifetime then bounds how long they keep
    /// what changed.
    pub async fn publish_invalidation(&self, message: &str) {
        // Tried even while Redis rests after a failure: another instance may already be
        // subscribed again, and must hear this.
        let Some(mut redis) = self.redis.clone() else { return };
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let (sender, mut acks) = mpsc::unbounded_channel();
        self.lock_acks().insert(nonce.clone(), sender);
        let channel = format!("{}{INVALIDATION_CHANNEL}", self.prefix);
        let answer: redis::RedisResult<usize> = redis.publish(channel, format!("{nonce} {message}")).await;
        match answer {
            Ok(receivers) => {
                self.redis_answered();
                let all_applied = async {
                    for _ in 0..receivers {
                        if acks.recv().await.is_none() {
                            return;
                        }
                    }
                };
                if tokio::time::timeout(ACK_WAIT, all_applied).await.is_err() {
                    tracing::warn!("an instance did not acknowledge an invalidation in time");
                }
            }
            Err(error) => self.redis_failed(&error),
        }
        self.lock_acks().remove(&nonce);
    }

    fn lock_acks(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<()>>> {
        self.pending_acks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Follows the invalidation channel in the background until `follower` is dropped: it is
    /// told `live(true)` once a subscription is confirmed, `live(false)` as soon as one is lost
    /// (the socket closes, or a ping goes unanswered), and each message in between, which is
    /// then acknowledged to its publisher. Without Redis nothing is ever told.
    pub fn follow_invalidations(&self, follower: std::sync::Weak<dyn InvalidationFollower>) {
        let (Some(client), Some(redis)) = (self.client.clone(), self.redis.clone()) else { return };
        let invalidations = format!("{}{INVALIDATION_CHANNEL}", self.prefix);
        let acks = format!("{}{ACK_CHANNEL}", self.prefix);
        let pending = self.pending_acks.clone();
        tokio::spawn(async move {
            let mut warned = false;
            loop {
                let subscribed = tokio::time::timeout(Duration::from_secs(2), async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.subscribe(&[&invalidations, &acks]).await?;
                    Ok::<_, redis::RedisError>(pubsub)
                })
                .await;
                if let Ok(Ok(pubsub)) = subscribed {
                    let Some(live) = follower.upgrade() else { return };
                    live.live(true);
                    drop(live);
                    if warned {
                        tracing::info!("redis invalidation channel restored; auth cache in use again");
                    }
                    warned = false;
                    let (mut sink, mut stream) = pubsub.split();
                    let mut ping = tokio::time::interval(SUBSCRIPTION_PING);
                    loop {
                        tokio::select! {
                            message = futures_util::StreamExt::next(&mut stream) => {
                                let Some(message) = message else { break };
                                let Ok(text) = message.get_payload::<String>() else { continue };
                                if message.get_channel_name() == acks {
                                    let waiter = pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&text).cloned();
                                    if let Some(waiter) = waiter {
                                        let _ = waiter.send(());
                                    }
                                    continue;
                                }
                                let Some((nonce, change)) = text.split_once(' ') else { continue };
                                let Some(follower) = follower.upgrade() else { return };
                                follower.message(change);
                                let mut redis = redis.clone();
                                let acknowledged: redis::RedisResult<()> = redis.publish(&acks, nonce).await;
                                if let Err(error) = acknowledged {
                                    tracing::warn!(error = %error, "cannot acknowledge an invalidation");
                                }
                            }
                            _ = ping.tick() => {
                                if follower.strong_count() == 0 {
                                    return;
                                }
                                let answer = tokio::time::timeout(SUBSCRIPTION_PING, sink.ping::<redis::Value>()).await;
                                if !matches!(answer, Ok(Ok(_))) {
                                    break;
                                }
                            }
                        }
                    }
                    let Some(follower) = follower.upgrade() else { return };
                    follower.live(false);
                }
                if follower.strong_count() == 0 {
                    return;
                }
                if !warned {
                    tracing::warn!("redis invalidation channel not live; auth cache bypassed until it is");
                    warned = true;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }
}

/// A fixed window of `window` at Unix second `now`: its length in seconds, its number, and the
/// seconds until the next one starts.
fn fixed_window(window: Duration, now: u64) -> (u64, u64, u64) {
    let seconds = window.as_secs().max(1);
    let slot = now / seconds;
    (seconds, slot, (slot + 1) * seconds - now)
}

/// The broker between instances: Redis `PUBLISH` and `PSUBSCRIBE` under the key prefix.
pub struct RedisBroker {
    shared: std::sync::Arc<Shared>,
}

impl RedisBroker {
    /// A broker over `shared`, or `None` without Redis.
    pub fn new(shared: std::sync::Arc<Shared>) -> Option<Self> {
        shared.client.is_some().then_some(Self { shared })
    }
}

#[async_trait::async_trait]
impl Broker for RedisBroker {
    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), ApiError> {
        let Some(mut redis) = self.shared.usable_redis() else {
            return Err(ApiError::unavailable_for("shared.redis_down", "redis is not answering", 2));
        };
        let answer: redis::RedisResult<()> = redis.publish(format!("{}{topic}", self.shared.prefix), payload).await;
        match answer {
            Ok(()) => {
                self.shared.redis_answered();
                Ok(())
            }
            Err(error) => {
                self.shared.redis_failed(&error);
                Err(ApiError::unavailable_for("shared.redis_down", format!("redis publish: {error}"), 2))
            }
        }
    }

    async fn subscribe(&self, prefix: &str) -> Result<mpsc::Receiver<BrokerMessage>, ApiError> {
        let client = self.shared.client.clone().ok_or_else(|| ApiError::internal("no Redis client"))?;
        let key_prefix = self.shared.prefix.clone();
        let pattern = format!("{key_prefix}{prefix}*");
        let (sender, receiver) = mpsc::channel(1024);
        // The first subscription must be live before this returns, so nothing published after
        // it is missed; when Redis does not answer yet, and after every loss, the subscription
        // is renewed in the background.
        let first = tokio::time::timeout(Duration::from_secs(2), async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.psubscribe(&pattern).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        let first = match first {
            Ok(Ok(pubsub)) => Some(pubsub),
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "redis subscription not live yet; channel fan-out is local until it is");
                None
            }
            Err(_) => {
                tracing::warn!("redis subscription timed out; channel fan-out is local until it is live");
                None
            }
        };
        tokio::spawn(async move {
            let mut lost = first.is_none();
            let mut pubsub = first;
            loop {
                if let Some(mut live) = pubsub.take() {
                    let mut messages = live.on_message();
                    while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
                        let topic = message.get_channel_name().strip_prefix(&key_prefix).unwrap_or_default().to_owned();
                        let payload: Vec<u8> = message.get_payload().unwrap_or_default();
                        if sender.send((topic, payload)).await.is_err() {
                            return;
                        }
                    }
                }
                if sender.is_closed() {
                    return;
                }
                if !lost {
                    tracing::warn!("redis subscription lost; channel fan-out is local until it returns");
                    lost = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                if let Ok(mut fresh) = client.get_async_pubsub().await
                    && fresh.psubscribe(&pattern).await.is_ok()
                {
                    tracing::info!("redis subscription restored; channel fan-out resumed");
                    lost = false;
                    pubsub = Some(fresh);
                }
            }
        });
        Ok(receiver)
    }
}
