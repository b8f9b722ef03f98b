//! Account pages: the look of the host's `/login`, `/register` (signs in on success) and the settings pages (profile, password,
//! API tokens, sessions). Each form posts, then redirects (Post/Redirect/Get); a failed form is
//! re-rendered with its values, an error summary and per-field messages.

use std::sync::Arc;

use askama::Template;
use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Request, Response};
use serde::Deserialize;
use thub_plugin_sdk::{AccountService, ApiError, LoginForm, LoginPage, Principal, Registration};

use crate::Web;
use crate::forms::{Field, FormErrors};
use crate::frame::{Button, Frame, encode_component, safe_next};
use crate::views::minute;

/// Error codes of the accounts service that belong to one field.
const FIELD_CODES: &[(&str, &str)] = &[
    ("accounts.username_taken", "username"),
    ("accounts.email_taken", "email"),
    ("accounts.wrong_current_password", "current_password"),
];

fn unavailable() -> ApiError {
    ApiError::unavailable("web.accounts_unavailable", "Accounts are not available on this hub")
}

/// The account service, or the error page that says it is missing.
fn accounts(web: &Web) -> Result<&Arc<dyn AccountService>, ApiError> {
    web.accounts.as_ref().ok_or_else(unavailable)
}

/// The host's `/login` page in the site's look: the host keeps the rules and the cookies and
/// hands over the form's values (see `thub_plugin_sdk::LoginPage`).
pub(crate) struct SignInPage(pub(crate) Arc<Web>);

#[derive(Template)]
#[template(path = "login.html")]
struct LoginTemplate<'a> {
    frame: &'a Frame,
    errors: FormErrors,
    fields: Vec<Field>,
    next: &'a str,
    csrf: &'a str,
}

