//! The registry's read caches, all [`ListingCache`]s emptied together:
//! - answers: browse (`/api/v1/endpoints/public`), trending and the JSON owner pages for
//!   anonymous callers, as serialised bodies with their ETag ([`Page`]), so a repeated read costs
//!   neither a query nor a serialisation, and a client that has the body gets `304 Not Modified`;
//! - discoveries: what explore, search and the home page find ([`Discovered`]), the same
//!   for every viewer (public endpoints only), and what an owner's page lists for anonymous
//!   viewers, so the web's pages cost no registry query when repeated;
//! - look-ups: owners by `/{owner}` name and endpoints by owner and slug, whoever asks (who may
//!   see the endpoint is decided after), so an owner or endpoint page does not ask the
//!   database who `/{owner}/{slug}` is, twice (to claim the path, then to answer).
//!
//! Only what is the same for every caller of its kind is kept. Staleness:
//! - on this instance none: every change to the registry (its own writes, stars) empties the
//!   caches right after its commit; a change of an organization (created, edited, suspended,
//!   restored, deleted) or of a user (registered, renamed, deactivated, deleted) empties them
//!   before the next read (`RegistryService::forget_stale` compares the organizations' and the
//!   accounts' change counters); every event on the bus (plugins' too) empties them as it is
//!   delivered;
//! - user changes made by another instance show here as soon as its invalidation arrives
//!   (Redis); other changes made by another instance show here within `[plugins.registry] listing_cache_seconds` (default 2 s,
//!   on the injected clock), the lifetime of an entry.
//!
//! Bounded: each of the four holds at most `listing_cache_bytes` (what its entries [`Weigh`]); past
//! that it is emptied and refills with what is asked next.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use poem::http::{StatusCode, header};
use poem::{IntoResponse, Request, Response};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, payload::Json};
use thub_plugin_sdk::{Clock, EventBus};

use crate::entity::endpoint;

/// A serialised answer and its entity tag.
#[derive(Debug)]
pub struct Page {
    body: Bytes,
    etag: String,
}

/// What an entry costs against its cache's byte budget.
pub trait Weigh {
    /// About how many bytes the entry holds.
    fn bytes(&self) -> usize;
}

impl Weigh for Page {
    fn bytes(&self) -> usize {
        self.body.len()
    }
}

/// A cache of `V`s (see the module documentation).
pub struct ListingCache<V = Page> {
    lifetime: chrono::Duration,
    max_bytes: usize,
    clock: Arc<dyn Clock>,
    state: Mutex<State<V>>,
}

/// A cached JSON answer of `T`'s schema: the body, or `304` when the client's `If-None-Match`
/// names its tag. Documented as `Json<T>` plus the 304.
pub struct CachedJson<T> {
    page: Arc<Page>,
    not_modified: bool,
    schema: PhantomData<fn() -> T>,
}

struct State<V> {
    /// Bumped whenever the cache is emptied, so a fill that read before a change is dropped.
    generation: u64,
    bytes: usize,
    entries: HashMap<String, (Arc<V>, DateTime<Utc>)>,
}

impl<V> Default for State<V> {
    fn default() -> Self {
        Self { generation: 0, bytes: 0, entries: HashMap::new() }
    }
}

impl Page {
    /// `body` with its tag.
    pub fn new(body: Vec<u8>) -> Self {
        // A tag from the bytes themselves: every instance gives the same body the same tag.
        let mut hasher = std::hash::DefaultHasher::new();
        body.hash(&mut hasher);
        Self { etag: format!("\"{:016x}-{:x}\"", hasher.finish(), body.len()), body: body.into() }
    }

    /// Whether `request` already holds this page (`If-None-Match` names its tag, or `*`).
    fn matches(&self, request: &Request) -> bool {
        let Some(tags) = request.headers().get(header::IF_NONE_MATCH).and_then(|value| value.to_str().ok()) else {
            return false;
        };
        tags.split(',').map(str::trim).any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == self.etag)
    }

    /// The answer to `request`: the body with its tag, or 304.
    pub fn respond(&self, request: &Request) -> Response {
        if self.matches(request) {
            return Response::builder().status(StatusCode::NOT_MODIFIED).header(header::ETAG, &self.etag).finish();
        }
        Response::builder().content_type("application/json").header(header::ETAG, &self.etag).body(self.body.clone())
    }
}

