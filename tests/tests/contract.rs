//! The OpenAPI document tells the truth about the server: optional fields are nullable, every
//! operation documents its errors (401 where credentials are needed), the bounds the server
//! enforces are declared, and every 405 lists the allowed methods in `Allow`. `scripts/schemathesis`
//! checks the same against a live server with generated requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use poem::http::{Method, StatusCode};
use serde_json::{Value, json};
use thub_tests::{Backend, TestHub, json};

async fn served_document(hub: &TestHub) -> Value {
    let response = hub.client().get("/openapi.json").send().await;
    response.assert_status_is_ok();
    json(response).await
}

#[tokio::test]
async fn fields_that_can_be_null_are_declared_nullable() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let document = served_document(&hub).await;
    let schemas = &document["components"]["schemas"];
    for (schema, field) in [
        ("UserResponse", "avatar_url"),
        ("OrganizationResponse", "avatar_url"),
        ("ApiTokenResponse", "expires_at"),
        ("ApiTokenResponse", "last_used_at"),
        ("ApiTokenResponse", "last_used_ip"),
        ("EndpointResponse", "user_id"),
        ("EndpointResponse", "organization_id"),
        ("UserUpdate", "full_name"),
    ] {
        assert_eq!(schemas[schema]["properties"][field]["nullable"], true, "{schema}.{field}");
    }
    // Required fields are not.
    assert!(schemas["UserResponse"]["properties"]["username"].get("nullable").is_none());

    // And the server does send null there.
    let alice = hub.register("alice").await;
    let (_, me) = hub.get_json(Some(&alice), "/api/v1/users/me").await;
    assert_eq!(me["avatar_url"], Value::Null);
}

#[tokio::test]
async fn every_operation_documents_its_errors_and_401_where_credentials_are_needed() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let document = served_document(&hub).await;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = &operation["responses"];
            assert!(responses.get("default").is_some(), "{method} {path} documents the error shape");
            let needs_credentials = operation["security"]
                .as_array()
                .is_some_and(|requirements| requirements.iter().all(|requirement| requirement != &json!({})));
            assert_eq!(responses.get("401").is_some(), needs_credentials, "{method} {path}");
        }
    }
    // The two that answered an undocumented 401.
    for path in ["/api/v1/channels", "/api/v1/token/audiences"] {
        let unauthorized = &document["paths"][path]["get"]["responses"]["401"];
        assert_eq!(unauthorized["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody");
        assert!(unauthorized["headers"].get("WWW-Authenticate").is_some());
        let response = hub.client().get(path).send().await;
        response.assert_status(StatusCode::UNAUTHORIZED);
        response.assert_header("www-authenticate", "Bearer");
    }
}

#[tokio::test]
async fn declared_bounds_are_the_enforced_ones() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let alice = hub.register("alice").await;
    let document = served_document(&hub).await;
    let parameter = |path: &str, name: &str| {
        document["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|parameter| parameter["name"] == name)
            .unwrap()["schema"]
            .clone()
    };
    for path in ["/api/v1/endpoints/public", "/api/v1/endpoints", "/api/v1/organizations", "/api/v1/auth/tokens"] {
        let limit = parameter(path, "limit");
        assert_eq!((limit["minimum"].as_f64(), limit["maximum"].as_f64()), (Some(1.0), Some(100.0)), "{path}");
        let skip = parameter(path, "skip");
        assert_eq!(skip["minimum"].as_f64(), Some(0.0), "{path}");
        let maximum = skip["maximum"].as_f64().unwrap();

        // The edges inside are accepted, the ones outside refused with a 422 naming the parameter.
        for accepted in
            [format!("{path}?limit=1"), format!("{path}?limit=100&skip=0"), format!("{path}?skip={maximum}")]
        {
            assert_eq!(hub.get_json(Some(&alice), &accepted).await.0, 200, "{accepted}");
        }
        for (refused, name) in [
            (format!("{path}?limit=0"), "limit"),
            (format!("{path}?limit=101"), "limit"),
            (format!("{path}?skip=-1"), "skip"),
            (format!("{path}?skip={}", maximum as u64 + 1), "skip"),
        ] {
            let (status, body) = hub.get_json(Some(&alice), &refused).await;
            assert_eq!(status, 422, "{refused}: {body}");
            assert_eq!(body["detail"][0]["loc"], json!(["query", name]), "{refused}");
        }
    }
    let top_k = &document["components"]["schemas"]["SearchRequest"]["properties"]["top_k"];
    assert_eq!((top_k["minimum"].as_f64(), top_k["maximum"].as_f64()), (Some(1.0), Some(100.0)));
    for (top_k, status) in [(json!(1), 200), (json!(100), 200), (json!(null), 200), (json!(0), 422), (json!(101), 422)]
    {
        let (answered, body) =
            hub.post_json(None, "/api/v1/endpoints/search", json!({"query": "x", "top_k": top_k})).await;
        assert_eq!(answered, status, "top_k {top_k}: {body}");
    }
}

