//! Stars: idempotent both ways, only on visible endpoints, and counts that stay right under
//! concurrent stars and when users or endpoints are deleted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use poem::http::Method;
use serde_json::json;
use thub_tests::{Backend, TestHub, on_every_backend};

on_every_backend!(star_unstar_starred, counts_survive_concurrency_and_deletions);

async fn stars_of(hub: &TestHub, id: i64) -> i64 {
    let (_, endpoint) = hub.get_json(None, &format!("/api/v1/endpoints/{id}")).await;
    endpoint["stars_count"].as_i64().unwrap()
}

async fn star_unstar_starred(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let bob = hub.register("bob").await;
    let id = hub.endpoint(&alice, json!({"name": "Starry", "type": "model"})).await["id"].as_i64().unwrap();
    let private = hub.endpoint(&alice, json!({"name": "Hidden", "type": "model", "visibility": "private"})).await["id"]
        .as_i64()
        .unwrap();
    let star = format!("/api/v1/endpoints/{id}/star");

    let (status, first) = hub.post_json(Some(&bob), &star, json!({})).await;
    assert_eq!(status, 201);
    assert_eq!(first, json!({"starred": true, "changed": true}));
    let (_, again) = hub.post_json(Some(&bob), &star, json!({})).await;
    assert_eq!(again, json!({"starred": true, "changed": false}), "starring twice changes nothing");
    assert_eq!(stars_of(&hub, id).await, 1);
    assert_eq!(hub.get_json(Some(&bob), &format!("/api/v1/endpoints/{id}/starred")).await.1, json!({"starred": true}));
    assert_eq!(
        hub.get_json(Some(&alice), &format!("/api/v1/endpoints/{id}/starred")).await.1,
        json!({"starred": false})
    );
    hub.post_json(Some(&alice), &star, json!({})).await;
    assert_eq!(stars_of(&hub, id).await, 2, "owners may star their own");

    assert_eq!(hub.send_json(Method::DELETE, Some(&bob), &star, json!({})).await.0, 204);
    assert_eq!(
        hub.send_json(Method::DELETE, Some(&bob), &star, json!({})).await.0,
        204,
        "unstarring twice is harmless"
    );
    assert_eq!(stars_of(&hub, id).await, 1);

    // Invisible or missing endpoints: 404, and nothing counted.
    assert_eq!(hub.post_json(Some(&bob), &format!("/api/v1/endpoints/{private}/star"), json!({})).await.0, 404);
    assert_eq!(hub.get_json(Some(&bob), &format!("/api/v1/endpoints/{private}/starred")).await.0, 404);
    assert_eq!(hub.post_json(Some(&bob), "/api/v1/endpoints/9999/star", json!({})).await.0, 404);
    assert_eq!(hub.post_json(None, &star, json!({})).await.0, 401);
    assert_eq!(hub.post_json(Some(&bob), "/api/v1/endpoints/x/star", json!({})).await.0, 422);
}

async fn counts_survive_concurrency_and_deletions(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let target = hub.endpoint(&alice, json!({"name": "Popular", "type": "model"})).await["id"].as_i64().unwrap();
    let other = hub.endpoint(&alice, json!({"name": "Other", "type": "model"})).await["id"].as_i64().unwrap();
    let mut fans = Vec::new();
    for index in 0..12 {
        fans.push(hub.register(&format!("fan{index}")).await);
    }

    // Every fan stars twice, all at once.
    let star = format!("/api/v1/endpoints/{target}/star");
    let attempts = fans.iter().chain(fans.iter()).map(|fan| hub.post_json(Some(fan), &star, json!({})));
    for (status, _) in futures_util::future::join_all(attempts).await {
        assert_eq!(status, 201);
    }
    assert_eq!(stars_of(&hub, target).await, 12);
    let unstar = fans[..4].iter().map(|fan| hub.send_json(Method::DELETE, Some(fan), &star, json!({})));
    futures_util::future::join_all(unstar).await;
    assert_eq!(stars_of(&hub, target).await, 8);

    // A deleted user's stars leave the counts (fixed quirk: they used to stay).
    let leaving = &fans[5];
    hub.post_json(Some(leaving), &format!("/api/v1/endpoints/{other}/star"), json!({})).await;
    assert_eq!(stars_of(&hub, other).await, 1);
    let (status, _) =
        hub.send_json(Method::DELETE, Some(leaving), &format!("/api/v1/users/{}", leaving.id), json!({})).await;
    assert_eq!(status, 204);
    assert_eq!(stars_of(&hub, target).await, 7);
    assert_eq!(stars_of(&hub, other).await, 0);

    // A deleted endpoint takes its stars along; its owner's deletion takes the endpoints.
    hub.send_json(Method::DELETE, Some(&alice), &format!("/api/v1/endpoints/{other}"), json!({})).await;
    assert_eq!(hub.get_json(Some(&fans[0]), &format!("/api/v1/endpoints/{other}/starred")).await.0, 404);
    hub.send_json(Method::DELETE, Some(&alice), &format!("/api/v1/users/{}", alice.id), json!({})).await;
    assert_eq!(hub.get_json(None, &format!("/api/v1/endpoints/{target}")).await.0, 404);
    assert_eq!(hub.get_json(None, "/api/v1/endpoints/public").await.1, json!([]));
}
