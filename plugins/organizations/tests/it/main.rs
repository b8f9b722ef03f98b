//! Service-level tests of the organizations plugin: the service over a real hub database and
//! the host's real accounts, without HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use thub_organizations::{NewOrganization, OrgRole, OrganizationService, OrganizationsError};
use thub_plugin_sdk::{AccountDirectory, AccountHooks, HookError, Principal};
use thub_tests::{Backend, TestHub};

struct Fixture {
    hub: TestHub,
    service: OrganizationService,
}

impl Fixture {
    async fn new() -> Self {
        let hub = TestHub::start(Backend::Sqlite).await;
        let service = OrganizationService::new(
            hub.hub.db.clone(),
            hub.hub.accounts.clone() as Arc<dyn AccountDirectory>,
            hub.hub.events.clone(),
            hub.hub.clock.clone(),
        );
        Self { hub, service }
    }

    async fn user(&self, name: &str) -> Principal {
        let session = self.hub.register(name).await;
        self.hub.hub.accounts.authenticate_token(&session.access, None).await.unwrap()
    }

    async fn organization(&self, owner: &Principal, name: &str) -> i64 {
        let new = NewOrganization { name: name.to_owned(), slug: None, description: None, avatar_url: None };
        self.service.create(owner, new).await.unwrap().id
    }
}

#[tokio::test]
async fn the_creator_owns_it_and_slugs_share_the_username_namespace() {
    let fixture = Fixture::new().await;
    let alice = fixture.user("alice").await;
    let id = fixture.organization(&alice, "Acme Labs").await;
    assert_eq!(fixture.service.role_of(id, alice.user_id).await.unwrap(), Some(OrgRole::Owner));
    let summary = fixture.service.by_slug("ACME-LABS").await.unwrap().expect("found by slug, any case");
    assert_eq!((summary.id, summary.name.as_str(), summary.is_active), (id, "Acme Labs", true));

    // A username is not available as a slug, and a slug is not available as a username.
    let taken = NewOrganization {
        name: "Alice".to_owned(),
        slug: Some("alice".to_owned()),
        description: None,
        avatar_url: None,
    };
    assert!(matches!(fixture.service.create(&alice, taken).await, Err(OrganizationsError::SlugTaken)));
    assert!(fixture.service.name_taken("acme-labs").await.unwrap());
    assert!(!fixture.service.name_taken("nobody").await.unwrap());
}

#[tokio::test]
async fn members_roles_and_the_last_owner_rule() {
    let fixture = Fixture::new().await;
    let (alice, bob, carol) = (fixture.user("alice").await, fixture.user("bob").await, fixture.user("carol").await);
    let id = fixture.organization(&alice, "Acme").await;

    fixture.service.add_member(&alice, id, bob.user_id, OrgRole::Member).await.unwrap();
    let again = fixture.service.add_member(&alice, id, bob.user_id, OrgRole::Member).await;
    assert!(matches!(again, Err(OrganizationsError::AlreadyMember)));
    // A plain member manages nobody.
    let by_member = fixture.service.add_member(&bob, id, carol.user_id, OrgRole::Member).await;
    assert!(matches!(by_member, Err(OrganizationsError::NotAdmin)));
    // A stranger does not even see the organization.
    assert!(matches!(fixture.service.get(&carol, id).await, Err(OrganizationsError::NotFound)));

    // The only owner can neither step down nor leave.
    let demoted = fixture.service.change_role(&alice, id, alice.user_id, Some(OrgRole::Member)).await;
    assert!(matches!(demoted, Err(OrganizationsError::LastOwner)));
    let left = fixture.service.remove_member(&alice, id, alice.user_id).await;
    assert!(matches!(left, Err(OrganizationsError::LastOwner)));
    // With a second owner, the first may step down.
    fixture.service.change_role(&alice, id, bob.user_id, Some(OrgRole::Owner)).await.unwrap();
    fixture.service.change_role(&alice, id, alice.user_id, Some(OrgRole::Member)).await.unwrap();
    assert_eq!(fixture.service.role_of(id, alice.user_id).await.unwrap(), Some(OrgRole::Member));
}

#[tokio::test]
async fn deleting_the_last_owner_is_refused_with_a_reason_and_changes_nothing() {
    let fixture = Fixture::new().await;
    let alice = fixture.user("alice").await;
    let id = fixture.organization(&alice, "Acme").await;

    let user = fixture.hub.hub.accounts.user(alice.user_id).await.unwrap();
    let refused = fixture.hub.hub.accounts.remove_user(user).await.expect_err("the last owner stays");
    assert!(refused.to_string().contains("'acme'"), "{refused}");
    // The hook itself says why, with a stable code.
    let transaction = sea_orm::TransactionTrait::begin(&fixture.hub.hub.db).await.unwrap();
    match fixture.service.before_user_delete(&transaction, alice.user_id).await {
        Err(HookError::Refused { code, .. }) => assert_eq!(code, "organizations.user_is_last_owner"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    drop(transaction);
    assert!(fixture.hub.hub.accounts.user(alice.user_id).await.is_ok(), "the user is still there");
    assert_eq!(fixture.service.role_of(id, alice.user_id).await.unwrap(), Some(OrgRole::Owner));
}
