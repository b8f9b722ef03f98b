//! Organization rules: who may see, change and delete an organization and its members, the
//! last-owner rule, slugs shared with usernames. No HTTP types.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::{Value, json};
use thub_plugin_sdk::slug::{
    RESERVED_ENDPOINT_SLUGS, RESERVED_ORGANIZATION_SLUGS, numbered_slug, slug_from_name, slug_problem,
};
use thub_plugin_sdk::storage::begin_write;
use thub_plugin_sdk::text;
use thub_plugin_sdk::{AccountDirectory, AccountHooks, Clock, EventBus, FieldError, HookError, Principal};

use crate::entity::{member, organization};
use crate::error::OrganizationsError;

/// A role inside an organization, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, poem_openapi::Enum, serde::Serialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum OrgRole {
    /// Everything, including deleting the organization.
    Owner,
    /// Manage members and endpoints.
    Admin,
    /// See the organization's endpoints and create new ones.
    Member,
}

impl OrgRole {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Owner => "owner",
            OrgRole::Admin => "admin",
            OrgRole::Member => "member",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "owner" => Some(OrgRole::Owner),
            "admin" => Some(OrgRole::Admin),
            "member" => Some(OrgRole::Member),
            _ => None,
        }
    }

    /// Owners and admins manage members and the organization's endpoints.
    pub fn can_manage(self) -> bool {
        matches!(self, OrgRole::Owner | OrgRole::Admin)
    }
}

/// Fields of a new organization.
#[derive(Debug, Clone, Default)]
pub struct NewOrganization {
    /// Display name, 1–100 characters.
    pub name: String,
    /// Explicit slug, or generated from the name.
    pub slug: Option<String>,
    /// Up to 500 characters.
    pub description: Option<String>,
    /// Up to 255 characters.
    pub avatar_url: Option<String>,
}

/// Changes to an organization; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct OrganizationChanges {
    /// New display name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New avatar URL.
    pub avatar_url: Option<String>,
}

/// Organizations and memberships.
pub struct OrganizationService {
    db: DatabaseConnection,
    accounts: Arc<dyn AccountDirectory>,
    events: EventBus,
    clock: Arc<dyn Clock>,
    /// Organizations created, changed, suspended, restored or deleted by this instance (see
    /// [`OrganizationService::changes`]).
    changes: AtomicU64,
}

type Result<T> = std::result::Result<T, OrganizationsError>;

fn field(loc: &str, msg: impl Into<String>, input: &str) -> FieldError {
    FieldError::new("value_error", &["body", loc], msg, Value::String(input.to_owned()))
}

fn check_length(errors: &mut Vec<FieldError>, loc: &str, value: &str, min: usize, max: usize) {
    let length = value.chars().count();
    if length < min || length > max {
        errors.push(field(loc, format!("Must be between {min} and {max} characters"), value));
    }
}

/// An organization as other plugins see it: who it is and whether it is active, not its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationSummary {
    /// Never reused.
    pub id: i64,
    /// URL slug (`/{slug}`).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Suspended by a site administrator when false.
    pub is_active: bool,
}

impl From<organization::Model> for OrganizationSummary {
    fn from(model: organization::Model) -> Self {
        Self {
            id: model.id,
            slug: model.slug,
            name: model.name,
            description: model.description,
            avatar_url: model.avatar_url,
            is_active: model.is_active,
        }
    }
}

/// Names and URLs are one line; descriptions may break lines. Neither takes other control
/// characters.
fn check_characters(errors: &mut Vec<FieldError>, loc: &str, value: &str, multi_line: bool) {
    let problem = if multi_line { text::text_problem(value) } else { text::line_problem(value) };
    if let Some(problem) = problem {
        errors.push(field(loc, problem, value));
    }
}

impl OrganizationService {
    /// The service over the hub database.
    pub fn new(
        db: DatabaseConnection,
        accounts: Arc<dyn AccountDirectory>,
        events: EventBus,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { db, accounts, events, clock, changes: AtomicU64::new(0) }
    }

