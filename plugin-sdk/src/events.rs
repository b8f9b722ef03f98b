//! The in-process event bus: domain events (`user.registered`, `endpoint.created`, …) that
//! built-in plugins emit and any plugin may subscribe to.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::Clock;

/// One domain event. `kind` is `<area>.<verb>`; `data` is a JSON object of ids and names,
/// never secrets.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Unique id, so consumers can de-duplicate at-least-once deliveries.
    pub id: Uuid,
    /// `user.registered`, `endpoint.starred`, …
    pub kind: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Event payload.
    pub data: Value,
}

/// A cheap-to-clone handle on the bus. Emitting never blocks and never fails: with no
/// subscribers an event is simply dropped, and a subscriber that falls more than the bus
/// capacity behind skips the oldest events (it is told how many through `RecvError::Lagged`).
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Event>>,
    clock: Arc<dyn Clock>,
}

impl EventBus {
    /// A bus holding up to `capacity` undelivered events per subscriber.
    pub fn new(capacity: usize, clock: Arc<dyn Clock>) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender, clock }
    }

    /// Publishes an event and returns it.
    pub fn emit(&self, kind: &str, data: Value) -> Arc<Event> {
        let event = Arc::new(Event { id: Uuid::new_v4(), kind: kind.to_owned(), occurred_at: self.clock.now(), data });
        tracing::debug!(event_kind = kind, event_id = %event.id, "event emitted");
        // An error only means nobody is subscribed right now.
        let _ = self.sender.send(event.clone());
        event
    }

    /// A receiver for every event emitted from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus").field("subscribers", &self.sender.receiver_count()).finish()
    }
}
