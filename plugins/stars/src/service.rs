//! Starring rules: only endpoints the caller may see; idempotent both ways; the counter moves
//! with the rows in one transaction. No HTTP types.

use std::sync::Arc;

use async_trait::async_trait;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, Set};
use serde_json::json;
use thub_plugin_sdk::storage::begin_write;
use thub_plugin_sdk::{AccountHooks, Clock, EventBus, HookError, Principal};
use thub_registry::RegistryService;

use crate::entity::star;
use crate::error::StarsError;

/// Stars.
pub struct StarsService {
    db: DatabaseConnection,
    registry: Arc<RegistryService>,
    events: EventBus,
    clock: Arc<dyn Clock>,
}

impl StarsService {
    /// Stars over the hub database and the registry.
    pub fn new(
        db: DatabaseConnection,
        registry: Arc<RegistryService>,
        events: EventBus,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { db, registry, events, clock }
    }

    /// Stars endpoint `id` for the caller. Returns whether this call added the star.
    pub async fn star(&self, caller: &Principal, id: i64) -> Result<bool, StarsError> {
        let viewer = self.registry.viewer(Some(caller.clone())).await?;
        self.registry.visible(&viewer, id).await?;
        let transaction = begin_write(&self.db).await?;
        let inserted = star::Entity::insert(star::ActiveModel {
            user_id: Set(caller.user_id),
            endpoint_id: Set(id),
            starred_at: Set(self.clock.now()),
            ..Default::default()
        })
        .on_conflict(OnConflict::columns([star::Column::UserId, star::Column::EndpointId]).do_nothing().to_owned())
        .exec_without_returning(&transaction)
        .await?;
        let mut event = None;
        if inserted == 1 {
            self.registry.add_stars(&transaction, id, 1).await?;
            let data = json!({"endpoint_id": id, "user_id": caller.user_id});
            event = Some(self.events.record(&transaction, "endpoint.starred", data).await?);
        }
        transaction.commit().await?;
        if let Some(event) = event {
            event.publish();
        }
        Ok(inserted == 1)
    }

    /// Removes the caller's star from endpoint `id`, if there is one (even if the endpoint is no
    /// longer visible to them). Returns whether this call removed it.
    pub async fn unstar(&self, caller: &Principal, id: i64) -> Result<bool, StarsError> {
        let transaction = begin_write(&self.db).await?;
        let removed = star::Entity::delete_many()
            .filter(star::Column::UserId.eq(caller.user_id))
            .filter(star::Column::EndpointId.eq(id))
            .exec(&transaction)
            .await?
            .rows_affected;
        let mut event = None;
        if removed == 1 {
            self.registry.add_stars(&transaction, id, -1).await?;
            let data = json!({"endpoint_id": id, "user_id": caller.user_id});
            event = Some(self.events.record(&transaction, "endpoint.unstarred", data).await?);
        }
        transaction.commit().await?;
        if let Some(event) = event {
            event.publish();
        }
        Ok(removed == 1)
    }

    /// Whether the caller has starred endpoint `id` (which they must be able to see).
    pub async fn starred(&self, caller: &Principal, id: i64) -> Result<bool, StarsError> {
        let viewer = self.registry.viewer(Some(caller.clone())).await?;
        self.registry.visible(&viewer, id).await?;
        let found = star::Entity::find()
            .filter(star::Column::UserId.eq(caller.user_id))
            .filter(star::Column::EndpointId.eq(id))
            .one(&self.db)
            .await?;
        Ok(found.is_some())
    }
}

#[async_trait]
impl AccountHooks for StarsService {
    /// A deleted user's stars leave the counts of the endpoints they starred.
    async fn before_user_delete(&self, transaction: &DatabaseTransaction, user_id: i64) -> Result<(), HookError> {
        let given = star::Entity::find().filter(star::Column::UserId.eq(user_id)).all(transaction).await?;
        for star in &given {
            self.registry.add_stars(transaction, star.endpoint_id, -1).await?;
        }
        star::Entity::delete_many().filter(star::Column::UserId.eq(user_id)).exec(transaction).await?;
        Ok(())
    }
}
