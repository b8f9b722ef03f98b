//! Names and text fields refuse NUL and other control characters with a 422 naming the field,
//! on every surface that takes a name or a title; nothing is stored. Descriptions and READMEs
//! may still break lines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use poem::http::Method;
use serde_json::{Value, json};
use thub_tests::{Backend, PASSWORD, TestHub, on_every_backend};

on_every_backend!(
    accounts_refuse_control_characters,
    api_tokens_refuse_control_characters,
    organizations_refuse_control_characters,
    endpoints_refuse_control_characters
);

/// Asserts a 422 whose field errors name `field` (`loc` after `body`, joined by dots).
fn assert_refused(status: u16, body: &Value, field: &str) {
    assert_eq!(status, 422, "{body}");
    let named = body["detail"].as_array().unwrap().iter().any(|error| {
        let loc: Vec<String> = error["loc"]
            .as_array()
            .unwrap()
            .iter()
            .skip(1)
            .map(|part| match part {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect();
        loc.join(".") == field && error["msg"] == "Must not contain control characters"
    });
    assert!(named, "the 422 names {field}: {body}");
}

async fn accounts_refuse_control_characters(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let register = |username: &str, full_name: &str| json!({"username": username, "email": format!("{username}@example.com"), "full_name": full_name, "password": PASSWORD});
    let (status, body) = hub.post_json(None, "/api/v1/auth/register", register("alice", "Alice\u{0}Admin")).await;
    assert_refused(status, &body, "full_name");
    let (status, _) = hub.post_json(None, "/api/v1/auth/register", register("al\u{0}ice", "Alice")).await;
    assert_eq!(status, 422, "usernames take letters, digits, _ and - only");
    assert_eq!(hub.get_json(None, "/api/v1/users/check-username/alice").await.1["available"], true, "nothing stored");

    let alice = hub.register("alice").await;
    for (field, value) in
        [("full_name", "Alice\u{7}"), ("full_name", "Two\nLines"), ("avatar_url", "https://a.example/\u{0}")]
    {
        let (status, body) = hub.send_json(Method::PUT, Some(&alice), "/api/v1/users/me", json!({field: value})).await;
        assert_refused(status, &body, field);
    }
    assert_eq!(hub.get_json(Some(&alice), "/api/v1/users/me").await.1["full_name"], "alice Example");
}

async fn api_tokens_refuse_control_characters(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let (status, body) = hub.post_json(Some(&alice), "/api/v1/auth/tokens", json!({"name": "ci\u{0}token"})).await;
    assert_refused(status, &body, "name");
    let (status, created) = hub.post_json(Some(&alice), "/api/v1/auth/tokens", json!({"name": "ci"})).await;
    assert_eq!(status, 201);
    let path = format!("/api/v1/auth/tokens/{}", created["id"]);
    let (status, body) = hub.send_json(Method::PATCH, Some(&alice), &path, json!({"name": "ci\u{1b}[31m"})).await;
    assert_refused(status, &body, "name");
    let (_, listed) = hub.get_json(Some(&alice), "/api/v1/auth/tokens").await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["tokens"][0]["name"], "ci");
}

async fn organizations_refuse_control_characters(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    for (field, body) in [
        ("name", json!({"name": "Lab\u{0}", "slug": "lab"})),
        ("description", json!({"name": "Lab", "slug": "lab", "description": "bell\u{7}"})),
        ("avatar_url", json!({"name": "Lab", "slug": "lab", "avatar_url": "https://a.example/\u{0}"})),
    ] {
        let (status, answer) = hub.post_json(Some(&alice), "/api/v1/organizations", body).await;
        assert_refused(status, &answer, field);
    }
    let (_, listed) = hub.get_json(Some(&alice), "/api/v1/organizations").await;
    assert_eq!(listed.as_array().unwrap().len(), 0, "nothing stored: {listed}");

    let (status, created) = hub
        .post_json(Some(&alice), "/api/v1/organizations", json!({"name": "Lab", "description": "Line one\nLine two"}))
        .await;
    assert_eq!(status, 201, "descriptions may break lines: {created}");
    let path = format!("/api/v1/organizations/{}", created["id"]);
    for (field, value) in [("name", "La\u{85}b"), ("description", "nul\u{0}")] {
        let (status, answer) = hub.send_json(Method::PUT, Some(&alice), &path, json!({field: value})).await;
        assert_refused(status, &answer, field);
    }
    assert_eq!(hub.get_json(Some(&alice), &path).await.1["name"], "Lab");
}

async fn endpoints_refuse_control_characters(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let base = || json!({"name": "Model", "type": "model"});
    for (field, key, value) in [
        ("name", "name", json!("Mod\u{0}el")),
        ("description", "description", json!("nul\u{0}")),
        ("readme", "readme", json!("# Title\n\u{1b}[2J")),
        ("tags", "tags", json!(["ok", "bad\ttag"])),
        ("policies.0.type", "policies", json!([{"type": "rate\u{0}limit"}])),
        ("connect.0.description", "connect", json!([{"type": "http", "description": "\u{7}"}])),
    ] {
        let mut body = base();
        body[key] = value;
        let (status, answer) = hub.post_json(Some(&alice), "/api/v1/endpoints", body).await;
        assert_refused(status, &answer, field);
    }
    assert_eq!(hub.get_json(Some(&alice), "/api/v1/endpoints").await.1, json!([]), "nothing stored");

    let created = hub.endpoint(&alice, json!({"name": "Model", "type": "model", "readme": "# Title\n\n\tcode"})).await;
    let path = format!("/api/v1/endpoints/{}", created["id"]);
    let (status, answer) = hub.send_json(Method::PATCH, Some(&alice), &path, json!({"name": "Model\u{0}"})).await;
    assert_refused(status, &answer, "name");

    // A sync batch names the endpoint and the field, and changes nothing.
    let (status, answer) = hub
        .post_json(Some(&alice), "/api/v1/endpoints/sync", json!({"endpoints": [{"name": "A\u{0}", "type": "model"}]}))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["detail"]["errors"][0]["field"], "name");
    assert_eq!(answer["detail"]["errors"][0]["error"], "Must not contain control characters");
    assert_eq!(hub.get_json(Some(&alice), &path).await.1["name"], "Model");
}
