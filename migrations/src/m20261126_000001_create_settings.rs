//! `settings`: host-wide values generated once and shared by every instance (the session-token
//! secret when none is configured).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Settings::Table)
                    .col(string_len(Settings::Key, 100).primary_key())
                    .col(text(Settings::Value))
                    .col(timestamp_with_time_zone(Settings::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Settings::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    Key,
    Value,
    CreatedAt,
}
