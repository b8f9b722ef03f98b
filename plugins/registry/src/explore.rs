//! Browsing public endpoints with filters (kind, tag, owner kind), a sort order and a total for
//! pagination: what the web's explore and home pages ask. What is found is the same for every
//! viewer (public, active endpoints only), so it is kept in the discovery cache
//! ([`crate::listings`]). No HTTP types.

use std::sync::Arc;

use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr};
use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::entity::endpoint;
use crate::error::RegistryError;
use crate::listings::Discovered;
use crate::model::EndpointKind;
use crate::service::{RegistryService, newest_first};

/// Who owns the endpoints to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    /// Endpoints of users.
    User,
    /// Endpoints of organizations.
    Organization,
}

/// The order of an exploration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Most stars first, then newest change.
    #[default]
    Stars,
    /// Newest change first.
    Updated,
    /// By name, A to Z.
    Name,
}

/// Filters, order and page of an exploration.
#[derive(Debug, Clone, Default)]
pub struct Exploration {
    /// Only this kind.
    pub kind: Option<EndpointKind>,
    /// Only endpoints carrying this tag (exact, case-sensitive as stored).
    pub tag: Option<String>,
    /// Only endpoints of users or of organizations.
    pub owner_kind: Option<OwnerKind>,
    /// The order.
    pub sort: SortOrder,
    /// Offset.
    pub skip: u64,
    /// Page size.
    pub limit: u64,
}

impl RegistryService {
    /// Public endpoints matching the filters, in the asked order, and how many match in all.
    pub async fn explore(&self, exploration: &Exploration) -> Result<Arc<Discovered>, RegistryError> {
        self.discoveries()
            .fetch(format!("explore {exploration:?}"), async || self.explore_uncached(exploration).await)
            .await
    }

    async fn explore_uncached(&self, exploration: &Exploration) -> Result<Discovered, RegistryError> {
        let hidden = self.suspended_organizations().await?;
        let mut query = self.discoverable(exploration.kind, &hidden);
        if let Some(tag) = exploration.tag.as_deref().map(str::trim).filter(|tag| !tag.is_empty()) {
            // Tags are stored as a JSON array of strings: match the quoted, JSON-escaped tag,
            // LIKE wildcards in it taken literally.
            let quoted = serde_json::to_string(tag).unwrap_or_default();
            let pattern = format!("%{}%", quoted.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
            query = query.filter(Expr::col(endpoint::Column::Tags).like(LikeExpr::new(pattern).escape('\\')));
        }
        match exploration.owner_kind {
            Some(OwnerKind::User) => query = query.filter(endpoint::Column::UserId.is_not_null()),
            Some(OwnerKind::Organization) => query = query.filter(endpoint::Column::OrganizationId.is_not_null()),
            None => {}
        }
        let total = query.clone().count(self.connection()).await?;
        let query = match exploration.sort {
            SortOrder::Stars => newest_first(query.order_by_desc(endpoint::Column::StarsCount)),
            SortOrder::Updated => newest_first(query),
            SortOrder::Name => query.order_by_asc(endpoint::Column::Name).order_by_asc(endpoint::Column::Id),
        };
        let endpoints = query.offset(exploration.skip).limit(exploration.limit).all(self.connection()).await?;
        let owners = self.owner_names(&endpoints).await?;
        Ok(Discovered { endpoints, scores: Vec::new(), owners, total, stars: 0 })
    }
}
