//! The one ordered schema history of thub: core tables and the built-in plugins' tables.
//!
//! Append-only: a landed migration is never edited or reordered; a change is a new migration.
//! Names follow `mYYYYMMDD_NNNNNN_<verb>_<noun>` (SeaORM takes the name from the file name).
//! Primary keys are never reused: `AUTOINCREMENT` on SQLite, identity sequences on PostgreSQL.

pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::prelude::*;

mod m20261126_000001_create_settings;
mod m20261126_000002_create_users;
mod m20261126_000003_create_sessions;
mod m20261126_000004_create_api_tokens;
mod m20261126_000005_create_signing_keys;
mod m20261126_000006_create_organizations;
mod m20261126_000007_create_endpoints;
mod m20261126_000008_create_endpoint_stars;
mod m20261126_000009_create_wasm_plugin_tables;
mod m20261130_000010_create_endpoint_search;
mod m20261130_000011_index_endpoint_orders;
mod m20261130_000012_index_endpoint_reads;
mod m20261201_000013_drop_endpoint_search;

/// Runs the migrations above, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_settings::Migration),
            Box::new(m20261126_000002_create_users::Migration),
            Box::new(m20261126_000003_create_sessions::Migration),
            Box::new(m20261126_000004_create_api_tokens::Migration),
            Box::new(m20261126_000005_create_signing_keys::Migration),
            Box::new(m20261126_000006_create_organizations::Migration),
            Box::new(m20261126_000007_create_endpoints::Migration),
            Box::new(m20261126_000008_create_endpoint_stars::Migration),
            Box::new(m20261126_000009_create_wasm_plugin_tables::Migration),
            Box::new(m20261130_000010_create_endpoint_search::Migration),
            Box::new(m20261130_000011_index_endpoint_orders::Migration),
            Box::new(m20261130_000012_index_endpoint_reads::Migration),
            Box::new(m20261201_000013_drop_endpoint_search::Migration),
        ]
    }
}
