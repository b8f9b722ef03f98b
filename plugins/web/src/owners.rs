//! The web's fallback: the home page at `/`, owner and endpoint pages for browsers, the star
//! button's `POST /{owner}/{slug}/star`, and a 404 page for owner-shaped paths that are neither
//! an owner nor a file in the hub folder. API clients (no `text/html` in `Accept`) are never
//! claimed here, except for the star form's JSON answer, so the registry's JSON stays theirs.

use std::sync::Arc;

use askama::Template;
use async_trait::async_trait;
use poem::http::{Method, StatusCode};
use poem::{Request, Response};
use serde::Deserialize;
use thub_organizations::OrgRole;
use thub_plugin_sdk::html::wants_html;
use thub_plugin_sdk::{ApiError, Fallback};
use thub_registry::access::Viewer;
use thub_registry::entity::endpoint;
use thub_registry::pages::render_markdown;
use thub_registry::{Owner, connections_of, contributors_of, policies_of, tags_of};

use crate::Web;
use crate::discover::page_number;
use crate::frame::Frame;
use crate::views::{Card, initial, kind_label, minute};

/// The fallback.
pub(crate) struct OwnerPages {
    web: Arc<Web>,
}

impl OwnerPages {
    pub(crate) fn new(web: Arc<Web>) -> Self {
        Self { web }
    }
}

/// What a path asks for.
enum Target {
    Home,
    Owner(String),
    Endpoint(String, String),
    Star(String, String),
    Edit(String, String),
    Delete(String, String),
}

fn name_like(segment: &str) -> bool {
    !segment.is_empty()
        && segment.len() <= 63
        && segment.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

fn target(request: &Request) -> Option<Target> {
    let path = request.uri().path();
    let reading = matches!(*request.method(), Method::GET | Method::HEAD);
    if path == "/" {
        return (reading && wants_html(request)).then_some(Target::Home);
    }
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let segments: Vec<&str> = trimmed.strip_prefix('/')?.split('/').collect();
    if !segments.iter().all(|segment| name_like(segment)) {
        return None;
    }
    match (segments.as_slice(), reading) {
        ([owner], true) if wants_html(request) => Some(Target::Owner(owner.to_lowercase())),
        ([owner, slug], true) if wants_html(request) => {
            Some(Target::Endpoint(owner.to_lowercase(), slug.to_lowercase()))
        }
        ([owner, slug, "star"], false) if *request.method() == Method::POST => {
            Some(Target::Star(owner.to_lowercase(), slug.to_lowercase()))
        }
        ([owner, slug, "edit"], _) if reading || *request.method() == Method::POST => {
            Some(Target::Edit(owner.to_lowercase(), slug.to_lowercase()))
        }
        ([owner, slug, "delete"], false) if *request.method() == Method::POST => {
            Some(Target::Delete(owner.to_lowercase(), slug.to_lowercase()))
        }
        _ => None,
    }
}

#[async_trait]
impl Fallback for OwnerPages {
    async fn claims(&self, request: &Request) -> bool {
        match target(request) {
            None => false,
            // Checked on each request: a project may gain its index.html while the hub runs.
            Some(Target::Home) => !self.web.root.join("index.html").is_file(),
            Some(
                Target::Owner(owner)
                | Target::Endpoint(owner, _)
                | Target::Star(owner, _)
                | Target::Edit(owner, _)
                | Target::Delete(owner, _),
            ) => {
                if matches!(self.web.registry.owner(&owner).await, Ok(Some(_))) {
                    return true;
                }
                // No such owner: answer the 404 page ourselves unless the hub folder has a file
                // or folder of that name, which the static site serves.
                let first = request.uri().path().trim_start_matches('/').split('/').next().unwrap_or_default();
                !self.web.root.join(first).exists()
            }
        }
    }

    async fn handle(&self, request: Request) -> poem::Result<Response> {
        let web = self.web.clone();
        Ok(match target(&request) {
            Some(Target::Home) => crate::discover::home(web, request).await,
            Some(Target::Owner(owner)) => owner_page(web, request, &owner).await,
            Some(Target::Endpoint(owner, slug)) => endpoint_page(web, request, &owner, &slug).await,
            Some(Target::Star(owner, slug)) => star(web, request, &owner, &slug).await,
            Some(Target::Edit(owner, slug)) => crate::publish::edit_endpoint(web, request, &owner, &slug).await,
            Some(Target::Delete(owner, slug)) => crate::publish::delete_endpoint(web, request, &owner, &slug).await,
            None => match Frame::new(&web, &request).await {
                Ok(frame) => frame.not_found(),
                Err(response) => response,
            },
        })
    }
}

/// An endpoint the frame's caller may see, with its owner; `None` when missing or hidden (the
/// same answer, so a private endpoint's existence is never revealed).
async fn visible_endpoint(
    web: &Web,
    viewer: &Viewer,
    owner_name: &str,
    slug: &str,
) -> Result<Option<(Owner, endpoint::Model)>, ApiError> {
    let Some(owner) = web.registry.owner(owner_name).await? else { return Ok(None) };
    let Some(model) = web.registry.owner_endpoint(&owner, slug).await? else { return Ok(None) };
    let organization_active = match &owner {
        Owner::User(_) => true,
        Owner::Organization(organization) => organization.is_active,
    };
    Ok(viewer.can_see(&model, organization_active).then_some((owner, model)))
}

struct Member {
    username: String,
    full_name: String,
    role: &'static str,
}

#[derive(Template)]
#[template(path = "owner.html")]
struct OwnerPage<'a> {
    frame: &'a Frame,
    name: String,
    display_name: String,
    initial: String,
    bio: String,
    is_organization: bool,
    can_manage: bool,
    cards: Vec<Card>,
    total: u64,
    stars: i64,
    members: Vec<Member>,
    page: u64,
    pages: u64,
    previous: Option<String>,
    next: Option<String>,
}

