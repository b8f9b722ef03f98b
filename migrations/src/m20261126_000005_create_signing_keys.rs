//! `signing_keys`: the identity provider's RS256 keys. The newest unretired key signs; retired
//! keys stay in the JWKS until `retired_at` + overlap so tokens they signed still verify.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .col(big_pk_auto(SigningKeys::Id))
                    .col(string_len_uniq(SigningKeys::Kid, 64))
                    .col(string_len(SigningKeys::Algorithm, 10))
                    .col(text(SigningKeys::PrivateKeyDer))
                    .col(timestamp_with_time_zone(SigningKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(SigningKeys::RetiredAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(SigningKeys::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Id,
    Kid,
    Algorithm,
    PrivateKeyDer,
    CreatedAt,
    RetiredAt,
}
