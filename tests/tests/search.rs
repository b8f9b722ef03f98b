//! Registry search beyond relevance (which `registry.rs` covers): the index follows every write
//! that changes what discovery may show, hostile queries are plain words, and the work per
//! query is bounded to the newest matches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use poem::http::{Method, StatusCode};
use poem::test::TestClient;
use serde_json::{Value, json};
use thub_core::Hub;
use thub_registry::search::RANKED_MATCHES;
use thub_tests::{Backend, Session, TestHub, on_every_backend};

on_every_backend!(
    the_index_follows_every_write,
    the_index_follows_changes_it_was_not_told_of,
    hostile_queries_are_plain_words,
    ranking_is_bounded_to_the_newest
);

/// Slugs of the hits of an anonymous search, and the reported total.
async fn found(hub: &TestHub, body: Value) -> (Vec<String>, u64) {
    let (status, answer) = hub.post_json(None, "/api/v1/endpoints/search", body.clone()).await;
    assert_eq!(status, 200, "{body}: {answer}");
    let mut slugs: Vec<String> =
        answer["results"].as_array().unwrap().iter().map(|hit| hit["slug"].as_str().unwrap().to_owned()).collect();
    slugs.sort();
    (slugs, answer["total"].as_u64().unwrap())
}

async fn query(hub: &TestHub, text: &str) -> Vec<String> {
    found(hub, json!({"query": text, "top_k": 100})).await.0
}

async fn patch(hub: &TestHub, session: &Session, path: &str, body: Value) {
    let (status, answer) = hub.send_json(Method::PATCH, Some(session), path, body).await;
    assert_eq!(status, 200, "{path}: {answer}");
}

