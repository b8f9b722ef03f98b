//! Search moves out of the database: the registry keeps its own index in memory
//! (`plugins/registry/src/search.rs`), so the database's full-text indexes are dropped, and
//! with them the work every endpoint write did to keep them (triggers on SQLite, a generated
//! `tsvector` column with its GIN index on PostgreSQL).
//!
//! Down restores migration 10's state: the index, its triggers and, on PostgreSQL, the column.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261126_000007_create_endpoints::POSTGRES_SEARCH;
use crate::m20261130_000010_create_endpoint_search::{POSTGRES_UP, SQLITE_DOWN, SQLITE_UP};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements: &[&str] = match manager.get_database_backend() {
            DbBackend::Sqlite => SQLITE_DOWN,
            DbBackend::Postgres => &[
                "DROP INDEX IF EXISTS idx_endpoints_discoverable_search",
                "ALTER TABLE endpoints DROP COLUMN IF EXISTS search_vector",
            ],
            _ => &[],
        };
        for statement in statements {
            manager.get_connection().execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements: Vec<&str> = match manager.get_database_backend() {
            DbBackend::Sqlite => SQLITE_UP.to_vec(),
            // The column first (its GIN index from migration 7 goes again at once), then
            // migration 10's partial index.
            DbBackend::Postgres => POSTGRES_SEARCH.iter().chain(POSTGRES_UP).copied().collect(),
            _ => Vec::new(),
        };
        for statement in statements {
            manager.get_connection().execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
