//! Host bindings of the `thub:plugin@0.1.0` worlds, generated from `plugin-sdk/wit`. Only the
//! wasm host knows these types.

/// The typed world (`thub:plugin/plugin`).
pub(crate) mod typed {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit",
        world: "plugin",
        imports: { default: async },
        exports: { default: async },
    });
}

/// The one-function JSON world (`thub:plugin/raw`). Its interfaces are the typed world's, so
/// the host implements `log` once.
pub(crate) mod raw {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit",
        world: "raw",
        imports: { default: async },
        exports: { default: async },
        with: {
            "thub:plugin/types": super::typed::thub::plugin::types,
            "thub:plugin/log": super::typed::thub::plugin::log,
        },
    });
}
