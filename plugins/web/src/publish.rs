//! Publishing: `/new` creates an endpoint (under the caller or one of their organizations) and
//! lands on its page; `/{owner}/{slug}/edit` changes it and `/{owner}/{slug}/delete` removes it
//! (the owner, or an organization's admins and owners). Field names are the API's.

use std::sync::Arc;

use askama::Template;
use poem::http::{Method, StatusCode};
use poem::{Request, Response};
use serde::Deserialize;
use thub_plugin_sdk::{ApiError, FieldError, Principal};
use thub_registry::Owner;
use thub_registry::entity::endpoint;
use thub_registry::model::{EndpointDraft, EndpointKind, Visibility};
use thub_registry::tags_of;

use crate::Web;
use crate::forms::{Field, FormErrors};
use crate::frame::{Button, Frame, encode_component};
use crate::views::KINDS;

/// The endpoint form as typed.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub(crate) struct EndpointForm {
    /// `""` for the caller, or an organization slug.
    owner: String,
    name: String,
    description: String,
    #[serde(rename = "type")]
    kind: String,
    visibility: String,
    readme: String,
    version: String,
    /// Comma-separated.
    tags: String,
}

impl EndpointForm {
    fn of(model: &endpoint::Model) -> Self {
        Self {
            name: model.name.clone(),
            description: model.description.clone(),
            kind: model.kind.clone(),
            visibility: model.visibility.clone(),
            readme: model.readme.clone(),
            version: model.version.clone(),
            tags: tags_of(model).join(", "),
            ..Default::default()
        }
    }

    /// The draft, or the messages of the fields the page itself checks (choices).
    fn draft(&self) -> Result<EndpointDraft, FormErrors> {
        let mut errors = FormErrors::default();
        let kind = EndpointKind::parse(&self.kind);
        if kind.is_none() {
            errors.add("type", "Choose a type");
        }
        let visibility = Visibility::parse(&self.visibility);
        if visibility.is_none() {
            errors.add("visibility", "Choose who can see it");
        }
        let draft = EndpointDraft { kind, visibility, ..self.draft_unchecked() };
        if errors.is_empty() { Ok(draft) } else { Err(errors) }
    }
}

#[derive(Template)]
#[template(path = "endpoint_form.html")]
struct EndpointFormPage<'a> {
    frame: &'a Frame,
    title: String,
    action: String,
    submit: &'static str,
    errors: FormErrors,
    fields: Vec<Field>,
    kind: String,
    visibility: String,
    kinds: &'static [(&'static str, &'static str)],
    /// `(value, label)` of owners to choose from; empty on the edit page.
    owners: Vec<(String, String)>,
    owner: String,
    /// The delete form's action, on the edit page.
    delete_action: Option<String>,
    kind_error: Option<String>,
    visibility_error: Option<String>,
}

fn form_page(
    frame: &Frame,
    form: &EndpointForm,
    errors: FormErrors,
    owners: Vec<(String, String)>,
    editing: Option<(&str, &str)>,
    status: StatusCode,
) -> Response {
    let fields = vec![
        Field::new("name", "Name", "text", &form.name).required().checked(&errors),
        Field::new("description", "Description", "text", &form.description)
            .hint("One sentence: what it does. At most 500 characters.")
            .checked(&errors),
        Field::new("version", "Version", "text", &form.version).hint("Semantic version, e.g. 1.0.0.").checked(&errors),
        Field::new("tags", "Tags", "text", &form.tags).hint("Comma-separated, e.g. vision, pytorch.").checked(&errors),
        Field::new("readme", "README", "textarea", &form.readme).hint("Markdown.").checked(&errors),
    ];
    let (title, action, submit, delete_action) = match editing {
        Some((owner, slug)) => (
            format!("Edit {owner}/{slug}"),
            format!("/{owner}/{slug}/edit"),
            "Save changes",
            Some(format!("/{owner}/{slug}/delete")),
        ),
        None => ("Publish an endpoint".to_owned(), "/new".to_owned(), "Publish endpoint", None),
    };
    let page = EndpointFormPage {
        frame,
        title,
        action,
        submit,
        kind_error: errors.get("type").map(str::to_owned),
        visibility_error: errors.get("visibility").map(str::to_owned),
        errors,
        fields,
        kind: form.kind.clone(),
        visibility: form.visibility.clone(),
        kinds: KINDS,
        owners,
        owner: form.owner.clone(),
        delete_action,
    };
    frame.render(&page, status)
}

