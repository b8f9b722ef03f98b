//! The registry: endpoint creation and its rules (slugs, versions, policies, contributors),
//! one visibility rule on every surface, discovery and paging, search, sync, owner pages, and
//! the bad inputs of each. Where the reference behaves differently on purpose, the assertion
//! says "fixed quirk".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use poem::http::Method;
use serde_json::{Value, json};
use thub_tests::{Backend, TestHub, on_every_backend};

on_every_backend!(
    create_and_its_rules,
    create_bad_inputs,
    visibility_is_the_same_on_every_surface,
    update_delete_and_slug_routes,
    discovery_trending_and_paging,
    full_text_search,
    sync_replaces_atomically,
    owner_pages_json_and_html,
    events_are_emitted,
    concurrent_creates_all_succeed,
);

fn names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|item| item["slug"].as_str().unwrap().to_owned()).collect()
}

async fn create_and_its_rules(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let bob = hub.register("bob").await;

    let created = hub.endpoint(&alice, json!({"name": "My First Endpoint", "type": "model"})).await;
    assert_eq!(created["slug"], "my-first-endpoint");
    assert_eq!(created["version"], "0.1.0");
    assert_eq!(created["readme"], "");
    assert_eq!(created["stars_count"], 0);
    assert_eq!(created["visibility"], "public");
    assert_eq!(created["policies"], json!([]));
    assert_eq!(created["contributors"], json!([alice.id]), "the owner is a contributor");
    assert_eq!(created["user_id"], alice.id);
    assert_eq!(created["organization_id"], Value::Null);

    // Generated slugs: numbered when taken, reference examples, reserved words skipped.
    let second = hub.endpoint(&alice, json!({"name": "My First Endpoint", "type": "model"})).await;
    assert_eq!(second["slug"], "my-first-endpoint-1");
    for (name, slug) in [
        ("Complex Name With Spaces!", "complex-name-with-spaces"),
        ("Special-Characters#@$%", "special-characters"),
        ("A", "endpoint-a"),
        ("Multiple    Spaces", "multiple-spaces"),
        ("API", "api-1"),
        ("!!", "endpoint"),
    ] {
        let created = hub.endpoint(&alice, json!({"name": name, "type": "data_source"})).await;
        assert_eq!(created["slug"], slug, "{name} (\"!!\" is a fixed quirk: it used to be a 500)");
    }

    // Explicit slugs: per owner.
    hub.endpoint(&alice, json!({"name": "X", "type": "model", "slug": "shared-name"})).await;
    hub.endpoint(&bob, json!({"name": "X", "type": "model", "slug": "shared-name"})).await;
    let (status, body) = hub
        .post_json(Some(&alice), "/api/v1/endpoints", json!({"name": "X", "type": "model", "slug": "shared-name"}))
        .await;
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().unwrap().contains("already taken"));

    // Every field round-trips; all four kinds; semantic versions with pre-release (fixed quirk).
    for kind in ["model", "data_source", "model_data_source", "agent"] {
        let created = hub.endpoint(&bob, json!({"name": format!("k {kind}"), "type": kind})).await;
        assert_eq!(created["type"], kind);
    }
    let config = json!({"nested": {"list": [1, 2, {"deep": null}]}, "rate": 2.5, "flag": false});
    let full = hub
        .endpoint(
            &alice,
            json!({
                "name": "Full", "type": "model", "version": "1.2.3-alpha.1", "readme": "# Hi\n\nText",
                "description": "desc", "visibility": "internal", "tags": ["nlp", " vision ", "nlp"],
                "policies": [{"type": "rate_limit"}, {"type": "x", "version": "10.15", "enabled": false, "description": " d ", "config": config}],
                "connect": [{"type": "http", "config": {"url": "https://api.example.com"}}],
                "contributors": [bob.id, 999, alice.id, bob.id],
            }),
        )
        .await;
    assert_eq!(full["version"], "1.2.3-alpha.1");
    assert_eq!(full["tags"], json!(["nlp", "vision"]));
    assert_eq!(
        full["policies"][0],
        json!({"type": "rate_limit", "version": "1.0", "enabled": true, "description": "", "config": {}})
    );
    assert_eq!(full["policies"][1]["config"], config, "config kept exactly as given");
    assert_eq!(full["policies"][1]["description"], "d");
    assert_eq!(
        full["connect"][0],
        json!({"type": "http", "enabled": true, "description": "", "config": {"url": "https://api.example.com"}})
    );
    assert_eq!(full["contributors"], json!([bob.id, alice.id]), "unknown ids dropped, duplicates removed");
    let (_, fetched) = hub.get_json(Some(&alice), &format!("/api/v1/endpoints/{}", full["id"])).await;
    assert_eq!(fetched, full);
}

