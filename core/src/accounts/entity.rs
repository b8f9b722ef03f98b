//! SeaORM entities of the core tables: users, sessions, API tokens, signing keys, settings.

/// `users`.
pub mod user {
    use sea_orm::entity::prelude::*;

    /// An account row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        /// Never reused.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Lowercase.
        #[sea_orm(unique)]
        pub username: String,
        /// Lowercase.
        #[sea_orm(unique)]
        pub email: String,
        /// Display name.
        pub full_name: String,
        /// Avatar URL.
        pub avatar_url: Option<String>,
        /// `admin`, `user` or `guest`.
        pub role: String,
        /// PHC string (argon2id), or `legacy-sha256$<salt hex>$<hash hex>` imported from Tufts Hub.
        pub password_hash: String,
        /// Deactivated accounts cannot log in.
        pub is_active: bool,
        /// Creation time.
        pub created_at: DateTimeUtc,
        /// Last change.
        pub updated_at: DateTimeUtc,
    }

    /// No navigable relations: other tables point here by foreign key.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `sessions`.
pub mod session {
    use sea_orm::entity::prelude::*;

    /// A login session (refresh-token family).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        /// UUID, carried as `sid` in access and refresh tokens.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Owner.
        pub user_id: i64,
        /// `jti` of the only refresh token that may be used next.
        pub refresh_jti: String,
        /// Login time.
        pub created_at: DateTimeUtc,
        /// Last refresh.
        pub refreshed_at: DateTimeUtc,
        /// When the current refresh token expires.
        pub expires_at: DateTimeUtc,
        /// Set when revoked; a revoked session's tokens are refused.
        pub revoked_at: Option<DateTimeUtc>,
        /// `logout`, `refresh_reuse`, `password_changed`, `deactivated`, `deleted`.
        pub revoked_reason: Option<String>,
    }

    /// No navigable relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `api_tokens`.
pub mod api_token {
    use sea_orm::entity::prelude::*;

    /// A personal access token.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_tokens")]
    pub struct Model {
        /// Never reused.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Owner.
        pub user_id: i64,
        /// User-chosen label.
        pub name: String,
        /// First characters of the token, to recognise it.
        pub token_prefix: String,
        /// SHA-256 hex of the whole token.
        #[sea_orm(unique)]
        pub token_hash: String,
        /// JSON array of scopes.
        pub scopes: String,
        /// Optional expiry.
        pub expires_at: Option<DateTimeUtc>,
        /// Last authenticated use (updated at most once a minute).
        pub last_used_at: Option<DateTimeUtc>,
        /// Client address of that use.
        pub last_used_ip: Option<String>,
        /// False once revoked.
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

/// `signing_keys`.
pub mod signing_key {
    use sea_orm::entity::prelude::*;

    /// An identity-provider signing key.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "signing_keys")]
    pub struct Model {
        /// Never reused; the newest unretired key signs.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// JWT `kid`.
        #[sea_orm(unique)]
        pub kid: String,
        /// Always `RS256`.
        pub algorithm: String,
        /// PKCS#1 DER of the private key, base64.
        pub private_key_der: String,
        /// Creation time.
        pub created_at: DateTimeUtc,
        /// When it stopped signing.
        pub retired_at: Option<DateTimeUtc>,
    }

    /// No navigable relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `settings`.
pub mod setting {
    use sea_orm::entity::prelude::*;

    /// A host-wide value.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "settings")]
    pub struct Model {
        /// Name.
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        /// Value.
        pub value: String,
        /// When it was first stored.
        pub created_at: DateTimeUtc,
    }

    /// No navigable relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
