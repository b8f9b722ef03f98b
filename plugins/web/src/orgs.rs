//! Organizations: `/orgs/new` creates one (the creator is its owner) and `/orgs/{slug}/settings`
//! manages members and roles for its owners and admins. The last-owner rule comes back from the
//! organizations service as a message at the top of the page.

use std::sync::Arc;

use askama::Template;
use poem::http::{Method, StatusCode};
use poem::{Request, Response};
use serde::Deserialize;
use thub_organizations::{NewOrganization, OrgRole, OrganizationSummary};
use thub_plugin_sdk::{ApiError, Principal};

use crate::Web;
use crate::forms::{Field, FormErrors};
use crate::frame::{Frame, encode_component};

const ORG_FIELD_CODES: &[(&str, &str)] =
    &[("organizations.slug_taken", "slug"), ("organizations.user_not_found", "username")];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OrganizationForm {
    name: String,
    slug: String,
    description: String,
}

#[derive(Template)]
#[template(path = "org_new.html")]
struct NewOrganizationPage<'a> {
    frame: &'a Frame,
    errors: FormErrors,
    fields: Vec<Field>,
}

fn new_page(frame: &Frame, form: &OrganizationForm, errors: FormErrors, status: StatusCode) -> Response {
    let fields = vec![
        Field::new("name", "Name", "text", &form.name).required().checked(&errors),
        Field::new("slug", "Address", "text", &form.slug)
            .hint(
                "Lowercase letters, digits and hyphens: the organization lives at /address. Empty: made from the name.",
            )
            .checked(&errors),
        Field::new("description", "Description", "text", &form.description).checked(&errors),
    ];
    frame.render(&NewOrganizationPage { frame, errors, fields }, status)
}

/// `GET|POST /orgs/new`.
pub(crate) async fn new_organization(web: Arc<Web>, mut request: Request) -> Response {
    let (frame, principal) = match Frame::signed_in(&web, &request).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    if *request.method() != Method::POST {
        return new_page(&frame, &OrganizationForm::default(), FormErrors::default(), StatusCode::OK);
    }
    let form: OrganizationForm = match frame.read_form(&mut request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let slug = form.slug.trim();
    let new = NewOrganization {
        name: form.name.clone(),
        slug: (!slug.is_empty()).then(|| slug.to_owned()),
        description: Some(form.description.trim().to_owned()),
        avatar_url: None,
    };
    match web.organizations.create(&principal, new).await {
        Ok(created) => frame.redirect(&format!("/orgs/{}/settings?done=created", encode_component(&created.slug))),
        Err(error) => {
            let error = ApiError::from(error);
            if error.status().is_client_error() {
                let status = error.status();
                new_page(&frame, &form, FormErrors::from_error(&error, ORG_FIELD_CODES), status)
            } else {
                frame.error(&error)
            }
        }
    }
}

struct MemberRow {
    user_id: i64,
    username: String,
    role: &'static str,
}

#[derive(Template)]
#[template(path = "org_settings.html")]
struct SettingsPage<'a> {
    frame: &'a Frame,
    organization: OrganizationSummary,
    members: Vec<MemberRow>,
    roles: &'static [&'static str],
    errors: FormErrors,
    username_field: Field,
    new_role: String,
    notice: Option<&'static str>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MemberForm {
    /// `add`, `role` or `remove`.
    action: String,
    username: String,
    user_id: String,
    role: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DoneQuery {
    done: String,
}

const ROLES: &[&str] = &["member", "admin", "owner"];