async fn create_bad_inputs(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let create = |body: Value| hub.post_json(Some(&alice), "/api/v1/endpoints", body);
    let base = || json!({"name": "Ok", "type": "model"});
    let with = |key: &str, value: Value| {
        let mut body = base();
        body[key] = value;
        body
    };

    for slug in [
        "ab",
        &"a".repeat(64),
        "-invalid",
        "invalid-",
        "invalid--slug",
        "Invalid-Slug",
        "invalid_slug",
        "invalid slug",
        "api",
    ] {
        assert_eq!(create(with("slug", json!(slug))).await.0, 422, "slug {slug}");
    }
    for version in ["1.2", "v1.2.3", "invalid", "1.2.3-", "01.0.0"] {
        assert_eq!(create(with("version", json!(version))).await.0, 422, "version {version}");
    }
    for policies in [
        json!([{"type": ""}]),
        json!([{"type": "x", "version": "1"}]),
        json!([{"type": "x", "version": "1.0.0"}]),
        json!([{"type": "x", "unknown": 1}]),
        json!([{"type": "x", "config": []}]),
        json!(["x"]),
    ] {
        let (status, body) = create(with("policies", policies.clone())).await;
        assert_eq!(status, 422, "{policies}: {body}");
    }
    let (_, body) = create(with("policies", json!([{"type": "ok"}, {"type": "x", "version": "v1"}]))).await;
    assert_eq!(body["detail"][0]["loc"], json!(["body", "policies", 1, "version"]), "the failing element is named");
    for (key, value) in [
        ("type", json!("robot")),
        ("visibility", json!("secret")),
        ("name", json!("")),
        ("name", json!("n".repeat(101))),
        ("description", json!("d".repeat(501))),
        ("readme", json!("r".repeat(50_001))),
        ("tags", json!(["x".repeat(51)])),
        ("connect", json!([{"type": "x".repeat(51)}])),
        ("contributors", json!(["one"])),
    ] {
        assert_eq!(create(with(key, value.clone())).await.0, 422, "{key} = {value}");
    }
    assert_eq!(create(json!({"type": "model"})).await.0, 422, "name required");
    assert_eq!(create(json!({"name": "x"})).await.0, 422, "type required");
    assert_eq!(hub.post_json(None, "/api/v1/endpoints", base()).await.0, 401);
    // Someone else's organization.
    let (status, body) = hub.post_json(Some(&alice), "/api/v1/endpoints?organization_id=77", base()).await;
    assert_eq!(status, 403, "{body}");
    // Nothing was stored by any of it.
    let (_, mine) = hub.get_json(Some(&alice), "/api/v1/endpoints").await;
    assert_eq!(mine, json!([]));
}

