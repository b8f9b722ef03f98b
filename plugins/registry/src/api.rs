//! `/api/v1/endpoints`: parse → authorize → call the service → map the error. The only module
//! of this plugin that knows HTTP (besides the owner pages in `pages`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use serde_json::Value;
use thub_plugin_sdk::slug::EndpointSlug;
use thub_plugin_sdk::text::{Description, Name};
use thub_plugin_sdk::{
    AdminUser, ApiError, BoundedList, Count, CurrentUser, Declared, Limit, MaybeUser, NoContent, Required,
};

use crate::entity::endpoint;
use crate::listings::{CachedJson, Page, to_json_bytes};
use crate::model::{
    ConnectionItem, EndpointDraft, EndpointKind, MAX_CONTRIBUTORS, MAX_TAGS, PolicyItem, Readme, SemanticVersion, Tag,
    Visibility,
};
use crate::service::{Listing, RegistryService, connections_of, contributors_of, policies_of, tags_of};

#[derive(Tags)]
enum RegistryTags {
    /// AI/ML endpoints: create, discover, search.
    #[oai(rename = "registry")]
    Registry,
}

/// An endpoint with every detail (owners, members and site administrators; by id, anyone who
/// may see it).
#[derive(Debug, Object)]
pub struct EndpointResponse {
    /// Endpoint id.
    pub id: i64,
    /// Owning user, or null for an organization's endpoint.
    pub user_id: Option<i64>,
    /// Owning organization, or null.
    pub organization_id: Option<i64>,
    /// Display name.
    pub name: String,
    /// URL slug.
    pub slug: String,
    /// Description.
    pub description: String,
    /// Kind.
    #[oai(rename = "type")]
    pub kind: EndpointKind,
    /// Who sees it.
    pub visibility: Visibility,
    /// False when suspended by a site administrator.
    pub is_active: bool,
    /// Contributor user ids.
    pub contributors: Vec<i64>,
    /// Semantic version.
    pub version: String,
    /// Markdown README.
    pub readme: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Stars.
    pub stars_count: i64,
    /// Policies (`type`, `version`, `enabled`, `description`, `config`).
    pub policies: Vec<Value>,
    /// Connections (`type`, `enabled`, `description`, `config`).
    pub connect: Vec<Value>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<endpoint::Model> for EndpointResponse {
    fn from(model: endpoint::Model) -> Self {
        Self {
            id: model.id,
            user_id: model.user_id,
            organization_id: model.organization_id,
            contributors: contributors_of(&model),
            tags: tags_of(&model),
            policies: policies_of(&model),
            connect: connections_of(&model),
            kind: EndpointKind::parse(&model.kind).unwrap_or(EndpointKind::Model),
            visibility: Visibility::parse(&model.visibility).unwrap_or(Visibility::Private),
            name: model.name,
            slug: model.slug,
            description: model.description,
            is_active: model.is_active,
            version: model.version,
            readme: model.readme,
            stars_count: model.stars_count,
            created_at: model.created_at,
            updated_at: model.updated_at,
        }
    }
}

/// An endpoint as anyone may see it: no member list, and an id only for signed-in callers
/// of `/{owner}/{slug}` (the official web app resolves ids there).
#[derive(Debug, Object)]
pub struct EndpointPublicResponse {
    /// Endpoint id: on `/{owner}/{slug}` for a signed-in caller who may see it, else absent.
    #[oai(skip_serializing_if_is_none)]
    pub id: Option<i64>,
    /// Display name.
    pub name: String,
    /// URL slug.
    pub slug: String,
    /// Description.
    pub description: String,
    /// Kind.
    #[oai(rename = "type")]
    pub kind: EndpointKind,
    /// Owner's username or organization slug (`/{owner_username}/{slug}`).
    pub owner_username: String,
    /// How many contributors.
    pub contributors_count: u64,
    /// Semantic version.
    pub version: String,
    /// Markdown README.
    pub readme: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Stars.
    pub stars_count: i64,
    /// Policies.
    pub policies: Vec<Value>,
    /// Connections.
    pub connect: Vec<Value>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl EndpointPublicResponse {
    /// The public shape of `model`, owned by `owner`.
    pub fn new(model: endpoint::Model, owner: String) -> Self {
        Self {
            id: None,
            contributors_count: contributors_of(&model).len() as u64,
            tags: tags_of(&model),
            policies: policies_of(&model),
            connect: connections_of(&model),
            kind: EndpointKind::parse(&model.kind).unwrap_or(EndpointKind::Model),
            owner_username: owner,
            name: model.name,
            slug: model.slug,
            description: model.description,
            version: model.version,
            readme: model.readme,
            stars_count: model.stars_count,
            created_at: model.created_at,
            updated_at: model.updated_at,
        }
    }
}

/// A search hit: the public shape plus a relevance in (0, 1).
#[derive(Debug, Object)]
pub struct SearchHit {
    /// The endpoint, as anyone may see it.
    #[oai(flatten)]
    pub endpoint: EndpointPublicResponse,
    /// Relevance, 0–1, higher is better.
    pub relevance_score: f64,
}

/// `POST /api/v1/endpoints/search` body.
#[derive(Debug, Object)]
pub struct SearchRequest {
    /// Free text; words match whole words of names, descriptions, tags and READMEs, the last
    /// word also as a prefix.
    #[oai(validator(max_length = 500))]
    pub query: String,
    /// Most results (1–100, default 10).
    pub top_k: Option<Limit>,
    /// Only this kind.
    #[oai(rename = "type")]
    pub kind: Option<EndpointKind>,
}

/// `POST /api/v1/endpoints/search` answer.
#[derive(Debug, Object)]
pub struct SearchResponse {
    /// Best first.
    pub results: Vec<SearchHit>,
    /// How many endpoints match, counted up to 500 (the most a search ranks: the newest
    /// matches).
    pub total: u64,
    /// The query as received.
    pub query: String,
}

/// Create or sync body: every field of an endpoint. Unknown fields are ignored.
#[derive(Debug, Object)]
pub struct EndpointCreate {
    /// 1–100 characters. Required.
    pub name: Required<Name>,
    /// Kind. Required.
    #[oai(rename = "type")]
    pub kind: Required<EndpointKind>,
    /// Default `public`.
    pub visibility: Option<Visibility>,
    /// Up to 500 characters.
    pub description: Option<Description>,
    /// 3–63 lowercase letters, digits and single hyphens; generated from the name when absent.
    pub slug: Option<EndpointSlug>,
    /// Semantic version, default `0.1.0`.
    pub version: Option<SemanticVersion>,
    /// Markdown, up to `max_readme_chars`.
    pub readme: Option<Readme>,
    /// Up to 20 tags of 1–50 characters.
    pub tags: Option<BoundedList<Tag, MAX_TAGS>>,
    /// Policy objects.
    pub policies: Option<Vec<PolicyItem>>,
    /// Connection objects.
    pub connect: Option<Vec<ConnectionItem>>,
    /// Contributor user ids (unknown and inactive users are dropped; a user owner is added).
    pub contributors: Option<BoundedList<i64, MAX_CONTRIBUTORS>>,
    /// Owning organization (SDK 0.1.0 sends it in the body; `?organization_id=` wins).
    pub organization_id: Option<i64>,
}

impl From<EndpointCreate> for EndpointDraft {
    fn from(body: EndpointCreate) -> Self {
        Self {
            name: body.name.into_option().map(String::from),
            slug: body.slug.map(String::from),
            description: body.description.map(String::from),
            kind: body.kind.into_option(),
            visibility: body.visibility,
            version: body.version.map(String::from),
            readme: body.readme.map(String::from),
            tags: body.tags.map(|tags| tags.0.into_iter().map(String::from).collect()),
            policies: body.policies.map(|items| items.into_iter().map(Declared::into_inner).collect()),
            connect: body.connect.map(|items| items.into_iter().map(Declared::into_inner).collect()),
            contributors: body.contributors.map(BoundedList::into_inner),
        }
    }
}

/// Update body; absent or null fields stay. The slug never changes.
#[derive(Debug, Object)]
pub struct EndpointUpdate {
    /// New name.
    pub name: Option<Name>,
    /// New kind.
    #[oai(rename = "type")]
    pub kind: Option<EndpointKind>,
    /// New visibility.
    pub visibility: Option<Visibility>,
    /// New description.
    pub description: Option<Description>,
    /// New version.
    pub version: Option<SemanticVersion>,
    /// New README.
    pub readme: Option<Readme>,
    /// Replaces the tags (at most 20).
    pub tags: Option<BoundedList<Tag, MAX_TAGS>>,
    /// Replaces the policies.
    pub policies: Option<Vec<PolicyItem>>,
    /// Replaces the connections.
    pub connect: Option<Vec<ConnectionItem>>,
    /// Replaces the contributors.
    pub contributors: Option<BoundedList<i64, MAX_CONTRIBUTORS>>,
}

impl From<EndpointUpdate> for EndpointDraft {
    fn from(body: EndpointUpdate) -> Self {
        Self {
            name: body.name.map(String::from),
            slug: None,
            description: body.description.map(String::from),
            kind: body.kind,
            visibility: body.visibility,
            version: body.version.map(String::from),
            readme: body.readme.map(String::from),
            tags: body.tags.map(|tags| tags.0.into_iter().map(String::from).collect()),
            policies: body.policies.map(|items| items.into_iter().map(Declared::into_inner).collect()),
            connect: body.connect.map(|items| items.into_iter().map(Declared::into_inner).collect()),
            contributors: body.contributors.map(BoundedList::into_inner),
        }
    }
}

/// `POST /api/v1/endpoints/sync` body.
#[derive(Debug, Object)]
pub struct SyncRequest {
    /// The complete new set of the caller's endpoints.
    pub endpoints: Vec<EndpointCreate>,
}

/// `POST /api/v1/endpoints/sync` answer.
#[derive(Debug, Object)]
pub struct SyncResponse {
    /// Endpoints created.
    pub synced: u64,
    /// Endpoints deleted.
    pub deleted: u64,
    /// The created endpoints.
    pub endpoints: Vec<EndpointResponse>,
}

/// `PATCH /api/v1/endpoints/{id}/admin` body.
#[derive(Debug, Object)]
pub struct AdminUpdate {
    /// Suspend (false) or restore (true).
    pub is_active: Option<bool>,
    /// Correct the star count.
    pub stars_count: Option<Count>,
}

#[derive(Debug, ApiResponse)]
enum Created {
    /// Created.
    #[oai(status = 201)]
    Created(Json<EndpointResponse>),
}

/// The registry routes.
pub struct EndpointsApi {
    service: Arc<RegistryService>,
}

impl EndpointsApi {
    /// Routes over the service.
    pub fn new(service: Arc<RegistryService>) -> Self {
        Self { service }
    }

