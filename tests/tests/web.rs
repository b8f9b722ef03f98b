//! The web UI in-process: pages and their headers, forms (CSRF, every-field-wrong, values
//! kept, Post/Redirect/Get), escaping of user text on every page, 404 pages for unknown and
//! hidden things, the star button, API tokens and sessions. The browser journeys (Chromium,
//! axe) are in `web_journeys.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use poem::http::StatusCode;
use serde_json::json;
use thub_tests::{Backend, PASSWORD, TestHub, on_every_backend};

on_every_backend!(
    pages_render_in_the_site_look,
    register_signs_in_and_shows_every_message,
    stale_forms_change_nothing,
    user_text_is_escaped_everywhere,
    unknown_and_hidden_things_are_404_pages,
    star_button_works_with_and_without_script,
    tokens_and_sessions_are_managed_from_settings,
    publishing_editing_and_deleting_endpoints,
    organizations_members_and_the_last_owner,
    administrators_manage_webassembly_plugins,
    login_wears_the_site_look_and_keeps_the_hosts_rules,
);

const HOSTILE: &str = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>";
/// Markup short enough for tags and declaration types (50 characters at most).
const SHORT_HOSTILE: &str = "<script>alert(1)</script>";

/// A browser's view of the in-process hub: a cookie jar, `Accept: text/html`, no redirects
/// followed.
struct Browser<'a> {
    hub: &'a TestHub,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    csp: Option<String>,
    set_cookies: Vec<String>,
    body: String,
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl<'a> Browser<'a> {
    fn new(hub: &'a TestHub) -> Self {
        Self { hub, cookies: BTreeMap::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; ")
    }

    async fn read(&mut self, response: poem::test::TestResponse) -> Page {
        let headers = response.0.headers().clone();
        let set_cookies: Vec<String> =
            headers.get_all("set-cookie").iter().map(|value| value.to_str().unwrap().to_owned()).collect();
        for cookie in &set_cookies {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || cookie.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let header = |name: &str| headers.get(name).map(|value| value.to_str().unwrap().to_owned());
        Page {
            status: response.0.status(),
            location: header("location"),
            csp: header("content-security-policy"),
            set_cookies,
            body: response.0.into_body().into_string().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let response = self
            .hub
            .client()
            .get(path)
            .header("accept", "text/html")
            .header("cookie", self.cookie_header())
            .send()
            .await;
        self.read(response).await
    }

    /// Posts a form with the browser's CSRF token (taken from its cookie).
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf();
        let mut with_token = vec![("csrf", csrf.as_str())];
        with_token.extend_from_slice(fields);
        self.post_raw(path, &with_token, "text/html").await
    }

    async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)], accept: &str) -> Page {
        let body: Vec<String> = fields.iter().map(|(name, value)| format!("{name}={}", encode(value))).collect();
        let response = self
            .hub
            .client()
            .post(path)
            .header("accept", accept)
            .header("cookie", self.cookie_header())
            .content_type("application/x-www-form-urlencoded")
            .body(body.join("&"))
            .send()
            .await;
        self.read(response).await
    }

    fn csrf(&self) -> String {
        self.cookies.get("thub_web_csrf").cloned().unwrap_or_default()
    }

    /// Registers through the form and ends signed in.
    async fn register(&mut self, username: &str) {
        self.get("/register").await;
        let page = self
            .post(
                "/register",
                &[
                    ("username", username),
                    ("email", &format!("{username}@example.com")),
                    ("password", PASSWORD),
                    ("full_name", &format!("{username} Example")),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert!(self.cookies.contains_key("session"));
    }
}

async fn pages_render_in_the_site_look(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    hub.endpoint(
        &alice,
        json!({"name": "Vision Net", "type": "model", "description": "Sees cats", "tags": ["vision"]}),
    )
    .await;
    let mut browser = Browser::new(&hub);

    let home = browser.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    let csp = home.csp.expect("a CSP on every page");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(home.body.contains("Vision Net") && home.body.contains("Trending"));
    assert!(!home.body.contains("<script>") && !home.body.contains(" onclick="), "no inline script");
    // The API clients' answer at / is unchanged.
    let (status, welcome) = hub.get_json(None, "/").await;
    assert_eq!(status, 200);
    assert_eq!(welcome["message"], "Welcome to thub");

    // Assets: hashed names, immutable caching; unknown names are 404.
    let css_path = home.body.split("href=\"/_thub/web/").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let css = hub.client().get(format!("/_thub/web/{css_path}")).send().await;
    css.assert_status_is_ok();
    css.assert_header("cache-control", "public, max-age=31536000, immutable");
    css.assert_content_type("text/css; charset=utf-8");
    let stale = hub.client().get("/_thub/web/app.0000000000000000.css").send().await;
    stale.assert_status(StatusCode::NOT_FOUND);

    let explore = browser.get("/explore?type=model&tag=vision&owner=user&sort=name").await;
    assert_eq!(explore.status, StatusCode::OK);
    assert!(explore.body.contains("1 endpoint found") && explore.body.contains("Vision Net"), "{}", explore.body);
    let none = browser.get("/explore?owner=organization").await;
    assert!(none.body.contains("No public endpoint matches"), "{}", none.body);
    assert_eq!(browser.get("/explore?sort=sideways").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(browser.get("/explore?page=x").await.status, StatusCode::BAD_REQUEST);

    let search = browser.get("/search?q=vis").await;
    assert_eq!(search.status, StatusCode::OK);
    assert!(search.body.contains("<mark>Vision</mark> Net"), "matched words are highlighted: {}", search.body);
    let empty = browser.get("/search?q=zzzunmatched").await;
    assert!(empty.body.contains("No endpoint matches") && empty.body.contains("/explore"), "a helpful empty state");

    // Owner pages come in pages of 24 like explore; the figures count all the endpoints.
    for index in 0..29 {
        hub.endpoint(&alice, json!({"name": format!("Bulk {index}"), "type": "model"})).await;
    }
    let first = browser.get("/alice").await;
    assert!(first.body.contains("<strong>30</strong> endpoints"), "{}", first.body);
    assert_eq!(first.body.matches("class=\"card\"").count(), 24);
    assert!(first.body.contains("href=\"/alice?page=2\""));
    let second = browser.get("/alice?page=2").await;
    assert_eq!(second.body.matches("class=\"card\"").count(), 6);
    assert!(second.body.contains("Page 2 of 2") && second.body.contains("href=\"/alice?page=1\""));
    assert_eq!(browser.get("/alice?page=0").await.status, StatusCode::BAD_REQUEST);

    // The PyScript case: a folder with index.html keeps / for itself.
    std::fs::write(hub.dir.path().join("index.html"), "<!doctype html><title>app</title>").unwrap();
    let with_site = TestHub::start_with(backend, |config| config.server.root = hub.dir.path().to_owned()).await;
    let mut visitor = Browser::new(&with_site);
    let root = visitor.get("/").await;
    assert!(!root.body.contains("Trending"), "the project's own page wins at /");
    assert_eq!(visitor.get("/explore").await.status, StatusCode::OK, "the web still lives at /explore");
}

async fn register_signs_in_and_shows_every_message(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let mut browser = Browser::new(&hub);
    let form = browser.get("/register?next=//evil.example/steal").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("name=\"csrf\""));

    // Every field wrong: every message, values kept (never the password), nothing stored.
    let wrong = browser
        .post("/register", &[("username", "x"), ("email", "not-an-email"), ("password", "short"), ("full_name", "")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", wrong.body);
    for field in ["username", "email", "password", "full_name"] {
        assert!(wrong.body.contains(&format!("id=\"error-{field}\"")), "message next to {field}: {}", wrong.body);
        assert!(wrong.body.contains(&format!("href=\"#field-{field}\"")), "summary links to {field}");
    }
    assert!(wrong.body.contains("There is a problem"));
    assert!(wrong.body.contains("value=\"not-an-email\""), "values kept");
    assert!(!wrong.body.contains("value=\"short\""), "the password is never sent back");
    assert!(!browser.cookies.contains_key("session"));
    assert!(hub.hub.accounts.list_users(0, 10).await.unwrap().is_empty(), "nothing stored");

    // A good form signs in and goes to next, an off-site next is ignored.
    let done = browser
        .post(
            "/register",
            &[
                ("username", "carol"),
                ("email", "carol@example.com"),
                ("password", PASSWORD),
                ("full_name", "Carol"),
                ("next", "//evil.example/steal"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location.as_deref(), Some("/"));
    let session = done.set_cookies.iter().find(|cookie| cookie.starts_with("session=")).expect("signed in");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"), "{session}");
    let home = browser.get("/").await;
    assert!(home.body.contains("<summary>carol</summary>"), "the header shows the user's menu");

    // Taken names are a message on the field.
    let mut other = Browser::new(&hub);
    other.get("/register").await;
    let taken = other
        .post(
            "/register",
            &[("username", "carol"), ("email", "c2@example.com"), ("password", PASSWORD), ("full_name", "C")],
        )
        .await;
    assert_eq!(taken.status, StatusCode::BAD_REQUEST);
    assert!(taken.body.contains("id=\"error-username\""), "{}", taken.body);
    // Page names are reserved.
    let reserved = other
        .post(
            "/register",
            &[("username", "explore"), ("email", "e@example.com"), ("password", PASSWORD), ("full_name", "E")],
        )
        .await;
    assert!(reserved.body.contains("reserved"), "{}", reserved.body);
}

async fn stale_forms_change_nothing(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    hub.endpoint(&alice, json!({"name": "Model", "type": "model"})).await;
    let mut browser = Browser::new(&hub);
    browser.get("/register").await;
    let fields =
        [("username", "mallory"), ("email", "m@example.com"), ("password", PASSWORD), ("full_name", "Mallory")];
    // Wrong token, then no token at all (and no cookie).
    let mut with_wrong = vec![("csrf", "forged-forged-forged-forged-forged-forged")];
    with_wrong.extend_from_slice(&fields);
    let forged = browser.post_raw("/register", &with_wrong, "text/html").await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("This form has expired") && forged.body.contains("Nothing was changed"));
    let mut fresh = Browser::new(&hub);
    assert_eq!(fresh.post_raw("/register", &fields, "text/html").await.status, StatusCode::FORBIDDEN);
    assert_eq!(hub.get_json(None, "/api/v1/users/check-username/mallory").await.1["available"], true);

    // The star form too.
    browser.register("bob").await;
    let stale = browser.post_raw("/alice/model/star", &[("csrf", "nope"), ("action", "star")], "text/html").await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN);
    assert_eq!(hub.get_json(None, "/alice/model").await.1["stars_count"], 0);
}

async fn user_text_is_escaped_everywhere(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let mut browser = Browser::new(&hub);
    browser.get("/register").await;
    browser
        .post(
            "/register",
            &[("username", "alice"), ("email", "alice@example.com"), ("password", PASSWORD), ("full_name", HOSTILE)],
        )
        .await;
    let alice = hub.login("alice", PASSWORD).await;
    hub.endpoint(
        &alice,
        json!({
            "name": format!("Evil {HOSTILE}"), "slug": "evil", "type": "model", "description": format!("evil {HOSTILE}"),
            "tags": [SHORT_HOSTILE], "readme": format!("# Hi\n\n{HOSTILE}\n\n[x](javascript:alert(2))"),
            "connect": [{"type": SHORT_HOSTILE, "description": HOSTILE, "config": {"url": HOSTILE}}],
            "policies": [{"type": SHORT_HOSTILE, "config": {HOSTILE: HOSTILE}}],
        }),
    )
    .await;
    let pages = ["/", "/explore", "/search?q=evil", "/alice", "/alice/evil", "/settings/profile"];
    let mut slug_page = String::new();
    for path in pages {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains("<script>alert"), "{path} lets a script through: {}", page.body);
        assert!(!page.body.contains("<img src=x"), "{path} lets markup through");
        assert!(!page.body.contains("javascript:"), "{path} keeps a javascript: link");
        if path == "/alice/evil" {
            slug_page = page.body;
        }
    }
    assert!(slug_page.contains("&#60;script&#62;"), "shown as text: {slug_page}");
    // A search term with markup is escaped in the box and the heading.
    let search = browser.get(&format!("/search?q={}", encode(HOSTILE))).await;
    assert!(!search.body.contains("<script>alert") && search.body.contains("&#60;script&#62;"));
}

async fn unknown_and_hidden_things_are_404_pages(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    hub.endpoint(&alice, json!({"name": "Secret", "type": "model", "visibility": "private"})).await;
    let mut stranger = Browser::new(&hub);
    let unknown_owner = stranger.get("/nobody-here").await;
    assert_eq!(unknown_owner.status, StatusCode::NOT_FOUND, "a 404 page, not a login redirect");
    assert!(unknown_owner.body.contains("Page not found") && unknown_owner.csp.is_some());
    let unknown_slug = stranger.get("/alice/nothing").await;
    assert_eq!(unknown_slug.status, StatusCode::NOT_FOUND);
    let private = stranger.get("/alice/secret").await;
    assert_eq!(private.status, StatusCode::NOT_FOUND);
    assert_eq!(private.body, unknown_slug.body.replace("/alice/nothing", "/alice/secret"), "no hint it exists");
    stranger.register("eve").await;
    assert_eq!(stranger.get("/alice/secret").await.status, StatusCode::NOT_FOUND, "signed-in strangers too");
    // The owner sees it.
    let owner_view = hub
        .client()
        .get("/alice/secret")
        .header("accept", "text/html")
        .header("authorization", alice.bearer())
        .send()
        .await;
    owner_view.assert_status_is_ok();
    // A file in the hub folder at an owner-shaped path is still the site's.
    std::fs::write(hub.dir.path().join("notes"), "hello").unwrap();
    let file = stranger.get("/notes").await;
    assert_eq!(file.status, StatusCode::OK, "the static site serves it to a signed-in user");
}

async fn star_button_works_with_and_without_script(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    hub.endpoint(&alice, json!({"name": "Model", "type": "model"})).await;
    let mut anonymous = Browser::new(&hub);
    let page = anonymous.get("/alice/model").await;
    assert!(page.body.contains("Sign in to star"), "anonymous visitors are asked to sign in");
    assert!(page.body.contains("/alice/model"), "the curl example has the real URL");
    assert!(page.body.contains("client.hub.get(&#34;alice/model&#34;)"), "the SDK snippet");

    let mut bob = Browser::new(&hub);
    bob.register("bob").await;
    let form = bob.get("/alice/model").await;
    assert!(form.body.contains("data-inline=\"star\""));
    // Without script: a form post, then back to the page.
    let starred = bob.post("/alice/model/star", &[("action", "star")]).await;
    assert_eq!(starred.status, StatusCode::SEE_OTHER);
    assert_eq!(starred.location.as_deref(), Some("/alice/model"));
    let after = bob.get("/alice/model").await;
    assert!(after.body.contains("aria-pressed=\"true\"") && after.body.contains("data-star-count>1<"));
    // With script: the same form answers JSON.
    let csrf = bob.csrf();
    let unstarred =
        bob.post_raw("/alice/model/star", &[("csrf", &csrf), ("action", "unstar")], "application/json").await;
    assert_eq!(unstarred.status, StatusCode::OK);
    let answer: serde_json::Value = serde_json::from_str(&unstarred.body).unwrap();
    assert_eq!(answer, json!({"starred": false, "stars_count": 0}));
}

async fn tokens_and_sessions_are_managed_from_settings(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let mut browser = Browser::new(&hub);
    let redirect = browser.get("/settings/tokens").await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER);
    assert_eq!(redirect.location.as_deref(), Some("/login?next=/settings/tokens"));
    browser.register("alice").await;

    let empty = browser.post("/settings/tokens", &[("name", "")]).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.body.contains("id=\"error-name\""));
    let created = browser.post("/settings/tokens", &[("name", "laptop")]).await;
    assert_eq!(created.status, StatusCode::OK);
    let secret = created.body.split("id=\"new-token\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert!(secret.starts_with("syft_pat_"), "{secret}");
    let listed = browser.get("/settings/tokens").await;
    assert!(listed.body.contains("laptop") && !listed.body.contains(&secret), "the secret is shown once");
    let me = hub.client().get("/api/v1/auth/me").header("authorization", format!("Bearer {secret}")).send().await;
    me.assert_status_is_ok();

    let id = listed.body.split("/settings/tokens/").nth(1).unwrap().split('/').next().unwrap().to_owned();
    let revoked = browser.post(&format!("/settings/tokens/{id}/revoke"), &[]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let me = hub.client().get("/api/v1/auth/me").header("authorization", format!("Bearer {secret}")).send().await;
    me.assert_status(StatusCode::UNAUTHORIZED);

    // Sessions: a second login shows up; "every other session" ends it, this one stays.
    let other = hub.login("alice", PASSWORD).await;
    let sessions = browser.get("/settings/sessions").await;
    assert_eq!(sessions.body.matches("name=\"session\" value=\"").count(), 3, "two sessions and the all button");
    assert!(sessions.body.contains("this browser"));
    let done = browser.post("/settings/sessions", &[("session", "")]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let me = hub.client().get("/api/v1/auth/me").header("authorization", other.bearer()).send().await;
    me.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(browser.get("/settings/sessions").await.status, StatusCode::OK, "this session stays");

    // Profile and password.
    let profile = browser.post("/settings/profile", &[("email", "bad"), ("full_name", "Alice A")]).await;
    assert_eq!(profile.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(profile.body.contains("value=\"Alice A\""), "values kept");
    let saved = browser.post("/settings/profile", &[("email", "alice2@example.com"), ("full_name", "Alice A")]).await;
    assert_eq!(saved.location.as_deref(), Some("/settings/profile?done=profile"));
    let wrong = browser
        .post("/settings/password", &[("current_password", "nope-nope-1"), ("new_password", "another-horse-2")])
        .await;
    assert!(wrong.body.contains("id=\"error-current_password\""), "{}", wrong.body);
    let changed = browser
        .post("/settings/password", &[("current_password", PASSWORD), ("new_password", "another-horse-2")])
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER);
    hub.login("alice", "another-horse-2").await;
}

async fn publishing_editing_and_deleting_endpoints(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let mut alice = Browser::new(&hub);
    assert_eq!(alice.get("/new").await.location.as_deref(), Some("/login?next=/new"), "signed-out: to sign in");
    alice.register("alice").await;
    let form = alice.get("/new").await;
    for name in ["name", "description", "type", "visibility", "readme", "version", "tags"] {
        assert!(form.body.contains(&format!("name=\"{name}\"")), "the API's field name {name}");
    }

    // Every field wrong: every message at once, values kept, nothing stored.
    let long = "d".repeat(501);
    let wrong = alice
        .post(
            "/new",
            &[
                ("name", ""),
                ("description", &long),
                ("type", "spaceship"),
                ("visibility", "secret"),
                ("version", "one"),
                ("tags", &"t".repeat(51)),
                ("readme", ""),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", wrong.body);
    for field in ["name", "description", "type", "visibility", "version", "tags"] {
        assert!(wrong.body.contains(&format!("id=\"error-{field}\"")), "message for {field}: {}", wrong.body);
    }
    assert!(wrong.body.contains("value=\"one\""), "values kept");
    assert_eq!(hub.get_json(None, "/alice").await.1, json!([]), "nothing stored");

    // A good one lands on its page.
    let created = alice
        .post(
            "/new",
            &[
                ("name", "Vision Net"),
                ("description", "Sees cats"),
                ("type", "model"),
                ("visibility", "public"),
                ("version", "1.2.3"),
                ("tags", "vision, cats"),
                ("readme", "# Hello"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(created.location.as_deref(), Some("/alice/vision-net"));
    let (_, stored) = hub.get_json(None, "/alice/vision-net").await;
    assert_eq!(stored["version"], "1.2.3");
    assert_eq!(stored["tags"], json!(["vision", "cats"]));

    // Someone else cannot edit or delete it: the 404 page, nothing changed.
    let mut bob = Browser::new(&hub);
    bob.register("bob").await;
    assert_eq!(bob.get("/alice/vision-net/edit").await.status, StatusCode::NOT_FOUND);
    assert_eq!(bob.post("/alice/vision-net/delete", &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(hub.get_json(None, "/alice/vision-net").await.0, 200);

    // The owner edits (values shown, then changed) and deletes.
    let edit = alice.get("/alice/vision-net/edit").await;
    assert!(edit.body.contains("value=\"vision, cats\""), "{}", edit.body);
    let fields = [
        ("name", "Vision Net 2"),
        ("description", "Sees dogs"),
        ("type", "agent"),
        ("visibility", "private"),
        ("version", "2.0.0"),
        ("tags", "dogs"),
        ("readme", "new"),
    ];
    let saved = alice.post("/alice/vision-net/edit", &fields).await;
    assert_eq!(saved.location.as_deref(), Some("/alice/vision-net"));
    assert_eq!(hub.get_json(None, "/alice/vision-net").await.0, 401, "now private: strangers of the API need a login");
    let stale = alice.post_raw("/alice/vision-net/delete", &[("csrf", "stale")], "text/html").await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN);
    let deleted = alice.post("/alice/vision-net/delete", &[]).await;
    assert_eq!(deleted.location.as_deref(), Some("/alice"));
    assert_eq!(alice.get("/alice/vision-net").await.status, StatusCode::NOT_FOUND);
}

async fn organizations_members_and_the_last_owner(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let mut alice = Browser::new(&hub);
    alice.register("alice").await;
    let mut bob = Browser::new(&hub);
    bob.register("bob").await;

    let reserved = alice.post("/orgs/new", &[("name", "Settings"), ("slug", "settings"), ("description", "")]).await;
    assert_eq!(reserved.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reserved.body.contains("id=\"error-slug\"") && reserved.body.contains("reserved"), "{}", reserved.body);
    let created =
        alice.post("/orgs/new", &[("name", "Acme <Labs>"), ("slug", "acme"), ("description", "Rockets")]).await;
    assert_eq!(created.location.as_deref(), Some("/orgs/acme/settings?done=created"));
    let taken = bob.post("/orgs/new", &[("name", "Acme"), ("slug", "acme"), ("description", "")]).await;
    assert!(taken.body.contains("id=\"error-slug\""), "a taken slug is a message on its field");

    // Only owners and admins see the settings; everyone else gets the 404 page.
    assert_eq!(bob.get("/orgs/acme/settings").await.status, StatusCode::NOT_FOUND);
    let unknown =
        alice.post("/orgs/acme/settings", &[("action", "add"), ("username", "nobody"), ("role", "member")]).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unknown.body.contains("id=\"error-username\"") && unknown.body.contains("value=\"nobody\""));
    let added = alice.post("/orgs/acme/settings", &[("action", "add"), ("username", "bob"), ("role", "member")]).await;
    assert_eq!(added.location.as_deref(), Some("/orgs/acme/settings?done=add"));
    let page = alice.get("/acme").await;
    assert!(page.body.contains("Acme &#60;Labs&#62;") && page.body.contains("href=\"/bob\""), "{}", page.body);

    // The last owner cannot step down; the message says what to do.
    let alice_id = hub.login("alice", PASSWORD).await.id.to_string();
    let refused =
        alice.post("/orgs/acme/settings", &[("action", "role"), ("user_id", &alice_id), ("role", "member")]).await;
    assert!(refused.status.is_client_error());
    assert!(refused.body.contains("needs at least one owner"), "{}", refused.body);

    // A member publishes under the organization.
    let published = bob
        .post(
            "/new",
            &[
                ("owner", "acme"),
                ("name", "Acme Agent"),
                ("description", ""),
                ("type", "agent"),
                ("visibility", "public"),
                ("version", "0.1.0"),
                ("tags", ""),
                ("readme", ""),
            ],
        )
        .await;
    assert_eq!(published.location.as_deref(), Some("/acme/acme-agent"), "{}", published.body);
    // Not an organization one belongs to: a message, nothing stored.
    let mut carol = Browser::new(&hub);
    carol.register("carol").await;
    let foreign =
        carol.post("/new", &[("owner", "acme"), ("name", "X"), ("type", "model"), ("visibility", "public")]).await;
    assert!(foreign.body.contains("id=\"error-owner\""), "{}", foreign.body);
}

async fn administrators_manage_webassembly_plugins(backend: Backend) {
    let plugins = tempfile::tempdir().unwrap();
    // A plugin whose component does not load: listed with its problem, and reloading it says why.
    let broken = plugins.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("plugin.toml"),
        "id = \"broken\"\nversion = \"0.0.1\"\napi_version = \"0.1.0\"\n\n[[routes]]\npath = \"/*\"\nmethods = [\"GET\"]\n",
    )
    .unwrap();
    std::fs::write(broken.join("plugin.wasm"), "not a component").unwrap();
    let folder = plugins.path().to_path_buf();
    let hub = TestHub::start_with(backend, |config| config.wasm.dir = folder).await;

    let mut anonymous = Browser::new(&hub);
    assert_eq!(anonymous.get("/admin/plugins").await.location.as_deref(), Some("/login?next=/admin/plugins"));
    let mut user = Browser::new(&hub);
    user.register("alice").await;
    assert_eq!(user.get("/admin/plugins").await.status, StatusCode::NOT_FOUND, "no hint for non-administrators");

    let root = hub.admin("root").await;
    let mut admin = Browser::new(&hub);
    admin.cookies.insert("session".to_owned(), root.access.clone());
    let page = admin.get("/admin/plugins").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<strong>broken</strong>"), "{}", page.body);
    let disabled = admin.post("/admin/plugins", &[("id", "broken"), ("action", "disable")]).await;
    assert_eq!(disabled.location.as_deref(), Some("/admin/plugins?done=disable&id=broken"));
    let listed = admin.get("/admin/plugins?done=disable&id=broken").await;
    assert!(listed.body.contains("broken is disabled.") && listed.body.contains("value=\"enable\""));
    let reload = admin.post("/admin/plugins", &[("id", "broken"), ("action", "reload")]).await;
    assert_eq!(reload.status, StatusCode::BAD_REQUEST);
    assert!(reload.body.contains("did not load"), "{}", reload.body);
    let unknown = admin.post("/admin/plugins", &[("id", "nothing"), ("action", "enable")]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let stale = admin.post_raw("/admin/plugins", &[("id", "broken"), ("action", "enable")], "text/html").await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN);
}

/// `/login` is the host's (its CSRF token and cookie, where a post may come from, the
/// `session` cookie, `next`), drawn in the site's look while the web plugin is on, and as a
/// plain page when it is off.
async fn login_wears_the_site_look_and_keeps_the_hosts_rules(backend: Backend) {
    let hub = TestHub::start(backend).await;
    hub.register("alice").await;
    let mut browser = Browser::new(&hub);
    let form = browser.get("/login?next=%2Fexplore").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.csp.is_some_and(|csp| csp.contains("script-src 'self'")), "the site's CSP");
    assert!(form.body.contains("href=\"/_thub/web/") && form.body.contains("href=\"/explore\""), "the site header");
    assert!(form.body.contains("<h1>Sign in</h1>") && !form.body.contains("<style>"), "{}", form.body);
    let csrf = browser.cookies.get("thub_csrf").cloned().expect("the host's CSRF cookie");
    assert!(form.body.contains(&format!("name=\"csrf\" value=\"{csrf}\"")), "the host's token in the form");
    assert!(form.body.contains("name=\"next\" value=\"/explore\""));

    let post = async |password: &'static str, cookie: String, csrf: String| {
        let cookies = format!("thub_csrf={cookie}");
        let body = format!("username=alice&password={}&next=%2Fexplore&csrf={csrf}", encode(password));
        hub.client()
            .post("/login")
            .header("accept", "text/html")
            .header("sec-fetch-site", "same-origin")
            .header("cookie", cookies)
            .content_type("application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
    };
    let wrong = {
        let answer = post("not-the-password", csrf.clone(), csrf.clone()).await;
        browser.read(answer).await
    };
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Invalid username or password") && wrong.body.contains("href=\"/_thub/web/"));
    let csrf = browser.cookies.get("thub_csrf").cloned().expect("a fresh token with the new form");
    let stale = {
        let answer = post(PASSWORD, csrf.clone(), "a-stale-token".to_owned()).await;
        browser.read(answer).await
    };
    assert_eq!(stale.status, StatusCode::FORBIDDEN, "a same-site form without its token: {}", stale.body);
    assert!(stale.body.contains("Your login form expired"));
    let csrf_now = browser.cookies.get("thub_csrf").cloned().unwrap();
    assert_ne!(csrf_now, csrf, "each form gets its own token");
    let signed_in = {
        let answer = post(PASSWORD, csrf_now.clone(), csrf_now).await;
        browser.read(answer).await
    };
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
    assert_eq!(signed_in.location.as_deref(), Some("/explore"));
    assert!(signed_in.set_cookies.iter().any(|cookie| cookie.starts_with("session=")));

    let plain = TestHub::start_with(backend, |config| config.plugins.set_key("web", "enabled", json!(false))).await;
    let page = Browser::new(&plain).get("/login").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Login to the Hub") && !page.body.contains("/_thub/web/"), "{}", page.body);
}