async fn visibility_is_the_same_on_every_surface(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let owner = hub.register("olive").await;
    let member = hub.register("mia").await;
    let stranger = hub.register("sam").await;
    let site_admin = hub.admin("root").await;
    let (_, org) = hub.post_json(Some(&owner), "/api/v1/organizations/", json!({"name": "Lab", "slug": "lab"})).await;
    let org_id = org["id"].as_i64().unwrap();
    hub.post_json(Some(&owner), &format!("/api/v1/organizations/{org_id}/members"), json!({"user_id": member.id}))
        .await;

    let mut ids = Vec::new();
    for (owner_path, visibility) in [
        ("olive", "public"),
        ("olive", "internal"),
        ("olive", "private"),
        ("lab", "public"),
        ("lab", "internal"),
        ("lab", "private"),
    ] {
        let path = if owner_path == "lab" {
            format!("/api/v1/endpoints?organization_id={org_id}")
        } else {
            "/api/v1/endpoints".to_owned()
        };
        let (status, created) = hub
            .post_json(
                Some(&owner),
                &path,
                json!({"name": format!("{owner_path} {visibility}"), "type": "model", "visibility": visibility}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        ids.push((
            owner_path,
            visibility,
            created["id"].as_i64().unwrap(),
            created["slug"].as_str().unwrap().to_owned(),
        ));
    }

    // Who sees what: (viewer, sees olive's, sees lab's), by visibility.
    // (viewer, session, sees olive's [public, internal, private], sees lab's [...])
    type Expectation<'a> = (&'a str, Option<&'a thub_tests::Session>, [bool; 3], [bool; 3]);
    let expectations: [Expectation; 5] = [
        ("anonymous", None, [true, false, false], [true, false, false]),
        ("stranger", Some(&stranger), [true, true, false], [true, true, false]),
        ("owner", Some(&owner), [true, true, true], [true, true, true]),
        ("org member", Some(&member), [true, true, false], [true, true, true]),
        ("site admin", Some(&site_admin), [true, true, true], [true, true, true]),
    ];
    for (who, session, olive, lab) in expectations {
        for (owner_path, visibility, id, slug) in &ids {
            let index = ["public", "internal", "private"].iter().position(|v| v == visibility).unwrap();
            let expected = if *owner_path == "olive" { olive[index] } else { lab[index] };
            let (by_id, _) = hub.get_json(session, &format!("/api/v1/endpoints/{id}")).await;
            assert_eq!(by_id == 200, expected, "{who} by id {owner_path}/{visibility}");
            let (page, _) = hub.get_json(session, &format!("/{owner_path}/{slug}")).await;
            assert_eq!(page == 200, expected, "{who} owner page {owner_path}/{visibility}");
            if !expected {
                let wanted = if session.is_none() { 401 } else { 404 };
                assert_eq!(by_id, 404, "{who}: invisible by id is 404");
                assert_eq!(page, wanted, "{who}: invisible page is 401 for anonymous, 404 otherwise");
            }
            let (star, _) = hub.post_json(session, &format!("/api/v1/endpoints/{id}/star"), json!({})).await;
            if session.is_some() {
                assert_eq!(star == 201, expected, "{who} star {owner_path}/{visibility}");
            }
        }
        for (owner_path, flags) in [("olive", olive), ("lab", lab)] {
            let (_, listed) = hub.get_json(session, &format!("/{owner_path}")).await;
            assert_eq!(
                listed.as_array().unwrap().len(),
                flags.iter().filter(|seen| **seen).count(),
                "{who} /{owner_path}"
            );
        }
    }

    // Discovery lists only public ones, org-owned included (fixed quirk).
    let (_, public) = hub.get_json(None, "/api/v1/endpoints/public").await;
    let mut owners: Vec<&str> =
        public.as_array().unwrap().iter().map(|e| e["owner_username"].as_str().unwrap()).collect();
    owners.sort();
    assert_eq!(owners, ["lab", "olive"]);

    // Changing: owner, org owners/admins, site admins; members and strangers may not.
    let lab_private = ids[5].2;
    let lab_private_path = format!("/api/v1/endpoints/{lab_private}");
    let rename =
        |session| hub.send_json(Method::PATCH, Some(session), &lab_private_path, json!({"description": "new"}));
    assert_eq!(rename(&member).await.0, 403);
    assert_eq!(rename(&stranger).await.0, 404, "invisible stays invisible");
    assert_eq!(rename(&owner).await.0, 200);
    assert_eq!(rename(&site_admin).await.0, 200);
    let olive_public = ids[0].2;
    assert_eq!(
        hub.send_json(Method::DELETE, Some(&stranger), &format!("/api/v1/endpoints/{olive_public}"), json!({})).await.0,
        403
    );

    // A suspended organization's endpoints disappear from everyone but site admins.
    hub.send_json(
        Method::PATCH,
        Some(&site_admin),
        &format!("/api/v1/organizations/{org_id}/admin"),
        json!({"is_active": false}),
    )
    .await;
    let (_, public) = hub.get_json(None, "/api/v1/endpoints/public").await;
    assert_eq!(public.as_array().unwrap().len(), 1);
    assert_eq!(hub.get_json(Some(&member), &format!("/api/v1/endpoints/{}", ids[3].2)).await.0, 404);
    assert_eq!(hub.get_json(Some(&site_admin), &format!("/api/v1/endpoints/{}", ids[3].2)).await.0, 200);
}

async fn update_delete_and_slug_routes(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let admin = hub.admin("root").await;
    let created = hub.endpoint(&alice, json!({"name": "Widget", "type": "model", "tags": ["a"]})).await;
    let path = format!("/api/v1/endpoints/{}", created["id"]);

    let (status, updated) = hub
        .send_json(Method::PATCH, Some(&alice), &path, json!({"name": "Widget Pro", "version": "2.0.0", "readme": "new", "policies": [{"type": "p"}], "contributors": []}))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"], "Widget Pro");
    assert_eq!(updated["slug"], "widget", "slugs never change");
    assert_eq!(updated["visibility"], "public", "absent fields stay");
    assert_eq!(updated["tags"], json!(["a"]));
    assert_eq!(updated["contributors"], json!([alice.id]));
    assert_eq!(hub.send_json(Method::PATCH, Some(&alice), &path, json!({"version": "2.0"})).await.0, 422);

    // SDK 0.3.1 slug routes act on the caller's own endpoints.
    let (status, by_slug) = hub
        .send_json(Method::PATCH, Some(&alice), "/api/v1/endpoints/slug/widget", json!({"description": "by slug"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(by_slug["description"], "by slug");
    assert_eq!(
        hub.send_json(Method::PATCH, Some(&admin), "/api/v1/endpoints/slug/widget", json!({})).await.0,
        404,
        "not the admin's own"
    );

    // Admin switch: suspend, then restore (fixed quirk: restoring works).
    let admin_path = format!("{path}/admin");
    assert_eq!(hub.send_json(Method::PATCH, Some(&alice), &admin_path, json!({"is_active": false})).await.0, 403);
    hub.send_json(Method::PATCH, Some(&admin), &admin_path, json!({"is_active": false})).await;
    assert_eq!(hub.get_json(Some(&alice), &path).await.0, 404);
    let (_, restored) =
        hub.send_json(Method::PATCH, Some(&admin), &admin_path, json!({"is_active": true, "stars_count": 7})).await;
    assert_eq!(restored["is_active"], true);
    assert_eq!(restored["stars_count"], 7);

    // Delete frees the slug (fixed quirk: it used to stay reserved forever).
    assert_eq!(hub.send_json(Method::DELETE, Some(&alice), "/api/v1/endpoints/slug/widget", json!({})).await.0, 204);
    assert_eq!(hub.get_json(Some(&alice), &path).await.0, 404);
    let again = hub.endpoint(&alice, json!({"name": "Widget", "type": "model"})).await;
    assert_eq!(again["slug"], "widget");
    assert_ne!(again["id"], created["id"], "ids are never reused");
    assert_eq!(hub.send_json(Method::DELETE, Some(&alice), "/api/v1/endpoints/slug/nope", json!({})).await.0, 404);
    assert_eq!(hub.get_json(Some(&alice), "/api/v1/endpoints/abc").await.0, 422);
}

async fn discovery_trending_and_paging(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let admin = hub.admin("root").await;
    let mut ids = Vec::new();
    for index in 0..5 {
        let created = hub.endpoint(&alice, json!({"name": format!("Widget {index}"), "type": if index % 2 == 0 { "model" } else { "data_source" }})).await;
        ids.push(created["id"].as_i64().unwrap());
        hub.clock.advance(chrono::Duration::seconds(1));
    }
    hub.endpoint(&alice, json!({"name": "Hidden", "type": "model", "visibility": "private"})).await;
    for (id, stars) in ids.iter().zip([0, 10, 5, 15, 0]) {
        hub.send_json(
            Method::PATCH,
            Some(&admin),
            &format!("/api/v1/endpoints/{id}/admin"),
            json!({"stars_count": stars}),
        )
        .await;
    }

    let (_, trending) = hub.get_json(None, "/api/v1/endpoints/trending").await;
    let stars: Vec<i64> = trending.as_array().unwrap().iter().map(|e| e["stars_count"].as_i64().unwrap()).collect();
    assert_eq!(stars, [15, 10, 5, 0, 0]);
    let (_, filtered) = hub.get_json(None, "/api/v1/endpoints/trending?min_stars=10").await;
    assert_eq!(filtered.as_array().unwrap().len(), 2);
    let (_, first) = hub.get_json(None, "/api/v1/endpoints/trending?skip=0&limit=3").await;
    let (_, second) = hub.get_json(None, "/api/v1/endpoints/trending?skip=3&limit=3").await;
    assert_eq!((first.as_array().unwrap().len(), second.as_array().unwrap().len()), (3, 2));
    let (_, past_end) = hub.get_json(None, "/api/v1/endpoints/public?skip=100&limit=10").await;
    assert_eq!(past_end, json!([]));

    // Pages by skip/limit as the SDK does: disjoint, complete, newest change first.
    let mut seen = Vec::new();
    for page in 0..3 {
        let (_, list) = hub.get_json(None, &format!("/api/v1/endpoints/public?skip={}&limit=2", page * 2)).await;
        seen.extend(names(&list));
    }
    assert_eq!(seen.len(), 5);
    assert!(!seen.contains(&"hidden".to_owned()));
    let (_, models) = hub.get_json(None, "/api/v1/endpoints/public?endpoint_type=model").await;
    assert_eq!(models.as_array().unwrap().len(), 3);

    // My endpoints: all visibilities; search is literal (fixed quirk: % and _ are not wildcards).
    let (_, mine) = hub.get_json(Some(&alice), "/api/v1/endpoints?limit=100").await;
    assert_eq!(mine.as_array().unwrap().len(), 6);
    let (_, widgets) = hub.get_json(Some(&alice), "/api/v1/endpoints?search=WIDGET").await;
    assert_eq!(widgets.as_array().unwrap().len(), 5);
    let (_, wildcard) = hub.get_json(Some(&alice), "/api/v1/endpoints?search=%25").await;
    assert_eq!(wildcard, json!([]));
    let (_, private) = hub.get_json(Some(&alice), "/api/v1/endpoints?visibility=private").await;
    assert_eq!(names(&private), ["hidden"]);

    for bad in ["limit=0", "limit=101", "skip=-1", "min_stars=-1", "endpoint_type=robot", "limit=x"] {
        assert_eq!(hub.get_json(None, &format!("/api/v1/endpoints/trending?{bad}")).await.0, 422, "{bad}");
    }
    assert_eq!(hub.get_json(Some(&alice), "/api/v1/endpoints?visibility=secret").await.0, 422);
}

async fn full_text_search(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    hub.endpoint(
        &alice,
        json!({"name": "Image Classifier", "type": "model", "description": "Labels photos", "tags": ["vision"]}),
    )
    .await;
    hub.endpoint(
        &alice,
        json!({"name": "Weather Data", "type": "data_source", "readme": "Hourly observations for image overlays"}),
    )
    .await;
    hub.endpoint(
        &alice,
        json!({"name": "Chat Agent", "type": "agent", "tags": ["nlp", "chat"], "description": "Answers questions"}),
    )
    .await;
    hub.endpoint(&alice, json!({"name": "Secret Images", "type": "model", "visibility": "private"})).await;
    hub.endpoint(
        &alice,
        json!({"name": "Données météo", "type": "data_source", "description": "Température über alles"}),
    )
    .await;

    let search = |body: Value| hub.post_json(None, "/api/v1/endpoints/search", body);
    let (status, found) = search(json!({"query": "image", "top_k": 10})).await;
    assert_eq!(status, 200);
    assert_eq!(found["query"], "image");
    assert_eq!(
        names(&found["results"]),
        ["image-classifier", "weather-data"],
        "name beats README; private never shows"
    );
    assert_eq!(found["total"], 2);
    let scores: Vec<f64> =
        found["results"].as_array().unwrap().iter().map(|r| r["relevance_score"].as_f64().unwrap()).collect();
    assert!(scores[0] > scores[1] && scores[0] <= 1.0 && scores[1] > 0.0, "{scores:?}");
    assert_eq!(found["results"][0]["owner_username"], "alice");

    let (_, by_tag) = search(json!({"query": "vision"})).await;
    assert_eq!(names(&by_tag["results"]), ["image-classifier"]);
    let (_, prefix) = search(json!({"query": "classif"})).await;
    assert_eq!(names(&prefix["results"]), ["image-classifier"]);
    let (_, typed) = search(json!({"query": "image", "type": "data_source"})).await;
    assert_eq!(names(&typed["results"]), ["weather-data"]);
    let (_, top) = search(json!({"query": "image", "top_k": 1})).await;
    assert_eq!(top["results"].as_array().unwrap().len(), 1);
    assert_eq!(top["total"], 2);
    let (_, unicode) = search(json!({"query": "über Données"})).await;
    assert_eq!(names(&unicode["results"]), ["donn-es-m-t-o"]);

    // Query-language and SQL-looking input is just text.
    for hostile in [
        "%",
        "_",
        "\"",
        "image\" OR 1=1 --",
        "'; DROP TABLE endpoints; --",
        "NEAR(image chat)",
        "*",
        "ö̈́̈̈",
        "🔥🔥",
        "image:*|chat&!x",
        "",
    ] {
        let (status, result) = search(json!({"query": hostile})).await;
        assert_eq!(status, 200, "{hostile}: {result}");
    }
    let (_, still) = search(json!({"query": "chat"})).await;
    assert_eq!(names(&still["results"]), ["chat-agent"], "the table survived");
    for bad in [
        json!({"query": "x", "top_k": 0}),
        json!({"query": "x", "top_k": 101}),
        json!({"query": "x".repeat(501)}),
        json!({"top_k": 3}),
        json!({"query": "x", "type": "robot"}),
    ] {
        assert_eq!(search(bad.clone()).await.0, 422, "{bad}");
    }

    // The index follows updates and deletes.
    let (_, mine) = hub.get_json(Some(&alice), "/api/v1/endpoints?search=chat").await;
    let id = mine[0]["id"].as_i64().unwrap();
    hub.send_json(
        Method::PATCH,
        Some(&alice),
        &format!("/api/v1/endpoints/{id}"),
        json!({"name": "Talk Bot", "tags": []}),
    )
    .await;
    let (_, renamed) = search(json!({"query": "talk"})).await;
    assert_eq!(names(&renamed["results"]), ["chat-agent"]);
    hub.send_json(Method::DELETE, Some(&alice), &format!("/api/v1/endpoints/{id}"), json!({})).await;
    let (_, gone) = search(json!({"query": "talk"})).await;
    assert_eq!(gone["results"], json!([]));
}

async fn sync_replaces_atomically(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    hub.endpoint(&alice, json!({"name": "Old One", "type": "model"})).await;
    hub.endpoint(&alice, json!({"name": "Old Two", "type": "model"})).await;

    // One bad element rejects the whole batch and changes nothing.
    let (status, body) = hub
        .post_json(
            Some(&alice),
            "/api/v1/endpoints/sync",
            json!({"endpoints": [{"name": "Fine", "type": "model"}, {"name": "Bad", "type": "model", "version": "x"}]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["detail"]["code"], "VALIDATION_ERROR");
    assert_eq!(body["detail"]["errors"][0]["index"], 1);
    assert_eq!(body["detail"]["errors"][0]["field"], "version");
    let (_, mine) = hub.get_json(Some(&alice), "/api/v1/endpoints").await;
    assert_eq!(mine.as_array().unwrap().len(), 2);
    let (status, _) = hub
        .post_json(Some(&alice), "/api/v1/endpoints/sync", json!({"endpoints": [{"name": "A", "type": "model", "slug": "same"}, {"name": "B", "type": "model", "slug": "same"}]}))
        .await;
    assert_eq!(status, 400, "duplicate slugs in one batch");

    let (status, synced) = hub
        .post_json(Some(&alice), "/api/v1/endpoints/sync", json!({"endpoints": [{"name": "New A", "type": "model"}, {"name": "Old One", "type": "agent", "slug": "old-one"}]}))
        .await;
    assert_eq!(status, 200, "{synced}");
    assert_eq!((synced["synced"].as_u64(), synced["deleted"].as_u64()), (Some(2), Some(2)));
    assert_eq!(names(&synced["endpoints"]), ["new-a", "old-one"]);
    let (_, emptied) = hub.post_json(Some(&alice), "/api/v1/endpoints/sync", json!({"endpoints": []})).await;
    assert_eq!(emptied["deleted"], 2);
    let too_many: Vec<Value> = (0..101).map(|index| json!({"name": format!("n{index}"), "type": "model"})).collect();
    assert_eq!(hub.post_json(Some(&alice), "/api/v1/endpoints/sync", json!({"endpoints": too_many})).await.0, 400);
}

async fn owner_pages_json_and_html(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    hub.endpoint(
        &alice,
        json!({
            "name": "Renderer", "type": "model", "description": "<b>bold</b> claims",
            "readme": "# Title\n\n<script>alert(1)</script>\n\n```python\nprint('hi')\n```\n\n[x](javascript:alert(2))",
            "connect": [{"type": "http", "config": {"url": "https://api.example.com/\"><script>"}}],
        }),
    )
    .await;
    hub.endpoint(&alice, json!({"name": "Private", "type": "model", "visibility": "private"})).await;
    let client = hub.client();

    let (status, listed) = hub.get_json(None, "/ALICE").await;
    assert_eq!(status, 200, "owner names are case-insensitive");
    assert_eq!(names(&listed), ["renderer"]);
    let (_, own) = hub.get_json(Some(&alice), "/alice").await;
    assert_eq!(own.as_array().unwrap().len(), 2);
    let (status, public) = hub.get_json(None, "/alice/renderer").await;
    assert_eq!(status, 200);
    assert!(public.get("id").is_none(), "anonymous callers get the public shape");
    let (_, full) = hub.get_json(Some(&alice), "/alice/renderer").await;
    assert!(full.get("id").is_some(), "the owner gets every detail");
    assert_eq!(hub.get_json(None, "/alice?limit=101").await.0, 422);

    let response = client.get("/alice/renderer").header("accept", "text/html").send().await;
    response.assert_status_is_ok();
    response.assert_content_type("text/html; charset=utf-8");
    let html = response.0.into_body().into_string().await.unwrap();
    assert!(html.contains("<title>Renderer · alice/renderer · thub</title>"), "the web plugin's page: {html}");
    assert!(html.contains("<h1>Title</h1>"));
    assert!(html.contains("class=\"hl-"), "code is highlighted");
    assert!(!html.contains("<script>"), "no script survives: {html}");
    assert!(!html.contains("javascript:"), "no javascript: links");
    assert!(html.contains("&#60;b&#62;bold&#60;/b&#62;"), "fields are escaped");

    // An anonymous browser asking for a private endpoint gets the 404 page: no hint it exists.
    let response = client.get("/alice/private").header("accept", "text/html").send().await;
    response.assert_status(poem::http::StatusCode::NOT_FOUND);

    // Unknown owners and slugs are 404 for API clients, signed in or not (the static site
    // behind them has no such file either).
    for path in ["/nobody", "/alice/nothing"] {
        assert_eq!(hub.get_json(None, path).await.0, 404, "{path}");
        assert_eq!(hub.get_json(Some(&alice), path).await.0, 404, "{path}");
    }
    // Other paths are the static site's: a login first, then no such file.
    assert_eq!(hub.get_json(None, "/alice/renderer/extra").await.0, 401);
    assert_eq!(hub.get_json(Some(&alice), "/alice/renderer/extra").await.0, 404);
    // API and well-known routes win over owner names.
    assert_eq!(hub.get_json(None, "/health").await.1["status"], "healthy");
}

async fn events_are_emitted(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let mut events = hub.hub.events.subscribe();
    let alice = hub.register("alice").await;
    let bob = hub.register("bob").await;
    let created = hub.endpoint(&alice, json!({"name": "E", "type": "model"})).await;
    let id = created["id"].as_i64().unwrap();
    hub.post_json(Some(&bob), &format!("/api/v1/endpoints/{id}/star"), json!({})).await;
    hub.send_json(Method::DELETE, Some(&bob), &format!("/api/v1/endpoints/{id}/star"), json!({})).await;
    hub.send_json(Method::PATCH, Some(&alice), &format!("/api/v1/endpoints/{id}"), json!({"name": "F"})).await;
    hub.send_json(Method::DELETE, Some(&alice), &format!("/api/v1/endpoints/{id}"), json!({})).await;
    let (_, org) = hub.post_json(Some(&alice), "/api/v1/organizations/", json!({"name": "Org"})).await;
    let members = format!("/api/v1/organizations/{}/members", org["id"]);
    hub.post_json(Some(&alice), &members, json!({"user_id": bob.id})).await;
    hub.send_json(Method::DELETE, Some(&alice), &format!("{members}/{}", bob.id), json!({})).await;

    let mut kinds = Vec::new();
    while let Ok(event) = events.try_recv() {
        kinds.push(event.kind.clone());
    }
    assert_eq!(
        kinds,
        [
            "user.registered",
            "user.registered",
            "endpoint.created",
            "endpoint.starred",
            "endpoint.unstarred",
            "endpoint.updated",
            "endpoint.deleted",
            "org.created",
            "org.member_added",
            "org.member_removed",
        ]
    );
}

/// Many creates at once by one owner, each reading (free slugs) before it writes: every one
/// succeeds with its own slug. On SQLite a transaction that read first and wrote later failed
/// with SQLITE_BUSY_SNAPSHOT (a 500) when another writer committed in between; on PostgreSQL
/// two creates could pick the same free slug.
async fn concurrent_creates_all_succeed(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let alice = hub.register("alice").await;
    let creates = (0..24)
        .map(|_| hub.post_json(Some(&alice), "/api/v1/endpoints", json!({"name": "Same Name", "type": "model"})));
    let answers = futures_util::future::join_all(creates).await;
    let mut slugs: Vec<String> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 201, "{body}");
            body["slug"].as_str().unwrap().to_owned()
        })
        .collect();
    slugs.sort();
    slugs.dedup();
    assert_eq!(slugs.len(), 24, "{slugs:?}");
    let (_, mine) = hub.get_json(Some(&alice), "/api/v1/endpoints?limit=100").await;
    assert_eq!(mine.as_array().unwrap().len(), 24);
}
