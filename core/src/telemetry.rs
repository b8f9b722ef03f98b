//! Logging: JSON, one event per line, the request id on every line logged while serving a
//! request (from the request span), to stdout through a non-blocking writer: a background
//! thread does the writing, so a slow terminal or log collector never holds up a request.

use std::sync::Mutex;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Lines queued for the writer thread at most. A full queue makes the logging call wait
/// rather than drop the line: audit events must not be lost.
const QUEUED_LINES: usize = 64 * 1024;

/// The writer thread's guard; [`flush`] drops it so queued lines reach stdout before exit.
static WRITER: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// Installs the global subscriber (`log.filter`, which `RUST_LOG` overrides when the config is
/// loaded). Noisy dependencies are held at `warn`. Calling it twice is harmless.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(format!("{filter},sqlx=warn,sea_orm=warn,hyper=warn,wasmtime=warn"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let mut writer_slot = WRITER.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if writer_slot.is_some() {
        return;
    }
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(QUEUED_LINES)
        .lossy(false)
        .thread_name("thub-log")
        .finish(std::io::stdout());
    let installed = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_span_events(FmtSpan::NONE)
        .with_target(true)
        .with_env_filter(filter)
        .with_writer(writer)
        .try_init();
    if installed.is_ok() {
        *writer_slot = Some(guard);
    }
}

/// Writes out every queued line (before the process exits).
pub fn flush() {
    drop(WRITER.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take());
}