/// `GET|POST /orgs/{slug}/settings`: members and roles, for owners, admins and site
/// administrators; a 404 page for everyone else.
pub(crate) async fn settings(web: Arc<Web>, mut request: Request) -> Response {
    let (frame, principal) = match Frame::signed_in(&web, &request).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let slug = request.raw_path_param("slug").unwrap_or_default().to_lowercase();
    let organization = match web.organizations.by_slug(&slug).await {
        Ok(Some(organization)) if organization.is_active => organization,
        Ok(_) => return frame.not_found(),
        Err(error) => return frame.error(&error.into()),
    };
    let role = match web.organizations.role_of(organization.id, principal.user_id).await {
        Ok(role) => role,
        Err(error) => return frame.error(&error.into()),
    };
    if !principal.is_admin() && !role.is_some_and(OrgRole::can_manage) {
        return frame.not_found();
    }
    if *request.method() != Method::POST {
        let done = request.params::<DoneQuery>().map(|query| query.done).unwrap_or_default();
        let notice = match done.as_str() {
            "created" => Some("The organization is created. You are its owner."),
            "add" => Some("The member is added."),
            "role" => Some("The role is changed."),
            "remove" => Some("The member is removed."),
            _ => None,
        };
        return settings_page(&web, &frame, organization, FormErrors::default(), MemberForm::default(), notice).await;
    }
    let form: MemberForm = match frame.read_form(&mut request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let result = member_change(&web, &principal, &organization, &form).await;
    match result {
        Ok(()) => frame.redirect(&format!(
            "/orgs/{}/settings?done={}",
            encode_component(&organization.slug),
            encode_component(&form.action)
        )),
        Err(error) if error.status().is_client_error() => {
            let mut errors = FormErrors::from_error(&error, ORG_FIELD_CODES);
            if error.code() == "organizations.last_owner" {
                errors.general = vec![
                    "An organization needs at least one owner: make another member an owner first, then change \
                     or remove this one."
                        .to_owned(),
                ];
            }
            settings_page(&web, &frame, organization, errors, form, None).await
        }
        Err(error) => frame.error(&error),
    }
}

async fn member_change(
    web: &Web,
    principal: &Principal,
    organization: &OrganizationSummary,
    form: &MemberForm,
) -> Result<(), ApiError> {
    let role = || {
        OrgRole::parse(&form.role).ok_or_else(|| {
            ApiError::invalid_field(&["body", "role"], "Choose member, admin or owner", serde_json::Value::Null)
        })
    };
    match form.action.as_str() {
        "add" => {
            let username = form.username.trim();
            if username.is_empty() {
                return Err(ApiError::invalid_field(
                    &["body", "username"],
                    "Enter a username",
                    serde_json::Value::Null,
                ));
            }
            let user = web.directory.user_by_username(username).await?.ok_or_else(|| {
                ApiError::invalid_field(
                    &["body", "username"],
                    "There is no user with that username",
                    serde_json::Value::Null,
                )
            })?;
            web.organizations.add_member(principal, organization.id, user.id, role()?).await?;
        }
        "role" | "remove" => {
            let user_id =
                form.user_id.parse::<i64>().map_err(|_| ApiError::bad_request("web.bad_form", "Unknown member"))?;
            if form.action == "role" {
                web.organizations.change_role(principal, organization.id, user_id, Some(role()?)).await?;
            } else {
                web.organizations.remove_member(principal, organization.id, user_id).await?;
            }
        }
        _ => return Err(ApiError::bad_request("web.bad_form", "Unknown action")),
    }
    Ok(())
}

async fn settings_page(
    web: &Web,
    frame: &Frame,
    organization: OrganizationSummary,
    errors: FormErrors,
    form: MemberForm,
    notice: Option<&'static str>,
) -> Response {
    let rows = match web.organizations.member_rows(organization.id).await {
        Ok(rows) => rows,
        Err(error) => return frame.error(&error.into()),
    };
    let ids: Vec<i64> = rows.iter().map(|row| row.user_id).collect();
    let users = match web.directory.users_by_ids(&ids).await {
        Ok(users) => users,
        Err(error) => return frame.error(&error.into()),
    };
    let members = rows
        .iter()
        .filter_map(|row| {
            let user = users.iter().find(|user| user.id == row.user_id)?;
            Some(MemberRow {
                user_id: row.user_id,
                username: user.username.clone(),
                role: OrgRole::parse(&row.role).map_or("member", OrgRole::as_str),
            })
        })
        .collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let username_field =
        Field::new("username", "Username", "text", if form.action == "add" { &form.username } else { "" })
            .checked(&errors);
    let page = SettingsPage {
        frame,
        organization,
        members,
        roles: ROLES,
        errors,
        username_field,
        new_role: if form.action == "add" && !form.role.is_empty() { form.role } else { "member".to_owned() },
        notice,
    };
    frame.render(&page, status)
}
