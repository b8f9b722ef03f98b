//! The `thub` binary: everything lives in the library, so tests drive the same code.

fn main() -> std::process::ExitCode {
    thub_core::cli::main()
}