async fn the_index_follows_every_write(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let bob = hub.register("bob").await;
    let admin = hub.admin("root").await;
    let created = hub.endpoint(&alice, json!({"name": "Quasar Detector", "type": "model"})).await;
    let path = format!("/api/v1/endpoints/{}", created["id"]);
    hub.endpoint(&alice, json!({"name": "Quasar Private", "type": "model", "visibility": "private"})).await;
    hub.endpoint(&bob, json!({"name": "Quasar Internal", "type": "agent", "visibility": "internal"})).await;
    assert_eq!(query(&hub, "quasar").await, ["quasar-detector"], "private and internal never show");

    // Visibility changes take it out and bring it back.
    patch(&hub, &alice, &path, json!({"visibility": "internal"})).await;
    assert_eq!(found(&hub, json!({"query": "quasar"})).await, (vec![], 0));
    patch(&hub, &alice, &path, json!({"visibility": "public"})).await;
    assert_eq!(query(&hub, "quasar").await, ["quasar-detector"]);
    patch(&hub, &bob, "/api/v1/endpoints/slug/quasar-internal", json!({"visibility": "public"})).await;
    assert_eq!(query(&hub, "quasar").await, ["quasar-detector", "quasar-internal"]);

    // The type filter follows type changes; the type itself is not searchable text.
    patch(&hub, &alice, &path, json!({"type": "data_source"})).await;
    let typed = |kind: &str| found(&hub, json!({"query": "quasar", "type": kind}));
    assert_eq!(typed("data_source").await.0, ["quasar-detector"]);
    assert_eq!(typed("agent").await.0, ["quasar-internal"]);
    assert!(typed("model").await.0.is_empty());
    assert!(query(&hub, "agent").await.is_empty(), "an agent's type does not match the word agent");

    // Text changes: old words go, new words come.
    patch(&hub, &alice, &path, json!({"name": "Pulsar Timer", "description": "Millisecond clocks"})).await;
    assert_eq!(query(&hub, "quasar").await, ["quasar-internal"]);
    assert_eq!(query(&hub, "millisecond").await, ["quasar-detector"]);

    // Suspension by a site administrator, and its undoing.
    let admin_path = format!("{path}/admin");
    patch(&hub, &admin, &admin_path, json!({"is_active": false})).await;
    assert!(query(&hub, "pulsar").await.is_empty());
    patch(&hub, &admin, &admin_path, json!({"is_active": true, "stars_count": 3})).await;
    assert_eq!(query(&hub, "pulsar").await, ["quasar-detector"]);

    // An organization's endpoints leave with its suspension and come back with it.
    let (_, org) = hub.post_json(Some(&bob), "/api/v1/organizations/", json!({"name": "Lab", "slug": "lab"})).await;
    let org_id = org["id"].as_i64().unwrap();
    let (status, _) = hub
        .post_json(
            Some(&bob),
            &format!("/api/v1/endpoints?organization_id={org_id}"),
            json!({"name": "Pulsar Array", "type": "model"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(query(&hub, "pulsar").await, ["pulsar-array", "quasar-detector"]);
    let org_admin = format!("/api/v1/organizations/{org_id}/admin");
    patch(&hub, &admin, &org_admin, json!({"is_active": false})).await;
    assert_eq!(found(&hub, json!({"query": "pulsar"})).await, (vec!["quasar-detector".to_owned()], 1));
    patch(&hub, &admin, &org_admin, json!({"is_active": true})).await;
    assert_eq!(query(&hub, "pulsar").await, ["pulsar-array", "quasar-detector"]);

    // Sync replaces all of alice's endpoints, in the index too.
    let (status, _) = hub
        .post_json(
            Some(&alice),
            "/api/v1/endpoints/sync",
            json!({"endpoints": [{"name": "Nebula Mapper", "type": "model"}, {"name": "Hidden Nebula", "type": "model", "visibility": "private"}]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(query(&hub, "pulsar").await, ["pulsar-array"]);
    assert_eq!(query(&hub, "nebula").await, ["nebula-mapper"]);

    // Deletion.
    let (status, _) =
        hub.send_json(Method::DELETE, Some(&bob), "/api/v1/endpoints/slug/quasar-internal", json!({})).await;
    assert_eq!(status, 204);
    assert!(query(&hub, "quasar").await.is_empty());
}

/// Changes no refresh announced: another instance's writes show within the lifetime, and an
/// owner deleted with its endpoints at once.
async fn the_index_follows_changes_it_was_not_told_of(backend: Backend) {
    let first = TestHub::start(backend).await;
    let second = Hub::build_with_clock((*first.hub.config).clone(), Arc::new(first.clock.clone())).await.unwrap();
    let on_second = TestClient::new(second.endpoint());
    let search_second = async |text: &str| {
        let response = on_second.post("/api/v1/endpoints/search").body_json(&json!({"query": text})).send().await;
        response.assert_status_is_ok();
        let answer: Value = response.json().await.value().deserialize();
        let slugs: Vec<String> =
            answer["results"].as_array().unwrap().iter().map(|hit| hit["slug"].as_str().unwrap().to_owned()).collect();
        (slugs, answer["total"].as_u64().unwrap())
    };
    let alice = first.register("alice").await;
    let kept = first.endpoint(&alice, json!({"name": "Quasar Kept", "type": "model"})).await;
    let lifetime = chrono::Duration::seconds(2);
    first.clock.advance(lifetime);
    assert_eq!(search_second("quasar").await, (vec!["quasar-kept".to_owned()], 1));

    // Created, renamed and deleted on the first instance: the second finds out after the lifetime.
    let gone = first.endpoint(&alice, json!({"name": "Quasar Gone", "type": "model"})).await;
    patch(&first, &alice, &format!("/api/v1/endpoints/{}", kept["id"]), json!({"name": "Pulsar Kept"})).await;
    assert_eq!(search_second("quasar").await.1, 1, "within the lifetime the second may not know yet");
    first.clock.advance(lifetime);
    assert_eq!(search_second("quasar").await, (vec!["quasar-gone".to_owned()], 1));
    assert_eq!(search_second("pulsar").await, (vec!["quasar-kept".to_owned()], 1), "the new name");
    let path = format!("/api/v1/endpoints/{}", gone["id"]);
    let (status, _) = first.send_json(Method::DELETE, Some(&alice), &path, json!({})).await;
    assert_eq!(status, 204);
    first.clock.advance(lifetime);
    assert_eq!(search_second("quasar").await, (vec![], 0));

    // Deleting a user takes its endpoints along, with no registry write: gone at once.
    let bob = first.register("bob").await;
    first.endpoint(&bob, json!({"name": "Pulsar Bob", "type": "model"})).await;
    assert_eq!(query(&first, "pulsar").await, ["pulsar-bob", "quasar-kept"]);
    let response =
        first.client().delete(format!("/api/v1/users/{}", bob.id)).header("authorization", bob.bearer()).send().await;
    response.assert_status(StatusCode::NO_CONTENT);
    assert_eq!(found(&first, json!({"query": "pulsar"})).await, (vec!["quasar-kept".to_owned()], 1));
}

async fn hostile_queries_are_plain_words(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    for (name, description) in [
        ("Image Classifier", "Labels photos"),
        ("Chat Agent", "Answers questions"),
        ("Near Field Sensor", "Reads tags"),
        ("And Gate", "Logic for the rest of us"),
        ("Plain Tool", "Nothing else"),
    ] {
        hub.endpoint(&alice, json!({"name": name, "type": "model", "description": description})).await;
    }
    // Query syntax (FTS5's, tsquery's) is text: operators are words, quotes and stars separators
    // (`ima*` is the whole word "ima"; only the last word matches as a prefix).
    let cases: [(&str, &[&str]); 10] = [
        ("NEAR(image chat)", &["chat-agent", "image-classifier", "near-field-sensor"]),
        ("image AND chat", &["and-gate", "chat-agent", "image-classifier"]),
        ("-chat", &["chat-agent"]),
        ("image NOT chat", &["chat-agent", "image-classifier"]),
        ("\"image", &["image-classifier"]),
        ("(chat) OR (gate)", &["and-gate", "chat-agent"]),
        ("name:chat", &["chat-agent"]),
        ("image:*|chat&!x", &["chat-agent", "image-classifier"]),
        ("ima* ^cha", &["chat-agent"]),
        ("model", &[]),
    ];
    for (text, expected) in cases {
        assert_eq!(query(&hub, text).await, expected, "{text}");
    }
    // Only stop-words still match literally ("of", "the" are in one description).
    assert_eq!(query(&hub, "the of").await, ["and-gate"]);
    // Long queries: the first words count, the rest is ignored; past 500 characters, 422.
    let many: Vec<String> = (0..1000).map(|index| format!("w{index}")).collect();
    let long = format!("plain {}", many.join(" "));
    assert_eq!(query(&hub, &long[..500]).await, ["plain-tool"]);
    for text in [long.clone(), "x".repeat(10 * 1024)] {
        let (status, answer) = hub.post_json(None, "/api/v1/endpoints/search", json!({"query": text})).await;
        assert_eq!(status, 422, "{answer}");
    }
    // The web search page takes the same text from a URL, 10 KB included.
    for text in [long, "chat ".repeat(2 * 1024), "\"*NEAR(-:)".to_owned()] {
        let response = hub
            .client()
            .get(format!("/search?q={}", text.replace(' ', "+").replace('"', "%22")))
            .header("accept", "text/html")
            .send()
            .await;
        response.assert_status_is_ok();
    }
    let (_, all) = hub.get_json(Some(&alice), "/api/v1/endpoints").await;
    assert_eq!(all.as_array().unwrap().len(), 5, "nothing was lost");
}

async fn ranking_is_bounded_to_the_newest(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let window = RANKED_MATCHES as usize;
    // The oldest endpoint matches best ("comet" in its name), then window + 20 newer ones
    // mention "comet" in their READMEs only.
    let first = hub.register("first").await;
    hub.endpoint(&first, json!({"name": "Comet Tracker", "type": "model"})).await;
    let mut created = 0;
    for owner in 0.. {
        if created >= window + 20 {
            break;
        }
        let session = hub.register(&format!("owner{owner}")).await;
        let batch: Vec<Value> = (0..100)
            .map(
                |index| json!({"name": format!("Tool {owner} {index}"), "type": "model", "readme": "Watches a comet."}),
            )
            .collect();
        let (status, answer) =
            hub.post_json(Some(&session), "/api/v1/endpoints/sync", json!({"endpoints": batch})).await;
        assert_eq!(status, 200, "{answer}");
        created += 100;
    }
    let (hits, total) = found(&hub, json!({"query": "comet", "top_k": 5})).await;
    assert_eq!(total, RANKED_MATCHES, "total is counted up to the window");
    assert_eq!(hits.len(), 5);
    assert!(!hits.contains(&"comet-tracker".to_owned()), "the oldest match is outside the window: {hits:?}");
    let page = hub.client().get("/search?q=comet").header("accept", "text/html").send().await;
    page.assert_status_is_ok();
    let page = page.0.into_body().into_string().await.unwrap();
    assert!(page.contains(&format!("{RANKED_MATCHES} or more results")), "the web says the count is capped");
    // A rarer word finds it: the window is per query.
    assert_eq!(found(&hub, json!({"query": "tracker"})).await, (vec!["comet-tracker".to_owned()], 1));
}
