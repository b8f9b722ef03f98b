//! Endpoint rules: creation under a user or an organization, slugs, contributors, updates,
//! deletion, sync, listings, owner pages and search. No HTTP types.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select, Set,
};
use serde_json::{Value, json};
use thub_organizations::{OrganizationService, OrganizationSummary};
use thub_plugin_sdk::slug::{RESERVED_ENDPOINT_SLUGS, numbered_slug, slug_from_name, slug_problem};
use thub_plugin_sdk::storage::begin_write;
use thub_plugin_sdk::{AccountDirectory, Clock, EventBus, FieldError, Principal, Recorded, UserSummary};

use crate::access::Viewer;
use crate::config::RegistryConfig;
use crate::entity::endpoint;
use crate::error::RegistryError;
use crate::listings::{Discovered, ListingCache, Page, Weigh};
use crate::model::{self, EndpointDraft, EndpointKind, Problem, Visibility};
use crate::search::{self, SearchIndex};

type Result<T> = std::result::Result<T, RegistryError>;

/// Who owns endpoints at `/{owner}`.
#[derive(Debug, Clone)]
pub enum Owner {
    /// A user.
    User(UserSummary),
    /// An organization.
    Organization(OrganizationSummary),
}

impl Owner {
    /// The `/{owner}` path segment: username or organization slug.
    pub fn name(&self) -> &str {
        match self {
            Owner::User(user) => &user.username,
            Owner::Organization(organization) => &organization.slug,
        }
    }

    /// A display name: username, or the organization's name.
    pub fn display_name(&self) -> &str {
        match self {
            Owner::User(user) => &user.username,
            Owner::Organization(organization) => &organization.name,
        }
    }
}

impl Weigh for Option<Owner> {
    fn bytes(&self) -> usize {
        let text = match self {
            Some(Owner::User(user)) => user.username.len() + user.full_name.len(),
            Some(Owner::Organization(organization)) => {
                organization.slug.len() + organization.name.len() + organization.description.len()
            }
            None => 0,
        };
        text + 128
    }
}

/// Listing filters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Listing {
    /// Offset.
    pub skip: u64,
    /// Page size.
    pub limit: u64,
    /// Only this kind.
    pub kind: Option<EndpointKind>,
}

/// The registry.
pub struct RegistryService {
    db: DatabaseConnection,
    accounts: Arc<dyn AccountDirectory>,
    organizations: Arc<OrganizationService>,
    events: EventBus,
    clock: Arc<dyn Clock>,
    config: RegistryConfig,
    listings: Arc<ListingCache<Page>>,
    discoveries: Arc<ListingCache<Discovered>>,
    /// Owners by lowercase `/{owner}` name (`None`: nobody).
    owners: Arc<ListingCache<Option<Owner>>>,
    /// Endpoints by owner and slug, whoever may see them (`None`: no such endpoint).
    owned: Arc<ListingCache<Option<endpoint::Model>>>,
    /// The full-text search index of discoverable endpoints.
    index: Arc<SearchIndex>,
    /// [`OrganizationService::changes`] and [`AccountDirectory::user_changes`] when the caches
    /// were last checked against them.
    organization_changes_seen: AtomicU64,
    user_changes_seen: AtomicU64,
}

/// Field problems as a 422 list (`policies.0.type` → `["body", "policies", 0, "type"]`).
pub(crate) fn field_errors(problems: Vec<Problem>) -> Vec<FieldError> {
    problems
        .into_iter()
        .map(|(field, message)| {
            let mut loc = vec![Value::String("body".to_owned())];
            loc.extend(field.split('.').map(|part| match part.parse::<u64>() {
                Ok(index) => Value::from(index),
                Err(_) => Value::String(part.to_owned()),
            }));
            FieldError { kind: "value_error".to_owned(), loc, msg: message, input: Value::Null }
        })
        .collect()
}

fn json_list<T: serde::de::DeserializeOwned>(text: &str) -> Vec<T> {
    serde_json::from_str(text).unwrap_or_default()
}

