//! `plugin.toml`: what a plugin declares about itself. The operator's grants decide what of it
//! the plugin actually gets.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

/// The API versions this host supports, `(major, minor)`: `0.1.x` and `0.2.x`.
pub const SUPPORTED_APIS: [(u64, u64); 2] = [(0, 1), (0, 2)];
/// The API version the SDK builds against.
pub const CURRENT_API: (u64, u64) = (0, 2);

/// The supported versions, for messages: `0.1.x and 0.2.x`.
pub fn supported() -> String {
    let versions: Vec<String> = SUPPORTED_APIS.iter().map(|(major, minor)| format!("{major}.{minor}.x")).collect();
    versions.join(" and ")
}

/// A plugin manifest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Stable id: lowercase letters, digits and hyphens; the route prefix `/plugins/<id>`.
    pub id: String,
    /// The plugin's own version.
    pub version: String,
    /// The `thub:plugin` API it was built against (`0.1.0`).
    pub api_version: String,
    /// `plugin` (typed, thub-plugin-sdk) or `raw` (JSON in, JSON out).
    #[serde(default = "default_world")]
    pub world: String,
    /// The component file, relative to the manifest.
    #[serde(default = "default_wasm")]
    pub wasm: String,
    /// Expected SHA-256 of the component (hex); checked when present.
    #[serde(default)]
    pub sha256: Option<String>,
    /// One line for the admin list and the OpenAPI document.
    #[serde(default)]
    pub description: String,
    /// Routes served at `/plugins/<id><path>`.
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    /// Call `on-request` before routing every request (needs the `middleware` grant).
    #[serde(default)]
    pub middleware: bool,
    /// Call `on-response` after the handler of every request (API 0.2; needs the `middleware`
    /// grant).
    #[serde(default)]
    pub on_response: bool,
    /// Event kinds delivered to `on-event` (`user.registered`, or a prefix like `endpoint.*`;
    /// needs the `events` grant).
    #[serde(default)]
    pub events: Vec<String>,
    /// Scheduled tasks, called as `run-task(name)`.
    #[serde(default)]
    pub schedule: Vec<TaskSpec>,
    /// Capabilities requested (`kv`, `http`, `emit`, `config`); informational: grants decide.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Hosts outbound HTTP is requested for; informational: grants decide.
    #[serde(default)]
    pub http_hosts: Vec<String>,
    /// Config keys the plugin reads (values come from the operator's grant).
    #[serde(default)]
    pub config_keys: Vec<String>,
}

/// A route: a path (exact, or a prefix ending in `/*`) and its methods.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// `/greet`, or `/files/*` for everything under `/files/`.
    pub path: String,
    /// Methods; default `["GET"]`.
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// Answer anonymous callers too (default: logged-in users only).
    #[serde(default)]
    pub public: bool,
    /// One line for the OpenAPI document.
    #[serde(default)]
    pub summary: String,
}

/// A scheduled task.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Passed to `run-task`.
    pub name: String,
    /// Interval in seconds (at least `wasm.min_schedule_seconds`).
    pub every_seconds: u64,
}

fn default_world() -> String {
    "plugin".to_owned()
}

fn default_wasm() -> String {
    "plugin.wasm".to_owned()
}

fn default_methods() -> Vec<String> {
    vec!["GET".to_owned()]
}

