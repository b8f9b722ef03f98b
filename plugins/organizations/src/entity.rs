//! SeaORM entities: `organizations`, `organization_members`.

/// `organizations`.
pub mod organization {
    use sea_orm::entity::prelude::*;

    /// An organization.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "organizations")]
    pub struct Model {
        /// Never reused.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Display name.
        pub name: String,
        /// URL slug, unique among organizations and usernames.
        #[sea_orm(unique)]
        pub slug: String,
        /// Description.
        pub description: String,
        /// Avatar URL.
        pub avatar_url: Option<String>,
        /// Suspended by a site administrator when false.
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

/// `organization_members`.
pub mod member {
    use sea_orm::entity::prelude::*;

    /// A membership.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "organization_members")]
    pub struct Model {
        /// Membership id.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The organization.
        pub organization_id: i64,
        /// The user.
        pub user_id: i64,
        /// `owner`, `admin` or `member`.
        pub role: String,
        /// Suspended by a site administrator when false (counts as no membership).
        pub is_active: bool,
        /// When the user joined.
        pub joined_at: DateTimeUtc,
    }

    /// No navigable relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
