//! SeaORM entity: `endpoint_stars`.

/// `endpoint_stars`.
pub mod star {
    use sea_orm::entity::prelude::*;

    /// A user's star on an endpoint.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "endpoint_stars")]
    pub struct Model {
        /// Row id.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Who starred.
        pub user_id: i64,
        /// What.
        pub endpoint_id: i64,
        /// When.
        pub starred_at: DateTimeUtc,
    }

    /// No navigable relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
