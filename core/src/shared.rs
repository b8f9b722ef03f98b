//! State several instances must agree on: revocation marks and rate-limit counters. In Redis
//! when `[redis] url` is set (so every instance sees the same), in this process otherwise.
//! Revocation also always lands in the database (see `accounts`), so it survives restarts
//! with or without Redis.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use thub_plugin_sdk::{ApiError, Broker, BrokerMessage};
use tokio::sync::mpsc;

use crate::storage::redact_url;

/// Shared state: Redis-backed or process-local.
pub struct Shared {
    redis: Option<ConnectionManager>,
    client: Option<redis::Client>,
    prefix: String,
    local: Mutex<HashMap<String, (u64, u64)>>,
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
        Self { redis: None, client: None, prefix: String::new(), local: Mutex::default() }
    }

    /// Redis-backed state; fails with one clear line if Redis does not answer.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let shown = redact_url(url);
        let client = redis::Client::open(url).map_err(|error| anyhow::anyhow!("invalid Redis URL {shown}: {error}"))?;
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(3)));
        let mut manager = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|error| anyhow::anyhow!("cannot connect to Redis {shown}: {error}"))?;
        let _: String = redis::cmd("PING")
            .query_async(&mut manager)
            .await
            .map_err(|error| anyhow::anyhow!("Redis {shown} does not answer: {error}"))?;
        Ok(Self { redis: Some(manager), client: Some(client), prefix: prefix.to_owned(), local: Mutex::default() })
    }

    /// `None` without Redis; otherwise whether Redis answers a PING.
    pub async fn ping(&self) -> Option<bool> {
        let mut redis = self.redis.clone()?;
        let answer: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut redis).await;
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

    /// Marks `key` (e.g. `session:<id>`) revoked for `ttl`. Only meaningful with Redis; local
    /// mode keeps revocation in the database alone.
    pub async fn mark_revoked(&self, key: &str, ttl: Duration) -> anyhow::Result<()> {
        if let Some(redis) = &self.redis {
            let mut redis = redis.clone();
            let seconds = ttl.as_secs().max(1);
            let _: () = redis.set_ex(format!("{}revoked:{key}", self.prefix), 1, seconds).await?;
        }
        Ok(())
    }

    /// `Some(revoked)` from Redis, or `None` when the answer must come from the database.
    pub async fn is_revoked(&self, key: &str) -> anyhow::Result<Option<bool>> {
        match &self.redis {
            Some(redis) => {
                let mut redis = redis.clone();
                let exists: bool = redis.exists(format!("{}revoked:{key}", self.prefix)).await?;
                Ok(Some(exists))
            }
            None => Ok(None),
        }
    }

    /// Counts a hit on `key` in a fixed window of `window` and says whether `limit` is passed.
    /// `now` is Unix seconds (from the injected clock).
    pub async fn hit(&self, key: &str, limit: u32, window: Duration, now: u64) -> anyhow::Result<Limit> {
        let (window, slot, retry_after) = fixed_window(window, now);
        let count = match &self.redis {
            Some(redis) => {
                let mut redis = redis.clone();
                let key = self.limit_key(key, slot);
                let (count,): (u64,) = redis::pipe()
                    .atomic()
                    .incr(&key, 1)
                    .expire(&key, window as i64)
                    .ignore()
                    .query_async(&mut redis)
                    .await?;
                count
            }
            None => {
                let mut counters = self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                // Forget finished windows so the map stays small.
                counters.retain(|_, (counter_slot, _)| *counter_slot >= slot);
                let entry = counters.entry(key.to_owned()).or_insert((slot, 0));
                if entry.0 != slot {
                    *entry = (slot, 0);
                }
                entry.1 += 1;
                entry.1
            }
        };
        Ok(if count > u64::from(limit) { Limit::Exceeded { retry_after } } else { Limit::Allowed })
    }

    /// Whether `key` is already past `limit` in the current window, without counting a hit.
    pub async fn peek(&self, key: &str, limit: u32, window: Duration, now: u64) -> anyhow::Result<Limit> {
        let (_, slot, retry_after) = fixed_window(window, now);
        let count = match &self.redis {
            Some(redis) => {
                let mut redis = redis.clone();
                let count: Option<u64> = redis.get(self.limit_key(key, slot)).await?;
                count.unwrap_or(0)
            }
            None => {
                let counters = self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                counters.get(key).filter(|(counter_slot, _)| *counter_slot == slot).map_or(0, |(_, count)| *count)
            }
        };
        Ok(if count >= u64::from(limit) { Limit::Exceeded { retry_after } } else { Limit::Allowed })
    }

    /// Forgets the counter of `key` in the current window (a successful login clears the
    /// per-account failure count).
    pub async fn reset(&self, key: &str, window: Duration, now: u64) -> anyhow::Result<()> {
        let (_, slot, _) = fixed_window(window, now);
        match &self.redis {
            Some(redis) => {
                let mut redis = redis.clone();
                let _: () = redis.del(self.limit_key(key, slot)).await?;
            }
            None => {
                self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(key);
            }
        }
        Ok(())
    }

    /// The Redis key of `key`'s counter in window `slot`.
    fn limit_key(&self, key: &str, slot: u64) -> String {
        format!("{}limit:{key}:{slot}", self.prefix)
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
        let Some(mut redis) = self.shared.redis.clone() else { return Ok(()) };
        let _: () = redis
            .publish(format!("{}{topic}", self.shared.prefix), payload)
            .await
            .map_err(|error| ApiError::internal(format!("redis publish: {error}")))?;
        Ok(())
    }

    async fn subscribe(&self, prefix: &str) -> Result<mpsc::Receiver<BrokerMessage>, ApiError> {
        let client = self.shared.client.clone().ok_or_else(|| ApiError::internal("no Redis client"))?;
        let key_prefix = self.shared.prefix.clone();
        let pattern = format!("{key_prefix}{prefix}*");
        let (sender, receiver) = mpsc::channel(1024);
        // The first subscription must be live before this returns, so nothing published after
        // it is missed; later reconnects happen in the background.
        let mut pubsub =
            client.get_async_pubsub().await.map_err(|error| ApiError::internal(format!("redis subscribe: {error}")))?;
        pubsub.psubscribe(&pattern).await.map_err(|error| ApiError::internal(format!("redis psubscribe: {error}")))?;
        tokio::spawn(async move {
            let mut pubsub = Some(pubsub);
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
                tracing::warn!("redis subscription lost; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Ok(mut fresh) = client.get_async_pubsub().await
                    && fresh.psubscribe(&pattern).await.is_ok()
                {
                    pubsub = Some(fresh);
                }
            }
        });
        Ok(receiver)
    }
}