/// `?page=` of an owner page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OwnerQuery {
    page: String,
}

async fn owner_page(web: Arc<Web>, request: Request, owner_name: &str) -> Response {
    let frame = match Frame::new(&web, &request).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    let result: Result<Option<OwnerPage>, ApiError> = async {
        let Some(owner) = web.registry.owner(owner_name).await? else { return Ok(None) };
        let viewer = web.registry.viewer(frame.principal.clone()).await?;
        let page = page_number(&request.params::<OwnerQuery>().unwrap_or_default().page)?;
        let page_size = web.config.page_size;
        let listed = web.registry.owner_listing(&viewer, &owner, (page - 1) * page_size, page_size).await?;
        let (total, stars) = (listed.total, listed.stars);
        let pages = total.div_ceil(page_size).max(1);
        let link = |page: u64| format!("/{}?page={page}", owner.name());
        let (bio, is_organization, can_manage, members) = match &owner {
            Owner::User(user) => (user.full_name.clone(), false, viewer.user_id() == Some(user.id), Vec::new()),
            Owner::Organization(organization) => {
                let role = viewer.role_in(organization.id);
                let rows = web.organizations.member_rows(organization.id).await?;
                let ids: Vec<i64> = rows.iter().map(|row| row.user_id).collect();
                let users = web.directory.users_by_ids(&ids).await?;
                let members = rows
                    .iter()
                    .filter_map(|row| {
                        let user = users.iter().find(|user| user.id == row.user_id)?;
                        Some(Member {
                            username: user.username.clone(),
                            full_name: user.full_name.clone(),
                            role: OrgRole::parse(&row.role).map_or("member", OrgRole::as_str),
                        })
                    })
                    .collect();
                let can_manage = viewer.is_admin() || role.is_some_and(OrgRole::can_manage);
                (organization.description.clone(), true, can_manage, members)
            }
        };
        Ok(Some(OwnerPage {
            frame: &frame,
            name: owner.name().to_owned(),
            display_name: owner.display_name().to_owned(),
            initial: initial(owner.display_name()),
            bio,
            is_organization,
            can_manage,
            cards: Card::many(&listed.endpoints, &listed.owners),
            total,
            stars,
            members,
            page,
            pages,
            previous: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
        }))
    }
    .await;
    match result {
        Ok(Some(page)) => frame.render(&page, StatusCode::OK),
        Ok(None) => frame.not_found(),
        Err(error) => frame.error(&error),
    }
}

/// A connection or policy as a table row.
struct Declaration {
    kind: String,
    enabled: bool,
    description: String,
    settings: Vec<(String, String)>,
}

