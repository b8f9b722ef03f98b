//! The cache of anonymous public listings: browse (`/api/v1/endpoints/public`), trending and
//! the JSON owner pages, as serialised bodies with their ETag, so a repeated read costs neither
//! a query nor a serialisation, and a client that has the body gets `304 Not Modified`.
//!
//! Only answers that are the same for every anonymous caller are kept. Staleness:
//! - on this instance none: every change to the registry (its own writes, stars) empties the
//!   cache right after its commit, and every event on the bus (organizations, deleted users,
//!   plugins) does too;
//! - changes made by another instance, or that no event announces (a renamed user, a suspended
//!   organization), show here within `[plugins.registry] listing_cache_seconds` (default 2 s,
//!   on the injected clock), the lifetime of an entry.
//!
//! Bounded: at most `listing_cache_bytes` of bodies; past that the cache is emptied and refills
//! with what is asked next.

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

/// A serialised answer and its entity tag.
#[derive(Debug)]
pub struct Page {
    body: Bytes,
    etag: String,
}

/// The cache (see the module documentation).
pub struct ListingCache {
    lifetime: chrono::Duration,
    max_bytes: usize,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

/// A cached JSON answer of `T`'s schema: the body, or `304` when the client's `If-None-Match`
/// names its tag. Documented as `Json<T>` plus the 304.
pub struct CachedJson<T> {
    page: Arc<Page>,
    not_modified: bool,
    schema: PhantomData<fn() -> T>,
}

#[derive(Default)]
struct State {
    /// Bumped whenever the cache is emptied, so a fill that read before a change is dropped.
    generation: u64,
    bytes: usize,
    pages: HashMap<String, (Arc<Page>, DateTime<Utc>)>,
}

impl Page {
    fn new(body: Vec<u8>) -> Self {
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

impl ListingCache {
    /// Entries live `seconds` (0: nothing is cached); at most `max_bytes` of bodies.
    pub fn new(seconds: u64, max_bytes: usize, clock: Arc<dyn Clock>) -> Self {
        Self {
            lifetime: chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX / 1000)),
            max_bytes,
            clock,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Empties the cache whenever an event is published on `events` (until the cache is gone).
    pub fn follow(self: &Arc<Self>, events: &EventBus) {
        let mut receiver = events.subscribe();
        let cache: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let received = receiver.recv().await;
                let Some(cache) = cache.upgrade() else { return };
                match received {
                    // A lagging receiver missed events: emptying is right either way.
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => cache.clear(),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    /// Forgets every page: something they may show changed.
    pub fn clear(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.bytes = 0;
        state.pages.clear();
    }

    /// The page under `key`, from the cache or made by `make` (whose error is passed on).
    pub async fn page<E>(&self, key: String, make: impl AsyncFnOnce() -> Result<Vec<u8>, E>) -> Result<Arc<Page>, E> {
        if self.lifetime <= chrono::Duration::zero() {
            return Ok(Arc::new(Page::new(make().await?)));
        }
        let generation = {
            let now = self.clock.now();
            let state = self.state();
            if let Some((page, expires)) = state.pages.get(&key)
                && *expires > now
            {
                return Ok(page.clone());
            }
            state.generation
        };
        let page = Arc::new(Page::new(make().await?));
        let mut state = self.state();
        if state.generation == generation && page.body.len() <= self.max_bytes {
            if state.bytes + page.body.len() > self.max_bytes {
                state.pages.clear();
                state.bytes = 0;
            }
            state.bytes += page.body.len();
            let expires = self.clock.now() + self.lifetime;
            if let Some((replaced, _)) = state.pages.insert(key, (page.clone(), expires)) {
                state.bytes -= replaced.body.len();
            }
        }
        Ok(page)
    }

    /// Whether a fresh page is held under `key`.
    pub fn holds(&self, key: &str) -> bool {
        let now = self.clock.now();
        self.state().pages.get(key).is_some_and(|(_, expires)| *expires > now)
    }

    /// How many bytes of bodies are held.
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use thub_plugin_sdk::ManualClock;

    use super::ListingCache;

    fn cache(seconds: u64, max_bytes: usize) -> (ListingCache, ManualClock) {
        let clock = ManualClock::new(chrono::Utc::now());
        (ListingCache::new(seconds, max_bytes, Arc::new(clock.clone())), clock)
    }

    async fn page(cache: &ListingCache, key: &str, body: &str) -> String {
        let page = cache.page(key.to_owned(), async || Ok::<_, ()>(body.as_bytes().to_vec())).await.unwrap();
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
            .page("a".to_owned(), async || {
                cache.clear();
                Ok::<_, ()>(b"read before the change".to_vec())
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
    async fn zero_seconds_turns_it_off() {
        let (cache, _clock) = cache(0, 1024);
        assert_eq!(page(&cache, "a", "first").await, "first");
        assert_eq!(page(&cache, "a", "second").await, "second");
    }
}
