//! `/api/v1/organizations`: parse → authorize → call the service → map the error. The only
//! module of this plugin that knows HTTP.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use thub_plugin_sdk::slug::OrganizationSlug;
use thub_plugin_sdk::text::{Description, Name};
use thub_plugin_sdk::{AdminUser, ApiError, Count, CurrentUser, Limit, NoContent};

use crate::entity::{member, organization};
use crate::service::{NewOrganization, OrgRole, OrganizationChanges, OrganizationService};

#[derive(Tags)]
enum OrganizationTags {
    /// Organizations and their members.
    #[oai(rename = "organizations")]
    Organizations,
}

/// An organization.
#[derive(Debug, Object)]
pub struct OrganizationResponse {
    /// Organization id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// URL slug (`/{slug}`).
    pub slug: String,
    /// Description.
    pub description: String,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// False when suspended by a site administrator.
    pub is_active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<organization::Model> for OrganizationResponse {
    fn from(model: organization::Model) -> Self {
        Self {
            id: model.id,
            name: model.name,
            slug: model.slug,
            description: model.description,
            avatar_url: model.avatar_url,
            is_active: model.is_active,
            created_at: model.created_at,
            updated_at: model.updated_at,
        }
    }
}

/// A membership.
#[derive(Debug, Object)]
pub struct MemberResponse {
    /// Membership id.
    pub id: i64,
    /// The organization.
    pub organization_id: i64,
    /// The user.
    pub user_id: i64,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// False when suspended.
    pub is_active: bool,
    /// When the user joined.
    pub joined_at: DateTime<Utc>,
}

impl From<member::Model> for MemberResponse {
    fn from(model: member::Model) -> Self {
        Self {
            id: model.id,
            organization_id: model.organization_id,
            user_id: model.user_id,
            role: model.role,
            is_active: model.is_active,
            joined_at: model.joined_at,
        }
    }
}

/// `POST /api/v1/organizations` body.
#[derive(Debug, Object)]
pub struct OrganizationCreate {
    /// 1–100 characters.
    pub name: Name,
    /// 3–63 lowercase letters, digits, hyphens; generated from the name when absent.
    pub slug: Option<OrganizationSlug>,
    /// Up to 500 characters.
    pub description: Option<Description>,
    /// Up to 255 characters.
    pub avatar_url: Option<OrganizationAvatarUrl>,
}

/// Longest organization avatar URL.
const AVATAR_URL_MAX_CHARS: usize = 255;

thub_plugin_sdk::declared_string! {
    /// An organization's avatar URL as a client sends it: up to 255 characters on one line.
    pub struct OrganizationAvatarUrl;
    schema = |schema| {
        schema.max_length = Some(AVATAR_URL_MAX_CHARS);
        schema.pattern = Some(thub_plugin_sdk::text::LINE_PATTERN.to_owned());
    };
}

/// `PUT /api/v1/organizations/{id}` body; absent or null fields stay.
#[derive(Debug, Object)]
pub struct OrganizationUpdate {
    /// New display name.
    pub name: Option<Name>,
    /// New description.
    pub description: Option<Description>,
    /// New avatar URL.
    pub avatar_url: Option<OrganizationAvatarUrl>,
}

/// `POST /api/v1/organizations/{id}/members` body.
#[derive(Debug, Object)]
pub struct MemberAdd {
    /// The user to add.
    pub user_id: i64,
    /// Their role (default `member`).
    pub role: Option<OrgRole>,
}

/// `PUT /api/v1/organizations/{id}/members/{user_id}` body.
#[derive(Debug, Object)]
pub struct MemberUpdate {
    /// The new role; absent or null leaves it.
    pub role: Option<OrgRole>,
}

/// Site-administrator switch.
#[derive(Debug, Object)]
pub struct ActiveSwitch {
    /// Suspend (false) or restore (true); absent leaves it.
    pub is_active: Option<bool>,
}

#[derive(Debug, ApiResponse)]
enum OrganizationCreated {
    /// Created; the caller is its owner.
    #[oai(status = 201)]
    Created(Json<OrganizationResponse>),
}

#[derive(Debug, ApiResponse)]
enum MemberAdded {
    /// Added.
    #[oai(status = 201)]
    Created(Json<MemberResponse>),
}

/// The organizations routes.
pub struct OrganizationsApi {
    service: Arc<OrganizationService>,
}

impl OrganizationsApi {
    /// Routes over the service.
    pub fn new(service: Arc<OrganizationService>) -> Self {
        Self { service }
    }
}

#[OpenApi(prefix_path = "/api/v1/organizations", tag = "OrganizationTags::Organizations")]
impl OrganizationsApi {
    /// The caller's organizations, optionally only those where they hold `role`.
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        user: CurrentUser,
        #[oai(default)] skip: Query<Count>,
        #[oai(default)] limit: Query<Limit>,
        role: Query<Option<OrgRole>>,
    ) -> Result<Json<Vec<OrganizationResponse>>, ApiError> {
        let (skip, limit) = (skip.0.get(), limit.0.get());
        let organizations = self.service.list_mine(&user.0, role.0, skip, limit).await?;
        Ok(Json(organizations.into_iter().map(Into::into).collect()))
    }