#[tokio::test]
async fn every_405_lists_the_allowed_methods() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let document = served_document(&hub).await;
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        let concrete = path.replace("{", "").replace("}", "");
        let mut expected: Vec<String> = item.as_object().unwrap().keys().map(|method| method.to_uppercase()).collect();
        if expected.iter().any(|method| method == "GET") {
            expected.push("HEAD".to_owned());
        }
        expected.sort();
        for method in [Method::TRACE, Method::OPTIONS, Method::PUT] {
            if expected.contains(&method.to_string()) {
                continue;
            }
            let response = hub.client().request(method.clone(), &concrete).send().await;
            if response.0.status() != StatusCode::METHOD_NOT_ALLOWED {
                continue;
            }
            let allow = response.0.headers().get("allow").unwrap_or_else(|| panic!("{method} {path}: no Allow"));
            let mut allowed: Vec<String> = allow.to_str().unwrap().split(", ").map(str::to_owned).collect::<Vec<_>>();
            allowed.sort();
            assert_eq!(allowed, expected, "{method} {path}");
            assert_eq!(json(response).await["code"], "route.method_not_allowed");
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} 405s were checked");

    // The raw routes too.
    for (path, allowed) in [("/login", "GET, HEAD, POST"), ("/logout", "GET, HEAD, POST"), ("/health", "GET, HEAD")] {
        let response = hub.client().request(Method::TRACE, path).send().await;
        response.assert_status(StatusCode::METHOD_NOT_ALLOWED);
        response.assert_header("allow", allowed);
    }
}

#[tokio::test]
async fn numbers_and_booleans_are_no_strings() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let alice = hub.register("alice").await;
    for (path, method, body, loc) in [
        ("/api/v1/organizations", Method::POST, json!({"name": false}), json!(["body", "name"])),
        ("/api/v1/users/me", Method::PUT, json!({"full_name": 12}), json!(["body", "full_name"])),
        (
            "/api/v1/endpoints",
            Method::POST,
            json!({"name": "M", "type": "model", "tags": ["ok", 1]}),
            json!(["body", "tags", "1"]),
        ),
        (
            "/api/v1/endpoints/sync",
            Method::POST,
            json!({"endpoints": [{"name": true}]}),
            json!(["body", "endpoints", "0", "name"]),
        ),
        ("/api/v1/verify", Method::POST, json!({"token": 123}), json!(["body", "token"])),
    ] {
        let (status, answer) = hub.send_json(method.clone(), Some(&alice), path, body).await;
        assert_eq!(status, 422, "{method} {path}: {answer}");
        assert_eq!(answer["detail"][0]["loc"], loc, "{method} {path}");
        assert_eq!(answer["detail"][0]["msg"], "Input should be a valid string");
    }
    assert_eq!(hub.get_json(Some(&alice), "/api/v1/organizations").await.1, json!([]), "nothing stored");
    // Strings, and null where a field is optional, still pass.
    let (status, _) = hub
        .send_json(Method::PUT, Some(&alice), "/api/v1/users/me", json!({"full_name": "Alice", "avatar_url": null}))
        .await;
    assert_eq!(status, 200);
}

/// Whether `value` satisfies a string schema of the document: lengths in characters, the
/// pattern (searched, as JSON Schema does), the allowed values.
fn schema_accepts(schema: &Value, value: &str) -> bool {
    let length = value.chars().count() as u64;
    let pattern_ok = schema["pattern"].as_str().is_none_or(|pattern| {
        fancy_regex::Regex::new(pattern).unwrap_or_else(|error| panic!("{pattern}: {error}")).is_match(value).unwrap()
    });
    schema["minLength"].as_u64().is_none_or(|min| length >= min)
        && schema["maxLength"].as_u64().is_none_or(|max| length <= max)
        && pattern_ok
        && schema["enum"].as_array().is_none_or(|values| values.contains(&Value::from(value)))
}

/// Whether the server refused `field` in a 422 answer.
fn refused(status: u16, body: &Value, field: &str) -> bool {
    status == 422
        && body["detail"]
            .as_array()
            .unwrap()
            .iter()
            .any(|error| error["loc"].as_array().unwrap().get(1).is_some_and(|loc| loc == field))
}

