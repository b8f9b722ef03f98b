//! The thub host: configuration, storage, accounts and the identity provider, the HTTP
//! boundary, the plugin host, and the CLI. See `ARCHITECTURE.md` for the map.

pub mod accounts;
pub mod app;
pub mod audit;
pub mod cli;
pub mod client;
pub mod config;
pub mod http;
pub mod import;
pub mod meta;
pub mod metrics;
pub mod operations;
pub mod plugins;
pub mod project;
pub mod server;
pub mod shared;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod wasm;

pub use app::Hub;
pub use config::Config;
