//! `thub plugin new NAME`: a Rust plugin crate that is also a plugin folder. Its `plugin.toml`
//! points at the component cargo builds, so a crate created in the plugins folder is live: a
//! running server loads it on every `cargo build`.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The SDK this binary was built from, when its source is still where it was.
fn bundled_sdk() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
    path.join("Cargo.toml").is_file().then(|| path.canonicalize().ok()).flatten()
}

/// Creates the crate in `folder` (which must not exist). Returns what to tell the user.
pub fn create(folder: &Path, sdk: Option<PathBuf>) -> anyhow::Result<Vec<String>> {
    let id = folder.file_name().and_then(|name| name.to_str()).unwrap_or_default().to_owned();
    anyhow::ensure!(
        !id.is_empty()
            && id.len() <= 64
            && id.starts_with(|first: char| first.is_ascii_lowercase())
            && id.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-'),
        "plugin names are lowercase letters, digits and hyphens, starting with a letter"
    );
    anyhow::ensure!(!folder.exists(), "{} already exists", folder.display());
    let dependency = match sdk.or_else(bundled_sdk) {
        Some(path) => {
            let path = path.canonicalize().with_context(|| format!("no SDK at {}", path.display()))?;
            anyhow::ensure!(path.join("Cargo.toml").is_file(), "{} is not the thub-plugin-sdk crate", path.display());
            format!("{{ path = {:?} }}", path.display().to_string())
        }
        None => format!("\"{}\"", env!("CARGO_PKG_VERSION")),
    };
    let library = id.replace('-', "_");
    let files = [
        ("Cargo.toml", cargo_toml(&id, &dependency)),
        ("plugin.toml", manifest(&id, &library)),
        ("src/lib.rs", LIB_RS.replace("{id}", &id)),
        (".gitignore", "/target\n".to_owned()),
    ];
    for (name, text) in files {
        let path = folder.join(name);
        std::fs::create_dir_all(path.parent().unwrap_or(folder))
            .with_context(|| format!("cannot create {}", folder.display()))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(vec![
        format!("Created the plugin crate {}.", folder.display()),
        "Build it (once: rustup target add wasm32-wasip2):".to_owned(),
        format!("    cd {} && cargo build --release --target wasm32-wasip2", folder.display()),
        "In the plugins folder (thub plugin list shows where), a running server loads every build.".to_owned(),
        format!("Grant what it needs in thub.toml: [wasm.grants.{id}] capabilities = [\"kv\"]"),
    ])
}

fn cargo_toml(id: &str, dependency: &str) -> String {
    format!(
        r#"[package]
name = "{id}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
thub-plugin-sdk = {dependency}

# A workspace of its own, so the crate builds wherever it is created.
[workspace]

[profile.release]
opt-level = "s"
lto = true
strip = true
"#
    )
}

fn manifest(id: &str, library: &str) -> String {
    format!(
        r#"id = "{id}"
version = "0.1.0"
api_version = "{api}"
description = "What {id} does, in one line."
# The component cargo builds; a server watching this folder loads each new build.
wasm = "target/wasm32-wasip2/release/{library}.wasm"
# Requested capabilities; the operator grants them in [wasm.grants.{id}].
capabilities = ["kv"]

[[routes]]
path = "/hello"
summary = "Greets the caller and counts the greetings."
"#,
        api = thub_plugin_sdk::API_VERSION
    )
}

const LIB_RS: &str = r#"//! The `{id}` thub plugin. GET /plugins/{id}/hello greets the caller.

use thub_plugin_sdk::guest::{self, Plugin, Request, Response, kv};

struct Greeter;

impl Plugin for Greeter {
    fn handle_request(request: Request) -> Result<Response, String> {
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/hello") => {
                let count: u64 = kv::get("greetings")
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .and_then(|text| text.parse().ok())
                    .unwrap_or(0)
                    + 1;
                kv::set("greetings", count.to_string().as_bytes())?;
                let who = request.principal.username.unwrap_or_else(|| "stranger".to_owned());
                Ok(guest::text(200, &format!("hello, {who} (greeting #{count})")))
            }
            _ => Ok(guest::text(404, "not found")),
        }
    }
}

thub_plugin_sdk::export_plugin!(Greeter);
"#;
