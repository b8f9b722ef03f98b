//! Logging: JSON, one event per line, the request id on every line logged while serving a
//! request (from the request span), to stdout.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Installs the global subscriber (`log.filter`, which `RUST_LOG` overrides when the config is
/// loaded). Noisy dependencies are held at `warn`. Calling it twice is harmless.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(format!("{filter},sqlx=warn,sea_orm=warn,hyper=warn,wasmtime=warn"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_span_events(FmtSpan::NONE)
        .with_target(true)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .try_init();
}
