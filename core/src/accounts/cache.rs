//! The authentication cache: what the request path needs to accept a credential (a session
//! known unrevoked, an active API token, the user row behind either), kept in this process so
//! an authenticated request costs no database round trip.
//!
//! The rules that keep it from ever accepting a revoked credential:
//! - Only "valid when read" is cached, never an absence or a refusal.
//! - Every change that could make an entry wrong (logout and every other session revocation,
//!   API-token revocation, password change, deactivation, role or profile change, deletion)
//!   invalidates it here right after its commit and, with Redis, on every other instance through
//!   the `auth:invalidate` channel (`Accounts::invalidate`).
//! - With Redis, the cache is used only while this instance's subscription to that channel is
//!   live: until it is first established and from the moment it is lost, requests go to the
//!   database; when it is established again the cache starts empty, since messages may have
//!   been missed meanwhile. Redis being flushed loses no message (nothing of this lives in
//!   keys), and a restart drops the subscription, so it is the same case as a loss.
//! - A fill races with invalidations: it carries the generation read before its database
//!   lookup and is dropped if any invalidation (or loss) came in between, so an entry read
//!   before a revocation committed is never stored after the revocation was applied.
//! - Bounded: an entry lives at most `auth.cache_seconds` (on the injected clock), and each map
//!   holds at most `auth.cache_entries`. The lifetime is also the bound on staleness where no
//!   message can arrive: a change made by another process without Redis (a second instance, a
//!   `thub passwd` run beside the server) or by an instance that could not reach Redis when it
//!   published. `cache_seconds = 0` turns the cache off.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use thub_plugin_sdk::{AuthMethod, Clock, Principal, Role};

use super::entity::{api_token, user};
use crate::shared::InvalidationFollower;

/// One change that may make cached entries wrong; what travels between instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Invalidation {
    /// A session was revoked.
    Session(String),
    /// A user row changed or was deleted.
    User(i64),
    /// An API token was revoked.
    ApiToken(i64),
}

/// What the cache knows of an active API token.
#[derive(Debug, Clone)]
pub(crate) struct CachedToken {
    pub(crate) id: i64,
    pub(crate) user_id: i64,
    pub(crate) expires_at: Option<DateTime<Utc>>,
    pub(crate) last_used_at: Option<DateTime<Utc>>,
}

/// Permission to store what a lookup found: the generation seen before the lookup.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

/// The cache (see the module documentation for its rules).
pub(crate) struct AuthCache {
    lifetime: chrono::Duration,
    capacity: usize,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    /// Users added or changed, here or announced by another instance (see
    /// [`AuthCache::user_changes`]).
    user_changes: AtomicU64,
}

struct State {
    /// Whether entries may be used: always without Redis, while subscribed with it.
    live: bool,
    /// Bumped by every invalidation and by every change of `live`.
    generation: u64,
    /// Session id → its user, for sessions known unrevoked.
    sessions: HashMap<String, Entry<i64>>,
    /// SHA-256 of an API token → the active token.
    tokens: HashMap<String, Entry<CachedToken>>,
    users: HashMap<i64, Entry<Arc<user::Model>>>,
}

struct Entry<T> {
    value: T,
    expires: DateTime<Utc>,
}

impl Invalidation {
    /// The message form: `session:<id>`, `user:<id>`, `api_token:<id>`.
    pub(crate) fn encode(&self) -> String {
        match self {
            Invalidation::Session(id) => format!("session:{id}"),
            Invalidation::User(id) => format!("user:{id}"),
            Invalidation::ApiToken(id) => format!("api_token:{id}"),
        }
    }

    /// Reads a message; `None` for anything else.
    pub(crate) fn decode(message: &str) -> Option<Self> {
        let (kind, id) = message.split_once(':')?;
        match kind {
            "session" => Some(Invalidation::Session(id.to_owned())),
            "user" => id.parse().ok().map(Invalidation::User),
            "api_token" => id.parse().ok().map(Invalidation::ApiToken),
            _ => None,
        }
    }
}

