//! Service-level tests of the stars plugin: the service over a real hub database, the real
//! registry and the host's real accounts, without HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::json;
use thub_organizations::OrganizationService;
use thub_plugin_sdk::{AccountDirectory, AccountHooks, Principal};
use thub_registry::{RegistryConfig, RegistryError, RegistryService};
use thub_stars::{StarsError, StarsService};
use thub_tests::{Backend, Session, TestHub};

struct Fixture {
    hub: TestHub,
    stars: StarsService,
}

impl Fixture {
    async fn new() -> Self {
        // The service below is built beside the hub's own registry, whose listing cache hears
        // of its stars only through the bus: read the pages uncached.
        let hub = TestHub::start_with(Backend::Sqlite, |config| {
            config.plugins.set_key("registry", "listing_cache_seconds", json!(0));
        })
        .await;
        let accounts = hub.hub.accounts.clone() as Arc<dyn AccountDirectory>;
        let (db, events, clock) = (hub.hub.db.clone(), hub.hub.events.clone(), hub.hub.clock.clone());
        let organizations =
            Arc::new(OrganizationService::new(db.clone(), accounts.clone(), events.clone(), clock.clone()));
        let registry = Arc::new(RegistryService::new(
            db.clone(),
            accounts,
            organizations,
            events.clone(),
            clock.clone(),
            RegistryConfig::default(),
        ));
        let stars = StarsService::new(db, registry, events, clock);
        Self { hub, stars }
    }

    async fn principal(&self, session: &Session) -> Principal {
        self.hub.hub.accounts.authenticate_token(&session.access, None).await.unwrap()
    }

    async fn count(&self, owner: &str, slug: &str) -> i64 {
        self.hub.get_json(None, &format!("/{owner}/{slug}")).await.1["stars_count"].as_i64().unwrap()
    }
}

#[tokio::test]
async fn starring_is_idempotent_both_ways_and_moves_the_count() {
    let fixture = Fixture::new().await;
    let alice = fixture.hub.register("alice").await;
    let bob = fixture.hub.register("bob").await;
    let endpoint =
        fixture.hub.endpoint(&alice, json!({"name": "Model", "type": "model", "visibility": "public"})).await;
    let id = endpoint["id"].as_i64().unwrap();
    let bob = fixture.principal(&bob).await;

    assert!(fixture.stars.star(&bob, id).await.unwrap(), "the first star counts");
    assert!(!fixture.stars.star(&bob, id).await.unwrap(), "the second is harmless");
    assert!(fixture.stars.starred(&bob, id).await.unwrap());
    assert_eq!(fixture.count("alice", "model").await, 1);
    assert!(fixture.stars.unstar(&bob, id).await.unwrap());
    assert!(!fixture.stars.unstar(&bob, id).await.unwrap());
    assert_eq!(fixture.count("alice", "model").await, 0);
}

#[tokio::test]
async fn what_the_caller_may_not_see_cannot_be_starred() {
    let fixture = Fixture::new().await;
    let alice = fixture.hub.register("alice").await;
    let bob = fixture.principal(&fixture.hub.register("bob").await).await;
    let private =
        fixture.hub.endpoint(&alice, json!({"name": "Secret", "type": "model", "visibility": "private"})).await;
    let refused = fixture.stars.star(&bob, private["id"].as_i64().unwrap()).await;
    assert!(matches!(refused, Err(StarsError::Registry(RegistryError::NotFound))), "{refused:?}");
    assert!(matches!(fixture.stars.star(&bob, 999_999).await, Err(StarsError::Registry(RegistryError::NotFound))));
}

#[tokio::test]
async fn a_deleted_user_gives_back_the_stars_they_gave() {
    let fixture = Fixture::new().await;
    let alice = fixture.hub.register("alice").await;
    let bob_session = fixture.hub.register("bob").await;
    let bob = fixture.principal(&bob_session).await;
    let endpoint =
        fixture.hub.endpoint(&alice, json!({"name": "Model", "type": "model", "visibility": "public"})).await;
    fixture.stars.star(&bob, endpoint["id"].as_i64().unwrap()).await.unwrap();
    assert_eq!(fixture.count("alice", "model").await, 1);

    let transaction = sea_orm::TransactionTrait::begin(&fixture.hub.hub.db).await.unwrap();
    fixture.stars.before_user_delete(&transaction, bob.user_id).await.unwrap();
    transaction.commit().await.unwrap();
    assert_eq!(fixture.count("alice", "model").await, 0);
}
