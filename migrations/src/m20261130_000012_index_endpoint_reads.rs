//! Indexes for two reads that walked rows they did not need (measured at 10 000 endpoints):
//! - discovery filtered by type (`/explore?type=agent`, `?type=` on the listings): public,
//!   active endpoints of one type in name order. SQLite counted a type's endpoints by reading
//!   every public row (8 ms) and sorted them by name; with the index both read it alone. Orders
//!   by stars or recency keep their indexes (migration 7), filtering the type as they walk.
//! - an owner's page as others see it (`/{owner}`): the endpoints of one owner with one
//!   visibility, active, newest change first, carrying the stars. The count and star total of
//!   an owner with 5 000 endpoints read every row (6 ms; 18 ms once the type index above
//!   tempted SQLite's planner); with it they read the index alone, and the page comes in order.

use sea_orm_migration::prelude::*;

use crate::m20261126_000007_create_endpoints::Endpoints;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// `(name, columns)` of each index.
fn indexes() -> [(&'static str, Vec<Endpoints>); 3] {
    let visible_recent = |owner| {
        vec![
            owner,
            Endpoints::Visibility,
            Endpoints::IsActive,
            Endpoints::UpdatedAt,
            Endpoints::Id,
            Endpoints::StarsCount,
        ]
    };
    [
        (
            "idx_endpoints_discovery_type_name",
            vec![Endpoints::Visibility, Endpoints::IsActive, Endpoints::Kind, Endpoints::Name, Endpoints::Id],
        ),
        ("idx_endpoints_user_visible", visible_recent(Endpoints::UserId)),
        ("idx_endpoints_org_visible", visible_recent(Endpoints::OrganizationId)),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, columns) in indexes() {
            let mut index = Index::create();
            index.name(name).table(Endpoints::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in indexes() {
            manager.drop_index(Index::drop().name(name).table(Endpoints::Table).to_owned()).await?;
        }
        Ok(())
    }
}
