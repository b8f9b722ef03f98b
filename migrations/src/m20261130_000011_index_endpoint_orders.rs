//! Indexes for the listing orders that had none, so a page is read in order instead of sorting
//! every candidate row: discovery by name (`/explore?sort=name`), and an owner's endpoints newest
//! first (`/{owner}` pages, `GET /api/v1/endpoints`). Discovery by type, and owners' pages as others see them, are migration 12's.

use sea_orm_migration::prelude::*;

use crate::m20261126_000007_create_endpoints::Endpoints;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// `(name, columns)` of each index.
fn indexes() -> [(&'static str, Vec<Endpoints>); 3] {
    [
        (
            "idx_endpoints_discovery_name",
            vec![Endpoints::Visibility, Endpoints::IsActive, Endpoints::Name, Endpoints::Id],
        ),
        ("idx_endpoints_user_recent", vec![Endpoints::UserId, Endpoints::UpdatedAt, Endpoints::Id]),
        ("idx_endpoints_org_recent", vec![Endpoints::OrganizationId, Endpoints::UpdatedAt, Endpoints::Id]),
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
