//! An index for discovery filtered by type (`/explore?type=agent`, `?type=` on the listings):
//! public, active endpoints of one type in name order. Without it SQLite counted a type's
//! endpoints by reading every public row (8 ms at 10 000 endpoints, measured), and sorted them
//! by name; with it both read the index alone. Orders by stars or recency keep their own indexes
//! (migration 7), which SQLite still prefers for them, filtering the type as it walks.

use sea_orm_migration::prelude::*;

use crate::m20261126_000007_create_endpoints::Endpoints;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const NAME: &str = "idx_endpoints_discovery_type_name";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut index = Index::create();
        index.name(NAME).table(Endpoints::Table);
        for column in [Endpoints::Visibility, Endpoints::IsActive, Endpoints::Kind, Endpoints::Name, Endpoints::Id] {
            index.col(column);
        }
        manager.create_index(index.to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(NAME).table(Endpoints::Table).to_owned()).await
    }
}
