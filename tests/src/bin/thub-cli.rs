//! The `thub` command, built with this package so the process tests run the binary of this very
//! build (`CARGO_BIN_EXE_thub-cli`), never a stale one left in the target folder.

fn main() -> std::process::ExitCode {
    thub_core::cli::main()
}
