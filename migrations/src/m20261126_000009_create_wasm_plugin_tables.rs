//! WebAssembly plugin host tables: `wasm_plugins` (the operator's enable switch, shared by every
//! instance and the CLI), `plugin_kv` (each plugin's key-value store) and `plugin_event_outbox`
//! (events waiting for delivery, so delivery is at least once and survives restarts).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WasmPlugins::Table)
                    .col(string_len(WasmPlugins::Id, 64).primary_key())
                    .col(boolean(WasmPlugins::Enabled).default(true))
                    .col(timestamp_with_time_zone(WasmPlugins::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PluginKv::Table)
                    .col(string_len(PluginKv::PluginId, 64))
                    .col(string_len(PluginKv::Key, 256))
                    .col(blob(PluginKv::Value))
                    .col(timestamp_with_time_zone(PluginKv::UpdatedAt))
                    .primary_key(Index::create().col(PluginKv::PluginId).col(PluginKv::Key))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PluginEventOutbox::Table)
                    .col(big_pk_auto(PluginEventOutbox::Id))
                    .col(string_len(PluginEventOutbox::PluginId, 64))
                    .col(text(PluginEventOutbox::Event))
                    .col(integer(PluginEventOutbox::Attempts).default(0))
                    .col(timestamp_with_time_zone(PluginEventOutbox::NextAttemptAt))
                    .col(text_null(PluginEventOutbox::LastError))
                    .col(boolean(PluginEventOutbox::Dead).default(false))
                    .col(timestamp_with_time_zone(PluginEventOutbox::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_plugin_event_outbox_due")
                    .table(PluginEventOutbox::Table)
                    .col(PluginEventOutbox::Dead)
                    .col(PluginEventOutbox::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PluginEventOutbox::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(PluginKv::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(WasmPlugins::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum WasmPlugins {
    Table,
    Id,
    Enabled,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PluginKv {
    Table,
    PluginId,
    Key,
    Value,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PluginEventOutbox {
    Table,
    Id,
    PluginId,
    Event,
    Attempts,
    NextAttemptAt,
    LastError,
    Dead,
    CreatedAt,
}
