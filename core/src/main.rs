//! The `thub` binary: everything lives in the library, so tests drive the same code.

/// jemalloc with background purging (see ARCHITECTURE.md, "Memory"): memory freed after a load
/// goes back to the system within seconds even when the hub then sits idle, which glibc's
/// per-thread arenas do not do.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    thub_core::cli::main()
}