impl RegistryService {
    /// The registry over the hub database.
    pub fn new(
        db: DatabaseConnection,
        accounts: Arc<dyn AccountDirectory>,
        organizations: Arc<OrganizationService>,
        events: EventBus,
        clock: Arc<dyn Clock>,
        config: RegistryConfig,
    ) -> Self {
        let (seconds, bytes) = (config.listing_cache_seconds, config.listing_cache_bytes);
        let listings = Arc::new(ListingCache::new(seconds, bytes, clock.clone()));
        let discoveries = Arc::new(ListingCache::new(seconds, bytes, clock.clone()));
        let owners = Arc::new(ListingCache::new(seconds, bytes, clock.clone()));
        let owned = Arc::new(ListingCache::new(seconds, bytes, clock.clone()));
        let index = Arc::new(SearchIndex::new(seconds, clock.clone()));
        let organization_changes_seen = AtomicU64::new(organizations.changes());
        let user_changes_seen = AtomicU64::new(accounts.user_changes());
        Self {
            db,
            accounts,
            organizations,
            events,
            clock,
            config,
            listings,
            discoveries,
            owners,
            owned,
            index,
            organization_changes_seen,
            user_changes_seen,
        }
    }

    /// The cache of anonymous public listings' answers.
    pub fn listings(&self) -> &Arc<ListingCache<Page>> {
        self.forget_stale();
        &self.listings
    }

    /// The cache of what discovery (explore, search) finds.
    pub(crate) fn discoveries(&self) -> &Arc<ListingCache<Discovered>> {
        self.forget_stale();
        &self.discoveries
    }

    /// Empties the caches when an organization or a user changed since they were last read
    /// (here, or for users also on another instance that announced it): no event tells of a
    /// suspension, a renamed user or an edited organization, and events on the bus arrive
    /// later, while the next read must already see the change. Emptied before the counts are
    /// recorded, so a reader arriving meanwhile finds them unrecorded and empties too.
    fn forget_stale(&self) {
        let organizations = self.organizations.changes();
        let users = self.accounts.user_changes();
        if self.organization_changes_seen.load(Ordering::SeqCst) != organizations
            || self.user_changes_seen.load(Ordering::SeqCst) != users
        {
            self.listings_changed();
            // A deleted owner took its endpoints along, which no refresh announced.
            self.index.doubt();
            self.organization_changes_seen.store(organizations, Ordering::SeqCst);
            self.user_changes_seen.store(users, Ordering::SeqCst);
        }
    }

    /// Empties the caches whenever an event is published on `events`; builds the search index
    /// meanwhile, so the first search does not wait for it.
    pub fn follow(&self, events: &EventBus) {
        self.listings.follow(events);
        self.discoveries.follow(events);
        self.owners.follow(events);
        self.owned.follow(events);
        let (index, db) = (self.index.clone(), self.db.clone());
        tokio::spawn(async move {
            if let Err(error) = index.catch_up(&db).await {
                tracing::warn!(%error, "building the search index failed; the first search tries again");
            }
        });
    }

    /// After a write's commit: empties the read caches and brings the search index up to date
    /// for the endpoints `ids` (created, changed or deleted).
    async fn written(&self, ids: &[i64]) {
        if let Err(error) = self.index.refresh(&self.db, ids).await {
            // The write stands; the next search compares the index with the database.
            tracing::warn!(%error, "refreshing the search index failed");
            self.index.doubt();
        }
        // After the refresh, so no answer found in the index as it was stays cached.
        self.listings_changed();
    }

    /// Tells the registry that what public listings show changed (a star, after its commit):
    /// empties every read cache.
    pub fn listings_changed(&self) {
        self.listings.clear();
        self.discoveries.clear();
        self.owners.clear();
        self.owned.clear();
    }

    /// The hub database (for sibling modules' queries).
    pub(crate) fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Ids of suspended organizations, whose endpoints are hidden from discovery.
    pub(crate) async fn suspended_organizations(&self) -> Result<Vec<i64>> {
        Ok(self.organizations.suspended_ids().await?)
    }

    /// The viewer for `principal`: inactive accounts count as anonymous.
    pub async fn viewer(&self, principal: Option<Principal>) -> Result<Viewer> {
        let Some(principal) = principal.filter(|principal| principal.is_active) else { return Ok(Viewer::anonymous()) };
        let roles = self.organizations.memberships_of(principal.user_id).await?.into_iter().collect();
        Ok(Viewer { principal: Some(principal), roles })
    }

    // ----- reading -----

    /// An endpoint the viewer may see, or `NotFound`.
    pub async fn visible(&self, viewer: &Viewer, id: i64) -> Result<endpoint::Model> {
        let endpoint = endpoint::Entity::find_by_id(id).one(&self.db).await?.ok_or(RegistryError::NotFound)?;
        let organization_active = self.organization_active(&endpoint).await?;
        if viewer.can_see(&endpoint, organization_active) { Ok(endpoint) } else { Err(RegistryError::NotFound) }
    }