    async fn public_shapes(&self, models: Vec<endpoint::Model>) -> Result<Vec<EndpointPublicResponse>, ApiError> {
        let owners = self.service.owner_names(&models).await?;
        Ok(models
            .into_iter()
            .filter_map(|model| {
                let owner = owners.get(&model.id)?.clone();
                Some(EndpointPublicResponse::new(model, owner))
            })
            .collect())
    }
}

#[OpenApi(prefix_path = "/api/v1/endpoints", tag = "RegistryTags::Registry")]
impl EndpointsApi {
    /// Create an endpoint, owned by the caller or by `organization_id` (any active member).
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        user: CurrentUser,
        organization_id: Query<Option<i64>>,
        body: Json<EndpointCreate>,
    ) -> Result<Created, ApiError> {
        let organization_id = organization_id.0.or(body.0.organization_id);
        let created = self.service.create(&user.0, body.0.into(), organization_id).await?;
        Ok(Created::Created(Json(created.into())))
    }

    /// The caller's own endpoints (all visibilities), newest change first. `search` matches
    /// name or description, case-insensitively and literally.
    #[oai(path = "/", method = "get")]
    async fn list_mine(
        &self,
        user: CurrentUser,
        #[oai(default)] skip: Query<Count>,
        #[oai(default)] limit: Query<Limit>,
        visibility: Query<Option<Visibility>>,
        search: Query<Option<String>>,
    ) -> Result<Json<Vec<EndpointResponse>>, ApiError> {
        let (skip, limit) = (skip.0.get(), limit.0.get());
        let found = self.service.list_mine(&user.0, visibility.0, search.0.as_deref(), skip, limit).await?;
        Ok(Json(found.into_iter().map(Into::into).collect()))
    }

