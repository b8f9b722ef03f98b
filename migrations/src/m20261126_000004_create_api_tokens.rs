//! `api_tokens`: personal access tokens (`syft_pat_…`), stored as SHA-256 hashes.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000002_create_users::Users;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .col(big_pk_auto(ApiTokens::Id))
                    .col(big_integer(ApiTokens::UserId))
                    .col(string_len(ApiTokens::Name, 100))
                    .col(string_len(ApiTokens::TokenPrefix, 20))
                    .col(string_len_uniq(ApiTokens::TokenHash, 64))
                    .col(text(ApiTokens::Scopes))
                    .col(timestamp_with_time_zone_null(ApiTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ApiTokens::LastUsedAt))
                    .col(string_len_null(ApiTokens::LastUsedIp, 64))
                    .col(boolean(ApiTokens::IsActive).default(true))
                    .col(timestamp_with_time_zone(ApiTokens::CreatedAt))
                    .col(timestamp_with_time_zone(ApiTokens::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiTokens::Table, ApiTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_tokens_user_id")
                    .table(ApiTokens::Table)
                    .col(ApiTokens::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ApiTokens::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    UserId,
    Name,
    TokenPrefix,
    TokenHash,
    Scopes,
    ExpiresAt,
    LastUsedAt,
    LastUsedIp,
    IsActive,
    CreatedAt,
    UpdatedAt,
}
