//! The in-process event bus: domain events (`user.registered`, `endpoint.created`, …) that
//! built-in plugins emit and any plugin may subscribe to, and the durable path beside it: a
//! service records an event in the transaction of the change that caused it, so the
//! WebAssembly plugins' outbox holds it exactly when the change commits.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};
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
    /// Already stored durably in the transaction of its change ([`EventBus::record`]): the
    /// outbox must not copy it again from the bus.
    #[serde(skip)]
    pub recorded: bool,
}

/// Stores events durably for their subscribers (the host's WebAssembly outbox), through the
/// transaction of the change that caused them.
#[async_trait]
pub trait EventOutbox: Send + Sync + 'static {
    /// Stores `event` through `transaction`; it becomes visible when the transaction commits,
    /// and vanishes with it if it rolls back.
    async fn store(&self, transaction: &DatabaseTransaction, event: &Event) -> Result<(), DbErr>;
}

/// An event recorded in a transaction, to be published in process once that transaction has
/// committed.
#[must_use = "publish the event after the transaction commits"]
pub struct Recorded {
    bus: EventBus,
    event: Event,
}

impl Recorded {
    /// Publishes the event to in-process subscribers (call after the commit).
    pub fn publish(self) -> Arc<Event> {
        self.bus.send(self.event)
    }
}

/// A cheap-to-clone handle on the bus. Emitting never blocks and never fails: with no
/// subscribers an event is simply dropped, and a subscriber that falls more than the bus
/// capacity behind skips the oldest events (it is told how many through `RecvError::Lagged`).
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Event>>,
    clock: Arc<dyn Clock>,
    outbox: Arc<RwLock<Option<Arc<dyn EventOutbox>>>>,
}

impl EventBus {
    /// A bus holding up to `capacity` undelivered events per subscriber.
    pub fn new(capacity: usize, clock: Arc<dyn Clock>) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender, clock, outbox: Arc::default() }
    }

    /// Installs the durable store [`EventBus::record`] writes through (the host does, when it
    /// runs WebAssembly plugins).
    pub fn set_outbox(&self, outbox: Arc<dyn EventOutbox>) {
        *self.outbox.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(outbox);
    }

    /// Publishes an event that no transaction carries (plugins' own events, the host's) and
    /// returns it. The outbox copies it from the bus.
    pub fn emit(&self, kind: &str, data: Value) -> Arc<Event> {
        self.send(self.event(kind, data, false))
    }

    /// Records an event in the transaction of the change that caused it: the outbox stores it
    /// through `transaction`, so it exists exactly when the change commits. Publish the returned
    /// [`Recorded`] after the commit for in-process subscribers.
    pub async fn record(&self, transaction: &DatabaseTransaction, kind: &str, data: Value) -> Result<Recorded, DbErr> {
        let outbox = self.outbox.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let event = self.event(kind, data, outbox.is_some());
        if let Some(outbox) = outbox {
            outbox.store(transaction, &event).await?;
        }
        Ok(Recorded { bus: self.clone(), event })
    }

    fn event(&self, kind: &str, data: Value, recorded: bool) -> Event {
        Event { id: Uuid::new_v4(), kind: kind.to_owned(), occurred_at: self.clock.now(), data, recorded }
    }

    fn send(&self, event: Event) -> Arc<Event> {
        let event = Arc::new(event);
        tracing::debug!(event_kind = %event.kind, event_id = %event.id, "event emitted");
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
