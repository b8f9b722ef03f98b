//! Messages between hub instances (Redis pub/sub when configured). Plugins that fan out to
//! clients connected to other instances (channels) publish here and subscribe once.

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::ApiError;

/// A message from the broker: its topic and payload.
pub type BrokerMessage = (String, Vec<u8>);

/// Publish/subscribe between instances. Absent (`None` in the plugin context) when the hub runs
/// as a single instance.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Publishes `payload` on `topic` to every instance, this one included.
    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), ApiError>;

    /// Every message published from now on under topics starting with `prefix`. The host keeps
    /// the subscription alive across reconnects.
    async fn subscribe(&self, prefix: &str) -> Result<mpsc::Receiver<BrokerMessage>, ApiError>;
}
