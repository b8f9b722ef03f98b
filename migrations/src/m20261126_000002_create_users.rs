//! `users`: accounts. Usernames and emails are stored lowercase, so the unique indexes make
//! them unique case-insensitively.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(big_pk_auto(Users::Id))
                    .col(string_len_uniq(Users::Username, 50))
                    .col(string_len_uniq(Users::Email, 255))
                    .col(string_len(Users::FullName, 100))
                    .col(string_len_null(Users::AvatarUrl, 500))
                    .col(string_len(Users::Role, 20).default("user"))
                    .col(string_len(Users::PasswordHash, 255))
                    .col(boolean(Users::IsActive).default(true))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Users::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub(crate) enum Users {
    Table,
    Id,
    Username,
    Email,
    FullName,
    AvatarUrl,
    Role,
    PasswordHash,
    IsActive,
    CreatedAt,
    UpdatedAt,
}