    async fn organization_active(&self, endpoint: &endpoint::Model) -> Result<bool> {
        match endpoint.organization_id {
            None => Ok(true),
            Some(id) => Ok(self.organizations.by_id(id).await?.is_some_and(|organization| organization.is_active)),
        }
    }

    /// The caller's own (user-owned) endpoints, newest change first.
    pub async fn list_mine(
        &self,
        actor: &Principal,
        visibility: Option<Visibility>,
        text: Option<&str>,
        skip: u64,
        limit: u64,
    ) -> Result<Vec<endpoint::Model>> {
        let mut query = endpoint::Entity::find().filter(endpoint::Column::UserId.eq(actor.user_id));
        if let Some(visibility) = visibility {
            query = query.filter(endpoint::Column::Visibility.eq(visibility.as_str()));
        }
        if let Some(text) = text.map(str::trim).filter(|text| !text.is_empty()) {
            // LIKE wildcards in the term are matched literally.
            let pattern =
                format!("%{}%", text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
            let like = |column: endpoint::Column| {
                Expr::expr(Func::lower(Expr::col(column))).like(LikeExpr::new(pattern.clone()).escape('\\'))
            };
            query = query
                .filter(Condition::any().add(like(endpoint::Column::Name)).add(like(endpoint::Column::Description)));
        }
        Ok(newest_first(query).offset(skip).limit(limit).all(&self.db).await?)
    }

    pub(crate) fn discoverable(&self, kind: Option<EndpointKind>, hidden: &[i64]) -> Select<endpoint::Entity> {
        let mut query = endpoint::Entity::find()
            .filter(endpoint::Column::Visibility.eq(Visibility::Public.as_str()))
            .filter(endpoint::Column::IsActive.eq(true));
        if let Some(kind) = kind {
            query = query.filter(endpoint::Column::Kind.eq(kind.as_str()));
        }
        if !hidden.is_empty() {
            query = query.filter(
                Condition::any()
                    .add(endpoint::Column::OrganizationId.is_null())
                    .add(endpoint::Column::OrganizationId.is_not_in(hidden.to_vec())),
            );
        }
        query
    }

    /// Public endpoints of users and organizations, newest change first.
    pub async fn list_public(&self, listing: Listing) -> Result<Vec<endpoint::Model>> {
        let hidden = self.organizations.suspended_ids().await?;
        let query = newest_first(self.discoverable(listing.kind, &hidden));
        Ok(query.offset(listing.skip).limit(listing.limit).all(&self.db).await?)
    }

    /// Public endpoints by stars, then newest change.
    pub async fn trending(&self, listing: Listing, min_stars: Option<u64>) -> Result<Vec<endpoint::Model>> {
        let hidden = self.organizations.suspended_ids().await?;
        let mut query = self.discoverable(listing.kind, &hidden);
        if let Some(min_stars) = min_stars {
            query = query.filter(endpoint::Column::StarsCount.gte(min_stars as i64));
        }
        let query = query
            .order_by_desc(endpoint::Column::StarsCount)
            .order_by_desc(endpoint::Column::UpdatedAt)
            .order_by_desc(endpoint::Column::Id);
        Ok(query.offset(listing.skip).limit(listing.limit).all(&self.db).await?)
    }

    /// Full-text search over public endpoints: the best `top_k` with their relevance, best
    /// first, and the number of matches (counted up to [`search::RANKED_MATCHES`]), found in the
    /// search index ([`crate::search`]). Kept in the discovery cache by the query's words.
    pub async fn search(&self, text: &str, kind: Option<EndpointKind>, top_k: u64) -> Result<Arc<Discovered>> {
        let words = search::words(text);
        let key = format!("search {kind:?} {top_k} {}", words.join(" "));
        self.discoveries().fetch(key, async || self.search_uncached(&words, kind, top_k).await).await
    }

    async fn search_uncached(&self, words: &[String], kind: Option<EndpointKind>, top_k: u64) -> Result<Discovered> {
        let hidden = self.organizations.suspended_ids().await?;
        let limit = usize::try_from(top_k).unwrap_or(usize::MAX);
        let found = self.index.search(&self.db, words, kind, &hidden, limit).await?;
        let ids: Vec<i64> = found.hits.iter().map(|(id, _)| *id).collect();
        // Read with discovery's rule again: what another instance made private a moment ago
        // may still be in the index, and is left out.
        let mut stored: HashMap<i64, endpoint::Model> = self
            .discoverable(kind, &hidden)
            .filter(endpoint::Column::Id.is_in(ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|model| (model.id, model))
            .collect();
        let (endpoints, scores): (Vec<_>, Vec<_>) =
            found.hits.into_iter().filter_map(|(id, score)| Some((stored.remove(&id)?, score))).unzip();
        let owners = self.owner_names(&endpoints).await?;
        Ok(Discovered { endpoints, scores, owners, total: found.total, stars: 0 })
    }

    /// The owner at `/{name}`: a user (active or not), else an active organization. Kept in
    /// the read caches (owner pages ask twice: to claim the path, then to answer).
    pub async fn owner(&self, name: &str) -> Result<Option<Owner>> {
        self.forget_stale();
        let found = self
            .owners
            .fetch(name.to_lowercase(), async || {
                if let Some(user) = self.accounts.user_by_username(name).await? {
                    return Ok::<_, RegistryError>(Some(Owner::User(user)));
                }
                Ok(self.organizations.by_slug(name).await?.map(Owner::Organization))
            })
            .await?;
        Ok(found.as_ref().clone())
    }

    fn insider(viewer: &Viewer, owner: &Owner) -> bool {
        match owner {
            Owner::User(user) => viewer.user_id() == Some(user.id),
            Owner::Organization(organization) => viewer.role_in(organization.id).is_some(),
        }
    }

    /// The owner's endpoints the viewer may see, newest change first.
    pub async fn owner_endpoints(
        &self,
        viewer: &Viewer,
        owner: &Owner,
        skip: u64,
        limit: u64,
    ) -> Result<Vec<endpoint::Model>> {
        let query = Self::owner_visible(viewer, owner);
        Ok(newest_first(query).offset(skip).limit(limit).all(&self.db).await?)
    }

    /// A page of the owner's endpoints the viewer may see, newest change first, with how many
    /// there are and their stars together: what an owner's page shows. The same for every
    /// anonymous viewer, so theirs is kept in the discovery cache.
    pub async fn owner_listing(
        &self,
        viewer: &Viewer,
        owner: &Owner,
        skip: u64,
        limit: u64,
    ) -> Result<Arc<Discovered>> {
        let list = async || {
            let (total, stars) = self.owner_totals(viewer, owner).await?;
            let endpoints = self.owner_endpoints(viewer, owner, skip, limit).await?;
            let owners = endpoints.iter().map(|model| (model.id, owner.name().to_owned())).collect();
            Ok(Discovered { endpoints, scores: Vec::new(), owners, total, stars })
        };
        if viewer.user_id().is_some() {
            return Ok(Arc::new(list().await?));
        }
        let key = match owner {
            Owner::User(user) => format!("owner user {} {skip} {limit}", user.id),
            Owner::Organization(organization) => format!("owner organization {} {skip} {limit}", organization.id),
        };
        self.discoveries().fetch(key, list).await
    }

    /// How many of the owner's endpoints the viewer may see, and their stars together.
    async fn owner_totals(&self, viewer: &Viewer, owner: &Owner) -> Result<(u64, i64)> {
        let totals: Option<(i64, Option<i64>)> = Self::owner_visible(viewer, owner)
            .select_only()
            .column_as(endpoint::Column::Id.count(), "endpoints")
            .column_as(Expr::col(endpoint::Column::StarsCount).sum().cast_as("BIGINT"), "stars")
            .into_tuple()
            .one(&self.db)
            .await?;
        let (endpoints, stars) = totals.unwrap_or_default();
        Ok((u64::try_from(endpoints).unwrap_or_default(), stars.unwrap_or_default()))
    }

    fn owner_visible(viewer: &Viewer, owner: &Owner) -> Select<endpoint::Entity> {
        let kinds: Vec<&str> =
            viewer.visible_kinds(Self::insider(viewer, owner)).iter().map(|kind| kind.as_str()).collect();
        let mut query = owned_by(owner).filter(endpoint::Column::Visibility.is_in(kinds));
        if !viewer.is_admin() {
            query = query.filter(endpoint::Column::IsActive.eq(true));
        }
        query
    }

    /// The owner's endpoint with this slug, whoever may see it.
    pub async fn owner_endpoint(&self, owner: &Owner, slug: &str) -> Result<Option<endpoint::Model>> {
        self.forget_stale();
        let slug = slug.to_lowercase();
        let key = match owner {
            Owner::User(user) => format!("user {} {slug}", user.id),
            Owner::Organization(organization) => format!("organization {} {slug}", organization.id),
        };
        let found = self
            .owned
            .fetch(key, async || {
                Ok::<_, RegistryError>(owned_by(owner).filter(endpoint::Column::Slug.eq(&slug)).one(&self.db).await?)
            })
            .await?;
        Ok(found.as_ref().clone())
    }

    /// `/{owner}` names of these endpoints' owners: usernames and organization slugs.
    pub async fn owner_names(&self, endpoints: &[endpoint::Model]) -> Result<HashMap<i64, String>> {
        let user_ids: Vec<i64> =
            endpoints.iter().filter_map(|endpoint| endpoint.user_id).collect::<HashSet<_>>().into_iter().collect();
        let organization_ids: Vec<i64> = endpoints
            .iter()
            .filter_map(|endpoint| endpoint.organization_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let users: HashMap<i64, String> =
            self.accounts.users_by_ids(&user_ids).await?.into_iter().map(|user| (user.id, user.username)).collect();
        let organizations: HashMap<i64, String> = self
            .organizations
            .by_ids(organization_ids)
            .await?
            .into_iter()
            .map(|organization| (organization.id, organization.slug))
            .collect();
        Ok(endpoints
            .iter()
            .filter_map(|endpoint| {
                let name = match (endpoint.user_id, endpoint.organization_id) {
                    (Some(user), _) => users.get(&user)?,
                    (_, Some(organization)) => organizations.get(&organization)?,
                    _ => return None,
                };
                Some((endpoint.id, name.clone()))
            })
            .collect())
    }

    // ----- writing -----

    /// Creates an endpoint owned by the caller, or by `organization_id` if given (any active
    /// member may create one there).
    pub async fn create(
        &self,
        actor: &Principal,
        draft: EndpointDraft,
        organization_id: Option<i64>,
    ) -> Result<endpoint::Model> {
        let organization_id = organization_id.filter(|id| *id != 0);
        if let Some(organization_id) = organization_id {
            let active =
                self.organizations.by_id(organization_id).await?.is_some_and(|organization| organization.is_active);
            if !active || self.organizations.role_of(organization_id, actor.user_id).await?.is_none() {
                return Err(RegistryError::NotMember);
            }
        }
        let checked = model::check(&draft, &self.config, true)
            .map_err(|problems| RegistryError::Validation(field_errors(problems)))?;
        if let Some(slug) = &draft.slug
            && let Some(problem) = slug_problem(slug, &[RESERVED_ENDPOINT_SLUGS])
        {
            return Err(RegistryError::Validation(field_errors(vec![("slug".to_owned(), problem)])));
        }
        let owner = match organization_id {
            Some(id) => (None, Some(id)),
            None => (Some(actor.user_id), None),
        };
        // A slug made from the name can be taken by a create committed meanwhile (PostgreSQL
        // runs such transactions side by side; SQLite's take turns): pick again. Creates racing
        // for one name all pick the same free slug and one of them wins each round, so n racers
        // are done within n rounds; past `SLUG_ROUNDS` the caller gets the 400 and may retry.
        const SLUG_ROUNDS: u32 = 32;
        let mut attempts = 0;
        loop {
            let transaction = begin_write(&self.db).await?;
            let created = match self.insert(&transaction, owner, &draft, checked.clone()).await {
                Err(RegistryError::SlugTaken) if draft.slug.is_none() && attempts + 1 < SLUG_ROUNDS => {
                    attempts += 1;
                    continue;
                }
                created => created?,
            };
            let event = self.record(&transaction, "endpoint.created", &created).await?;
            transaction.commit().await?;
            self.written(&[created.id]).await;
            event.publish();
            return Ok(created);
        }
    }

    /// The field problems `draft` has, as a 422 list would carry them (for forms that show every
    /// message at once).
    pub fn check_draft(&self, draft: &EndpointDraft, creating: bool) -> std::result::Result<(), Vec<FieldError>> {
        model::check(draft, &self.config, creating).map(|_| ()).map_err(field_errors)
    }

    /// Changes an endpoint the caller manages.
    pub async fn update(&self, actor: &Principal, id: i64, draft: EndpointDraft) -> Result<endpoint::Model> {
        let viewer = self.viewer(Some(actor.clone())).await?;
        let current = self.visible(&viewer, id).await?;
        if !viewer.can_manage(&current) {
            return Err(RegistryError::Forbidden);
        }
        let checked = model::check(&draft, &self.config, false)
            .map_err(|problems| RegistryError::Validation(field_errors(problems)))?;
        let mut changed: endpoint::ActiveModel = current.clone().into();
        if let Some(name) = checked.name {
            changed.name = Set(name);
        }
        if let Some(description) = checked.description {
            changed.description = Set(description);
        }
        if let Some(visibility) = draft.visibility {
            changed.visibility = Set(visibility.as_str().to_owned());
        }
        if let Some(kind) = draft.kind {
            changed.kind = Set(kind.as_str().to_owned());
        }
        if let Some(version) = checked.version {
            changed.version = Set(version);
        }
        if let Some(readme) = checked.readme {
            changed.readme = Set(readme);
        }
        if let Some(tags) = checked.tags {
            changed.tags = Set(json!(tags).to_string());
        }
        if let Some(policies) = checked.policies {
            changed.policies = Set(Value::Array(policies).to_string());
        }
        if let Some(connect) = checked.connect {
            changed.connect = Set(Value::Array(connect).to_string());
        }
        if let Some(contributors) = &draft.contributors {
            changed.contributors = Set(json!(self.contributors(contributors, current.user_id).await?).to_string());
        }
        changed.updated_at = Set(self.clock.now());
        let transaction = begin_write(&self.db).await?;
        let updated = changed.update(&transaction).await?;
        let event = self.record(&transaction, "endpoint.updated", &updated).await?;
        transaction.commit().await?;
        self.written(&[updated.id]).await;
        event.publish();
        Ok(updated)
    }

    /// Deletes an endpoint the caller manages (its stars go with it; its slug is free again).
    pub async fn delete(&self, actor: &Principal, id: i64) -> Result<()> {
        let viewer = self.viewer(Some(actor.clone())).await?;
        let current = self.visible(&viewer, id).await?;
        if !viewer.can_manage(&current) {
            return Err(RegistryError::Forbidden);
        }
        let transaction = begin_write(&self.db).await?;
        endpoint::Entity::delete_by_id(id).exec(&transaction).await?;
        let event = self.record(&transaction, "endpoint.deleted", &current).await?;
        transaction.commit().await?;
        self.written(&[id]).await;
        event.publish();
        Ok(())
    }

    /// The id of the caller's own endpoint with this slug (SDK 0.3.1's `slug/{slug}` routes).
    pub async fn own_endpoint_id(&self, actor: &Principal, slug: &str) -> Result<i64> {
        let found = endpoint::Entity::find()
            .filter(endpoint::Column::UserId.eq(actor.user_id))
            .filter(endpoint::Column::Slug.eq(slug.to_lowercase()))
            .one(&self.db)
            .await?;
        found.map(|endpoint| endpoint.id).ok_or(RegistryError::NotFound)
    }

    /// Replaces all the caller's own endpoints with `drafts`, atomically: all are checked first,
    /// then the old ones are deleted and the new ones created in one transaction. Returns
    /// `(created, deleted count)`.
    pub async fn sync(&self, actor: &Principal, drafts: Vec<EndpointDraft>) -> Result<(Vec<endpoint::Model>, u64)> {
        let mut problems: Vec<(usize, String, String)> = Vec::new();
        if drafts.len() > self.config.max_sync_endpoints {
            problems.push((
                self.config.max_sync_endpoints,
                "endpoints".to_owned(),
                format!("At most {} endpoints per sync", self.config.max_sync_endpoints),
            ));
            return Err(RegistryError::SyncInvalid(problems));
        }
        let mut checked_all = Vec::with_capacity(drafts.len());
        let mut explicit = HashSet::new();
        for (index, draft) in drafts.iter().enumerate() {
            match model::check(draft, &self.config, true) {
                Ok(checked) => checked_all.push(checked),
                Err(found) => problems.extend(found.into_iter().map(|(field, error)| (index, field, error))),
            }
            if let Some(slug) = &draft.slug {
                if let Some(problem) = slug_problem(slug, &[RESERVED_ENDPOINT_SLUGS]) {
                    problems.push((index, "slug".to_owned(), problem));
                } else if !explicit.insert(slug.clone()) {
                    problems.push((index, "slug".to_owned(), format!("Slug '{slug}' appears twice in this sync")));
                }
            }
        }
        if !problems.is_empty() {
            return Err(RegistryError::SyncInvalid(problems));
        }
        let transaction = begin_write(&self.db).await?;
        let replaced: Vec<i64> = endpoint::Entity::find()
            .select_only()
            .column(endpoint::Column::Id)
            .filter(endpoint::Column::UserId.eq(actor.user_id))
            .into_tuple()
            .all(&transaction)
            .await?;
        let deleted = endpoint::Entity::delete_many()
            .filter(endpoint::Column::UserId.eq(actor.user_id))
            .exec(&transaction)
            .await?
            .rows_affected;
        let mut created = Vec::with_capacity(drafts.len());
        // Explicit slugs first, so generated ones never take a slug asked for later in the batch.
        let mut order: Vec<usize> = (0..drafts.len()).collect();
        order.sort_by_key(|index| drafts[*index].slug.is_none());
        let mut by_index: Vec<Option<endpoint::Model>> = vec![None; drafts.len()];
        for index in order {
            let model = self
                .insert(&transaction, (Some(actor.user_id), None), &drafts[index], checked_all[index].clone())
                .await?;
            by_index[index] = Some(model);
        }
        created.extend(by_index.into_iter().flatten());
        let event = json!({"user_id": actor.user_id, "created": created.len(), "deleted": deleted});
        let event = self.events.record(&transaction, "endpoint.synced", event).await?;
        transaction.commit().await?;
        let touched: Vec<i64> = replaced.into_iter().chain(created.iter().map(|model| model.id)).collect();
        self.written(&touched).await;
        event.publish();
        Ok((created, deleted))
    }

    /// Site administrators suspend or restore an endpoint, or correct its star count.
    pub async fn admin_update(
        &self,
        id: i64,
        is_active: Option<bool>,
        stars_count: Option<u64>,
    ) -> Result<endpoint::Model> {
        let current = endpoint::Entity::find_by_id(id).one(&self.db).await?.ok_or(RegistryError::NotFound)?;
        let mut changed: endpoint::ActiveModel = current.into();
        if let Some(is_active) = is_active {
            changed.is_active = Set(is_active);
        }
        if let Some(stars_count) = stars_count {
            changed.stars_count = Set(stars_count as i64);
        }
        changed.updated_at = Set(self.clock.now());
        let transaction = begin_write(&self.db).await?;
        let updated = changed.update(&transaction).await?;
        let event = self.record(&transaction, "endpoint.updated", &updated).await?;
        transaction.commit().await?;
        self.written(&[updated.id]).await;
        event.publish();
        Ok(updated)
    }

    /// Adds `delta` to an endpoint's star count inside the stars plugin's transaction. The
    /// increment happens in SQL, so concurrent stars never lose an update.
    pub async fn add_stars(
        &self,
        transaction: &DatabaseTransaction,
        id: i64,
        delta: i64,
    ) -> std::result::Result<(), sea_orm::DbErr> {
        endpoint::Entity::update_many()
            .col_expr(endpoint::Column::StarsCount, Expr::col(endpoint::Column::StarsCount).add(delta))
            .filter(endpoint::Column::Id.eq(id))
            .exec(transaction)
            .await?;
        Ok(())
    }

    // ----- helpers -----

    async fn insert(
        &self,
        db: &impl ConnectionTrait,
        owner: (Option<i64>, Option<i64>),
        draft: &EndpointDraft,
        checked: model::CheckedFields,
    ) -> Result<endpoint::Model> {
        let name = checked.name.unwrap_or_default();
        let slug = match &draft.slug {
            Some(slug) => {
                if self.slug_used(db, owner, slug).await? {
                    return Err(RegistryError::SlugTaken);
                }
                slug.clone()
            }
            None => self.free_slug(db, owner, &slug_from_name(&name, "endpoint")).await?,
        };
        let contributors = self.contributors(draft.contributors.as_deref().unwrap_or_default(), owner.0).await?;
        let now = self.clock.now();
        endpoint::ActiveModel {
            user_id: Set(owner.0),
            organization_id: Set(owner.1),
            name: Set(name),
            slug: Set(slug),
            description: Set(checked.description.unwrap_or_default()),
            kind: Set(draft.kind.unwrap_or(EndpointKind::Model).as_str().to_owned()),
            visibility: Set(draft.visibility.unwrap_or(Visibility::Public).as_str().to_owned()),
            version: Set(checked.version.unwrap_or_else(|| "0.1.0".to_owned())),
            readme: Set(checked.readme.unwrap_or_default()),
            tags: Set(json!(checked.tags.unwrap_or_default()).to_string()),
            contributors: Set(json!(contributors).to_string()),
            policies: Set(Value::Array(checked.policies.unwrap_or_default()).to_string()),
            connect: Set(Value::Array(checked.connect.unwrap_or_default()).to_string()),
            stars_count: Set(0),
            is_active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(db)
        .await
        .map_err(|error| match error.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => RegistryError::SlugTaken,
            _ => RegistryError::Database(error),
        })
    }

    async fn slug_used(
        &self,
        db: &impl ConnectionTrait,
        owner: (Option<i64>, Option<i64>),
        slug: &str,
    ) -> Result<bool> {
        let query = match owner {
            (Some(user), _) => endpoint::Entity::find().filter(endpoint::Column::UserId.eq(user)),
            (_, Some(organization)) => {
                endpoint::Entity::find().filter(endpoint::Column::OrganizationId.eq(organization))
            }
            _ => return Ok(false),
        };
        Ok(query.filter(endpoint::Column::Slug.eq(slug)).count(db).await? > 0)
    }

    async fn free_slug(
        &self,
        db: &impl ConnectionTrait,
        owner: (Option<i64>, Option<i64>),
        base: &str,
    ) -> Result<String> {
        let usable = |slug: &str| slug_problem(slug, &[RESERVED_ENDPOINT_SLUGS]).is_none();
        if usable(base) && !self.slug_used(db, owner, base).await? {
            return Ok(base.to_owned());
        }
        for number in 1..=999 {
            let candidate = numbered_slug(base, number);
            if usable(&candidate) && !self.slug_used(db, owner, &candidate).await? {
                return Ok(candidate);
            }
        }
        Ok(numbered_slug(base, (self.clock.now().timestamp() % 1_000_000) as u32))
    }

    /// Contributors: existing, active users, de-duplicated in order; a user owner is added.
    async fn contributors(&self, requested: &[i64], owner: Option<i64>) -> Result<Vec<i64>> {
        let mut unique: Vec<i64> = Vec::new();
        for id in requested {
            if !unique.contains(id) {
                unique.push(*id);
            }
        }
        let active: HashSet<i64> = self
            .accounts
            .users_by_ids(&unique)
            .await?
            .into_iter()
            .filter(|user| user.is_active)
            .map(|user| user.id)
            .collect();
        let mut kept: Vec<i64> = unique.into_iter().filter(|id| active.contains(id)).collect();
        if let Some(owner) = owner
            && !kept.contains(&owner)
        {
            kept.push(owner);
        }
        Ok(kept)
    }

    /// Records an endpoint event in the transaction of its change.
    async fn record(
        &self,
        transaction: &DatabaseTransaction,
        kind: &str,
        endpoint: &endpoint::Model,
    ) -> Result<Recorded> {
        let data = json!({
            "endpoint_id": endpoint.id,
            "slug": endpoint.slug,
            "user_id": endpoint.user_id,
            "organization_id": endpoint.organization_id,
            "visibility": endpoint.visibility,
        });
        Ok(self.events.record(transaction, kind, data).await?)
    }
}

fn owned_by(owner: &Owner) -> Select<endpoint::Entity> {
    match owner {
        Owner::User(user) => endpoint::Entity::find().filter(endpoint::Column::UserId.eq(user.id)),
        Owner::Organization(organization) => {
            endpoint::Entity::find().filter(endpoint::Column::OrganizationId.eq(organization.id))
        }
    }
}

pub(crate) fn newest_first(query: Select<endpoint::Entity>) -> Select<endpoint::Entity> {
    query.order_by_desc(endpoint::Column::UpdatedAt).order_by_desc(endpoint::Column::Id)
}

/// Decoded list columns of an endpoint.
pub fn tags_of(endpoint: &endpoint::Model) -> Vec<String> {
    json_list(&endpoint.tags)
}

/// Contributor ids of an endpoint.
pub fn contributors_of(endpoint: &endpoint::Model) -> Vec<i64> {
    json_list(&endpoint.contributors)
}

/// Policies of an endpoint.
pub fn policies_of(endpoint: &endpoint::Model) -> Vec<Value> {
    json_list(&endpoint.policies)
}

/// Connections of an endpoint.
pub fn connections_of(endpoint: &endpoint::Model) -> Vec<Value> {
    json_list(&endpoint.connect)
}
