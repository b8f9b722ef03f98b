//! Browser login for the hub's own pages (Tufts Hub's `/login`, `/logout`, `session` cookie):
//! a CSRF-protected form, a `session` cookie (HttpOnly, SameSite=Lax, Secure over HTTPS,
//! Max-Age = the access-token lifetime), and `next` redirects to same-origin paths only.
//! Every value put into HTML is escaped.
//!
//! Login CSRF is refused without breaking scripts: browsers say where a post comes from
//! (`Sec-Fetch-Site`, `Origin`), so a cross-site browser post is refused, a same-origin one
//! must carry the form's CSRF token, and a post with neither header (curl, Python, Tufts Hub
//! scripts: no browser, so no ambient cookies to abuse) is checked by its password alone.

use std::sync::Arc;

use base64::Engine;
use poem::http::{StatusCode, header};
use poem::web::{Data, Form, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use thub_plugin_sdk::html::escape;
use thub_plugin_sdk::{LoginForm, LoginLook};

use super::{Accounts, AccountsError, SESSION_COOKIE, client_address};

const CSRF_COOKIE: &str = "thub_csrf";

/// `?next=` of the login page.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginPageForm {
    username: String,
    password: String,
    next: Option<String>,
    csrf: Option<String>,
}

/// `GET /login`: the form, with a fresh CSRF token in a cookie and a hidden field.
#[handler]
pub(crate) async fn login_page(
    request: &Request,
    accounts: Data<&Arc<Accounts>>,
    look: Data<&LoginLookSlot>,
    query: Query<NextQuery>,
) -> Response {
    let page = LoginPageContext::new(request, &accounts, &look, query.0.next.as_deref());
    page.form(None, StatusCode::OK).await
}

/// `POST /login`: checks where the post comes from (see the module doc) and the password, sets
/// the `session` cookie and redirects (303) to `next`.
#[handler]
pub(crate) async fn login_submit(
    request: &Request,
    accounts: Data<&Arc<Accounts>>,
    look: Data<&LoginLookSlot>,
    form: Form<LoginPageForm>,
) -> Response {
    let form = form.0;
    let page = LoginPageContext::new(request, &accounts, &look, form.next.as_deref());
    let (https, next) = (page.https, page.next.clone());
    match post_source(request) {
        PostSource::CrossSite => {
            return page.form(Some("Log in from this site's own login page."), StatusCode::FORBIDDEN).await;
        }
        PostSource::SameOrigin => {
            let cookie_token = request.cookie().get(CSRF_COOKIE).map(|cookie| cookie.value_str().to_owned());
            let csrf_ok = match (cookie_token, form.csrf) {
                (Some(cookie), Some(field)) if !cookie.is_empty() => {
                    bool::from(cookie.as_bytes().ct_eq(field.as_bytes()))
                }
                _ => false,
            };
            if !csrf_ok {
                let message = "Your login form expired. Please try again.";
                return page.form(Some(message), StatusCode::FORBIDDEN).await;
            }
        }
        PostSource::Script => {}
    }
    let client = client_address(request);
    let user = match accounts.check_password(&form.username, &form.password, &client).await {
        Ok(user) => user,
        Err(AccountsError::RateLimited { retry_after }) => {
            let mut answer =
                page.form(Some("Too many attempts. Try again later."), StatusCode::TOO_MANY_REQUESTS).await;
            answer.headers_mut().insert(header::RETRY_AFTER, retry_after.into());
            return answer;
        }
        Err(AccountsError::AccountDeactivated) => {
            return page.form(Some("This account is deactivated."), StatusCode::UNAUTHORIZED).await;
        }
        Err(AccountsError::InvalidLogin) => {
            return page.form(Some("Invalid username or password"), StatusCode::UNAUTHORIZED).await;
        }
        Err(error) => return poem::IntoResponse::into_response(thub_plugin_sdk::ApiError::from(error)),
    };
    let pair = match accounts.open_session(&user).await {
        Ok(pair) => pair,
        Err(error) => return poem::IntoResponse::into_response(thub_plugin_sdk::ApiError::from(error)),
    };
    let max_age = accounts.access_ttl().num_seconds();
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, next)
        .header(header::SET_COOKIE, cookie(SESSION_COOKIE, &pair.access_token, "/", max_age, "Lax", https))
        .header(header::SET_COOKIE, cookie(CSRF_COOKIE, "", "/login", 0, "Strict", https))
        .header(header::CACHE_CONTROL, "no-store")
        .finish()
}

/// `GET /logout`: revokes the session of the cookie (if any), clears it, and redirects (303)
/// to `/login`.
#[handler]
pub(crate) async fn logout(request: &Request, accounts: Data<&Arc<Accounts>>) -> Response {
    let https = accounts.is_https(request);
    if let Some(token) = request.cookie().get(SESSION_COOKIE).map(|cookie| cookie.value_str().to_owned())
        && let Ok(principal) = accounts.authenticate_token(&token, None).await
        && let Err(error) = accounts.logout(&principal).await
    {
        tracing::error!(error = %error, "logout failed to revoke the session");
    }
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, "/login")
        .header(header::SET_COOKIE, cookie(SESSION_COOKIE, "", "/", 0, "Lax", https))
        .header(header::CACHE_CONTROL, "no-store")
        .finish()
}