#[async_trait::async_trait]
impl LoginPage for SignInPage {
    async fn render(&self, request: &Request, form: &LoginForm) -> Response {
        let frame = match Frame::new(&self.0, request).await {
            Ok(frame) => frame,
            Err(response) => return response,
        };
        let errors = FormErrors { general: form.error.iter().cloned().collect(), ..FormErrors::default() };
        let fields = vec![
            Field::new("username", "Username or email", "text", "").autocomplete("username").required(),
            Field::new("password", "Password", "password", "").autocomplete("current-password").required(),
        ];
        let page = LoginTemplate { frame: &frame, errors, fields, next: &form.next, csrf: &form.csrf };
        frame.render(&page, StatusCode::OK)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RegisterForm {
    username: String,
    email: String,
    password: String,
    full_name: String,
    next: String,
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage<'a> {
    frame: &'a Frame,
    errors: FormErrors,
    fields: Vec<Field>,
    next: String,
}

fn register_page(frame: &Frame, form: &RegisterForm, errors: FormErrors, status: StatusCode) -> Response {
    let fields = vec![
        Field::new("username", "Username", "text", &form.username)
            .hint("3 to 50 letters, digits, - or _. It is your address: /username.")
            .autocomplete("username")
            .required()
            .checked(&errors),
        Field::new("email", "Email", "email", &form.email).autocomplete("email").required().checked(&errors),
        Field::new("full_name", "Full name", "text", &form.full_name).autocomplete("name").required().checked(&errors),
        // A password is never sent back into the page.
        Field::new("password", "Password", "password", "")
            .hint("At least 8 characters.")
            .autocomplete("new-password")
            .required()
            .checked(&errors),
    ];
    let page = RegisterPage { frame, errors, fields, next: safe_next(&form.next) };
    frame.render(&page, status)
}

/// `GET|POST /register`.
pub(crate) async fn register(web: Arc<Web>, mut request: Request) -> Response {
    let frame = match Frame::new(&web, &request).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    if *request.method() != Method::POST {
        let next = request.params::<NextQuery>().map(|query| query.next).unwrap_or_default();
        let form = RegisterForm { next, ..Default::default() };
        return register_page(&frame, &form, FormErrors::default(), StatusCode::OK);
    }
    let form: RegisterForm = match frame.read_form(&mut request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let accounts = match accounts(&web) {
        Ok(accounts) => accounts,
        Err(error) => return frame.error(&error),
    };
    let registration = Registration {
        username: form.username.trim().to_owned(),
        email: form.email.trim().to_owned(),
        password: form.password.clone(),
        full_name: form.full_name.trim().to_owned(),
    };
    match accounts.register(registration, &accounts.client_address(&request)).await {
        Ok(cookie) => {
            let mut response = frame.redirect(&safe_next(&form.next));
            let secure = if frame.https() { "; Secure" } else { "" };
            let value = format!(
                "session={}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
                cookie.value, cookie.max_age_seconds
            );
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(error) if error.status().is_client_error() && error.status() != StatusCode::TOO_MANY_REQUESTS => {
            let errors = FormErrors::from_error(&error, FIELD_CODES);
            register_page(&frame, &form, errors, error.status())
        }
        Err(error) => frame.error(&error),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NextQuery {
    next: String,
}

/// `?done=` after a successful settings form: which confirmation to show.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DoneQuery {
    done: String,
}

fn done_message(request: &Request) -> Option<&'static str> {
    let done = request.params::<DoneQuery>().map(|query| query.done).unwrap_or_default();
    match done.as_str() {
        "profile" => Some("Your profile is saved."),
        "password" => Some("Your password is changed. Your other sessions were signed out."),
        "revoked" => Some("The token is revoked. It no longer works."),
        "session" => Some("The session is signed out."),
        "sessions" => Some("Every other session is signed out."),
        _ => None,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProfileForm {
    email: String,
    full_name: String,
}

#[derive(Template)]
#[template(path = "settings_profile.html")]
struct ProfilePage<'a> {
    frame: &'a Frame,
    section: &'static str,
    notice: Option<&'static str>,
    username: String,
    errors: FormErrors,
    fields: Vec<Field>,
}

fn profile_page(
    frame: &Frame,
    username: String,
    form: &ProfileForm,
    errors: FormErrors,
    notice: Option<&'static str>,
    status: StatusCode,
) -> Response {
    let fields = vec![
        Field::new("email", "Email", "email", &form.email).autocomplete("email").required().checked(&errors),
        Field::new("full_name", "Full name", "text", &form.full_name).autocomplete("name").required().checked(&errors),
    ];
    let page = ProfilePage { frame, section: "profile", notice, username, errors, fields };
    frame.render(&page, status)
}

/// `GET|POST /settings/profile`.
pub(crate) async fn profile(web: Arc<Web>, mut request: Request) -> Response {
    let (frame, principal) = match Frame::signed_in(&web, &request).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let accounts = match accounts(&web) {
        Ok(accounts) => accounts.clone(),
        Err(error) => return frame.error(&error),
    };
    if *request.method() != Method::POST {
        return match accounts.profile(&principal).await {
            Ok(profile) => {
                let form = ProfileForm { email: profile.email, full_name: profile.full_name };
                profile_page(
                    &frame,
                    profile.username,
                    &form,
                    FormErrors::default(),
                    done_message(&request),
                    StatusCode::OK,
                )
            }
            Err(error) => frame.error(&error),
        };
    }
    let form: ProfileForm = match frame.read_form(&mut request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    match accounts.update_profile(&principal, form.email.trim(), form.full_name.trim()).await {
        Ok(_) => frame.redirect("/settings/profile?done=profile"),
        Err(error) if error.status().is_client_error() => {
            let errors = FormErrors::from_error(&error, FIELD_CODES);
            profile_page(&frame, principal.username.clone(), &form, errors, None, error.status())
        }
        Err(error) => frame.error(&error),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PasswordForm {
    current_password: String,
    new_password: String,
}

#[derive(Template)]
#[template(path = "settings_password.html")]
struct PasswordPage<'a> {
    frame: &'a Frame,
    section: &'static str,
    notice: Option<&'static str>,
    errors: FormErrors,
    fields: Vec<Field>,
}

fn password_page(frame: &Frame, errors: FormErrors, notice: Option<&'static str>, status: StatusCode) -> Response {
    let fields = vec![
        Field::new("current_password", "Current password", "password", "")
            .autocomplete("current-password")
            .required()
            .checked(&errors),
        Field::new("new_password", "New password", "password", "")
            .hint("At least 8 characters. Your other sessions will be signed out.")
            .autocomplete("new-password")
            .required()
            .checked(&errors),
    ];
    let page = PasswordPage { frame, section: "password", notice, errors, fields };
    frame.render(&page, status)
}

/// `GET|POST /settings/password`.
pub(crate) async fn password(web: Arc<Web>, mut request: Request) -> Response {
    let (frame, principal) = match Frame::signed_in(&web, &request).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    if *request.method() != Method::POST {
        return password_page(&frame, FormErrors::default(), done_message(&request), StatusCode::OK);
    }
    let form: PasswordForm = match frame.read_form(&mut request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let accounts = match accounts(&web) {
        Ok(accounts) => accounts.clone(),
        Err(error) => return frame.error(&error),
    };
    let mut errors = FormErrors::default();
    if form.current_password.is_empty() {
        errors.add("current_password", "Enter your current password");
    }
    if !errors.is_empty() {
        return password_page(&frame, errors, None, StatusCode::UNPROCESSABLE_ENTITY);
    }
    match accounts.change_password(&principal, &form.current_password, &form.new_password).await {
        Ok(()) => frame.redirect("/settings/password?done=password"),
        Err(error) if error.status().is_client_error() => {
            password_page(&frame, FormErrors::from_error(&error, FIELD_CODES), None, error.status())
        }
        Err(error) => frame.error(&error),
    }
}

struct TokenRow {
    id: i64,
    name: String,
    prefix: String,
    active: bool,
    created: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "settings_tokens.html")]
struct TokensPage<'a> {
    frame: &'a Frame,
    section: &'static str,
    notice: Option<&'static str>,
    errors: FormErrors,
    fields: Vec<Field>,
    created_secret: Option<String>,
    rows: Vec<TokenRow>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TokenForm {
    name: String,
}

/// What the tokens page shows besides the list.
#[derive(Default)]
struct TokenFormState {
    name: String,
    errors: FormErrors,
    created_secret: Option<String>,
    notice: Option<&'static str>,
}

async fn tokens_page(
    frame: &Frame,
    accounts: &Arc<dyn AccountService>,
    principal: &Principal,
    state: TokenFormState,
    status: StatusCode,
) -> Response {
    let tokens = match accounts.api_tokens(principal).await {
        Ok(tokens) => tokens,
        Err(error) => return frame.error(&error),
    };
    let rows = tokens
        .into_iter()
        .map(|token| TokenRow {
            id: token.id,
            name: token.name,
            prefix: token.prefix,
            active: token.is_active,
            created: minute(token.created_at),
            last_used: token.last_used_at.map(minute).unwrap_or_else(|| "never".to_owned()),
        })
        .collect();
    let fields = vec![
        Field::new("name", "Token name", "text", &state.name)
            .hint("What the token is for, e.g. “laptop” or “CI”.")
            .required()
            .checked(&state.errors),
    ];
    let page = TokensPage {
        frame,
        section: "tokens",
        notice: state.notice,
        errors: state.errors,
        fields,
        created_secret: state.created_secret,
        rows,
    };
    frame.render(&page, status)
}

/// `GET|POST /settings/tokens`: list, and create (the secret is shown once, on the page the
/// POST answers; reloading it does not show it again because it is not stored).
pub(crate) async fn tokens(web: Arc<Web>, mut request: Request) -> Response {
    let (frame, principal) = match Frame::signed_in(&web, &request).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let accounts = match accounts(&web) {
        Ok(accounts) => accounts.clone(),
        Err(error) => return frame.error(&error),
    };
    if *request.method() != Method::POST {
        let notice = done_message(&request);
        return tokens_page(
            &frame,
            &accounts,
            &principal,
            TokenFormState { notice, ..Default::default() },
            StatusCode::OK,
        )
        .await;
    }
    let form: TokenForm = match frame.read_form(&mut request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    match accounts.create_api_token(&principal, &form.name).await {
        // The one exception to Post/Redirect/Get: the secret must not travel in a URL or be
        // stored to survive a redirect, so the POST's answer shows it (and is never cached).
        Ok((_, secret)) => {
            tokens_page(
                &frame,
                &accounts,
                &principal,
                TokenFormState { created_secret: Some(secret), ..Default::default() },
                StatusCode::OK,
            )
            .await
        }
        Err(error) if error.status().is_client_error() => {
            let errors = FormErrors::from_error(&error, FIELD_CODES);
            let state = TokenFormState { name: form.name.clone(), errors, ..Default::default() };
            tokens_page(&frame, &accounts, &principal, state, error.status()).await
        }
        Err(error) => frame.error(&error),
    }
}

/// `POST /settings/tokens/{id}/revoke`.
pub(crate) async fn revoke_token(web: Arc<Web>, mut request: Request) -> Response {
    let frame = match Frame::new(&web, &request).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    if *request.method() != Method::POST {
        return frame.not_found();
    }
    let principal = match frame.signed_in_caller() {
        Ok(principal) => principal,
        Err(redirect) => return redirect,
    };
    let id = request.raw_path_param("id").and_then(|id| id.parse::<i64>().ok());
    let _: Button = match frame.read_form(&mut request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let Some(id) = id else { return frame.not_found() };
    let accounts = match accounts(&web) {
        Ok(accounts) => accounts.clone(),
        Err(error) => return frame.error(&error),
    };
    match accounts.revoke_api_token(&principal, id).await {
        Ok(()) if wants_json(&request) => {
            frame.finish(Response::builder().content_type("application/json").body(r#"{"revoked":true}"#))
        }
        Ok(()) => frame.redirect("/settings/tokens?done=revoked"),
        Err(error) => frame.error(&error),
    }
}

struct SessionRow {
    id: String,
    created: String,
    refreshed: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "settings_sessions.html")]
struct SessionsPage<'a> {
    frame: &'a Frame,
    section: &'static str,
    notice: Option<&'static str>,
    rows: Vec<SessionRow>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SessionForm {
    /// A session id, or empty for "every other session".
    session: String,
}

/// `GET|POST /settings/sessions`: list; sign out one session or every other one.
pub(crate) async fn sessions(web: Arc<Web>, mut request: Request) -> Response {
    let (frame, principal) = match Frame::signed_in(&web, &request).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let accounts = match accounts(&web) {
        Ok(accounts) => accounts.clone(),
        Err(error) => return frame.error(&error),
    };
    if *request.method() == Method::POST {
        let form: SessionForm = match frame.read_form(&mut request).await {
            Ok(form) => form,
            Err(response) => return response,
        };
        let (result, done) = match form.session.as_str() {
            "" => (accounts.revoke_other_sessions(&principal).await, "sessions"),
            id => (accounts.revoke_session(&principal, id).await, "session"),
        };
        return match result {
            Ok(()) => frame.redirect(&format!("/settings/sessions?done={}", encode_component(done))),
            Err(error) => frame.error(&error),
        };
    }
    match accounts.sessions(&principal).await {
        Ok(sessions) => {
            let rows = sessions
                .into_iter()
                .map(|session| SessionRow {
                    id: session.id,
                    created: minute(session.created_at),
                    refreshed: minute(session.refreshed_at),
                    current: session.current,
                })
                .collect();
            let page = SessionsPage { frame: &frame, section: "sessions", notice: done_message(&request), rows };
            frame.render(&page, StatusCode::OK)
        }
        Err(error) => frame.error(&error),
    }
}

fn wants_json(request: &Request) -> bool {
    request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.starts_with("application/json"))
}
