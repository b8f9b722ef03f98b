//! `endpoint_stars` (stars plugin): one row per (user, endpoint). The endpoint's
//! `stars_count` is kept in step in the same transaction as every change here.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000002_create_users::Users;
use crate::m20261126_000007_create_endpoints::Endpoints;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EndpointStars::Table)
                    .col(big_pk_auto(EndpointStars::Id))
                    .col(big_integer(EndpointStars::UserId))
                    .col(big_integer(EndpointStars::EndpointId))
                    .col(timestamp_with_time_zone(EndpointStars::StarredAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(EndpointStars::Table, EndpointStars::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(EndpointStars::Table, EndpointStars::EndpointId)
                            .to(Endpoints::Table, Endpoints::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_endpoint_stars_pair")
                    .table(EndpointStars::Table)
                    .col(EndpointStars::UserId)
                    .col(EndpointStars::EndpointId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_endpoint_stars_endpoint")
                    .table(EndpointStars::Table)
                    .col(EndpointStars::EndpointId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(EndpointStars::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum EndpointStars {
    Table,
    Id,
    UserId,
    EndpointId,
    StarredAt,
}