    /// Public endpoints of users and organizations, newest change first. No login needed.
    ///
    /// Carries an `ETag`; `If-None-Match` with it answers 304.
    #[oai(path = "/public", method = "get")]
    async fn public(
        &self,
        request: &Request,
        #[oai(default)] skip: Query<Count>,
        #[oai(default)] limit: Query<Limit>,
        endpoint_type: Query<Option<EndpointKind>>,
    ) -> Result<CachedJson<Vec<EndpointPublicResponse>>, ApiError> {
        let (skip, limit, kind) = (skip.0.get(), limit.0.get(), endpoint_type.0);
        let key = format!("public skip={skip} limit={limit} type={}", kind.map_or("", EndpointKind::as_str));
        let page = self
            .service
            .listings()
            .fetch(key, async || {
                let found = self.service.list_public(Listing { skip, limit, kind }).await?;
                Ok::<_, ApiError>(Page::new(to_json_bytes(&self.public_shapes(found).await?)))
            })
            .await?;
        Ok(CachedJson::new(page, request))
    }

    /// Public endpoints by stars (ties: newest change). No login needed.
    ///
    /// Carries an `ETag`; `If-None-Match` with it answers 304.
    #[oai(path = "/trending", method = "get")]
    async fn trending(
        &self,
        request: &Request,
        #[oai(default)] skip: Query<Count>,
        #[oai(default)] limit: Query<Limit>,
        min_stars: Query<Option<Count>>,
        endpoint_type: Query<Option<EndpointKind>>,
    ) -> Result<CachedJson<Vec<EndpointPublicResponse>>, ApiError> {
        let (skip, limit, kind, min_stars) =
            (skip.0.get(), limit.0.get(), endpoint_type.0, min_stars.0.map(Count::get));
        let key = format!(
            "trending skip={skip} limit={limit} type={} min_stars={}",
            kind.map_or("", EndpointKind::as_str),
            min_stars.map(|stars| stars.to_string()).unwrap_or_default()
        );
        let page = self
            .service
            .listings()
            .fetch(key, async || {
                let found = self.service.trending(Listing { skip, limit, kind }, min_stars).await?;
                Ok::<_, ApiError>(Page::new(to_json_bytes(&self.public_shapes(found).await?)))
            })
            .await?;
        Ok(CachedJson::new(page, request))
    }

