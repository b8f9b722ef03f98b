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
pub(crate) async fn login_page(request: &Request, accounts: Data<&Arc<Accounts>>, query: Query<NextQuery>) -> Response {
    let next = safe_next(query.0.next.as_deref());
    form_page(&request_is_https(&accounts, request), &next, None, StatusCode::OK)
}

/// `POST /login`: checks where the post comes from (see the module doc) and the password, sets
/// the `session` cookie and redirects (303) to `next`.
#[handler]
pub(crate) async fn login_submit(
    request: &Request,
    accounts: Data<&Arc<Accounts>>,
    form: Form<LoginPageForm>,
) -> Response {
    let https = request_is_https(&accounts, request);
    let form = form.0;
    let next = safe_next(form.next.as_deref());
    match post_source(request) {
        PostSource::CrossSite => {
            return form_page(&https, &next, Some("Log in from this site's own login page."), StatusCode::FORBIDDEN);
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
                return form_page(&https, &next, Some(message), StatusCode::FORBIDDEN);
            }
        }
        PostSource::Script => {}
    }
    let client = client_address(request);
    let user = match accounts.check_password(&form.username, &form.password, &client).await {
        Ok(user) => user,
        Err(AccountsError::RateLimited { retry_after }) => {
            let mut page =
                form_page(&https, &next, Some("Too many attempts. Try again later."), StatusCode::TOO_MANY_REQUESTS);
            page.headers_mut().insert(header::RETRY_AFTER, retry_after.into());
            return page;
        }
        Err(AccountsError::AccountDeactivated) => {
            return form_page(&https, &next, Some("This account is deactivated."), StatusCode::UNAUTHORIZED);
        }
        Err(AccountsError::InvalidLogin) => {
            return form_page(&https, &next, Some("Invalid username or password"), StatusCode::UNAUTHORIZED);
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
        .header(header::SET_COOKIE, cookie(SESSION_COOKIE, &pair.access_token, "/", max_age, "Lax", https.0))
        .header(header::SET_COOKIE, cookie(CSRF_COOKIE, "", "/login", 0, "Strict", https.0))
        .header(header::CACHE_CONTROL, "no-store")
        .finish()
}

/// `GET /logout`: revokes the session of the cookie (if any), clears it, and redirects (303)
/// to `/login`.
#[handler]
pub(crate) async fn logout(request: &Request, accounts: Data<&Arc<Accounts>>) -> Response {
    let https = request_is_https(&accounts, request);
    if let Some(token) = request.cookie().get(SESSION_COOKIE).map(|cookie| cookie.value_str().to_owned())
        && let Ok(principal) = accounts.authenticate_token(&token, None).await
        && let Err(error) = accounts.logout(&principal).await
    {
        tracing::error!(error = %error, "logout failed to revoke the session");
    }
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, "/login")
        .header(header::SET_COOKIE, cookie(SESSION_COOKIE, "", "/", 0, "Lax", https.0))
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

struct Https(bool);

fn request_is_https(accounts: &Accounts, request: &Request) -> Https {
    Https(accounts.is_https(request))
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

fn form_page(https: &Https, next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let mut random = [0u8; 32];
    if getrandom::fill(&mut random).is_err() {
        return Response::builder().status(StatusCode::SERVICE_UNAVAILABLE).body("no randomness available");
    }
    let csrf = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random);
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
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header(header::SET_COOKIE, cookie(CSRF_COOKIE, &csrf, "/login", 3600, "Strict", https.0))
        .header(header::CACHE_CONTROL, "no-store")
        .body(body)
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
