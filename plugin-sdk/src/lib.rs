//! Everything a thub plugin may touch.
//!
//! Built-in plugins (native, linked into the `thub` binary) implement [`Plugin`]: a stable id, a
//! typed `[plugins.<id>]` config section, an OpenAPI type, and a build step that receives a
//! [`PluginContext`] (database, accounts, event bus, shared services of other plugins).
//! Handlers authenticate with the [`CurrentUser`] / [`MaybeUser`] extractors and fail with
//! [`ApiError`], the one error shape of the HTTP boundary.
//!
//! The WebAssembly guest face (WIT bindings and an export macro for `wasm32-wasip2`) is added by
//! the plugin-runtime work; see `README.md` for the compatibility table.
#![warn(missing_docs)]

mod auth;
mod broker;
mod clock;
mod error;
mod events;
pub mod html;
mod plugin;
mod responses;
pub mod slug;

pub use auth::{
    AccountDirectory, AccountHookList, AccountHooks, AdminUser, AuthMethod, Authenticator, CurrentUser, MaybeUser,
    Principal, Role, UserSummary,
};
pub use broker::{Broker, BrokerMessage};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{ApiError, ErrorBody, FieldError, InternalErrorReport, current_request_id, with_request_id};
pub use events::{Event, EventBus};
pub use plugin::{Fallback, Mount, Plugin, PluginContext, PluginError, PluginSection};
pub use responses::{NoContent, default_limit, default_skip, page};

/// Re-exports so plugins name the same versions of poem and poem-openapi as the host.
pub use poem;
pub use poem_openapi;
pub use sea_orm;
