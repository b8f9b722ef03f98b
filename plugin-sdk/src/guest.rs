//! The guest face: write a thub plugin in Rust for `wasm32-wasip2`.
//!
//! ```ignore
//! use thub_plugin_sdk::guest::{self, Plugin, Request, Response};
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn handle_request(request: Request) -> Result<Response, String> {
//!         Ok(guest::text(200, &format!("hello from {}", request.path)))
//!     }
//! }
//!
//! thub_plugin_sdk::export_plugin!(Hello);
//! ```
//!
//! Every hook has a default, so a plugin implements only what its manifest declares. Host
//! functions are re-exported as plain modules: [`log`], [`kv`], [`config`], [`http`], [`hub`],
//! [`users`] and [`registry`] (the last two new in API 0.2).

#![allow(missing_docs)]

wit_bindgen::generate!({
    path: "wit",
    world: "plugin",
    pub_export_macro: true,
    export_macro_name: "__export_plugin_world",
    default_bindings_module: "thub_plugin_sdk::guest",
});

pub use exports::thub::plugin::hooks::Guest as Hooks;
pub use thub::plugin::types::{Event, Header, Level, Principal, Request, Response, Verdict};
pub use thub::plugin::{config, http, hub, kv, log, registry, users};

/// A thub plugin. Implement the hooks your manifest declares; the rest answer harmlessly.
pub trait Plugin {
    /// A request to one of the manifest's routes (`/plugins/<id>/...`).
    fn handle_request(_request: Request) -> Result<Response, String> {
        Ok(text(404, "not found"))
    }

    /// Middleware before routing (when the manifest sets `middleware = true`).
    fn on_request(_request: Request) -> Verdict {
        Verdict::Continue
    }

    /// Middleware after the handler (when the manifest sets `on_response = true`): sees the
    /// request and the response's status and headers, returns headers to set on it.
    fn on_response(_request: Request, _response: Response) -> Vec<Header> {
        Vec::new()
    }

    /// An event the manifest subscribes to. Return `Err` to have it delivered again later.
    fn on_event(_event: Event) -> Result<(), String> {
        Ok(())
    }

    /// A scheduled task from the manifest.
    fn run_task(_name: String) -> Result<(), String> {
        Ok(())
    }
}

/// A response with a `text/plain` body.
pub fn text(status: u16, body: &str) -> Response {
    Response {
        status,
        headers: vec![Header { name: "content-type".to_owned(), value: "text/plain; charset=utf-8".to_owned() }],
        body: body.as_bytes().to_vec(),
    }
}

/// A response with a JSON body (already serialised).
pub fn json(status: u16, body: &str) -> Response {
    Response {
        status,
        headers: vec![Header { name: "content-type".to_owned(), value: "application/json".to_owned() }],
        body: body.as_bytes().to_vec(),
    }
}

/// Logs at `info`.
pub fn info(message: &str) {
    log::log(Level::Info, message);
}

/// Exports a [`Plugin`] implementation as the component's `thub:plugin/hooks`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __ThubExports;

        impl $crate::guest::Hooks for __ThubExports {
            fn handle_request(request: $crate::guest::Request) -> Result<$crate::guest::Response, String> {
                <$plugin as $crate::guest::Plugin>::handle_request(request)
            }
            fn on_request(request: $crate::guest::Request) -> $crate::guest::Verdict {
                <$plugin as $crate::guest::Plugin>::on_request(request)
            }
            fn on_response(
                request: $crate::guest::Request,
                response: $crate::guest::Response,
            ) -> Vec<$crate::guest::Header> {
                <$plugin as $crate::guest::Plugin>::on_response(request, response)
            }
            fn on_event(event: $crate::guest::Event) -> Result<(), String> {
                <$plugin as $crate::guest::Plugin>::on_event(event)
            }
            fn run_task(name: String) -> Result<(), String> {
                <$plugin as $crate::guest::Plugin>::run_task(name)
            }
        }

        $crate::guest::__export_plugin_world!(__ThubExports with_types_in $crate::guest);
    };
}
