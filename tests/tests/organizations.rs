//! Organizations: creation and slugs, the role matrix, members, the last-owner rule, and the
//! shared owner namespace with usernames.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use poem::http::Method;
use serde_json::json;
use thub_tests::{Backend, TestHub, on_every_backend};

on_every_backend!(organizations_and_members, organization_bad_inputs);

async fn organizations_and_members(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let owner = hub.register("olive").await;
    let admin = hub.register("adam").await;
    let member = hub.register("mia").await;
    let stranger = hub.register("sam").await;
    let site_admin = hub.admin("root").await;

    let (status, org) =
        hub.post_json(Some(&owner), "/api/v1/organizations/", json!({"name": "Auto Slug Organization"})).await;
    assert_eq!(status, 201, "{org}");
    assert_eq!(org["slug"], "auto-slug-organization");
    assert_eq!(org["is_active"], true);
    let id = org["id"].as_i64().unwrap();
    let path = format!("/api/v1/organizations/{id}");

    // The creator is the only member, an owner.
    let (_, members) = hub.get_json(Some(&owner), &format!("{path}/members")).await;
    assert_eq!(members.as_array().unwrap().len(), 1);
    assert_eq!(members[0]["role"], "owner");

    // Adding members: owners and admins may; plain members and strangers may not.
    let hub = &hub;
    let add = |session, user_id: i64, role: &str| {
        let body = json!({"user_id": user_id, "role": role});
        let path = format!("{path}/members");
        async move { hub.post_json(Some(session), &path, body).await }
    };
    assert_eq!(add(&owner, admin.id, "admin").await.0, 201);
    assert_eq!(add(&admin, member.id, "member").await.0, 201);
    assert_eq!(add(&member, stranger.id, "member").await.0, 403);
    assert_eq!(add(&owner, member.id, "member").await.0, 400, "already a member");
    assert_eq!(add(&owner, 9999, "member").await.0, 404, "fixed quirk: unknown user is 404, not 500");

    // Seeing: members and site admins; strangers get 404.
    assert_eq!(hub.get_json(Some(&member), &path).await.0, 200);
    assert_eq!(hub.get_json(Some(&site_admin), &path).await.0, 200);
    assert_eq!(hub.get_json(Some(&stranger), &path).await.0, 404);
    assert_eq!(hub.get_json(None, &path).await.0, 401);
    let (_, mine) = hub.get_json(Some(&member), "/api/v1/organizations/").await;
    assert_eq!(mine[0]["id"], id);
    let (_, owned) = hub.get_json(Some(&member), "/api/v1/organizations/?role=owner").await;
    assert!(owned.as_array().unwrap().is_empty());

    // Updating: owners and admins.
    assert_eq!(hub.send_json(Method::PUT, Some(&member), &path, json!({"name": "X"})).await.0, 403);
    let (status, updated) = hub.send_json(Method::PUT, Some(&admin), &path, json!({"description": "Models"})).await;
    assert_eq!(status, 200);
    assert_eq!(updated["description"], "Models");

    // Roles and the last-owner rule.
    let member_path = |user: i64| format!("{path}/members/{user}");
    assert_eq!(
        hub.send_json(Method::PUT, Some(&owner), &member_path(owner.id), json!({"role": "member"})).await.0,
        400
    );
    let (status, last) = hub.send_json(Method::DELETE, Some(&owner), &member_path(owner.id), json!({})).await;
    assert_eq!(status, 400);
    assert!(last["detail"].as_str().unwrap().contains("last owner"));
    assert_eq!(hub.send_json(Method::PUT, Some(&owner), &member_path(admin.id), json!({"role": "owner"})).await.0, 200);
    // Two owners: either may now step down.
    assert_eq!(hub.send_json(Method::PUT, Some(&admin), &member_path(owner.id), json!({"role": "admin"})).await.0, 200);
    assert_eq!(
        hub.send_json(Method::PUT, Some(&admin), &member_path(member.id), json!({})).await.0,
        200,
        "empty change"
    );
    assert_eq!(
        hub.send_json(Method::PUT, Some(&admin), &member_path(member.id), json!({"role": null})).await.0,
        200,
        "fixed quirk: null role is no change"
    );

    // A member removes themself; strangers cannot remove anyone.
    assert_eq!(hub.send_json(Method::DELETE, Some(&stranger), &member_path(member.id), json!({})).await.0, 404);
    assert_eq!(hub.send_json(Method::DELETE, Some(&member), &member_path(member.id), json!({})).await.0, 204);
    assert_eq!(hub.get_json(Some(&member), &path).await.0, 404);

    // The sole owner of an organization cannot be deleted until it has another owner.
    let (status, refused) =
        hub.send_json(Method::DELETE, Some(&admin), &format!("/api/v1/users/{}", admin.id), json!({})).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("auto-slug-organization"));

    // Deleting: owners only (admins get 403), then it is gone everywhere.
    assert_eq!(hub.send_json(Method::DELETE, Some(&owner), &path, json!({})).await.0, 403, "olive is an admin now");
    assert_eq!(hub.send_json(Method::DELETE, Some(&admin), &path, json!({})).await.0, 204);
    assert_eq!(hub.get_json(Some(&admin), &path).await.0, 404);
    // The owner page is gone, for API clients signed in or not (no file is there either).
    assert_eq!(hub.get_json(Some(&admin), "/auto-slug-organization").await.0, 404);
    assert_eq!(hub.get_json(None, "/auto-slug-organization").await.0, 404);
}

async fn organization_bad_inputs(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let owner = hub.register("olive").await;
    let create = |body| hub.post_json(Some(&owner), "/api/v1/organizations/", body);

    for slug in ["UPPERCASE", "slug-", "-slug", "sl--ug", "ab", &"a".repeat(64), "api", "users"] {
        let (status, body) = create(json!({"name": "X", "slug": slug})).await;
        assert_eq!(status, 422, "{slug}: {body}");
    }
    assert_eq!(create(json!({"name": ""})).await.0, 422);
    assert_eq!(create(json!({"name": "X", "description": "d".repeat(501)})).await.0, 422);
    assert_eq!(create(json!({"slug": "no-name"})).await.0, 422);

    assert_eq!(create(json!({"name": "Acme", "slug": "acme"})).await.0, 201);
    assert_eq!(create(json!({"name": "Acme 2", "slug": "acme"})).await.0, 400, "slug taken");
    // Usernames and organization slugs share /{owner}: neither may take the other's.
    assert_eq!(create(json!({"name": "Olive", "slug": "olive"})).await.0, 400);
    let (_, generated) = create(json!({"name": "Olive"})).await;
    assert_eq!(generated["slug"], "olive-1");
    let (status, body) = hub
        .post_json(None, "/api/v1/auth/register", json!({"username": "acme", "email": "acme@example.com", "full_name": "A", "password": thub_tests::PASSWORD}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["detail"], "Username already exists");

    let (status, _) = hub.get_json(Some(&owner), "/api/v1/organizations/?limit=101").await;
    assert_eq!(status, 422);
    let (status, _) = hub.get_json(Some(&owner), "/api/v1/organizations/?role=emperor").await;
    assert_eq!(status, 422);
    let (status, _) = hub.post_json(Some(&owner), "/api/v1/organizations/1/members", json!({"user_id": "x"})).await;
    assert_eq!(status, 422);
    let (status, _) =
        hub.post_json(Some(&owner), "/api/v1/organizations/1/members", json!({"user_id": 1, "role": "emperor"})).await;
    assert_eq!(status, 422);
}
