//! Browser login: the CSRF-protected form, the `session` cookie and its flags, safe `next`
//! redirects, escaping, and logout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use poem::http::StatusCode;
use thub_tests::{Backend, PASSWORD, TestHub, json};

/// The `Set-Cookie` values and the body of a response.
async fn page(response: poem::test::TestResponse) -> (Vec<String>, String) {
    let cookies = set_cookies(&response);
    (cookies, response.0.into_body().into_string().await.unwrap())
}

/// The CSRF token of a login page: the cookie value and the hidden field must match.
fn csrf_of(cookies: &[String], body: &str) -> String {
    let cookie = cookies.iter().find(|value| value.starts_with("thub_csrf=")).expect("a CSRF cookie");
    let value = cookie.trim_start_matches("thub_csrf=").split(';').next().unwrap().to_owned();
    assert!(body.contains(&format!("name=\"csrf\" value=\"{value}\"")), "the form carries the same token");
    value
}

fn set_cookies(response: &poem::test::TestResponse) -> Vec<String> {
    response.0.headers().get_all("set-cookie").iter().map(|value| value.to_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn login_form_sets_a_session_cookie_and_redirects_to_next() {
    let hub = TestHub::start(Backend::Sqlite).await;
    hub.register("alice").await;
    let client = hub.client();

    let response = client.get("/login").query("next", &"/app/index.html?x=1&y=2").send().await;
    response.assert_status_is_ok();
    response.assert_content_type("text/html; charset=utf-8");
    let (cookies, body) = page(response).await;
    let csrf = csrf_of(&cookies, &body);
    // Escaped as an entity (`&amp;` or `&#38;`, depending on who draws the page).
    let unified = body.replace("&#38;", "&amp;");
    assert!(unified.contains("value=\"/app/index.html?x=1&amp;y=2\""), "next kept whole and escaped");

    let response = client
        .post("/login")
        .header("cookie", format!("thub_csrf={csrf}"))
        .header("sec-fetch-site", "same-origin")
        .content_type("application/x-www-form-urlencoded")
        .body(format!("username=alice&password={PASSWORD}&next=%2Fapp%2Findex.html%3Fx%3D1%26y%3D2&csrf={csrf}"))
        .send()
        .await;
    response.assert_status(StatusCode::SEE_OTHER);
    response.assert_header("location", "/app/index.html?x=1&y=2");
    let cookies = set_cookies(&response);
    let session = cookies.iter().find(|cookie| cookie.starts_with("session=")).expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax") && session.contains("Max-Age=1800"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "plain HTTP: no Secure flag, or LAN browsers drop the cookie");
    let token = session.trim_start_matches("session=").split(';').next().unwrap().to_owned();

    // The cookie authenticates API calls like a Bearer token.
    let me = client.get("/api/v1/auth/me").header("cookie", format!("session={token}")).send().await;
    me.assert_status_is_ok();
    assert_eq!(json(me).await["username"], "alice");

    // Logout revokes the session and clears the cookie.
    let response = client.get("/logout").header("cookie", format!("session={token}")).send().await;
    response.assert_status(StatusCode::SEE_OTHER);
    response.assert_header("location", "/login");
    assert!(
        set_cookies(&response).iter().any(|cookie| cookie.starts_with("session=;") && cookie.contains("Max-Age=0"))
    );
    client
        .get("/api/v1/auth/me")
        .header("cookie", format!("session={token}"))
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_form_refuses_csrf_bad_passwords_and_hostile_next() {
    let hub =
        TestHub::start_with(Backend::Sqlite, |config| config.server.public_url = "https://hub.example.com".to_owned())
            .await;
    hub.register("alice").await;
    let client = hub.client();
    // A browser's post from the hub's own page.
    let post = |cookie: &str, body: String| {
        client
            .post("/login")
            .header("cookie", cookie.to_owned())
            .header("sec-fetch-site", "same-origin")
            .content_type("application/x-www-form-urlencoded")
            .body(body)
            .send()
    };

    // No CSRF token, or a mismatched one.
    post("", format!("username=alice&password={PASSWORD}")).await.assert_status(StatusCode::FORBIDDEN);
    post("thub_csrf=aaa", format!("username=alice&password={PASSWORD}&csrf=bbb"))
        .await
        .assert_status(StatusCode::FORBIDDEN);

    // Wrong password: the form again, with an error, and no session cookie.
    let response = post("thub_csrf=t0k", "username=alice&password=nope-1&csrf=t0k".to_owned()).await;
    response.assert_status(StatusCode::UNAUTHORIZED);
    assert!(!set_cookies(&response).iter().any(|cookie| cookie.starts_with("session=")));
    let (_, body) = page(response).await;
    assert!(body.contains("Invalid username or password"));

    // Hostile next values are replaced by "/", and never reflected unescaped.
    for hostile in ["%2F%2Fevil.example", "javascript%3Aalert(1)", "https%3A%2F%2Fevil.example"] {
        let response =
            post("thub_csrf=t0k", format!("username=alice&password={PASSWORD}&csrf=t0k&next={hostile}")).await;
        response.assert_status(StatusCode::SEE_OTHER);
        response.assert_header("location", "/");
        // Over HTTPS (public_url), the cookie is Secure.
        assert!(
            set_cookies(&response).iter().any(|cookie| cookie.starts_with("session=") && cookie.contains("Secure"))
        );
    }
    let response = client.get("/login").query("next", &"\"><script>alert(1)</script>").send().await;
    let body = response.0.into_body().into_string().await.unwrap();
    assert!(!body.contains("<script>alert(1)</script>"));
}

#[tokio::test]
async fn login_posts_are_judged_by_the_browser_headers_they_carry() {
    let hub = TestHub::start(Backend::Sqlite).await;
    hub.register("alice").await;
    let client = hub.client();
    let credentials = format!("username=alice&password={PASSWORD}");
    let post = |headers: &[(&str, &str)], body: String| {
        let mut request = client
            .post("/login")
            .header("host", "hub.example.com")
            .content_type("application/x-www-form-urlencoded")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let has_session = |response: &poem::test::TestResponse| {
        set_cookies(response).iter().any(|cookie| cookie.starts_with("session=") && !cookie.starts_with("session=;"))
    };

    // A script (curl, Python, Tufts Hub tools): no browser headers, no CSRF token needed.
    let response = post(&[], credentials.clone()).await;
    response.assert_status(StatusCode::SEE_OTHER);
    assert!(has_session(&response));
    post(&[], "username=alice&password=wrong-pass-1".to_owned()).await.assert_status(StatusCode::UNAUTHORIZED);

    // Cross-site browser posts are refused, even with a matching token pair.
    let with_token = format!("{credentials}&csrf=t0k");
    for headers in [
        &[("sec-fetch-site", "cross-site")][..],
        &[("sec-fetch-site", "same-site")],
        &[("origin", "https://evil.example")],
        &[("origin", "null")],
        &[("sec-fetch-site", "same-origin"), ("origin", "https://evil.example")],
    ] {
        let mut all = headers.to_vec();
        all.push(("cookie", "thub_csrf=t0k"));
        let response = post(&all, with_token.clone()).await;
        response.assert_status(StatusCode::FORBIDDEN);
        assert!(!has_session(&response), "{headers:?}");
    }

    // Same-origin browser posts still need the form's token.
    for headers in [&[("sec-fetch-site", "same-origin")][..], &[("origin", "http://hub.example.com")]] {
        post(headers, credentials.clone()).await.assert_status(StatusCode::FORBIDDEN);
        let mut all = headers.to_vec();
        all.push(("cookie", "thub_csrf=t0k"));
        let response = post(&all, with_token.clone()).await;
        response.assert_status(StatusCode::SEE_OTHER);
        assert!(has_session(&response), "{headers:?}");
    }
}
