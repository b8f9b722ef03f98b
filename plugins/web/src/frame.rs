//! What every page shares: who is asking, the CSRF token, the asset paths, the security
//! headers (a strict Content-Security-Policy), and the 403/404/error pages in the site's look.

use askama::Template;
use base64::Engine;
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::Form;
use poem::{FromRequest, Request, RequestBody, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;
use thub_plugin_sdk::{ApiError, Principal, current_request_id, optional_user};

use crate::Web;

/// The CSRF cookie: a random token that every form repeats in a hidden `csrf` field
/// (double submit). SameSite=Strict, so another site's form never carries it.
const CSRF_COOKIE: &str = "thub_web_csrf";

/// No inline script, no inline style attributes from us, no plugins, no framing; forms post
/// only here. Images may come from https (avatars in READMEs).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; \
     connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The page frame: what the base layout needs and what handlers ask about the caller.
pub(crate) struct Frame {
    /// The signed-in, active caller.
    pub(crate) principal: Option<Principal>,
    /// The token forms must repeat.
    pub(crate) csrf: String,
    csrf_is_new: bool,
    https: bool,
    /// Stylesheet path.
    pub(crate) css: String,
    /// Script path.
    pub(crate) js: String,
    /// The header search box's value.
    pub(crate) query: String,
    /// This page's path and query, for `?next=` on the sign-in link.
    pub(crate) here: String,
}

impl Frame {
    /// [`Frame::new`] for pages that need a signed-in caller: the frame and the caller, or the
    /// response to send instead (the error page, or the redirect to sign in and come back).
    pub(crate) async fn signed_in(web: &Web, request: &Request) -> Result<(Self, Principal), Response> {
        let frame = Self::new(web, request).await?;
        let principal = frame.signed_in_caller()?;
        Ok((frame, principal))
    }

    /// The signed-in caller, or the redirect to sign in and come back.
    pub(crate) fn signed_in_caller(&self) -> Result<Principal, Response> {
        self.principal.clone().ok_or_else(|| self.redirect(&self.login_link()))
    }

    /// Reads the caller and the CSRF cookie (minting a token when there is none). Bad, expired
    /// or revoked credentials make an anonymous visitor; a storage failure is the error page
    /// (503), never "anonymous".
    pub(crate) async fn new(web: &Web, request: &Request) -> Result<Self, Response> {
        let (principal, failure) = match optional_user(request).await {
            Ok(principal) => (principal, None),
            Err(error) => (None, Some(error)),
        };
        let existing = request
            .cookie()
            .get(CSRF_COOKIE)
            .map(|cookie| cookie.value_str().to_owned())
            .filter(|value| value.len() >= 32);
        let (csrf, csrf_is_new) = match existing {
            Some(token) => (token, false),
            None => (random_token(), true),
        };
        let https = web.accounts.as_ref().is_some_and(|accounts| accounts.is_https(request))
            || request.scheme().as_str() == "https";
        let frame = Self {
            principal,
            csrf,
            csrf_is_new,
            https,
            css: web.assets.css_path.clone(),
            js: web.assets.js_path.clone(),
            query: String::new(),
            here: request.uri().path_and_query().map_or("/", |path| path.as_str()).to_owned(),
        };
        match failure {
            Some(error) => Err(frame.error(&error)),
            None => Ok(frame),
        }
    }

    /// The caller's username, for the header's menu.
    pub(crate) fn username(&self) -> Option<&str> {
        self.principal.as_ref().map(|principal| principal.username.as_str())
    }

    /// Whether the caller is a site administrator.
    pub(crate) fn is_admin(&self) -> bool {
        self.principal.as_ref().is_some_and(Principal::is_admin)
    }

    /// The sign-in link for this page.
    pub(crate) fn login_link(&self) -> String {
        format!("/login?next={}", encode_component(&self.here))
    }

    /// Whether a submitted form's `csrf` field matches the cookie.
    pub(crate) fn csrf_ok(&self, submitted: &str) -> bool {
        !self.csrf_is_new && !submitted.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(submitted.as_bytes()))
    }

    /// Whether cookies this page sets must be `Secure`.
    pub(crate) fn https(&self) -> bool {
        self.https
    }

    /// Renders a template as an HTML response with the site's headers.
    pub(crate) fn render(&self, template: &impl Template, status: StatusCode) -> Response {
        match template.render() {
            Ok(html) => {
                self.finish(Response::builder().status(status).content_type("text/html; charset=utf-8").body(html))
            }
            Err(error) => {
                tracing::error!(error = %error, "template failed to render");
                Response::builder()
                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                    .content_type("text/plain; charset=utf-8")
                    .body("The page could not be rendered.")
            }
        }
    }

    /// A 303 to `location` (Post/Redirect/Get).
    pub(crate) fn redirect(&self, location: &str) -> Response {
        self.finish(Response::builder().status(StatusCode::SEE_OTHER).header(header::LOCATION, location).finish())
    }

    /// Adds the security headers and, when minted on this request, the CSRF cookie.
    pub(crate) fn finish(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        // Pages show who is signed in and carry form tokens: never stored by shared caches.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.csrf_is_new {
            let secure = if self.https { "; Secure" } else { "" };
            let cookie = format!("{CSRF_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict{secure}", self.csrf);
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                headers.append(header::SET_COOKIE, value);
            }
        }
        response
    }

    /// The 404 page: the same answer whether a thing is missing or hidden from the caller.
    pub(crate) fn not_found(&self) -> Response {
        let page = ErrorPage {
            frame: self,
            status: 404,
            title: "Page not found",
            message: "There is nothing here, or you may not see it. Check the address, or look around.".to_owned(),
        };
        self.render(&page, StatusCode::NOT_FOUND)
    }

    /// The 403 page for a form whose CSRF token is missing or stale; nothing was changed.
    pub(crate) fn stale_form(&self) -> Response {
        let page = ErrorPage {
            frame: self,
            status: 403,
            title: "This form has expired",
            message: "Nothing was changed. Go back, reload the page and submit the form again.".to_owned(),
        };
        self.render(&page, StatusCode::FORBIDDEN)
    }

    /// Reads a posted form, which must repeat this page's CSRF token: the form, or the page to
    /// answer instead (the error page for a body that is not a form, the 403 "form has
    /// expired" page, nothing changed, for a missing or stale token).
    pub(crate) async fn read_form<T: DeserializeOwned>(&self, request: &mut Request) -> Result<T, Response> {
        let body = request.take_body().into_vec().await.map_err(|_| self.error(&unreadable()))?;
        let submitted: Submitted = parse_form(request, body.clone()).await.map_err(|error| self.error(&error))?;
        if !self.csrf_ok(&submitted.csrf) {
            return Err(self.stale_form());
        }
        parse_form(request, body).await.map_err(|error| self.error(&error))
    }

    /// An error page for a failure that is not a form message: 404s look like 404s, other 4xx
    /// show their detail, 5xx show the request id only.
    pub(crate) fn error(&self, error: &ApiError) -> Response {
        let status = error.status();
        if status == StatusCode::NOT_FOUND {
            return self.not_found();
        }
        let (title, message) = if status.is_server_error() {
            let reference = current_request_id().map(|id| format!(" Reference: {id}.")).unwrap_or_default();
            ("Something went wrong", format!("The hub could not finish this request.{reference}"))
        } else {
            ("That did not work", detail_text(error))
        };
        let page = ErrorPage { frame: self, status: status.as_u16(), title, message };
        self.render(&page, status)
    }
}