fn declarations(items: Vec<serde_json::Value>) -> Vec<Declaration> {
    items
        .into_iter()
        .map(|item| {
            let text = |key: &str| item.get(key).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
            let settings = item
                .get("config")
                .and_then(serde_json::Value::as_object)
                .map(|config| {
                    config
                        .iter()
                        .map(|(key, value)| {
                            let shown = match value {
                                serde_json::Value::String(text) => text.clone(),
                                other => other.to_string(),
                            };
                            (key.clone(), shown)
                        })
                        .collect()
                })
                .unwrap_or_default();
            Declaration {
                kind: text("type"),
                enabled: item.get("enabled").and_then(serde_json::Value::as_bool).unwrap_or(true),
                description: text("description"),
                settings,
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "endpoint.html")]
struct EndpointPage<'a> {
    frame: &'a Frame,
    owner: String,
    owner_display: String,
    slug: String,
    name: String,
    description: String,
    kind: &'static str,
    visibility: String,
    version: String,
    updated: String,
    tags: Vec<String>,
    stars: i64,
    starred: bool,
    can_manage: bool,
    readme_html: String,
    connections: Vec<Declaration>,
    policies: Vec<Declaration>,
    contributors: Vec<String>,
    sdk_snippet: String,
    curl_example: String,
}

async fn endpoint_page(web: Arc<Web>, request: Request, owner_name: &str, slug: &str) -> Response {
    let frame = match Frame::new(&web, &request).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    let base = match &web.accounts {
        Some(accounts) => accounts.public_base(&request),
        None => String::new(),
    };
    let result: Result<Option<EndpointPage>, ApiError> = async {
        let viewer = web.registry.viewer(frame.principal.clone()).await?;
        let Some((owner, model)) = visible_endpoint(&web, &viewer, owner_name, slug).await? else { return Ok(None) };
        let starred = match &frame.principal {
            Some(principal) => web.stars.starred(principal, model.id).await?,
            None => false,
        };
        let contributor_ids = contributors_of(&model);
        let contributors = web.directory.users_by_ids(&contributor_ids).await?;
        let contributors = contributor_ids
            .iter()
            .filter_map(|id| contributors.iter().find(|user| user.id == *id).map(|user| user.username.clone()))
            .collect();
        let path = format!("{}/{}", owner.name(), model.slug);
        Ok(Some(EndpointPage {
            frame: &frame,
            owner: owner.name().to_owned(),
            owner_display: owner.display_name().to_owned(),
            slug: model.slug.clone(),
            name: model.name.clone(),
            description: model.description.clone(),
            kind: kind_label(&model.kind),
            visibility: model.visibility.clone(),
            version: model.version.clone(),
            updated: minute(model.updated_at),
            tags: tags_of(&model),
            stars: model.stars_count,
            starred,
            can_manage: viewer.can_manage(&model),
            readme_html: if model.readme.trim().is_empty() { String::new() } else { render_markdown(&model.readme) },
            connections: declarations(connections_of(&model)),
            policies: declarations(policies_of(&model)),
            contributors,
            sdk_snippet: format!(
                "from syfthub_sdk import SyftHubClient\n\nclient = SyftHubClient(base_url=\"{base}\")\nendpoint = client.hub.get(\"{path}\")\nprint(endpoint.name, endpoint.version)"
            ),
            curl_example: format!("curl -H 'Accept: application/json' {base}/{path}"),
        }))
    }
    .await;
    match result {
        Ok(Some(page)) => frame.render(&page, StatusCode::OK),
        Ok(None) => frame.not_found(),
        Err(error) => frame.error(&error),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StarForm {
    action: String,
}

/// `POST /{owner}/{slug}/star`: stars or unstars, then back to the page (or JSON for the
/// script, which updates the button and count in place).
async fn star(web: Arc<Web>, mut request: Request, owner_name: &str, slug: &str) -> Response {
    let frame = match Frame::new(&web, &request).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    let form: StarForm = match frame.read_form(&mut request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let Some(principal) = frame.principal.clone() else {
        let back = format!("/{owner_name}/{slug}");
        return frame.redirect(&format!("/login?next={}", crate::frame::encode_component(&back)));
    };
    let result: Result<Option<i64>, ApiError> = async {
        let viewer = web.registry.viewer(Some(principal.clone())).await?;
        let Some((_, model)) = visible_endpoint(&web, &viewer, owner_name, slug).await? else { return Ok(None) };
        match form.action.as_str() {
            "unstar" => web.stars.unstar(&principal, model.id).await?,
            _ => web.stars.star(&principal, model.id).await?,
        };
        Ok(Some(model.id))
    }
    .await;
    match result {
        Ok(Some(id)) => {
            if accepts_json(&request) {
                let viewer = web.registry.viewer(Some(principal.clone())).await;
                let count = match viewer {
                    Ok(viewer) => web.registry.visible(&viewer, id).await.map(|model| model.stars_count).unwrap_or(0),
                    Err(_) => 0,
                };
                let starred = web.stars.starred(&principal, id).await.unwrap_or(false);
                let body = serde_json::json!({"starred": starred, "stars_count": count});
                return frame.finish(Response::builder().content_type("application/json").body(body.to_string()));
            }
            frame.redirect(&format!("/{owner_name}/{slug}"))
        }
        Ok(None) => frame.not_found(),
        Err(error) => frame.error(&error),
    }
}

fn accepts_json(request: &Request) -> bool {
    request
        .headers()
        .get(poem::http::header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.starts_with("application/json"))
}
