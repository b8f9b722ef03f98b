//! Anonymous public listings (browse, trending, JSON owner pages) come from memory with an ETag:
//! `If-None-Match` answers 304, every change on the instance shows at once, a change made on
//! another instance shows within `listing_cache_seconds`, and signed-in callers never get the
//! anonymous answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use poem::http::{Method, StatusCode};
use poem::test::TestClient;
use serde_json::json;
use thub_core::Hub;
use thub_tests::{Backend, TestHub, json, on_every_backend};

/// `GET path` anonymously, with `If-None-Match` when given: status, ETag, body.
async fn read<E: poem::Endpoint>(
    client: &TestClient<E>,
    path: &str,
    if_none_match: Option<&str>,
) -> (StatusCode, String, String) {
    let mut request = client.get(path);
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    let response = request.send().await;
    let status = response.0.status();
    let etag = response.0.headers().get("etag").map(|tag| tag.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, etag, response.0.into_body().into_string().await.unwrap())
}

on_every_backend!(listings_revalidate_and_change_with_the_registry);

async fn listings_revalidate_and_change_with_the_registry(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let client = hub.client();
    let alice = hub.register("alice").await;
    let bob = hub.register("bob").await;
    let model = hub.endpoint(&alice, json!({"name": "Model", "type": "model", "visibility": "public"})).await;
    let id = model["id"].as_i64().unwrap();

    for path in ["/api/v1/endpoints/public", "/api/v1/endpoints/trending", "/alice", "/alice/model"] {
        let (status, etag, body) = read(&client, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(etag.starts_with('"'), "{path} carries an ETag: {etag:?}");
        let (status, again, body) = read(&client, path, Some(&etag)).await;
        assert_eq!((status, body.as_str()), (StatusCode::NOT_MODIFIED, ""), "{path}");
        assert_eq!(again, etag);
        for tag in [format!("W/{etag}"), format!("\"other\", {etag}"), "*".to_owned()] {
            assert_eq!(read(&client, path, Some(&tag)).await.0, StatusCode::NOT_MODIFIED, "{path} {tag}");
        }
        for tag in ["\"other\"", "garbage", ""] {
            assert_eq!(read(&client, path, Some(tag)).await.0, StatusCode::OK, "{path} {tag:?}");
        }
    }

    // A star moves trending at once, and its tag changes.
    let (_, before, _) = read(&client, "/api/v1/endpoints/trending", None).await;
    let (status, starred) = hub.post_json(Some(&bob), &format!("/api/v1/endpoints/{id}/star"), json!({})).await;
    assert_eq!(starred["changed"], true, "{status} {starred}");
    let (status, after, body) = read(&client, "/api/v1/endpoints/trending", Some(&before)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(after, before);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()[0]["stars_count"], 1);

    // A new endpoint and a change of visibility show at once on every listing.
    hub.endpoint(&alice, json!({"name": "Second", "type": "model", "visibility": "public"})).await;
    let (_, _, body) = read(&client, "/api/v1/endpoints/public", None).await;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap().as_array().unwrap().len(), 2);
    let (status, _) = hub
        .send_json(
            poem::http::Method::PATCH,
            Some(&alice),
            &format!("/api/v1/endpoints/{id}"),
            json!({"visibility": "private"}),
        )
        .await;
    assert_eq!(status, 200);
    for path in ["/api/v1/endpoints/public", "/api/v1/endpoints/trending", "/alice"] {
        let (_, _, body) = read(&client, path, None).await;
        assert!(!body.contains("\"slug\":\"model\""), "{path} still lists the private endpoint: {body}");
    }
    assert_eq!(read(&client, "/alice/model", None).await.0, StatusCode::UNAUTHORIZED);

    // The owner, signed in, is not served the anonymous page.
    let mine = json(client.get("/alice").header("authorization", alice.bearer()).send().await).await;
    assert_eq!(mine.as_array().unwrap().len(), 2, "{mine}");
}

on_every_backend!(another_instance_shows_a_change_within_the_listing_lifetime);

async fn another_instance_shows_a_change_within_the_listing_lifetime(backend: Backend) {
    let first =
        TestHub::start_with(backend, |config| config.plugins.set_key("registry", "listing_cache_seconds", json!(5)))
            .await;
    let second = Hub::build_with_clock((*first.hub.config).clone(), Arc::new(first.clock.clone())).await.unwrap();
    let on_second = TestClient::new(second.endpoint());
    let alice = first.register("alice").await;
    let (_, _, before) = read(&on_second, "/api/v1/endpoints/public", None).await;
    assert_eq!(before, "[]");
    first.endpoint(&alice, json!({"name": "Model", "type": "model", "visibility": "public"})).await;

    // The second instance heard nothing; its page expires after the configured lifetime.
    first.clock.advance(chrono::Duration::seconds(5));
    let (_, _, after) = read(&on_second, "/api/v1/endpoints/public", None).await;
    assert!(after.contains("\"slug\":\"model\""), "{after}");
}

