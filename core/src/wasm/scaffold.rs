//! `thub plugin new NAME [--lang rust|python|js]`: a plugin that is also a plugin folder. Its
//! `plugin.toml` points at the component its build writes, so a plugin created in the plugins
//! folder is live: a running server loads every build. Rust: a crate on thub-plugin-sdk
//! (`cargo build`). Python: `app.py`, the WIT this thub speaks, and a `build` script running
//! componentize-py (which also writes typed stubs of the WIT for editors). JavaScript: `app.js`,
//! the WIT, a `package.json` pinning componentize-js and the same kind of `build` script.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The SDK this binary was built from, when its source is still where it was.
fn bundled_sdk() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
    path.join("Cargo.toml").is_file().then(|| path.canonicalize().ok()).flatten()
}

/// The languages a new plugin can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    /// A Rust crate on thub-plugin-sdk, built for wasm32-wasip2.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with componentize-js (from npm).
    Js,
}

/// Creates the plugin in `folder` (which must not exist). Returns what to tell the user.
pub fn create(folder: &Path, language: Language, sdk: Option<PathBuf>) -> anyhow::Result<Vec<String>> {
    let id = folder.file_name().and_then(|name| name.to_str()).unwrap_or_default().to_owned();
    anyhow::ensure!(
        !id.is_empty()
            && id.len() <= 64
            && id.starts_with(|first: char| first.is_ascii_lowercase())
            && id.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-'),
        "plugin names are lowercase letters, digits and hyphens, starting with a letter"
    );
    anyhow::ensure!(!folder.exists(), "{} already exists", folder.display());
    match language {
        Language::Python => return create_python(folder, &id),
        Language::Js => return create_javascript(folder, &id),
        Language::Rust => {}
    }
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
    write_files(folder, &files)?;
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

/// Writes `files` (relative path, contents) under `folder`.
fn write_files(folder: &Path, files: &[(&str, String)]) -> anyhow::Result<()> {
    for (name, text) in files {
        let path = folder.join(name);
        std::fs::create_dir_all(path.parent().unwrap_or(folder))
            .with_context(|| format!("cannot create {}", folder.display()))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The WIT this thub speaks, shipped in the binary so a Python plugin builds against exactly it.
const PLUGIN_WIT: &str = include_str!("../../../plugin-sdk/wit/plugin.wit");
/// The build script of Python plugins (the example uses the same one).
const PYTHON_BUILD: &str = include_str!("../../../examples/wasm-python/build");

fn create_python(folder: &Path, id: &str) -> anyhow::Result<Vec<String>> {
    let files = [
        ("plugin.toml", script_manifest(id)),
        ("app.py", PYTHON_APP.replace("{id}", id)),
        ("build", PYTHON_BUILD.to_owned()),
        ("wit/plugin.wit", PLUGIN_WIT.to_owned()),
        (".gitignore", "plugin.wasm\n*.partial\nstubs/\n__pycache__/\n".to_owned()),
    ];
    write_files(folder, &files)?;
    make_executable(&folder.join("build"))?;
    Ok(vec![
        format!("Created the Python plugin {}.", folder.display()),
        "Build it (once: python3 -m pip install componentize-py==0.25.1):".to_owned(),
        format!("    cd {} && ./build", folder.display()),
        "It also writes typed stubs of thub's WIT to stubs/ for your editor.".to_owned(),
        "In the plugins folder (thub plugin list shows where), a running server loads every build.".to_owned(),
        format!("Grant what it needs in thub.toml: [wasm.grants.{id}] capabilities = [\"kv\"]"),
    ])
}

/// The build script of JavaScript plugins (the example uses the same one).
const JAVASCRIPT_BUILD: &str = include_str!("../../../examples/wasm-js/build");

fn create_javascript(folder: &Path, id: &str) -> anyhow::Result<Vec<String>> {
    let files = [
        ("plugin.toml", script_manifest(id)),
        ("app.js", JAVASCRIPT_APP.replace("{id}", id)),
        ("package.json", JAVASCRIPT_PACKAGE.replace("{id}", id)),
        ("build", JAVASCRIPT_BUILD.to_owned()),
        ("wit/plugin.wit", PLUGIN_WIT.to_owned()),
        (".gitignore", "node_modules/\nplugin.wasm\n*.partial\n".to_owned()),
    ];
    write_files(folder, &files)?;
    make_executable(&folder.join("build"))?;
    Ok(vec![
        format!("Created the JavaScript plugin {}.", folder.display()),
        "Build it (npm install fetches componentize-js once):".to_owned(),
        format!("    cd {} && npm install && ./build", folder.display()),
        "In the plugins folder (thub plugin list shows where), a running server loads every build.".to_owned(),
        format!("Grant what it needs in thub.toml: [wasm.grants.{id}] capabilities = [\"kv\"]"),
    ])
}

const JAVASCRIPT_PACKAGE: &str = r#"{
  "name": "thub-plugin-{id}",
  "private": true,
  "type": "module",
  "scripts": {
    "build": "./build"
  },
  "devDependencies": {
    "@bytecodealliance/componentize-js": "0.23.0",
    "@bytecodealliance/preview2-shim": "0.25.0"
  }
}
"#;

const JAVASCRIPT_APP: &str = r#"// The `{id}` thub plugin. GET /plugins/{id}/hello greets the caller.
// Built by ./build with componentize-js against wit/plugin.wit (world `plugin`).

import * as kv from 'thub:plugin/kv@0.2.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function text(status, body) {
  return { status, headers: [{ name: 'content-type', value: 'text/plain; charset=utf-8' }], body: encoder.encode(body) };
}

export const hooks = {
  handleRequest(request) {
    if (request.method === 'GET' && request.path === '/hello') {
      const stored = kv.get('greetings');
      const count = (stored === undefined ? 0 : Number(decoder.decode(stored))) + 1;
      kv.set('greetings', encoder.encode(String(count)));
      const who = request.principal.username ?? 'stranger';
      return text(200, `hello, ${who} (greeting #${count})`);
    }
    return text(404, 'not found');
  },
  onRequest(_request) {
    return { tag: 'continue' };
  },
  onResponse(_request, _response) {
    return [];
  },
  onEvent(_event) {},
  runTask(name) {
    throw `no task ${name}`;
  },
};
"#;

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// The manifest of a Python or JavaScript plugin: its build writes `plugin.wasm`.
fn script_manifest(id: &str) -> String {
    format!(
        r#"id = "{id}"
version = "0.1.0"
api_version = "{api}"
description = "What {id} does, in one line."
# The component ./build writes; a server watching this folder loads each new build.
wasm = "plugin.wasm"
# Requested capabilities; the operator grants them in [wasm.grants.{id}].
capabilities = ["kv"]

[[routes]]
path = "/hello"
summary = "Greets the caller and counts the greetings."
"#,
        api = thub_plugin_sdk::API_VERSION
    )
}

const PYTHON_APP: &str = r#""""The `{id}` thub plugin. GET /plugins/{id}/hello greets the caller.

Built by ./build with componentize-py against wit/plugin.wit (world `plugin`); stubs/ holds the
typed bindings (`wit_world`) for your editor.
"""

from typing import List

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import kv, types


def text(status: int, body: str) -> types.Response:
    return types.Response(status, [types.Header("content-type", "text/plain; charset=utf-8")], body.encode())


class Hooks(exports.Hooks):
    def handle_request(self, req: types.Request) -> types.Response:
        if (req.method, req.path) == ("GET", "/hello"):
            stored = kv.get("greetings")
            count = (int(stored.decode()) if stored else 0) + 1
            kv.set("greetings", str(count).encode())
            who = req.principal.username or "stranger"
            return text(200, f"hello, {who} (greeting #{count})")
        return text(404, "not found")

    def on_request(self, req: types.Request) -> types.Verdict:
        return types.Verdict_Continue()

    def on_response(self, req: types.Request, resp: types.Response) -> List[types.Header]:
        return []

    def on_event(self, ev: types.Event) -> None:
        return None

    def run_task(self, name: str) -> None:
        raise Err(f"no task {name}")
"#;
