//! The identity provider: JWKS (caching, ETag), discovery, satellite tokens for services and
//! users, server-side verification with the reference's error codes, and key rotation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Duration;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use poem::http::StatusCode;
use serde_json::json;
use thub_tests::{Backend, TestHub, json, on_every_backend};

on_every_backend!(jwks_and_discovery, satellite_tokens, verification_codes, rotation_keeps_old_tokens_valid);

async fn jwks_and_discovery(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let client = hub.client();

    let response = client.get("/.well-known/jwks.json").send().await;
    response.assert_status_is_ok();
    response.assert_header("cache-control", "public, max-age=3600");
    let etag = response.0.headers().get("etag").unwrap().to_str().unwrap().to_owned();
    let jwks = json(response).await;
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["e"], "AQAB");
    assert!(key["kid"].as_str().unwrap().starts_with("thub-"));
    assert!(!key["n"].as_str().unwrap().contains('='), "unpadded base64url");

    let response = client.get("/.well-known/jwks.json").header("if-none-match", etag.clone()).send().await;
    response.assert_status(StatusCode::NOT_MODIFIED);
    response.assert_header("etag", etag);

    let discovery =
        json(client.get("/.well-known/openid-configuration").header("host", "hub.local:8000").send().await).await;
    assert_eq!(discovery["issuer"], "https://hub.syft.com");
    assert_eq!(discovery["jwks_uri"], "http://hub.local:8000/.well-known/jwks.json");
    assert_eq!(discovery["id_token_signing_alg_values_supported"], json!(["RS256"]));

    // Keys persist: a restart on the same database serves the same key.
    let restarted = thub_core::Hub::build_with_clock((*hub.hub.config).clone(), std::sync::Arc::new(hub.clock.clone()))
        .await
        .unwrap();
    let again =
        json(poem::test::TestClient::new(restarted.endpoint()).get("/.well-known/jwks.json").send().await).await;
    assert_eq!(again, jwks);
}

async fn satellite_tokens(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    hub.register("bob").await;
    let client = hub.client();
    let token =
        |aud: &str| client.get(format!("/api/v1/token?aud={aud}")).header("authorization", alice.bearer()).send();

    // An allow-listed service, case- and space-insensitively.
    let response = token("%20SyftAI-Space%20").await;
    response.assert_status_is_ok();
    let body = json(response).await;
    assert_eq!(body["expires_in"], 60);
    let jwt = body["target_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let jwks = json(client.get("/.well-known/jwks.json").send().await).await;
    assert_eq!(header.kid.as_deref(), jwks["keys"][0]["kid"].as_str());

    // It verifies offline with nothing but the JWKS.
    let key = &jwks["keys"][0];
    let decoding = DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["syftai-space"]);
    validation.set_issuer(&["https://hub.syft.com"]);
    validation.validate_exp = false; // the test clock is in 2026-01-01; the claim is checked below
    let claims = jsonwebtoken::decode::<serde_json::Value>(jwt, &decoding, &validation).unwrap().claims;
    assert_eq!(claims["sub"], alice.id.to_string());
    assert_eq!(claims["role"], "user");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 60);

    // Any active user's username is an audience (SDK 0.3.1).
    token("bob").await.assert_status_is_ok();

    let response = token("not-a-service").await;
    response.assert_status(StatusCode::BAD_REQUEST);
    let detail = json(response).await["detail"].clone();
    assert_eq!(detail["error"], "invalid_audience");
    assert!(detail["message"].as_str().unwrap().contains("syftai-space"));
    let response = token("%20%20").await;
    response.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(json(response).await["detail"]["error"], "missing_audience");
    client
        .get("/api/v1/token")
        .header("authorization", alice.bearer())
        .send()
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    client.get("/api/v1/token?aud=syftai-space").send().await.assert_status(StatusCode::UNAUTHORIZED);

    let audiences =
        json(client.get("/api/v1/token/audiences").header("authorization", alice.bearer()).send().await).await;
    assert_eq!(audiences, json!({"allowed_audiences": ["syftai-space"], "idp_configured": true}));
}