on_every_backend!(discoveries_change_with_the_registry);

/// What explore and search find is cached for every viewer: each change on the instance shows on
/// the next read, stars, new endpoints and an organization's suspension included.
async fn discoveries_change_with_the_registry(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let client = hub.client();
    let alice = hub.register("alice").await;
    let bob = hub.register("bob").await;
    let admin = hub.admin("root").await;
    let model = hub.endpoint(&alice, json!({"name": "Quokka Model", "type": "model"})).await;
    let search = async || hub.post_json(None, "/api/v1/endpoints/search", json!({"query": "quokka"})).await.1;
    let html = async |path: &str| {
        let response = client.get(path).header("accept", "text/html").send().await;
        response.0.into_body().into_string().await.unwrap()
    };
    let explore = async || html("/explore?sort=updated").await;
    let found = search().await;
    assert_eq!((found["total"].as_u64(), found["results"][0]["stars_count"].as_i64()), (Some(1), Some(0)), "{found}");
    assert!(explore().await.contains("Quokka Model"));

    let star = format!("/api/v1/endpoints/{}/star", model["id"]);
    assert_eq!(hub.post_json(Some(&bob), &star, json!({})).await.1["changed"], true);
    assert_eq!(search().await["results"][0]["stars_count"], 1, "a star shows at once");

    // An owner's page, as anonymous visitors see it, follows the owner's changes.
    hub.endpoint(&alice, json!({"name": "Quokka Second", "type": "model"})).await;
    let page = html("/alice").await;
    assert!(page.contains("Quokka Model") && page.contains("Quokka Second"), "{page}");
    let path = format!("/api/v1/endpoints/{}", model["id"]);
    let (status, _) = hub.send_json(Method::PATCH, Some(&alice), &path, json!({"visibility": "private"})).await;
    assert_eq!(status, 200);
    assert!(!html("/alice").await.contains("Quokka Model"), "private now");
    let own = client.get("/alice").header("accept", "text/html").header("authorization", alice.bearer()).send().await;
    assert!(own.0.into_body().into_string().await.unwrap().contains("Quokka Model"), "the owner still sees it");
    assert_eq!(search().await["total"], 1, "only the second is public");

    // A renamed user: no event tells the registry, yet both names answer right at once (the
    // new one was looked up, and found nobody's, before).
    let unknown = client.get("/alicia").header("accept", "text/html").send().await;
    assert_eq!(unknown.0.status(), StatusCode::NOT_FOUND);
    let (status, _) = hub.send_json(Method::PUT, Some(&alice), "/api/v1/users/me", json!({"username": "alicia"})).await;
    assert_eq!(status, 200);
    let renamed = client.get("/alicia").header("accept", "text/html").send().await;
    assert_eq!(renamed.0.status(), StatusCode::OK, "the new name is the owner's");
    assert!(renamed.0.into_body().into_string().await.unwrap().contains("Quokka Second"));
    let old = client.get("/alice").header("accept", "text/html").send().await;
    assert_eq!(old.0.status(), StatusCode::NOT_FOUND, "the old name is nobody's");

    let (_, org) = hub.post_json(Some(&bob), "/api/v1/organizations/", json!({"name": "Zoo", "slug": "zoo"})).await;
    let org_id = org["id"].as_i64().unwrap();
    let (status, _) = hub
        .post_json(
            Some(&bob),
            &format!("/api/v1/endpoints?organization_id={org_id}"),
            json!({"name": "Quokka Keeper", "type": "agent"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(search().await["total"], 2, "a new endpoint shows at once");
    assert!(explore().await.contains("Quokka Keeper"));

    // A suspension announces no event; this instance still shows it on the next read.
    let org_admin = format!("/api/v1/organizations/{org_id}/admin");
    for (active, total) in [(false, 1), (true, 2)] {
        let (status, _) = hub.send_json(Method::PATCH, Some(&admin), &org_admin, json!({"is_active": active})).await;
        assert_eq!(status, 200);
        assert_eq!(search().await["total"], total, "organization active: {active}");
        assert_eq!(explore().await.contains("Quokka Keeper"), active);
    }
}