/// Where a login post comes from, as far as the browser tells.
enum PostSource {
    /// No browser headers: a script or a tool, which carries no ambient cookies.
    Script,
    /// A browser, from a page of this hub.
    SameOrigin,
    /// A browser, from another site (or one that hides its origin).
    CrossSite,
}

/// Reads Fetch Metadata (`Sec-Fetch-Site`) and `Origin`; either one saying "another site" wins.
fn post_source(request: &Request) -> PostSource {
    let value_of = |name| request.headers().get(name).map(|value| value.to_str().unwrap_or(""));
    let fetch_site = value_of("sec-fetch-site");
    let origin = value_of(header::ORIGIN.as_str());
    if fetch_site.is_none() && origin.is_none() {
        return PostSource::Script;
    }
    let site_is_ours = fetch_site.is_none_or(|site| matches!(site, "same-origin" | "none"));
    let origin_is_ours = origin.is_none_or(|origin| crate::http::is_same_origin(request, origin));
    if site_is_ours && origin_is_ours { PostSource::SameOrigin } else { PostSource::CrossSite }
}

/// A `Set-Cookie` value. Max-Age 0 deletes.
fn cookie(name: &str, value: &str, path: &str, max_age: i64, same_site: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}")
}

/// `next` if it is a same-origin path (`/…`, not `//…`, no backslash or control characters),
/// else `/`. Blocks open redirects and `javascript:` URLs.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.contains('\\')
                && !next.chars().any(char::is_control) =>
        {
            next.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The login page's look a plugin provided, if any (the web plugin's); the route carries it.
#[derive(Clone, Default)]
pub(crate) struct LoginLookSlot(pub(crate) Option<LoginLook>);

/// What every answer of the login routes that shows the form needs.
struct LoginPageContext<'a> {
    request: &'a Request,
    look: Option<&'a LoginLook>,
    https: bool,
    next: String,
}

impl<'a> LoginPageContext<'a> {
    fn new(request: &'a Request, accounts: &Accounts, look: &'a LoginLookSlot, next: Option<&str>) -> Self {
        Self { request, look: look.0.as_ref(), https: accounts.is_https(request), next: safe_next(next) }
    }

    /// The form (with `error` above it) and a fresh CSRF token in its cookie, drawn by the
    /// provided look or, without one, as a plain page.
    async fn form(&self, error: Option<&str>, status: StatusCode) -> Response {
        let mut random = [0u8; 32];
        if getrandom::fill(&mut random).is_err() {
            return Response::builder().status(StatusCode::SERVICE_UNAVAILABLE).body("no randomness available");
        }
        let csrf = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random);
        let mut response = match self.look {
            Some(look) => {
                let form = LoginForm { next: self.next.clone(), csrf: csrf.clone(), error: error.map(str::to_owned) };
                look.0.render(self.request, &form).await
            }
            None => plain_page(&self.next, &csrf, error),
        };
        // A look that could not draw the page (its error page) keeps its own status.
        if response.status().is_success() {
            response.set_status(status);
        }
        let headers = response.headers_mut();
        if let Ok(value) = cookie(CSRF_COOKIE, &csrf, "/login", 3600, "Strict", self.https).parse() {
            headers.append(header::SET_COOKIE, value);
        }
        headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
        response
    }
}

/// The login page without a plugin's look.
fn plain_page(next: &str, csrf: &str, error: Option<&str>) -> Response {
    let error =
        error.map(|message| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(message))).unwrap_or_default();
    let body = format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Login - thub</title>
<style>
body {{ font-family: system-ui, sans-serif; display: flex; min-height: 100vh; align-items: center; justify-content: center; margin: 0; background: #f5f5f7; color: #1d1d1f; }}
form {{ background: #fff; padding: 2rem; border-radius: 12px; box-shadow: 0 4px 24px rgba(0,0,0,.08); width: min(22rem, 90vw); }}
h1 {{ font-size: 1.4rem; margin: 0 0 1.2rem; }}
label {{ display: block; margin: .8rem 0 .3rem; font-size: .9rem; }}
input {{ width: 100%; box-sizing: border-box; padding: .6rem; border: 1px solid #ccc; border-radius: 6px; font-size: 1rem; }}
button {{ margin-top: 1.2rem; width: 100%; padding: .7rem; border: 0; border-radius: 6px; background: #2b5cff; color: #fff; font-size: 1rem; cursor: pointer; }}
.error {{ color: #b00020; }}
@media (prefers-color-scheme: dark) {{ body {{ background: #111; color: #eee; }} form {{ background: #1c1c1e; }} input {{ background: #2c2c2e; color: #eee; border-color: #444; }} }}
</style>
</head>
<body>
<form method="post" action="/login">
<h1>Login to the Hub</h1>
{error}
<input type="hidden" name="next" value="{next}">
<input type="hidden" name="csrf" value="{csrf}">
<label for="username">Username or email</label>
<input id="username" name="username" type="text" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form>
</body>
</html>
"#,
        next = escape(next),
    );
    Response::builder().content_type("text/html; charset=utf-8").body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_paths_are_followed() {
        assert_eq!(safe_next(Some("/app/index.html?x=1&y=2")), "/app/index.html?x=1&y=2");
        for hostile in
            ["//evil.example", "https://evil.example", "javascript:alert(1)", "/\\evil.example", "", "x", "/a\nb"]
        {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
