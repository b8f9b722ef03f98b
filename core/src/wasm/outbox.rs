//! Events for plugins: written into a database outbox, then delivered from it at least once, in
//! order per plugin, retried with backoff and finally set aside (dead-lettered). Never on the
//! request path. Events of changes to stored data are written in the transaction of the change
//! ([`TransactionalOutbox`], through `EventBus::record`), so one that commits always reaches
//! its plugins and one that rolls back never does; the rest (plugins' own events, the host's)
//! are copied from the bus. A database error is logged and the work is tried again on the next
//! round; nothing is dropped silently.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use thub_plugin_sdk::{Event, EventOutbox};
use tokio::sync::broadcast::{self, error::TryRecvError};

use super::WasmHost;
use super::bindings::{StoredEvent, typed};
use super::entity::outbox;
use super::runtime::Hook;

/// Rows delivered per round.
const BATCH: u64 = 32;
/// Attempts before an event is set aside.
const MAX_ATTEMPTS: i32 = 8;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Events kept in memory while the database refuses them; past this the oldest are dropped
/// (and the drop is logged).
const MAX_UNQUEUED: usize = 10_000;

/// The bus subscription the outbox is fed from, and what could not be written yet.
pub(super) struct Intake {
    receiver: Mutex<broadcast::Receiver<Arc<thub_plugin_sdk::Event>>>,
    /// `(plugin id, stored event)` rows the database refused; written again next round.
    unqueued: Mutex<Vec<(String, String)>>,
}

impl Intake {
    pub(super) fn new(receiver: broadcast::Receiver<Arc<thub_plugin_sdk::Event>>) -> Self {
        Self { receiver: Mutex::new(receiver), unqueued: Mutex::default() }
    }