async fn verification_codes(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let service = hub.register("weather-svc").await;
    let client = hub.client();
    let mint =
        |aud: &str| client.get(format!("/api/v1/token?aud={aud}")).header("authorization", alice.bearer()).send();
    let verify = |token: &str| {
        client
            .post("/api/v1/verify")
            .header("authorization", service.bearer())
            .body_json(&json!({"token": token}))
            .send()
    };
    let code = |body: serde_json::Value| body["error"].as_str().map(str::to_owned);

    let for_service = json(mint("weather-svc").await).await["target_token"].as_str().unwrap().to_owned();
    let valid = json(verify(&for_service).await).await;
    assert_eq!(valid["valid"], true);
    assert_eq!(valid["sub"], alice.id.to_string());
    assert_eq!(valid["username"], "alice");
    assert_eq!(valid["email"], "alice@example.com");
    assert_eq!(valid["aud"], "weather-svc");

    let for_other = json(mint("syftai-space").await).await["target_token"].as_str().unwrap().to_owned();
    let mismatch = json(verify(&for_other).await).await;
    assert_eq!(code(mismatch.clone()).as_deref(), Some("audience_mismatch"));
    assert!(mismatch["message"].as_str().unwrap().contains("'syftai-space'"));

    assert_eq!(code(json(verify("not-a-valid-jwt").await).await).as_deref(), Some("invalid_token_format"));
    assert_eq!(code(json(verify(&alice.access).await).await).as_deref(), Some("missing_kid"), "a hub HS256 token");
    let unknown_kid = jsonwebtoken::encode(
        &jsonwebtoken::Header { kid: Some("nope".to_owned()), ..jsonwebtoken::Header::new(Algorithm::HS256) },
        &json!({"sub": "1"}),
        &jsonwebtoken::EncodingKey::from_secret(b"x"),
    )
    .unwrap();
    let unknown = json(verify(&unknown_kid).await).await;
    assert_eq!(code(unknown.clone()).as_deref(), Some("unknown_key"));
    assert!(unknown["message"].as_str().unwrap().contains("nope"));
    let mut tampered = for_service.clone();
    tampered.truncate(tampered.len() - 4);
    tampered.push_str("AAAA");
    assert_eq!(code(json(verify(&tampered).await).await).as_deref(), Some("invalid_signature"));

    hub.clock.advance(Duration::seconds(60));
    assert_eq!(code(json(verify(&for_service).await).await).as_deref(), Some("token_expired"));

    // The subject deleted: user_not_found.
    let fresh = json(mint("weather-svc").await).await["target_token"].as_str().unwrap().to_owned();
    client
        .delete(format!("/api/v1/users/{}", alice.id))
        .header("authorization", alice.bearer())
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(code(json(verify(&fresh).await).await).as_deref(), Some("user_not_found"));

    client
        .post("/api/v1/verify")
        .body_json(&json!({"token": "x"}))
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    client
        .post("/api/v1/verify")
        .header("authorization", service.bearer())
        .body_json(&json!({}))
        .send()
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
}

async fn rotation_keeps_old_tokens_valid(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let service = hub.register("weather-svc").await;
    let client = hub.client();
    let mint = || client.get("/api/v1/token?aud=weather-svc").header("authorization", alice.bearer()).send();
    let verify = |token: String| {
        client
            .post("/api/v1/verify")
            .header("authorization", service.bearer())
            .body_json(&json!({"token": token}))
            .send()
    };

    let before = json(mint().await).await["target_token"].as_str().unwrap().to_owned();
    let old_kid = jsonwebtoken::decode_header(&before).unwrap().kid.unwrap();
    let new_kid = hub.hub.accounts.idp.rotate().await.unwrap();
    assert_ne!(old_kid, new_kid);

    let jwks = json(client.get("/.well-known/jwks.json").send().await).await;
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|key| key["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()], "current first, previous kept");

    let after = json(mint().await).await["target_token"].as_str().unwrap().to_owned();
    assert_eq!(jsonwebtoken::decode_header(&after).unwrap().kid.unwrap(), new_kid, "new tokens use the new key");
    assert_eq!(json(verify(before).await).await["valid"], true, "tokens of the previous key still verify");

    // After the overlap the old key leaves the JWKS (a fresh instance reads the set anew).
    hub.clock.advance(Duration::hours(25));
    let later = thub_core::Hub::build_with_clock((*hub.hub.config).clone(), std::sync::Arc::new(hub.clock.clone()))
        .await
        .unwrap();
    let jwks = json(poem::test::TestClient::new(later.endpoint()).get("/.well-known/jwks.json").send().await).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0]["kid"], new_kid);
}