/// The owners the caller may publish under: themselves, then their organizations.
async fn owner_choices(web: &Web, principal: &Principal) -> Result<Vec<(String, String)>, ApiError> {
    let mut choices = vec![(String::new(), format!("{} (you)", principal.username))];
    let memberships = web.organizations.memberships_of(principal.user_id).await?;
    let ids: Vec<i64> = memberships.iter().map(|(id, _)| *id).collect();
    for organization in web.organizations.by_ids(ids).await? {
        if organization.is_active {
            choices.push((organization.slug.clone(), organization.name.clone()));
        }
    }
    Ok(choices)
}

/// Service errors as form messages: the registry's `type` field is this form's `type` too.
fn service_errors(error: &ApiError) -> FormErrors {
    FormErrors::from_error(error, &[("registry.slug_taken", "name")])
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NewQuery {
    owner: String,
}

/// `GET|POST /new`.
pub(crate) async fn new_endpoint(web: Arc<Web>, mut request: Request) -> Response {
    let (frame, principal) = match Frame::signed_in(&web, &request).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let owners = match owner_choices(&web, &principal).await {
        Ok(owners) => owners,
        Err(error) => return frame.error(&error),
    };
    if *request.method() != Method::POST {
        let owner = request.params::<NewQuery>().map(|query| query.owner).unwrap_or_default();
        let form =
            EndpointForm { owner, visibility: "public".to_owned(), version: "0.1.0".to_owned(), ..Default::default() };
        return form_page(&frame, &form, FormErrors::default(), owners, None, StatusCode::OK);
    }
    let form: EndpointForm = match frame.read_form(&mut request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let organization = match form.owner.as_str() {
        "" => None,
        slug => match web.organizations.by_slug(slug).await {
            Ok(Some(organization)) if owners.iter().any(|(value, _)| value == slug) => Some(organization),
            Ok(_) => {
                let mut errors = FormErrors::default();
                errors.add("owner", "Choose yourself or one of your organizations");
                return form_page(&frame, &form, errors, owners, None, StatusCode::UNPROCESSABLE_ENTITY);
            }
            Err(error) => return frame.error(&error.into()),
        },
    };
    let draft = match form.draft() {
        Ok(draft) => draft,
        Err(mut errors) => {
            // Also report what the registry would say about the other fields.
            let probe = EndpointDraft {
                kind: Some(EndpointKind::Model),
                visibility: Some(Visibility::Public),
                ..form.draft_unchecked()
            };
            if let Err(problems) = web.registry.check_draft(&probe, true) {
                merge(&mut errors, &problems);
            }
            return form_page(&frame, &form, errors, owners, None, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let owner_name = organization.as_ref().map_or(principal.username.clone(), |organization| organization.slug.clone());
    match web.registry.create(&principal, draft, organization.map(|organization| organization.id)).await {
        Ok(created) => frame.redirect(&format!("/{}/{}", encode_component(&owner_name), created.slug)),
        Err(error) => {
            let error = ApiError::from(error);
            if error.status().is_client_error() {
                let status = error.status();
                form_page(&frame, &form, service_errors(&error), owners, None, status)
            } else {
                frame.error(&error)
            }
        }
    }
}

fn merge(errors: &mut FormErrors, problems: &[FieldError]) {
    for problem in problems {
        let field = problem.loc.get(1).and_then(serde_json::Value::as_str).unwrap_or_default();
        if !field.is_empty() && errors.get(field).is_none() {
            errors.add(field, problem.msg.clone());
        }
    }
}

impl EndpointForm {
    /// The text fields as a draft, choices left out (for checking the rest).
    fn draft_unchecked(&self) -> EndpointDraft {
        let tags: Vec<String> =
            self.tags.split(',').map(str::trim).filter(|tag| !tag.is_empty()).map(str::to_owned).collect();
        EndpointDraft {
            name: Some(self.name.trim().to_owned()),
            description: Some(self.description.trim().to_owned()),
            version: Some(if self.version.trim().is_empty() {
                "0.1.0".to_owned()
            } else {
                self.version.trim().to_owned()
            }),
            readme: Some(self.readme.clone()),
            tags: Some(tags),
            ..Default::default()
        }
    }
}

/// The endpoint at `/{owner}/{slug}` if the caller may manage it; `None` is a 404 (never a
/// hint that a hidden endpoint exists).
async fn managed(
    web: &Web,
    principal: &Principal,
    owner_name: &str,
    slug: &str,
) -> Result<Option<endpoint::Model>, ApiError> {
    let viewer = web.registry.viewer(Some(principal.clone())).await?;
    let Some(owner) = web.registry.owner(owner_name).await? else { return Ok(None) };
    let Some(model) = web.registry.owner_endpoint(&owner, slug).await? else { return Ok(None) };
    let organization_active = match &owner {
        Owner::User(_) => true,
        Owner::Organization(organization) => organization.is_active,
    };
    Ok((viewer.can_see(&model, organization_active) && viewer.can_manage(&model)).then_some(model))
}

/// `GET|POST /{owner}/{slug}/edit`.
pub(crate) async fn edit_endpoint(web: Arc<Web>, mut request: Request, owner_name: &str, slug: &str) -> Response {
    let (frame, principal) = match Frame::signed_in(&web, &request).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let model = match managed(&web, &principal, owner_name, slug).await {
        Ok(Some(model)) => model,
        Ok(None) => return frame.not_found(),
        Err(error) => return frame.error(&error),
    };
    let editing = Some((owner_name, slug));
    if *request.method() != Method::POST {
        return form_page(
            &frame,
            &EndpointForm::of(&model),
            FormErrors::default(),
            Vec::new(),
            editing,
            StatusCode::OK,
        );
    }
    let form: EndpointForm = match frame.read_form(&mut request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let draft = match form.draft() {
        Ok(draft) => draft,
        Err(errors) => {
            return form_page(&frame, &form, errors, Vec::new(), editing, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    match web.registry.update(&principal, model.id, draft).await {
        Ok(updated) => frame.redirect(&format!("/{owner_name}/{}", updated.slug)),
        Err(error) => {
            let error = ApiError::from(error);
            if error.status().is_client_error() {
                let status = error.status();
                form_page(&frame, &form, service_errors(&error), Vec::new(), editing, status)
            } else {
                frame.error(&error)
            }
        }
    }
}

/// `POST /{owner}/{slug}/delete`: then to the owner's page.
pub(crate) async fn delete_endpoint(web: Arc<Web>, mut request: Request, owner_name: &str, slug: &str) -> Response {
    let frame = match Frame::new(&web, &request).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    let _: Button = match frame.read_form(&mut request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let principal = match frame.signed_in_caller() {
        Ok(principal) => principal,
        Err(redirect) => return redirect,
    };
    let model = match managed(&web, &principal, owner_name, slug).await {
        Ok(Some(model)) => model,
        Ok(None) => return frame.not_found(),
        Err(error) => return frame.error(&error),
    };
    match web.registry.delete(&principal, model.id).await {
        Ok(()) => frame.redirect(&format!("/{owner_name}")),
        Err(error) => frame.error(&error.into()),
    }
}