impl<V: Weigh + Send + Sync + 'static> ListingCache<V> {
    /// Entries live `seconds` (0: nothing is cached); at most `max_bytes` of them.
    pub fn new(seconds: u64, max_bytes: usize, clock: Arc<dyn Clock>) -> Self {
        Self { lifetime: thub_plugin_sdk::seconds(seconds), max_bytes, clock, state: Mutex::default() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State<V>> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Empties the cache whenever an event is published on `events`, and drops expired entries
    /// every lifetime (at least a second), so a hub at rest holds nothing (until the cache is
    /// gone).
    pub fn follow(self: &Arc<Self>, events: &EventBus) {
        let mut receiver = events.subscribe();
        let cache: Weak<Self> = Arc::downgrade(self);
        let every = std::time::Duration::from_secs(self.lifetime.num_seconds().max(1).unsigned_abs());
        tokio::spawn(async move {
            let mut sweeps = tokio::time::interval(every);
            loop {
                tokio::select! {
                    received = receiver.recv() => {
                        let Some(cache) = cache.upgrade() else { return };
                        match received {
                            // A lagging receiver missed events: emptying is right either way.
                            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => cache.clear(),
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                        }
                    }
                    _ = sweeps.tick() => {
                        let Some(cache) = cache.upgrade() else { return };
                        cache.drop_expired();
                    }
                }
            }
        });
    }

    /// Drops the entries past their lifetime.
    pub fn drop_expired(&self) {
        let now = self.clock.now();
        let mut state = self.state();
        let mut bytes = state.bytes;
        state.entries.retain(|key, (entry, expires)| {
            let keep = *expires > now;
            if !keep {
                bytes -= entry.bytes() + key.len();
            }
            keep
        });
        state.bytes = bytes;
    }

    /// Forgets every entry: something they may show changed.
    pub fn clear(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.bytes = 0;
        state.entries.clear();
    }

    /// The entry under `key`, from the cache or made by `make` (whose error is passed on).
    pub async fn fetch<E>(&self, key: String, make: impl AsyncFnOnce() -> Result<V, E>) -> Result<Arc<V>, E> {
        if self.lifetime <= chrono::Duration::zero() {
            return Ok(Arc::new(make().await?));
        }
        let generation = {
            let now = self.clock.now();
            let state = self.state();
            if let Some((entry, expires)) = state.entries.get(&key)
                && *expires > now
            {
                return Ok(entry.clone());
            }
            state.generation
        };
        // The lifetime counts from before the read, so no entry outlives it by a slow query.
        let expires = self.clock.now() + self.lifetime;
        let entry = Arc::new(make().await?);
        // Keys count too: they come from callers (a search's words, a tag).
        let bytes = entry.bytes() + key.len();
        let mut state = self.state();
        if state.generation == generation && bytes <= self.max_bytes {
            if state.bytes + bytes > self.max_bytes {
                state.entries.clear();
                state.bytes = 0;
            }
            state.bytes += bytes;
            let key_bytes = key.len();
            if let Some((replaced, _)) = state.entries.insert(key, (entry.clone(), expires)) {
                state.bytes -= replaced.bytes() + key_bytes;
            }
        }
        Ok(entry)
    }

    /// Whether a fresh entry is held under `key`.
    pub fn holds(&self, key: &str) -> bool {
        let now = self.clock.now();
        self.state().entries.get(key).is_some_and(|(_, expires)| *expires > now)
    }

    /// How many bytes of entries are held.
    pub fn bytes(&self) -> usize {
        self.state().bytes
    }
}

/// Serialises a value the way poem-openapi's `Json` does.
pub fn to_json_bytes<T: ToJSON>(value: &T) -> Vec<u8> {
    value.to_json().map(|json| json.to_string().into_bytes()).unwrap_or_default()
}

impl<T> CachedJson<T> {
    /// The answer to `request` with `page`.
    pub fn new(page: Arc<Page>, request: &Request) -> Self {
        Self { not_modified: page.matches(request), page, schema: PhantomData }
    }
}

impl<T: Type + ToJSON + Send> IntoResponse for CachedJson<T> {
    fn into_response(self) -> Response {
        if self.not_modified {
            return Response::builder().status(StatusCode::NOT_MODIFIED).header(header::ETAG, &self.page.etag).finish();
        }
        Response::builder()
            .content_type("application/json; charset=utf-8")
            .header(header::ETAG, &self.page.etag)
            .body(self.page.body.clone())
    }
}

impl<T: Type + ToJSON + Send> ApiResponse for CachedJson<T> {
    fn meta() -> MetaResponses {
        let mut meta = Json::<T>::meta();
        meta.responses.push(MetaResponse {
            description: "Not Modified: the `ETag` named in `If-None-Match` is current.",
            status: Some(304),
            status_range: None,
            content: Vec::<MetaMediaType>::new(),
            headers: Vec::new(),
        });
        meta
    }

    fn register(registry: &mut Registry) {
        Json::<T>::register(registry);
    }
}

/// Endpoints as discovery (or an owner's page) found them, with their owners' `/{owner}` names
/// and how many match in all.
#[derive(Debug, Default)]
pub struct Discovered {
    /// The endpoints, in order.
    pub endpoints: Vec<endpoint::Model>,
    /// Each endpoint's relevance in [0, 1], in the same order (search only, else empty).
    pub scores: Vec<f64>,
    /// `/{owner}` name by endpoint id.
    pub owners: HashMap<i64, String>,
    /// How many match (search: counted up to [`crate::search::RANKED_MATCHES`]).
    pub total: u64,
    /// The stars of all that match together (owner listings only, else 0).
    pub stars: i64,
}

impl Weigh for Discovered {
    fn bytes(&self) -> usize {
        self.endpoints.iter().map(model_bytes).sum::<usize>() + 64
    }
}

impl Weigh for Option<endpoint::Model> {
    fn bytes(&self) -> usize {
        self.as_ref().map_or(64, model_bytes)
    }
}

/// About what an endpoint row holds in memory: its text, and a little for the rest and its
/// owner's name.
fn model_bytes(model: &endpoint::Model) -> usize {
    model.name.len()
        + model.slug.len()
        + model.description.len()
        + model.readme.len()
        + model.tags.len()
        + model.contributors.len()
        + model.policies.len()
        + model.connect.len()
        + model.version.len()
        + 256
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use thub_plugin_sdk::ManualClock;

    use super::{ListingCache, Page};

    fn cache(seconds: u64, max_bytes: usize) -> (ListingCache, ManualClock) {
        let clock = ManualClock::new(chrono::Utc::now());
        (ListingCache::new(seconds, max_bytes, Arc::new(clock.clone())), clock)
    }

    async fn page(cache: &ListingCache, key: &str, body: &str) -> String {
        let page =
            cache.fetch(key.to_owned(), async || Ok::<_, ()>(Page::new(body.as_bytes().to_vec()))).await.unwrap();
        String::from_utf8(page.body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn pages_are_kept_for_their_lifetime_and_dropped_on_change() {
        let (cache, clock) = cache(2, 1024);
        assert_eq!(page(&cache, "a", "first").await, "first");
        assert_eq!(page(&cache, "a", "second").await, "first", "kept");
        clock.advance(chrono::Duration::seconds(2));
        assert_eq!(page(&cache, "a", "third").await, "third", "expired");
        cache.clear();
        assert_eq!(page(&cache, "a", "fourth").await, "fourth", "cleared");
    }

    #[tokio::test]
    async fn a_fill_that_raced_a_change_is_not_kept() {
        let (cache, _clock) = cache(60, 1024);
        let raced = cache
            .fetch("a".to_owned(), async || {
                cache.clear();
                Ok::<_, ()>(Page::new(b"read before the change".to_vec()))
            })
            .await
            .unwrap();
        assert_eq!(&raced.body[..], b"read before the change", "the caller still gets its answer");
        assert_eq!(page(&cache, "a", "after").await, "after");
    }

    #[tokio::test]
    async fn the_cache_holds_at_most_its_bytes() {
        let (cache, _clock) = cache(60, 100);
        for index in 0..50 {
            page(&cache, &format!("key{index}"), &"x".repeat(30)).await;
            assert!(cache.bytes() <= 100, "{} bytes held", cache.bytes());
        }
        page(&cache, "huge", &"x".repeat(500)).await;
        assert!(cache.bytes() <= 100);
        assert!(!cache.holds("huge"), "a page larger than the whole cache is not kept");
    }

    #[tokio::test]
    async fn expired_entries_are_dropped() {
        let (cache, clock) = cache(2, 1024);
        page(&cache, "a", "first").await;
        clock.advance(chrono::Duration::seconds(1));
        page(&cache, "b", "second").await;
        cache.drop_expired();
        assert_eq!(cache.bytes(), (1 + 5) + (1 + 6), "nothing has expired yet: two keys and bodies");
        clock.advance(chrono::Duration::seconds(1));
        cache.drop_expired();
        assert!(!cache.holds("a") && cache.holds("b"));
        assert_eq!(cache.bytes(), 1 + 6, "only b's key and body are left");
    }

    #[tokio::test]
    async fn zero_seconds_turns_it_off() {
        let (cache, _clock) = cache(0, 1024);
        assert_eq!(page(&cache, "a", "first").await, "first");
        assert_eq!(page(&cache, "a", "second").await, "second");
    }
}