#[tokio::test]
async fn declared_string_rules_are_the_enforced_ones() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let alice = hub.register("alice").await;
    let document = served_document(&hub).await;
    let property = |schema: &str, field: &str| document["components"]["schemas"][schema]["properties"][field].clone();
    let long = |length: usize| "x".repeat(length);
    let padded_name = format!("  {}\t\n", long(100));
    let names: Vec<String> = ["Alice", "  Alice  ", "\tAlice\n", "", "   ", "a\u{0}b", "bell\u{7}", "Zoë 🚀"]
        .into_iter()
        .map(str::to_owned)
        .chain([long(100), long(101), padded_name])
        .collect();

    // Accounts: every sample is checked by the schema and by the server, and they agree.
    let mut cases: Vec<(&str, &str, String)> = Vec::new();
    for username in ["bob", "Bob_-1", "ab", "___", "api", "ApI", "Docs", "a b", "zoë", "b0b", &long(50), &long(51)] {
        cases.push(("UserUpdate", "username", username.to_owned()));
    }
    for email in [
        "carol@mail.example.org",
        "Dave+tag@Example.COM",
        "x@localhost",
        "x@a.test",
        "x@a.EXAMPLE",
        "a b@c.com",
        ".a@c.com",
        "a.@c.com",
        "@c.com",
        "a@-c.com",
        "a@c..com",
        "a@1.2.3.4",
        "a\"b@c.com",
    ] {
        cases.push(("UserUpdate", "email", email.to_owned()));
    }
    for name in &names {
        cases.push(("UserUpdate", "full_name", name.clone()));
    }
    for url in ["", "https://example.com/a.png", "http://x", "ftp://x", "https://x\u{0}"] {
        cases.push(("UserUpdate", "avatar_url", url.to_owned()));
    }
    for (schema, field, value) in &cases {
        let (status, body) =
            hub.send_json(Method::PUT, Some(&alice), "/api/v1/users/me", json!({ *field: value })).await;
        assert_ne!(status, 500, "{field} {value:?}: {body}");
        let declared = schema_accepts(&property(schema, field), value);
        assert_eq!(declared, !refused(status, &body, field), "{schema}.{field} {value:?}: {status} {body}");
    }

    // Token labels, organizations and endpoints take the same names.
    for name in &names {
        let (status, body) = hub.post_json(Some(&alice), "/api/v1/auth/tokens", json!({ "name": name })).await;
        assert_eq!(schema_accepts(&property("ApiTokenRequest", "name"), name), !refused(status, &body, "name"));
        let body_of = json!({ "name": name, "type": "model" });
        let (status, body) = hub.post_json(Some(&alice), "/api/v1/endpoints", body_of).await;
        assert_eq!(schema_accepts(&property("EndpointCreate", "name"), name), !refused(status, &body, "name"));
        let (status, body) = hub.post_json(Some(&alice), "/api/v1/organizations", json!({ "name": name })).await;
        assert_eq!(schema_accepts(&property("OrganizationCreate", "name"), name), !refused(status, &body, "name"));
    }
    let mut slug_number = 0;
    for slug in ["my-model", "a1", "abc", "-abc", "ab--c", "Abc", "api", "docs", "org", &long(63), &long(64)] {
        slug_number += 1;
        let endpoint = json!({ "name": format!("Endpoint {slug_number}"), "type": "model", "slug": slug });
        let (status, body) = hub.post_json(Some(&alice), "/api/v1/endpoints", endpoint).await;
        assert_eq!(
            schema_accepts(&property("EndpointCreate", "slug"), slug),
            !refused(status, &body, "slug"),
            "endpoint slug {slug:?}: {body}"
        );
        let organization = json!({ "name": format!("Organization {slug_number}"), "slug": format!("{slug}") });
        let (status, body) = hub.post_json(Some(&alice), "/api/v1/organizations", organization).await;
        assert_eq!(
            schema_accepts(&property("OrganizationCreate", "slug"), slug),
            !refused(status, &body, "slug"),
            "organization slug {slug:?}: {body}"
        );
    }
    for (number, version) in
        ["1.0.0", "0.1.0-rc.1+build.5", "1.0.0-rc-1", "01.0.0", "1.0", "1.0.0-01", "1.0.0+", "v1.0.0"]
            .iter()
            .enumerate()
    {
        let endpoint = json!({ "name": format!("Versioned {number}"), "type": "model", "version": version });
        let (status, body) = hub.post_json(Some(&alice), "/api/v1/endpoints", endpoint).await;
        assert_eq!(
            schema_accepts(&property("EndpointCreate", "version"), version),
            !refused(status, &body, "version"),
            "version {version:?}: {body}"
        );
    }

    // A create without name or type is a 422 naming each, as the schema's `required` says.
    let required = document["components"]["schemas"]["EndpointCreate"]["required"].clone();
    assert_eq!(required, json!(["name", "type"]));
    let (status, body) = hub.post_json(Some(&alice), "/api/v1/endpoints", json!({})).await;
    assert!(refused(status, &body, "name") && refused(status, &body, "type"), "{body}");

    // Passwords: the configured minimum length is the declared one.
    let password = property("RegisterRequest", "password");
    assert_eq!(password["minLength"], 8);
    for (number, candidate) in ["abcdefg1", "short1", "abcdefgh", "12345678"].into_iter().enumerate() {
        let registration = json!({
            "username": format!("pw{number}"),
            "email": format!("pw{number}@mail.example.org"),
            "full_name": "Password Test",
            "password": candidate,
        });
        let (status, body) = hub.post_json(None, "/api/v1/auth/register", registration).await;
        assert_eq!(schema_accepts(&password, candidate), !refused(status, &body, "password"), "{candidate}");
    }
}