    /// Full-text search over public endpoints, best first, with a relevance score.
    #[oai(path = "/search", method = "post")]
    async fn search(&self, body: Json<SearchRequest>) -> Result<Json<SearchResponse>, ApiError> {
        let top_k = body.0.top_k.unwrap_or_default().get();
        let found = self.service.search(&body.0.query, body.0.kind, top_k).await?;
        let results = found
            .endpoints
            .iter()
            .zip(&found.scores)
            .filter_map(|(model, score)| {
                let owner = found.owners.get(&model.id)?.clone();
                Some(SearchHit { relevance_score: *score, endpoint: EndpointPublicResponse::new(model.clone(), owner) })
            })
            .collect();
        let total = found.total;
        Ok(Json(SearchResponse { results, total, query: body.0.query }))
    }

    /// Replace all the caller's own endpoints at once (atomic: all or nothing; ids and stars
    /// of the old ones are gone).
    #[oai(path = "/sync", method = "post")]
    async fn sync(&self, user: CurrentUser, body: Json<SyncRequest>) -> Result<Json<SyncResponse>, ApiError> {
        let drafts = body.0.endpoints.into_iter().map(Into::into).collect();
        let (created, deleted) = self.service.sync(&user.0, drafts).await?;
        Ok(Json(SyncResponse {
            synced: created.len() as u64,
            deleted,
            endpoints: created.into_iter().map(Into::into).collect(),
        }))
    }

    /// One endpoint, if the caller may see it (public ones without a login).
    #[oai(path = "/:endpoint_id", method = "get")]
    async fn get(&self, user: MaybeUser, endpoint_id: Path<i64>) -> Result<Json<EndpointResponse>, ApiError> {
        let viewer = self.service.viewer(user.0).await?;
        Ok(Json(self.service.visible(&viewer, endpoint_id.0).await?.into()))
    }

    /// Change an endpoint (owner, organization owners and admins, site administrators).
    #[oai(path = "/:endpoint_id", method = "patch")]
    async fn update(
        &self,
        user: CurrentUser,
        endpoint_id: Path<i64>,
        body: Json<EndpointUpdate>,
    ) -> Result<Json<EndpointResponse>, ApiError> {
        Ok(Json(self.service.update(&user.0, endpoint_id.0, body.0.into()).await?.into()))
    }

    /// Delete an endpoint; its slug is free again.
    #[oai(path = "/:endpoint_id", method = "delete")]
    async fn delete(&self, user: CurrentUser, endpoint_id: Path<i64>) -> Result<NoContent, ApiError> {
        self.service.delete(&user.0, endpoint_id.0).await?;
        Ok(NoContent::NoContent)
    }

    /// Change the caller's own endpoint by slug (SDK 0.3.1).
    #[oai(path = "/slug/:slug", method = "patch")]
    async fn update_by_slug(
        &self,
        user: CurrentUser,
        slug: Path<String>,
        body: Json<EndpointUpdate>,
    ) -> Result<Json<EndpointResponse>, ApiError> {
        let id = self.service.own_endpoint_id(&user.0, &slug.0).await?;
        Ok(Json(self.service.update(&user.0, id, body.0.into()).await?.into()))
    }

    /// Delete the caller's own endpoint by slug (SDK 0.3.1).
    #[oai(path = "/slug/:slug", method = "delete")]
    async fn delete_by_slug(&self, user: CurrentUser, slug: Path<String>) -> Result<NoContent, ApiError> {
        let id = self.service.own_endpoint_id(&user.0, &slug.0).await?;
        self.service.delete(&user.0, id).await?;
        Ok(NoContent::NoContent)
    }

    /// Suspend or restore an endpoint, or correct its star count (site administrators).
    #[oai(path = "/:endpoint_id/admin", method = "patch")]
    async fn admin(
        &self,
        _admin: AdminUser,
        endpoint_id: Path<i64>,
        body: Json<AdminUpdate>,
    ) -> Result<Json<EndpointResponse>, ApiError> {
        Ok(Json(
            self.service
                .admin_update(endpoint_id.0, body.0.is_active, body.0.stars_count.map(Count::get))
                .await?
                .into(),
        ))
    }
}