/// The detail of an error as one sentence.
pub(crate) fn detail_text(error: &ApiError) -> String {
    match error.detail() {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|item| item.get("msg").and_then(serde_json::Value::as_str))
            .collect::<Vec<_>>()
            .join(". "),
        serde_json::Value::Object(object) => {
            object.get("message").and_then(serde_json::Value::as_str).unwrap_or("Request refused").to_owned()
        }
        _ => "Request refused".to_owned(),
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage<'a> {
    pub(crate) frame: &'a Frame,
    pub(crate) status: u16,
    pub(crate) title: &'a str,
    pub(crate) message: String,
}

fn random_token() -> String {
    let mut random = [0u8; 32];
    // Without randomness the token is empty, and every form is refused as stale: safe.
    if getrandom::fill(&mut random).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
}

/// Percent-encodes everything but unreserved characters and `/`.
pub(crate) fn encode_component(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `next` if it is a same-origin path (`/…`, not `//…`, no backslash or control characters),
/// else `/`: an off-site `next=` is ignored.
pub(crate) fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') && !next.chars().any(char::is_control) {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

/// Parses an `application/x-www-form-urlencoded` body into `T` (whose fields default, so a
/// missing field is an empty value the form's checks report, not a parse failure).
async fn parse_form<T: DeserializeOwned>(request: &Request, body: Vec<u8>) -> Result<T, ApiError> {
    let mut body = RequestBody::new(poem::Body::from(body));
    Form::<T>::from_request(request, &mut body).await.map(|Form(form)| form).map_err(|_| unreadable())
}

/// The answer to a body that is not a form.
fn unreadable() -> ApiError {
    ApiError::bad_request("web.bad_form", "The form could not be read")
}

/// The hidden field every form carries: the page's CSRF token.
#[derive(Deserialize)]
struct Submitted {
    #[serde(default)]
    csrf: String,
}

/// A form that carries nothing but its CSRF token (a button).
#[derive(Deserialize, Default)]
pub(crate) struct Button {}