impl Manifest {
    /// Reads and checks `plugin.toml`.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let manifest: Manifest = toml::from_str(&text)
            .map_err(|error| anyhow::anyhow!("{}: {}", path.display(), error.to_string().replace('\n', " ")))?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> anyhow::Result<()> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self.id.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
        anyhow::ensure!(id_ok, "plugin id '{}' must be lowercase letters, digits and hyphens", self.id);
        anyhow::ensure!(
            matches!(self.world.as_str(), "plugin" | "raw"),
            "plugin {}: world must be \"plugin\" or \"raw\"",
            self.id
        );
        let version = parse_version(&self.api_version).with_context(|| {
            format!("plugin {}: api_version '{}' is not MAJOR.MINOR.PATCH", self.id, self.api_version)
        })?;
        anyhow::ensure!(
            SUPPORTED_APIS.contains(&(version.0, version.1)),
            "plugin {} was built for API {}; this host supports {}",
            self.id,
            self.api_version,
            supported()
        );
        let wasm = Path::new(&self.wasm);
        anyhow::ensure!(
            wasm.components().all(|part| matches!(part, std::path::Component::Normal(_))),
            "plugin {}: wasm = '{}' must be a path inside the plugin folder",
            self.id,
            self.wasm
        );
        for route in &self.routes {
            anyhow::ensure!(
                route.path.starts_with('/'),
                "plugin {}: route '{}' must start with '/'",
                self.id,
                route.path
            );
            // Routes are relative to the plugin's own prefix; a full path names someone else's.
            if let Some(owner) = route.path.strip_prefix("/plugins/").map(|rest| rest.split('/').next().unwrap_or("")) {
                anyhow::bail!(
                    "plugin {}: route '{}' belongs to plugin {owner}; routes are relative to /plugins/{}",
                    self.id,
                    route.path,
                    self.id
                );
            }
        }
        Ok(())
    }

    /// The route serving `method path` (path after `/plugins/<id>`), if any.
    pub fn route(&self, method: &str, path: &str) -> Option<&RouteSpec> {
        self.routes.iter().find(|route| {
            let path_matches = match route.path.strip_suffix("/*") {
                Some(prefix) => path == prefix || path.starts_with(&format!("{prefix}/")),
                None => path == route.path,
            };
            path_matches && route.methods.iter().any(|allowed| allowed.eq_ignore_ascii_case(method))
        })
    }

    /// Whether the manifest subscribes to `kind`.
    pub fn wants_event(&self, kind: &str) -> bool {
        self.events.iter().any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => kind.starts_with(prefix),
            None => pattern == kind,
        })
    }
}

/// `MAJOR.MINOR.PATCH` as numbers.
pub fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let mut parts = text.split('.').map(|part| part.parse::<u64>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(extra: &str) -> anyhow::Result<Manifest> {
        let manifest: Manifest =
            toml::from_str(&format!("id = \"hello\"\nversion = \"1.0.0\"\napi_version = \"0.1.0\"\n{extra}"))?;
        manifest.check()?;
        Ok(manifest)
    }

    #[test]
    fn routes_and_events_match() {
        let manifest = manifest("events = [\"user.registered\", \"endpoint.*\"]\n[[routes]]\npath = \"/greet\"\n[[routes]]\npath = \"/files/*\"\nmethods = [\"GET\", \"PUT\"]\n").unwrap();
        assert!(manifest.route("GET", "/greet").is_some());
        assert!(manifest.route("POST", "/greet").is_none());
        assert!(manifest.route("put", "/files/a/b").is_some());
        assert!(manifest.route("GET", "/files").is_some());
        assert!(manifest.route("GET", "/filesystem").is_none());
        assert!(manifest.wants_event("endpoint.created") && manifest.wants_event("user.registered"));
        assert!(!manifest.wants_event("user.deleted"));
    }

    #[test]
    fn bad_manifests_are_refused_with_a_reason() {
        let version = manifest("").map(|_| ()).and_then(|_| {
            let manifest: Manifest = toml::from_str("id = \"x\"\nversion = \"1\"\napi_version = \"0.9.0\"\n")?;
            manifest.check()
        });
        assert!(
            version.unwrap_err().to_string().contains("was built for API 0.9.0; this host supports 0.1.x and 0.2.x")
        );
        assert!(manifest("unknown = 1").is_err());
        let bad_id: Manifest = toml::from_str("id = \"Bad_Id\"\nversion = \"1\"\napi_version = \"0.1.0\"\n").unwrap();
        assert!(bad_id.check().is_err());
    }
}
