//! Everything a thub plugin may touch.
//!
//! **Native face** (built-in plugins, linked into the `thub` binary): implement [`Plugin`]: a
//! stable id, a typed `[plugins.<id>]` config section, an OpenAPI type, and a build step that
//! receives a [`PluginContext`] (database, accounts, event bus, shared services of other
//! plugins). Handlers authenticate with the [`CurrentUser`] / [`MaybeUser`] extractors and fail
//! with [`ApiError`], the one error shape of the HTTP boundary.
//!
//! **Guest face** (WebAssembly plugins, `--target wasm32-wasip2`): implement `guest::Plugin`
//! (every hook has a default) and call `export_plugin!(YourType)`. The WIT package
//! `thub:plugin@0.1.0` ships in `wit/`; see `README.md` for the compatibility table.
#![warn(missing_docs)]

/// The `thub:plugin` WIT API version this SDK is built against. A host refuses plugins whose
/// API version it does not support.
pub const API_VERSION: &str = "0.2.0";

#[cfg(not(target_arch = "wasm32"))]
mod account_service;
#[cfg(not(target_arch = "wasm32"))]
mod auth;
#[cfg(not(target_arch = "wasm32"))]
mod broker;
#[cfg(not(target_arch = "wasm32"))]
mod clock;
#[cfg(not(target_arch = "wasm32"))]
mod error;
#[cfg(not(target_arch = "wasm32"))]
mod events;
#[cfg(not(target_arch = "wasm32"))]
pub mod html;
#[cfg(not(target_arch = "wasm32"))]
mod plugin;
#[cfg(not(target_arch = "wasm32"))]
mod plugin_admin;
#[cfg(not(target_arch = "wasm32"))]
mod responses;
#[cfg(not(target_arch = "wasm32"))]
mod secrets;
#[cfg(not(target_arch = "wasm32"))]
pub mod slug;
#[cfg(not(target_arch = "wasm32"))]
pub mod storage;
#[cfg(not(target_arch = "wasm32"))]
pub mod text;

/// What [`declared_string!`] expands to refers to; not part of the API.
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod __private {
    pub use {poem_openapi, serde, serde_json};
}

#[cfg(not(target_arch = "wasm32"))]
pub use account_service::{
    AccountService, ApiTokenSummary, HostAccounts, LoginForm, LoginLook, LoginPage, Profile, Registration,
    SessionCookie, SessionSummary,
};
#[cfg(not(target_arch = "wasm32"))]
pub use auth::{
    AccountDirectory, AccountHookList, AccountHooks, AdminUser, AuthMethod, Authenticator, CurrentUser, HookError,
    MaybeUser, Principal, Role, UserSummary, authenticate, optional_user, require_user, require_user_once,
};
#[cfg(not(target_arch = "wasm32"))]
pub use broker::{Broker, BrokerMessage};
#[cfg(not(target_arch = "wasm32"))]
pub use clock::{Clock, ManualClock, SystemClock, seconds};
#[cfg(not(target_arch = "wasm32"))]
pub use error::{ApiError, ErrorBody, FieldError, InternalErrorReport, current_request_id, with_request_id};
#[cfg(not(target_arch = "wasm32"))]
pub use events::{Event, EventBus, EventOutbox, Recorded};
#[cfg(not(target_arch = "wasm32"))]
pub use plugin::{Fallback, Mount, Plugin, PluginContext, PluginError, PluginSection, PluginSections};
#[cfg(not(target_arch = "wasm32"))]
pub use plugin_admin::{PluginAdmin, PluginAdminSlot, WasmPluginState};
#[cfg(not(target_arch = "wasm32"))]
pub use responses::{
    BoundedList, CLOSED_OBJECT, Count, Declaration, Declared, Limit, MAX_COUNT, NoContent, Required, closed_object,
    default_limit, default_skip, page,
};
#[cfg(not(target_arch = "wasm32"))]
pub use secrets::{expand_secret, serialize_redacted};

/// Re-exports so plugins name the same versions of poem and poem-openapi as the host.
#[cfg(not(target_arch = "wasm32"))]
pub use poem;
#[cfg(not(target_arch = "wasm32"))]
pub use poem_openapi;
#[cfg(not(target_arch = "wasm32"))]
pub use sea_orm;

#[cfg(target_arch = "wasm32")]
pub mod guest;