    // ----- look-ups for other plugins -----

    /// An active organization by slug (case-insensitive).
    pub async fn by_slug(&self, slug: &str) -> Result<Option<OrganizationSummary>> {
        let found = organization::Entity::find()
            .filter(organization::Column::Slug.eq(slug.to_lowercase()))
            .filter(organization::Column::IsActive.eq(true))
            .one(&self.db)
            .await?;
        Ok(found.map(OrganizationSummary::from))
    }

    /// An organization by id, active or not.
    pub async fn by_id(&self, id: i64) -> Result<Option<OrganizationSummary>> {
        Ok(self.model(id).await?.map(OrganizationSummary::from))
    }

    /// The organizations with these ids, active or not.
    pub async fn by_ids(&self, ids: Vec<i64>) -> Result<Vec<OrganizationSummary>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let found = organization::Entity::find().filter(organization::Column::Id.is_in(ids)).all(&self.db).await?;
        Ok(found.into_iter().map(OrganizationSummary::from).collect())
    }

    /// The stored row of organization `id`, active or not.
    pub(crate) async fn model(&self, id: i64) -> Result<Option<organization::Model>> {
        Ok(organization::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// `user_id`'s role in `organization_id`, if an active member.
    pub async fn role_of(&self, organization_id: i64, user_id: i64) -> Result<Option<OrgRole>> {
        let membership = member::Entity::find()
            .filter(member::Column::OrganizationId.eq(organization_id))
            .filter(member::Column::UserId.eq(user_id))
            .filter(member::Column::IsActive.eq(true))
            .one(&self.db)
            .await?;
        Ok(membership.and_then(|membership| OrgRole::parse(&membership.role)))
    }

    /// `user_id`'s active memberships: organization id and role.
    pub async fn memberships_of(&self, user_id: i64) -> Result<Vec<(i64, OrgRole)>> {
        let memberships = member::Entity::find()
            .filter(member::Column::UserId.eq(user_id))
            .filter(member::Column::IsActive.eq(true))
            .all(&self.db)
            .await?;
        Ok(memberships
            .into_iter()
            .filter_map(|membership| Some((membership.organization_id, OrgRole::parse(&membership.role)?)))
            .collect())
    }

    /// Ids of suspended organizations (their endpoints are hidden from everyone but site
    /// administrators).
    pub async fn suspended_ids(&self) -> Result<Vec<i64>> {
        let suspended =
            organization::Entity::find().filter(organization::Column::IsActive.eq(false)).all(&self.db).await?;
        Ok(suspended.into_iter().map(|organization| organization.id).collect())
    }

    // ----- organizations -----

    /// Creates an organization; the creator becomes its owner.
    pub async fn create(&self, actor: &Principal, new: NewOrganization) -> Result<organization::Model> {
        let mut errors = Vec::new();
        let name = new.name.trim().to_owned();
        check_length(&mut errors, "name", &name, 1, 100);
        check_characters(&mut errors, "name", &name, false);
        let description = new.description.unwrap_or_default();
        check_length(&mut errors, "description", &description, 0, 500);
        check_characters(&mut errors, "description", &description, true);
        let avatar_url = new.avatar_url.filter(|url| !url.is_empty());
        if let Some(url) = &avatar_url {
            check_length(&mut errors, "avatar_url", url, 1, 255);
            check_characters(&mut errors, "avatar_url", url, false);
        }
        if let Some(slug) = &new.slug
            && let Some(problem) = slug_problem(slug, &[RESERVED_ENDPOINT_SLUGS, RESERVED_ORGANIZATION_SLUGS])
        {
            errors.push(field("slug", problem, slug));
        }
        if !errors.is_empty() {
            return Err(OrganizationsError::Validation(errors));
        }
        let slug = match new.slug {
            Some(slug) => {
                if self.slug_taken(&slug).await? {
                    return Err(OrganizationsError::SlugTaken);
                }
                slug
            }
            None => self.free_slug(&slug_from_name(&name, "org")).await?,
        };
        let now = self.clock.now();
        let transaction = begin_write(&self.db).await?;
        let created = organization::ActiveModel {
            name: Set(name),
            slug: Set(slug),
            description: Set(description),
            avatar_url: Set(avatar_url),
            is_active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&transaction)
        .await
        .map_err(|error| match error.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => OrganizationsError::SlugTaken,
            _ => OrganizationsError::Database(error),
        })?;
        member::ActiveModel {
            organization_id: Set(created.id),
            user_id: Set(actor.user_id),
            role: Set(OrgRole::Owner.as_str().to_owned()),
            is_active: Set(true),
            joined_at: Set(now),
            ..Default::default()
        }
        .insert(&transaction)
        .await?;
        let event = json!({"organization_id": created.id, "slug": created.slug, "user_id": actor.user_id});
        let event = self.events.record(&transaction, "org.created", event).await?;
        transaction.commit().await?;
        self.note_change();
        event.publish();
        Ok(created)
    }

    /// The caller's organizations (active membership, active organization), newest change first.
    pub async fn list_mine(
        &self,
        actor: &Principal,
        role: Option<OrgRole>,
        skip: u64,
        limit: u64,
    ) -> Result<Vec<organization::Model>> {
        let mut memberships = member::Entity::find()
            .filter(member::Column::UserId.eq(actor.user_id))
            .filter(member::Column::IsActive.eq(true));
        if let Some(role) = role {
            memberships = memberships.filter(member::Column::Role.eq(role.as_str()));
        }
        let ids: Vec<i64> =
            memberships.all(&self.db).await?.into_iter().map(|membership| membership.organization_id).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(organization::Entity::find()
            .filter(organization::Column::Id.is_in(ids))
            .filter(organization::Column::IsActive.eq(true))
            .order_by_desc(organization::Column::UpdatedAt)
            .order_by_desc(organization::Column::Id)
            .offset(skip)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// An organization the caller may see (members and site administrators); others get 404.
    pub async fn get(&self, actor: &Principal, id: i64) -> Result<organization::Model> {
        let (organization, _) = self.visible(actor, id).await?;
        Ok(organization)
    }

    /// Changes an organization (owners, admins, site administrators).
    pub async fn update(
        &self,
        actor: &Principal,
        id: i64,
        changes: OrganizationChanges,
    ) -> Result<organization::Model> {
        let (current, role) = self.visible(actor, id).await?;
        if !actor.is_admin() && !role.is_some_and(OrgRole::can_manage) {
            return Err(OrganizationsError::NotAdmin);
        }
        let mut errors = Vec::new();
        if let Some(name) = &changes.name {
            check_length(&mut errors, "name", name.trim(), 1, 100);
            check_characters(&mut errors, "name", name.trim(), false);
        }
        if let Some(description) = &changes.description {
            check_length(&mut errors, "description", description, 0, 500);
            check_characters(&mut errors, "description", description, true);
        }
        if let Some(url) = &changes.avatar_url {
            check_length(&mut errors, "avatar_url", url, 0, 255);
            check_characters(&mut errors, "avatar_url", url, false);
        }
        if !errors.is_empty() {
            return Err(OrganizationsError::Validation(errors));
        }
        let mut changed: organization::ActiveModel = current.into();
        if let Some(name) = changes.name {
            changed.name = Set(name.trim().to_owned());
        }
        if let Some(description) = changes.description {
            changed.description = Set(description);
        }
        if let Some(url) = changes.avatar_url {
            changed.avatar_url = Set((!url.is_empty()).then_some(url));
        }
        changed.updated_at = Set(self.clock.now());
        let updated = changed.update(&self.db).await?;
        self.note_change();
        Ok(updated)
    }

    /// Deletes an organization with its memberships and endpoints (owners, site administrators).
    pub async fn delete(&self, actor: &Principal, id: i64) -> Result<()> {
        let (organization, role) = self.visible(actor, id).await?;
        if !actor.is_admin() && role != Some(OrgRole::Owner) {
            return Err(OrganizationsError::NotOwner);
        }
        let transaction = begin_write(&self.db).await?;
        organization::Entity::delete_by_id(id).exec(&transaction).await?;
        let event = json!({"organization_id": id, "slug": organization.slug});
        let event = self.events.record(&transaction, "org.deleted", event).await?;
        transaction.commit().await?;
        self.note_change();
        event.publish();
        Ok(())
    }

    /// Suspends or restores an organization (site administrators).
    pub async fn set_active(&self, id: i64, active: bool) -> Result<organization::Model> {
        let current = self.model(id).await?.ok_or(OrganizationsError::NotFound)?;
        let mut changed: organization::ActiveModel = current.into();
        changed.is_active = Set(active);
        changed.updated_at = Set(self.clock.now());
        let updated = changed.update(&self.db).await?;
        self.note_change();
        Ok(updated)
    }

    /// How many organizations this instance has created, changed, suspended, restored or
    /// deleted: readers that cache what organizations look like (or what a suspension hides)
    /// compare it to know theirs is stale. No event announces a suspension or an edit.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }

    fn note_change(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    // ----- members -----

    /// Active members, most recent first (members and site administrators may look).
    pub async fn members(
        &self,
        actor: &Principal,
        id: i64,
        role: Option<OrgRole>,
        skip: u64,
        limit: u64,
    ) -> Result<Vec<member::Model>> {
        self.visible(actor, id).await?;
        let mut query = member::Entity::find()
            .filter(member::Column::OrganizationId.eq(id))
            .filter(member::Column::IsActive.eq(true));
        if let Some(role) = role {
            query = query.filter(member::Column::Role.eq(role.as_str()));
        }
        Ok(query
            .order_by_desc(member::Column::JoinedAt)
            .order_by_desc(member::Column::Id)
            .offset(skip)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// The active members of an organization, owners first, for its public profile page.
    pub async fn member_rows(&self, id: i64) -> Result<Vec<member::Model>> {
        let mut rows = member::Entity::find()
            .filter(member::Column::OrganizationId.eq(id))
            .filter(member::Column::IsActive.eq(true))
            .order_by_asc(member::Column::JoinedAt)
            .order_by_asc(member::Column::Id)
            .limit(500)
            .all(&self.db)
            .await?;
        rows.sort_by_key(|row| OrgRole::parse(&row.role).unwrap_or(OrgRole::Member));
        Ok(rows)
    }

    /// Adds a member (owners, admins, site administrators). A suspended membership is revived.
    pub async fn add_member(&self, actor: &Principal, id: i64, user_id: i64, role: OrgRole) -> Result<member::Model> {
        let (organization, actor_role) = self.visible(actor, id).await?;
        if !actor.is_admin() && !actor_role.is_some_and(OrgRole::can_manage) {
            return Err(OrganizationsError::NotAdmin);
        }
        let user = self.accounts.user_by_id(user_id).await?.ok_or(OrganizationsError::UserNotFound)?;
        let existing = self.membership(id, user_id).await?;
        let now = self.clock.now();
        let transaction = begin_write(&self.db).await?;
        let added = match existing {
            Some(existing) if existing.is_active => return Err(OrganizationsError::AlreadyMember),
            Some(existing) => {
                let mut revived: member::ActiveModel = existing.into();
                revived.is_active = Set(true);
                revived.role = Set(role.as_str().to_owned());
                revived.joined_at = Set(now);
                revived.update(&transaction).await?
            }
            None => member::ActiveModel {
                organization_id: Set(id),
                user_id: Set(user_id),
                role: Set(role.as_str().to_owned()),
                is_active: Set(true),
                joined_at: Set(now),
                ..Default::default()
            }
            .insert(&transaction)
            .await
            .map_err(|error| match error.sql_err() {
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => OrganizationsError::AlreadyMember,
                _ => OrganizationsError::Database(error),
            })?,
        };
        self.touch(&transaction, id).await?;
        let event = json!({"organization_id": id, "slug": organization.slug, "user_id": user.id, "username": user.username, "role": role});
        let event = self.events.record(&transaction, "org.member_added", event).await?;
        transaction.commit().await?;
        event.publish();
        Ok(added)
    }

    /// Changes a member's role (owners, admins, site administrators); never removes the last owner.
    pub async fn change_role(
        &self,
        actor: &Principal,
        id: i64,
        user_id: i64,
        role: Option<OrgRole>,
    ) -> Result<member::Model> {
        let (organization, actor_role) = self.visible(actor, id).await?;
        if !actor.is_admin() && !actor_role.is_some_and(OrgRole::can_manage) {
            return Err(OrganizationsError::NotAdmin);
        }
        let target = self.active_membership(id, user_id).await?;
        let Some(role) = role else { return Ok(target) };
        let transaction = begin_write(&self.db).await?;
        if target.role == OrgRole::Owner.as_str()
            && role != OrgRole::Owner
            && self.owner_count(&transaction, id).await? <= 1
        {
            return Err(OrganizationsError::LastOwner);
        }
        let mut changed: member::ActiveModel = target.into();
        changed.role = Set(role.as_str().to_owned());
        let changed = changed.update(&transaction).await?;
        let event = json!({"organization_id": id, "slug": organization.slug, "user_id": user_id, "role": role});
        let event = self.events.record(&transaction, "org.member_role_changed", event).await?;
        transaction.commit().await?;
        event.publish();
        Ok(changed)
    }

    /// Removes a member (owners, admins, site administrators, or the member themself); never the
    /// last owner.
    pub async fn remove_member(&self, actor: &Principal, id: i64, user_id: i64) -> Result<()> {
        let (organization, actor_role) = self.visible(actor, id).await?;
        let allowed = actor.is_admin() || actor.user_id == user_id || actor_role.is_some_and(OrgRole::can_manage);
        if !allowed {
            return Err(OrganizationsError::NotAdmin);
        }
        let target = self.active_membership(id, user_id).await?;
        let transaction = begin_write(&self.db).await?;
        if target.role == OrgRole::Owner.as_str() && self.owner_count(&transaction, id).await? <= 1 {
            return Err(OrganizationsError::LastOwner);
        }
        member::Entity::delete_by_id(target.id).exec(&transaction).await?;
        self.touch(&transaction, id).await?;
        let event = json!({"organization_id": id, "slug": organization.slug, "user_id": user_id});
        let event = self.events.record(&transaction, "org.member_removed", event).await?;
        transaction.commit().await?;
        event.publish();
        Ok(())
    }

    /// Suspends or restores a membership (site administrators); never suspends the last owner.
    pub async fn set_member_active(&self, id: i64, user_id: i64, active: bool) -> Result<member::Model> {
        self.model(id).await?.ok_or(OrganizationsError::NotFound)?;
        let target = self.membership(id, user_id).await?.ok_or(OrganizationsError::MemberNotFound)?;
        let transaction = begin_write(&self.db).await?;
        if !active
            && target.is_active
            && target.role == OrgRole::Owner.as_str()
            && self.owner_count(&transaction, id).await? <= 1
        {
            return Err(OrganizationsError::LastOwner);
        }
        let mut changed: member::ActiveModel = target.into();
        changed.is_active = Set(active);
        let changed = changed.update(&transaction).await?;
        transaction.commit().await?;
        Ok(changed)
    }

    // ----- helpers -----

    /// The organization and the caller's role, if the caller may see it (active organization;
    /// active member or site administrator).
    async fn visible(&self, actor: &Principal, id: i64) -> Result<(organization::Model, Option<OrgRole>)> {
        let organization =
            self.model(id).await?.filter(|organization| organization.is_active).ok_or(OrganizationsError::NotFound)?;
        let role = self.role_of(id, actor.user_id).await?;
        if role.is_none() && !actor.is_admin() {
            return Err(OrganizationsError::NotFound);
        }
        Ok((organization, role))
    }

    async fn membership(&self, id: i64, user_id: i64) -> Result<Option<member::Model>> {
        Ok(member::Entity::find()
            .filter(member::Column::OrganizationId.eq(id))
            .filter(member::Column::UserId.eq(user_id))
            .one(&self.db)
            .await?)
    }

    /// User `user_id`'s active membership of organization `id`, or `MemberNotFound`.
    async fn active_membership(&self, id: i64, user_id: i64) -> Result<member::Model> {
        self.membership(id, user_id)
            .await?
            .filter(|membership| membership.is_active)
            .ok_or(OrganizationsError::MemberNotFound)
    }

    async fn owner_count(&self, transaction: &DatabaseTransaction, id: i64) -> std::result::Result<u64, DbErr> {
        member::Entity::find()
            .filter(member::Column::OrganizationId.eq(id))
            .filter(member::Column::Role.eq(OrgRole::Owner.as_str()))
            .filter(member::Column::IsActive.eq(true))
            .count(transaction)
            .await
    }

    async fn touch(&self, transaction: &DatabaseTransaction, id: i64) -> Result<()> {
        organization::Entity::update_many()
            .col_expr(organization::Column::UpdatedAt, Expr::value(self.clock.now()))
            .filter(organization::Column::Id.eq(id))
            .exec(transaction)
            .await?;
        Ok(())
    }

    /// Whether `slug` is used by an organization or a user.
    async fn slug_taken(&self, slug: &str) -> Result<bool> {
        let organization =
            organization::Entity::find().filter(organization::Column::Slug.eq(slug)).count(&self.db).await?;
        Ok(organization > 0 || self.accounts.user_by_username(slug).await?.is_some())
    }

    async fn free_slug(&self, base: &str) -> Result<String> {
        let reserved =
            |slug: &str| slug_problem(slug, &[RESERVED_ENDPOINT_SLUGS, RESERVED_ORGANIZATION_SLUGS]).is_some();
        if !reserved(base) && !self.slug_taken(base).await? {
            return Ok(base.to_owned());
        }
        for number in 1..=999 {
            let candidate = numbered_slug(base, number);
            if !reserved(&candidate) && !self.slug_taken(&candidate).await? {
                return Ok(candidate);
            }
        }
        let stamp = Utc::now().timestamp() % 1_000_000;
        Ok(numbered_slug(base, stamp as u32))
    }
}

#[async_trait]
impl AccountHooks for OrganizationService {
    async fn name_taken(&self, name: &str) -> std::result::Result<bool, HookError> {
        let count = organization::Entity::find().filter(organization::Column::Slug.eq(name)).count(&self.db).await?;
        Ok(count > 0)
    }

    async fn before_user_delete(
        &self,
        transaction: &DatabaseTransaction,
        user_id: i64,
    ) -> std::result::Result<(), HookError> {
        let owned = member::Entity::find()
            .filter(member::Column::UserId.eq(user_id))
            .filter(member::Column::Role.eq(OrgRole::Owner.as_str()))
            .filter(member::Column::IsActive.eq(true))
            .all(transaction)
            .await?;
        let mut stranded = Vec::new();
        for membership in owned {
            let owners = self.owner_count(transaction, membership.organization_id).await?;
            if owners <= 1
                && let Some(organization) =
                    organization::Entity::find_by_id(membership.organization_id).one(transaction).await?
            {
                stranded.push(format!("'{}'", organization.slug));
            }
        }
        if stranded.is_empty() {
            return Ok(());
        }
        Err(HookError::Refused {
            code: "organizations.user_is_last_owner",
            detail: format!(
                "The user is the last owner of {}; add another owner or delete it first",
                stranded.join(", ")
            ),
        })
    }
}
