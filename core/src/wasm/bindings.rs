//! Host bindings of the `thub:plugin` worlds, generated from the SDK's WIT: 0.2.0
//! (`plugin-sdk/wit`) and 0.1.0 (`plugin-sdk/wit-0.1`, kept so plugins built for it still load).
//! Only the wasm host knows these types.

/// The 0.1 typed world (`thub:plugin/plugin@0.1.0`); the host works in its types.
pub(crate) mod typed {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit-0.1",
        world: "plugin",
        imports: { default: async },
        exports: { default: async },
    });
}

/// The 0.2 typed world (`thub:plugin/plugin@0.2.0`): adds `on-response`, `users` and
/// `registry`.
pub(crate) mod typed_v2 {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit",
        world: "plugin",
        imports: { default: async },
        exports: { default: async },
    });
}

/// The one-function JSON world (`thub:plugin/raw@0.1.0`). Its interfaces are the typed world's,
/// so the host implements `log` once.
pub(crate) mod raw {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit-0.1",
        world: "raw",
        imports: { default: async },
        exports: { default: async },
        with: {
            "thub:plugin/types": super::typed::thub::plugin::types,
            "thub:plugin/log": super::typed::thub::plugin::log,
        },
    });
}

/// An event as stored in the outbox and handed to raw plugins.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredEvent {
    pub(crate) kind: String,
    pub(crate) id: String,
    pub(crate) occurred_at_ms: u64,
    pub(crate) data: serde_json::Value,
}

impl From<StoredEvent> for typed::thub::plugin::types::Event {
    fn from(stored: StoredEvent) -> Self {
        Self {
            kind: stored.kind,
            id: stored.id,
            occurred_at_ms: stored.occurred_at_ms,
            data_json: stored.data.to_string(),
        }
    }
}

impl From<&typed::thub::plugin::types::Event> for StoredEvent {
    fn from(event: &typed::thub::plugin::types::Event) -> Self {
        Self {
            kind: event.kind.clone(),
            id: event.id.clone(),
            occurred_at_ms: event.occurred_at_ms,
            // The host wrote `data_json` from a JSON value; it parses.
            data: serde_json::from_str(&event.data_json).unwrap_or(serde_json::Value::Null),
        }
    }
}
