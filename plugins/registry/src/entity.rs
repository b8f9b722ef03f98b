//! SeaORM entity: `endpoints`.

/// `endpoints`.
pub mod endpoint {
    use sea_orm::entity::prelude::*;

    /// An AI/ML endpoint: a model, a data source, both, or an agent.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "endpoints")]
    pub struct Model {
        /// Never reused.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Owning user (exactly one of user and organization is set).
        pub user_id: Option<i64>,
        /// Owning organization.
        pub organization_id: Option<i64>,
        /// Display name.
        pub name: String,
        /// URL slug, unique per owner.
        pub slug: String,
        /// Short description.
        pub description: String,
        /// `model`, `data_source`, `model_data_source`, `agent`.
        #[sea_orm(column_name = "type")]
        pub kind: String,
        /// `public`, `internal`, `private`.
        pub visibility: String,
        /// Semantic version.
        pub version: String,
        /// Markdown.
        pub readme: String,
        /// JSON array of tags.
        pub tags: String,
        /// JSON array of contributor user ids.
        pub contributors: String,
        /// JSON array of policies.
        pub policies: String,
        /// JSON array of connections.
        pub connect: String,
        /// Denormalised star count, kept by the stars plugin in the same transaction as its rows.
        pub stars_count: i64,
        /// False when suspended by a site administrator.
        pub is_active: bool,
        /// Creation time.
        pub created_at: DateTimeUtc,
        /// Last change.
        pub updated_at: DateTimeUtc,
    }

    /// No navigable relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