impl CachedToken {
    pub(crate) fn new(row: &api_token::Model) -> Self {
        Self { id: row.id, user_id: row.user_id, expires_at: row.expires_at, last_used_at: row.last_used_at }
    }
}

impl AuthCache {
    /// A cache of entries living `seconds` (0: off), at most `capacity` per map. `live` is
    /// false when a Redis subscription must confirm it first.
    pub(crate) fn new(seconds: u64, capacity: usize, clock: Arc<dyn Clock>, live: bool) -> Self {
        Self {
            lifetime: thub_plugin_sdk::seconds(seconds),
            capacity: capacity.max(1),
            clock,
            state: Mutex::new(State {
                live,
                generation: 0,
                sessions: HashMap::new(),
                tokens: HashMap::new(),
                users: HashMap::new(),
            }),
            user_changes: AtomicU64::new(0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn enabled(&self) -> bool {
        self.lifetime > chrono::Duration::zero()
    }

    /// The state and the time, when entries may be read (the cache is on and, with Redis, its
    /// subscription is live).
    fn readable(&self) -> Option<(std::sync::MutexGuard<'_, State>, DateTime<Utc>)> {
        if !self.enabled() {
            return None;
        }
        let now = self.clock.now();
        let state = self.state();
        state.live.then_some((state, now))
    }

    /// The principal of session `session_id` of `user_id`, if both are cached and fresh.
    pub(crate) fn session(&self, session_id: &str, user_id: i64) -> Option<Principal> {
        let (state, now) = self.readable()?;
        let owner = state.sessions.get(session_id).filter(|entry| entry.expires > now)?;
        if owner.value != user_id {
            return None;
        }
        let user = state.users.get(&user_id).filter(|entry| entry.expires > now)?;
        Some(principal_of(&user.value, AuthMethod::Session { session_id: session_id.to_owned() }))
    }

    /// The active token with this hash and its owner, if both are cached and fresh.
    pub(crate) fn api_token(&self, hash: &str) -> Option<(CachedToken, Arc<user::Model>)> {
        let (state, now) = self.readable()?;
        let token = state.tokens.get(hash).filter(|entry| entry.expires > now)?;
        let user = state.users.get(&token.value.user_id).filter(|entry| entry.expires > now)?;
        Some((token.value.clone(), user.value.clone()))
    }

    /// The user row, if cached and fresh.
    pub(crate) fn user(&self, user_id: i64) -> Option<Arc<user::Model>> {
        let (state, now) = self.readable()?;
        state.users.get(&user_id).filter(|entry| entry.expires > now).map(|entry| entry.value.clone())
    }

    /// Taken before a database lookup whose result may be stored; `None` when nothing may be.
    pub(crate) fn ticket(&self) -> Option<Ticket> {
        if !self.enabled() {
            return None;
        }
        let state = self.state();
        state.live.then_some(Ticket(state.generation))
    }

    /// Stores that session `session_id` of `user` was found unrevoked.
    pub(crate) fn fill_session(&self, ticket: Option<Ticket>, session_id: &str, user: &user::Model) {
        self.fill(ticket, |state, fill| {
            insert_bounded(
                &mut state.sessions,
                session_id.to_owned(),
                Entry { value: user.id, expires: fill.expires },
                fill,
            );
            insert_bounded(
                &mut state.users,
                user.id,
                Entry { value: Arc::new(user.clone()), expires: fill.expires },
                fill,
            );
        });
    }

    /// Stores an active API token (by its hash) and its owner.
    pub(crate) fn fill_api_token(&self, ticket: Option<Ticket>, hash: &str, token: CachedToken, user: &user::Model) {
        self.fill(ticket, |state, fill| {
            insert_bounded(&mut state.tokens, hash.to_owned(), Entry { value: token, expires: fill.expires }, fill);
            insert_bounded(
                &mut state.users,
                user.id,
                Entry { value: Arc::new(user.clone()), expires: fill.expires },
                fill,
            );
        });
    }

    /// Stores a user row.
    pub(crate) fn fill_user(&self, ticket: Option<Ticket>, user: &user::Model) {
        self.fill(ticket, |state, fill| {
            insert_bounded(
                &mut state.users,
                user.id,
                Entry { value: Arc::new(user.clone()), expires: fill.expires },
                fill,
            );
        });
    }

    fn fill(&self, ticket: Option<Ticket>, store: impl FnOnce(&mut State, &Fill)) {
        let Some(Ticket(generation)) = ticket else { return };
        let now = self.clock.now();
        let fill = Fill { now, expires: now + self.lifetime, capacity: self.capacity };
        let mut state = self.state();
        if state.live && state.generation == generation {
            store(&mut state, &fill);
        }
    }

    /// Records a token's new last-used time, so the next write is a minute away here too.
    pub(crate) fn token_used(&self, hash: &str, at: DateTime<Utc>) {
        if let Some(entry) = self.state().tokens.get_mut(hash) {
            entry.value.last_used_at = Some(at);
        }
    }

    /// How many users were added or changed (renamed, deactivated, deleted, new role or
    /// password) since start, on this instance or announced by another: readers that cache what
    /// users look like compare it to know theirs is stale.
    pub(crate) fn user_changes(&self) -> u64 {
        self.user_changes.load(Ordering::SeqCst)
    }

    /// Counts a user added or changed (see [`AuthCache::user_changes`]).
    pub(crate) fn note_user_change(&self) {
        self.user_changes.fetch_add(1, Ordering::SeqCst);
    }

    /// Forgets what `change` may have made wrong, and drops fills in flight.
    pub(crate) fn invalidate(&self, change: &Invalidation) {
        if matches!(change, Invalidation::User(_)) {
            self.note_user_change();
        }
        let mut state = self.state();
        state.generation += 1;
        match change {
            Invalidation::Session(id) => {
                state.sessions.remove(id);
            }
            Invalidation::User(id) => {
                state.users.remove(id);
            }
            Invalidation::ApiToken(id) => state.tokens.retain(|_, entry| entry.value.id != *id),
        }
    }

    /// Whether entries may be used; any change empties the cache (while not live, messages may
    /// be missed, so nothing known before can be trusted after).
    pub(crate) fn set_live(&self, live: bool) {
        let mut state = self.state();
        state.live = live;
        state.generation += 1;
        state.sessions.clear();
        state.tokens.clear();
        state.users.clear();
    }

    /// Whether entries are used now.
    pub(crate) fn is_live(&self) -> bool {
        self.enabled() && self.state().live
    }

    /// How many entries are held (sessions, tokens, users).
    pub(crate) fn len(&self) -> usize {
        let state = self.state();
        state.sessions.len() + state.tokens.len() + state.users.len()
    }
}

impl InvalidationFollower for AuthCache {
    fn live(&self, live: bool) {
        self.set_live(live);
    }

    fn message(&self, message: &str) {
        match Invalidation::decode(message) {
            Some(change) => self.invalidate(&change),
            None => tracing::warn!("unknown message on the invalidation channel; ignored"),
        }
    }
}

/// The principal of a cached user row, without copying the row.
pub(crate) fn principal_of(user: &user::Model, method: AuthMethod) -> Principal {
    Principal {
        user_id: user.id,
        role: Role::parse(&user.role).unwrap_or(Role::Guest),
        username: user.username.clone(),
        email: user.email.clone(),
        is_active: user.is_active,
        method,
    }
}

/// When and how a fill stores.
struct Fill {
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
    capacity: usize,
}

/// Inserts into a map held to `capacity`: when full, expired entries go first, and if the map
/// is still over three quarters full it is emptied, so a burst of new credentials costs one
/// sweep per quarter of the capacity rather than one per insert.
fn insert_bounded<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, Entry<V>>, key: K, entry: Entry<V>, fill: &Fill) {
    if map.len() >= fill.capacity && !map.contains_key(&key) {
        map.retain(|_, held| held.expires > fill.now);
        if map.len() >= fill.capacity / 4 * 3 {
            map.clear();
        }
    }
    map.insert(key, entry);
}