    /// The bus events not yet in the outbox (those recorded in a transaction already are).
    fn drain(&self) -> Vec<Arc<thub_plugin_sdk::Event>> {
        let mut pending = Vec::new();
        let mut receiver = self.receiver.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        loop {
            match receiver.try_recv() {
                Ok(event) if event.recorded => {}
                Ok(event) => pending.push(event),
                Err(TryRecvError::Lagged(missed)) => {
                    tracing::error!(missed, "the plugin event intake fell behind; events were missed");
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        pending
    }
}

/// The outbox as the event bus sees it: rows written through the transaction of the change
/// that caused the event. Holds the host weakly (the host holds the bus).
pub(super) struct TransactionalOutbox {
    host: Weak<WasmHost>,
}

impl TransactionalOutbox {
    pub(super) fn new(host: Weak<WasmHost>) -> Self {
        Self { host }
    }
}

#[async_trait]
impl EventOutbox for TransactionalOutbox {
    async fn store(&self, transaction: &DatabaseTransaction, event: &Event) -> Result<(), DbErr> {
        let Some(host) = self.host.upgrade() else { return Ok(()) };
        let rows: Vec<_> = host.outbox_rows(event).iter().map(|(plugin, text)| host.outbox_row(plugin, text)).collect();
        if !rows.is_empty() {
            outbox::Entity::insert_many(rows).exec_without_returning(transaction).await?;
        }
        Ok(())
    }
}

impl WasmHost {
    /// Plugins that want `kind` and are allowed events, including those still compiling: an
    /// event emitted while they start waits for them in the outbox.
    fn subscribers(&self, kind: &str) -> Vec<String> {
        let mut subscribers: Vec<String> = self
            .all_slots()
            .into_iter()
            .filter(|(_, slot)| {
                let loaded = slot.current();
                loaded.services.manifest.wants_event(kind) && loaded.services.granted("events")
            })
            .map(|(id, _)| id)
            .collect();
        for manifest in self.compiling_manifests() {
            let granted = self.grant(&manifest.id).capabilities.iter().any(|capability| capability == "events");
            if granted && manifest.wants_event(kind) && !subscribers.contains(&manifest.id) {
                subscribers.push(manifest.id.clone());
            }
        }
        subscribers
    }

    /// Copies the bus events plugins subscribe to into the outbox. Delivery happens later, so a
    /// slow plugin never slows the request that emitted an event. One-shot commands (`thub
    /// adduser`) call this before exiting so their events are not lost with the process.
    pub async fn queue_events(&self) {
        let mut rows =
            std::mem::take(&mut *self.intake.unqueued.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        for event in self.intake.drain() {
            rows.extend(self.outbox_rows(&event));
        }
        let mut refused = Vec::new();
        for (plugin, text) in rows {
            if let Err(error) = self.outbox_row(&plugin, &text).insert(&self.db).await {
                tracing::error!(plugin = %plugin, error = %error, "cannot queue an event for a plugin; will retry");
                refused.push((plugin, text));
            }
        }
        if !refused.is_empty() {
            let mut unqueued = self.intake.unqueued.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            unqueued.extend(refused);
            if unqueued.len() > MAX_UNQUEUED {
                let dropped = unqueued.len() - MAX_UNQUEUED;
                unqueued.drain(..dropped);
                tracing::error!(dropped, "the database refused plugin events for too long; the oldest were dropped");
            }
        }
    }

    /// `(plugin id, stored event)` for every plugin that wants `event`.
    fn outbox_rows(&self, event: &Event) -> Vec<(String, String)> {
        let subscribers = self.subscribers(&event.kind);
        if subscribers.is_empty() {
            return Vec::new();
        }
        let stored = StoredEvent {
            kind: event.kind.clone(),
            id: event.id.to_string(),
            occurred_at_ms: event.occurred_at.timestamp_millis().max(0) as u64,
            data: event.data.clone(),
        };
        match serde_json::to_string(&stored) {
            Ok(text) => subscribers.into_iter().map(|plugin| (plugin, text.clone())).collect(),
            Err(error) => {
                tracing::error!(kind = %event.kind, error = %error, "an event cannot be stored for plugins");
                Vec::new()
            }
        }
    }

    fn outbox_row(&self, plugin: &str, text: &str) -> outbox::ActiveModel {
        outbox::ActiveModel {
            plugin_id: Set(plugin.to_owned()),
            event: Set(text.to_owned()),
            attempts: Set(0),
            next_attempt_at: Set(self.clock.now()),
            last_error: Set(None),
            dead: Set(false),
            created_at: Set(self.clock.now()),
            ..Default::default()
        }
    }

    /// Claims a due outbox row for this instance: moves its next attempt past the delivery
    /// deadline, only if no other instance did first. Instances sharing a database thus rarely
    /// deliver the same event twice (at-least-once still allows it after a crash).
    async fn claim(&self, row: &outbox::Model) -> bool {
        let lease = chrono::Duration::milliseconds(self.config.event_timeout_ms as i64 + 5_000);
        let claimed = outbox::Entity::update_many()
            .col_expr(outbox::Column::NextAttemptAt, sea_orm::sea_query::Expr::value(self.clock.now() + lease))
            .filter(outbox::Column::Id.eq(row.id))
            .filter(outbox::Column::NextAttemptAt.eq(row.next_attempt_at))
            .exec(&self.db)
            .await;
        match claimed {
            Ok(result) => result.rows_affected == 1,
            Err(error) => {
                tracing::error!(outbox_id = row.id, error = %error, "cannot claim an outbox row; will retry");
                false
            }
        }
    }

    /// Delivers the due rows of the outbox.
    pub(super) async fn work_outbox(&self) {
        // Nothing can be delivered without a subscriber: spare the database the poll.
        let any_subscriber = self.all_slots().iter().any(|(_, slot)| {
            let loaded = slot.current();
            !loaded.services.manifest.events.is_empty() && loaded.services.granted("events")
        });
        if !any_subscriber {
            return;
        }
        let due = outbox::Entity::find()
            .filter(outbox::Column::Dead.eq(false))
            .filter(outbox::Column::NextAttemptAt.lte(self.clock.now()))
            .order_by_asc(outbox::Column::Id)
            .limit(BATCH)
            .all(&self.db)
            .await;
        let due = match due {
            Ok(due) => due,
            Err(error) => {
                tracing::error!(error = %error, "cannot read the plugin outbox; will retry");
                return;
            }
        };
        for row in due {
            // A plugin still compiling gets its events once it is ready; waiting is no attempt.
            if self.slot(&row.plugin_id).is_none() && self.is_compiling(&row.plugin_id) {
                continue;
            }
            if !self.claim(&row).await {
                continue;
            }
            match self.deliver(&row).await {
                Ok(()) => {
                    if let Err(error) = outbox::Entity::delete_by_id(row.id).exec(&self.db).await {
                        // The row stays claimed until its lease ends, then the event is
                        // delivered again: at least once, as promised.
                        tracing::error!(plugin = %row.plugin_id, outbox_id = row.id, error = %error, "cannot remove a delivered event; it will be delivered again");
                    }
                }
                Err(error) => self.reschedule(&row, &error).await,
            }
        }
    }

    /// Records a failed delivery: the next attempt waits twice as long, and after
    /// [`MAX_ATTEMPTS`] the event is set aside.
    async fn reschedule(&self, row: &outbox::Model, error: &str) {
        let attempts = row.attempts + 1;
        let backoff = Duration::from_secs(2u64.saturating_pow(attempts as u32)).min(MAX_BACKOFF);
        let mut retry: outbox::ActiveModel = row.clone().into();
        retry.attempts = Set(attempts);
        retry.next_attempt_at = Set(self.clock.now() + chrono::Duration::seconds(backoff.as_secs() as i64));
        retry.last_error = Set(Some(error.chars().take(1000).collect()));
        retry.dead = Set(attempts >= MAX_ATTEMPTS);
        tracing::warn!(plugin = %row.plugin_id, attempts, error = %error, "event delivery failed; will retry");
        if let Err(update_error) = retry.update(&self.db).await {
            // The claim's lease still holds the row back; when it ends the event is retried
            // without the attempt counted.
            tracing::error!(plugin = %row.plugin_id, outbox_id = row.id, error = %update_error, "cannot record a failed delivery; will retry after the lease");
        }
    }

    async fn deliver(&self, row: &outbox::Model) -> Result<(), String> {
        let slot = self.slot(&row.plugin_id).ok_or("the plugin is not loaded")?;
        let event: typed::thub::plugin::types::Event =
            serde_json::from_str::<StoredEvent>(&row.event).map_err(|error| error.to_string())?.into();
        let deadline = Duration::from_millis(self.config.event_timeout_ms);
        self.call(&slot, format!("event-{}", event.id), None, deadline, move |loaded, store| {
            Box::pin(async move { loaded.prepared.invoke(store, Hook::Event(event)).await })
        })
        .await
        .map_err(|refusal| format!("{refusal:?}"))?
        .map(|_| ())
    }
}
