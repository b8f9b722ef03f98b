//! The discovery search index, replacing `endpoints_fts` (SQLite) and `idx_endpoints_search`
//! (PostgreSQL): it holds exactly the endpoints anyone may discover (public and active), so a
//! search never joins `endpoints` to check visibility, and it answers "the newest matches" from
//! the index alone (see `plugins/registry/src/search.rs`).
//!
//! SQLite: `endpoint_search`, a contentless FTS5 table (`contentless_delete=1`) over name, tags,
//! description and README, plus `kind` (the endpoint type without `_`, for the type filter).
//! Triggers keep it in step inside the writing transaction: on insert, on delete, and on every
//! update of an indexed column, the type, the visibility or `is_active`. Prefix indexes for one
//! to three characters keep short prefix queries (`a*`) from merging every term's list.
//! PostgreSQL: the GIN index on `search_vector` becomes partial (public and active rows only).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261126_000007_create_endpoints::{POSTGRES_SEARCH, SQLITE_SEARCH};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements = match manager.get_database_backend() {
            DbBackend::Sqlite => SQLITE_UP,
            DbBackend::Postgres => POSTGRES_UP,
            _ => &[],
        };
        for statement in statements {
            manager.get_connection().execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Sqlite => {
                for statement in SQLITE_DOWN.iter().chain(SQLITE_SEARCH) {
                    db.execute_unprepared(statement).await?;
                }
                db.execute_unprepared("INSERT INTO endpoints_fts(endpoints_fts) VALUES ('rebuild')").await?;
            }
            DbBackend::Postgres => {
                db.execute_unprepared("DROP INDEX IF EXISTS idx_endpoints_discoverable_search").await?;
                // The last statement of the old set creates the plain GIN index.
                if let Some(index) = POSTGRES_SEARCH.last() {
                    db.execute_unprepared(index).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Which rows are indexed: what discovery shows (see `access.rs`).
macro_rules! discoverable {
    ($row:literal) => {
        concat!($row, ".visibility = 'public' AND ", $row, ".is_active")
    };
}

/// The indexed values of a row, in the table's column order.
macro_rules! indexed {
    ($row:literal) => {
        concat!(
            $row,
            ".id, ",
            $row,
            ".name, ",
            $row,
            ".tags, ",
            $row,
            ".description, ",
            $row,
            ".readme, replace(",
            $row,
            ".type, '_', '')"
        )
    };
}

pub(crate) const SQLITE_UP: &[&str] = &[
    "DROP TRIGGER IF EXISTS endpoints_fts_insert",
    "DROP TRIGGER IF EXISTS endpoints_fts_delete",
    "DROP TRIGGER IF EXISTS endpoints_fts_update",
    "DROP TABLE IF EXISTS endpoints_fts",
    "CREATE VIRTUAL TABLE endpoint_search USING fts5(name, tags, description, readme, kind, content='', \
       contentless_delete=1, prefix='1 2 3', tokenize='unicode61 remove_diacritics 2')",
    concat!(
        "CREATE TRIGGER endpoint_search_insert AFTER INSERT ON endpoints WHEN ",
        discoverable!("new"),
        " BEGIN INSERT INTO endpoint_search(rowid, name, tags, description, readme, kind) VALUES (",
        indexed!("new"),
        "); END"
    ),
    "CREATE TRIGGER endpoint_search_delete AFTER DELETE ON endpoints BEGIN \
       DELETE FROM endpoint_search WHERE rowid = old.id; END",
    concat!(
        "CREATE TRIGGER endpoint_search_update AFTER UPDATE OF name, tags, description, readme, type, visibility, \
         is_active ON endpoints BEGIN DELETE FROM endpoint_search WHERE rowid = old.id; \
         INSERT INTO endpoint_search(rowid, name, tags, description, readme, kind) SELECT ",
        indexed!("new"),
        " WHERE ",
        discoverable!("new"),
        "; END"
    ),
    concat!(
        "INSERT INTO endpoint_search(rowid, name, tags, description, readme, kind) SELECT ",
        indexed!("e"),
        " FROM endpoints e WHERE ",
        discoverable!("e")
    ),
];

pub(crate) const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS endpoint_search_insert",
    "DROP TRIGGER IF EXISTS endpoint_search_delete",
    "DROP TRIGGER IF EXISTS endpoint_search_update",
    "DROP TABLE IF EXISTS endpoint_search",
];

pub(crate) const POSTGRES_UP: &[&str] = &[
    "DROP INDEX IF EXISTS idx_endpoints_search",
    "CREATE INDEX idx_endpoints_discoverable_search ON endpoints USING GIN (search_vector) \
       WHERE visibility = 'public' AND is_active",
];
