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