    /// Create an organization; the caller becomes its owner.
    #[oai(path = "/", method = "post")]
    async fn create(&self, user: CurrentUser, body: Json<OrganizationCreate>) -> Result<OrganizationCreated, ApiError> {
        let body = body.0;
        let new = NewOrganization {
            name: body.name.into(),
            slug: body.slug.map(String::from),
            description: body.description.map(String::from),
            avatar_url: body.avatar_url.map(String::from),
        };
        Ok(OrganizationCreated::Created(Json(self.service.create(&user.0, new).await?.into())))
    }

    /// An organization (members and site administrators).
    #[oai(path = "/:org_id", method = "get")]
    async fn get(&self, user: CurrentUser, org_id: Path<i64>) -> Result<Json<OrganizationResponse>, ApiError> {
        Ok(Json(self.service.get(&user.0, org_id.0).await?.into()))
    }

    /// Change an organization (owners and admins).
    #[oai(path = "/:org_id", method = "put")]
    async fn update(
        &self,
        user: CurrentUser,
        org_id: Path<i64>,
        body: Json<OrganizationUpdate>,
    ) -> Result<Json<OrganizationResponse>, ApiError> {
        let body = body.0;
        let changes = OrganizationChanges {
            name: body.name.map(String::from),
            description: body.description.map(String::from),
            avatar_url: body.avatar_url.map(String::from),
        };
        Ok(Json(self.service.update(&user.0, org_id.0, changes).await?.into()))
    }

    /// Delete an organization with its endpoints and memberships (owners).
    #[oai(path = "/:org_id", method = "delete")]
    async fn delete(&self, user: CurrentUser, org_id: Path<i64>) -> Result<NoContent, ApiError> {
        self.service.delete(&user.0, org_id.0).await?;
        Ok(NoContent::NoContent)
    }

    /// Active members, most recent first.
    #[oai(path = "/:org_id/members", method = "get")]
    async fn members(
        &self,
        user: CurrentUser,
        org_id: Path<i64>,
        #[oai(default)] skip: Query<Count>,
        #[oai(default)] limit: Query<Limit>,
        role: Query<Option<OrgRole>>,
    ) -> Result<Json<Vec<MemberResponse>>, ApiError> {
        let (skip, limit) = (skip.0.get(), limit.0.get());
        let members = self.service.members(&user.0, org_id.0, role.0, skip, limit).await?;
        Ok(Json(members.into_iter().map(Into::into).collect()))
    }

    /// Add a member (owners and admins).
    #[oai(path = "/:org_id/members", method = "post")]
    async fn add_member(
        &self,
        user: CurrentUser,
        org_id: Path<i64>,
        body: Json<MemberAdd>,
    ) -> Result<MemberAdded, ApiError> {
        let role = body.0.role.unwrap_or(OrgRole::Member);
        let added = self.service.add_member(&user.0, org_id.0, body.0.user_id, role).await?;
        Ok(MemberAdded::Created(Json(added.into())))
    }

    /// Change a member's role (owners and admins); the last owner stays an owner.
    #[oai(path = "/:org_id/members/:user_id", method = "put")]
    async fn change_role(
        &self,
        user: CurrentUser,
        org_id: Path<i64>,
        user_id: Path<i64>,
        body: Json<MemberUpdate>,
    ) -> Result<Json<MemberResponse>, ApiError> {
        Ok(Json(self.service.change_role(&user.0, org_id.0, user_id.0, body.0.role).await?.into()))
    }

    /// Remove a member (owners, admins, or the member themself); never the last owner.
    #[oai(path = "/:org_id/members/:user_id", method = "delete")]
    async fn remove_member(
        &self,
        user: CurrentUser,
        org_id: Path<i64>,
        user_id: Path<i64>,
    ) -> Result<NoContent, ApiError> {
        self.service.remove_member(&user.0, org_id.0, user_id.0).await?;
        Ok(NoContent::NoContent)
    }

    /// Suspend or restore an organization (site administrators).
    #[oai(path = "/:org_id/admin", method = "patch")]
    async fn admin_switch(
        &self,
        _admin: AdminUser,
        org_id: Path<i64>,
        body: Json<ActiveSwitch>,
    ) -> Result<Json<OrganizationResponse>, ApiError> {
        let organization = match body.0.is_active {
            Some(active) => self.service.set_active(org_id.0, active).await?,
            None => self.service.model(org_id.0).await?.ok_or(crate::OrganizationsError::NotFound)?,
        };
        Ok(Json(organization.into()))
    }

    /// Suspend or restore a membership (site administrators).
    #[oai(path = "/:org_id/members/:user_id/admin", method = "patch")]
    async fn admin_member_switch(
        &self,
        _admin: AdminUser,
        org_id: Path<i64>,
        user_id: Path<i64>,
        body: Json<ActiveSwitch>,
    ) -> Result<Json<MemberResponse>, ApiError> {
        let active = body.0.is_active.unwrap_or(true);
        Ok(Json(self.service.set_member_active(org_id.0, user_id.0, active).await?.into()))
    }
}
