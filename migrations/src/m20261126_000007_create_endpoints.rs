//! `endpoints` (registry plugin) with its full-text index: an FTS5 table kept in step by
//! triggers on SQLite, a generated, GIN-indexed `tsvector` column on PostgreSQL. Both index name,
//! description, tags and README with the language-neutral tokenizers (`unicode61`, `simple`).

use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000002_create_users::Users;
use crate::m20261126_000006_create_organizations::Organizations;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Endpoints::Table)
                    .col(big_pk_auto(Endpoints::Id))
                    .col(big_integer_null(Endpoints::UserId))
                    .col(big_integer_null(Endpoints::OrganizationId))
                    .col(string_len(Endpoints::Name, 100))
                    .col(string_len(Endpoints::Slug, 63))
                    .col(text(Endpoints::Description))
                    .col(string_len(Endpoints::Kind, 30))
                    .col(string_len(Endpoints::Visibility, 20))
                    .col(string_len(Endpoints::Version, 50))
                    .col(text(Endpoints::Readme))
                    .col(text(Endpoints::Tags))
                    .col(text(Endpoints::Contributors))
                    .col(text(Endpoints::Policies))
                    .col(text(Endpoints::Connect))
                    .col(big_integer(Endpoints::StarsCount).default(0))
                    .col(boolean(Endpoints::IsActive).default(true))
                    .col(timestamp_with_time_zone(Endpoints::CreatedAt))
                    .col(timestamp_with_time_zone(Endpoints::UpdatedAt))
                    .check(
                        Expr::col(Endpoints::UserId)
                            .is_null()
                            .and(Expr::col(Endpoints::OrganizationId).is_not_null())
                            .or(Expr::col(Endpoints::UserId)
                                .is_not_null()
                                .and(Expr::col(Endpoints::OrganizationId).is_null())),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Endpoints::Table, Endpoints::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Endpoints::Table, Endpoints::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, owner) in
            [("idx_endpoints_user_slug", Endpoints::UserId), ("idx_endpoints_org_slug", Endpoints::OrganizationId)]
        {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Endpoints::Table)
                        .col(owner)
                        .col(Endpoints::Slug)
                        .unique()
                        .to_owned(),
                )
                .await?;
        }
        // Discovery reads public, active endpoints by recency or by stars: index those orders.
        let discovery = [
            ("idx_endpoints_discovery_recent", vec![Endpoints::UpdatedAt, Endpoints::Id]),
            ("idx_endpoints_discovery_stars", vec![Endpoints::StarsCount, Endpoints::UpdatedAt, Endpoints::Id]),
        ];
        for (name, order) in discovery {
            let mut index = Index::create();
            index.name(name).table(Endpoints::Table).col(Endpoints::Visibility).col(Endpoints::IsActive);
            for column in order {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Sqlite => {
                for statement in SQLITE_SEARCH {
                    db.execute_unprepared(statement).await?;
                }
            }
            DbBackend::Postgres => {
                for statement in POSTGRES_SEARCH {
                    db.execute_unprepared(statement).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Sqlite {
            manager.get_connection().execute_unprepared("DROP TABLE IF EXISTS endpoints_fts").await?;
        }
        manager.drop_table(Table::drop().table(Endpoints::Table).to_owned()).await
    }
}

pub(crate) const SQLITE_SEARCH: &[&str] = &[
    "CREATE VIRTUAL TABLE endpoints_fts USING fts5(name, description, tags, readme, content='endpoints', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER endpoints_fts_insert AFTER INSERT ON endpoints BEGIN \
       INSERT INTO endpoints_fts(rowid, name, description, tags, readme) VALUES (new.id, new.name, new.description, new.tags, new.readme); END",
    "CREATE TRIGGER endpoints_fts_delete AFTER DELETE ON endpoints BEGIN \
       INSERT INTO endpoints_fts(endpoints_fts, rowid, name, description, tags, readme) VALUES ('delete', old.id, old.name, old.description, old.tags, old.readme); END",
    "CREATE TRIGGER endpoints_fts_update AFTER UPDATE OF name, description, tags, readme ON endpoints BEGIN \
       INSERT INTO endpoints_fts(endpoints_fts, rowid, name, description, tags, readme) VALUES ('delete', old.id, old.name, old.description, old.tags, old.readme); \
       INSERT INTO endpoints_fts(rowid, name, description, tags, readme) VALUES (new.id, new.name, new.description, new.tags, new.readme); END",
];

pub(crate) const POSTGRES_SEARCH: &[&str] = &[
    "ALTER TABLE endpoints ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ( \
       setweight(to_tsvector('simple', coalesce(name, '')), 'A') || \
       setweight(to_tsvector('simple', coalesce(description, '')), 'B') || \
       setweight(to_tsvector('simple', coalesce(tags, '')), 'B') || \
       setweight(to_tsvector('simple', coalesce(readme, '')), 'C')) STORED",
    "CREATE INDEX idx_endpoints_search ON endpoints USING GIN (search_vector)",
];

#[derive(DeriveIden)]
pub(crate) enum Endpoints {
    Table,
    Id,
    UserId,
    OrganizationId,
    Name,
    Slug,
    Description,
    #[sea_orm(iden = "type")]
    Kind,
    Visibility,
    Version,
    Readme,
    Tags,
    Contributors,
    Policies,
    Connect,
    StarsCount,
    IsActive,
    CreatedAt,
    UpdatedAt,
}
