//! Turning a request path into a file of the hub folder, or refusing. Pure and unit-tested: every
//! trick of Tufts Hub's section 5 is covered here and again over HTTP.

use std::path::{Component, Path, PathBuf};

/// Names never served, at any depth (compared case-insensitively).
const DENIED_NAMES: &[&str] = &["thub.toml", "config.json"];

/// Extensions never served: keys, certificates, databases and their journals.
const DENIED_EXTENSIONS: &[&str] = &[
    "pem",
    "key",
    "crt",
    "cer",
    "der",
    "csr",
    "p12",
    "pfx",
    "jks",
    "keystore",
    "db",
    "sqlite",
    "sqlite3",
    "db-wal",
    "db-shm",
    "db-journal",
    "sqlite-wal",
    "sqlite-shm",
];

/// What a path resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A file to serve.
    File(PathBuf),
    /// A folder with an `index.html`, asked for without the trailing slash: redirect to this
    /// location (with the slash) so relative links work.
    AddSlash(String),
    /// Nothing to serve (missing, hidden, denied, outside).
    NotFound,
}

/// Whether `name` is denied by the built-in list or `extra` (`name` or `*.ext` entries).
pub(crate) fn is_denied(name: &str, extra: &[String]) -> bool {
    let lower = name.to_lowercase();
    if lower.starts_with('.') || DENIED_NAMES.contains(&lower.as_str()) {
        return true;
    }
    let extension_denied = |extension: &str| lower.strip_suffix(extension).is_some_and(|stem| stem.ends_with('.'));
    if DENIED_EXTENSIONS.iter().any(|extension| extension_denied(extension)) {
        return true;
    }
    extra.iter().any(|rule| {
        let rule = rule.to_lowercase();
        match rule.strip_prefix("*.") {
            Some(extension) => extension_denied(extension),
            None => rule == lower,
        }
    })
}

fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes.get(index + 1..index + 3)?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Path prefixes that belong to the hub, never to the site, even when nothing else answered:
/// an unknown API path is a 404, not a login page.
pub(crate) const HUB_PREFIXES: &[&str] = &["/api/", "/.well-known/", "/plugins/", "/proxy/", "/channel/", "/_thub/"];

/// Resolves `raw_path` (the request path, still percent-encoded) under `root` (canonical).
/// `data_dir` (canonical once it exists: the caller resolves it once, not per request) is never
/// served.
pub fn resolve(root: &Path, data_dir: &Path, raw_path: &str, extra_denied: &[String]) -> Resolution {
    let mut relative = PathBuf::new();
    for raw in raw_path.split('/').filter(|segment| !segment.is_empty()) {
        let Some(segment) = percent_decode(raw) else { return Resolution::NotFound };
        let hostile = segment.contains(['/', '\\', '\0']) || segment == "." || segment == "..";
        if hostile || is_denied(&segment, extra_denied) {
            return Resolution::NotFound;
        }
        relative.push(segment);
    }
    let Some(target) = contained(root, data_dir, &root.join(&relative), extra_denied) else {
        return Resolution::NotFound;
    };
    if target.is_file() {
        return Resolution::File(target);
    }
    if !target.is_dir() {
        return Resolution::NotFound;
    }
    let index = target.join("index.html");
    let Some(index) = contained(root, data_dir, &index, extra_denied).filter(|index| index.is_file()) else {
        return Resolution::NotFound;
    };
    if raw_path.ends_with('/') { Resolution::File(index) } else { Resolution::AddSlash(format!("{raw_path}/")) }
}

/// The canonical form of `path` if it exists and stays inside `root`, outside `data_dir`, and
/// none of its components (after following symlinks) is denied.
fn contained(root: &Path, data_dir: &Path, path: &Path, extra_denied: &[String]) -> Option<PathBuf> {
    let canonical = path.canonicalize().ok()?;
    // `starts_with` on paths compares whole components: `/srv/hub2` does not start with `/srv/hub`.
    let inside = canonical.strip_prefix(root).ok()?;
    if canonical.starts_with(data_dir) {
        return None;
    }
    let clean = inside.components().all(|component| match component {
        Component::Normal(name) => name.to_str().is_some_and(|name| !is_denied(name, extra_denied)),
        _ => false,
    });
    clean.then_some(canonical)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    struct Tree {
        _base: tempfile::TempDir,
        root: PathBuf,
        data: PathBuf,
    }

    fn tree() -> Tree {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("site");
        let sibling = base.path().join("site2");
        for dir in [&root, &sibling, &root.join("sub"), &root.join("app"), &root.join(".git"), &root.join("data")] {
            fs::create_dir_all(dir).unwrap();
        }
        for (file, text) in [
            ("index.html", "home"),
            ("config.json", "{}"),
            ("thub.toml", ""),
            ("server-key.pem", "key"),
            ("Upper.PEM", "key"),
            (".env", "SECRET=1"),
            (".git/config", "x"),
            ("sub/config.json", "{}"),
            ("sub/page.html", "page"),
            ("app/index.html", "app"),
            ("data/thub.db", "db"),
            ("data/notes.txt", "notes"),
        ] {
            fs::write(root.join(file), text).unwrap();
        }
        fs::write(sibling.join("secret.txt"), "secret").unwrap();
        fs::write(base.path().join("outside.txt"), "outside").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(base.path().join("outside.txt"), root.join("link-out.txt")).unwrap();
            std::os::unix::fs::symlink(root.join("config.json"), root.join("innocent.txt")).unwrap();
        }
        let root = root.canonicalize().unwrap();
        let data = root.join("data");
        Tree { _base: base, root, data }
    }

    #[test]
    fn every_known_trick_is_refused() {
        let tree = tree();
        let resolve = |path: &str| resolve(&tree.root, &tree.data, path, &[]);
        for path in [
            "/config.json",
            "/./config.json",
            "/x/../config.json",
            "/sub/../config.json",
            "/sub/config.json",
            "/CONFIG.JSON",
            "/thub.toml",
            "/server-key.pem",
            "/server-key.pem/",
            "/Upper.PEM",
            "/.env",
            "/.git/config",
            "/%2e%2e/site2/secret.txt",
            "/../site2/secret.txt",
            "/..%2fsite2/secret.txt",
            "/sub%2f..%2fconfig.json",
            "/%2E%2E/outside.txt",
            "/link-out.txt",
            "/innocent.txt",
            "/data/thub.db",
            "/data/notes.txt",
            "/nope.html",
            "/sub%00.html",
            "/sub\\..\\config.json",
            "/%zz",
        ] {
            assert_eq!(resolve(path), Resolution::NotFound, "{path} must not be served");
        }
    }

    #[test]
    fn ordinary_paths_resolve() {
        let tree = tree();
        let resolve = |path: &str| resolve(&tree.root, &tree.data, path, &[]);
        assert_eq!(resolve("/"), Resolution::File(tree.root.join("index.html")));
        assert_eq!(resolve("/sub/page.html"), Resolution::File(tree.root.join("sub/page.html")));
        assert_eq!(resolve("/sub//page.html"), Resolution::File(tree.root.join("sub/page.html")));
        assert_eq!(resolve("/app"), Resolution::AddSlash("/app/".to_owned()));
        assert_eq!(resolve("/app/"), Resolution::File(tree.root.join("app/index.html")));
        assert_eq!(resolve("/sub/"), Resolution::NotFound, "no index.html, no listing");
        assert_eq!(resolve("/sub/page.html"), Resolution::File(tree.root.join("sub/page.html")));
    }

    #[test]
    fn extra_deny_rules_apply() {
        let tree = tree();
        let extra = vec!["page.html".to_owned(), "*.HTML".to_owned()];
        assert_eq!(resolve(&tree.root, &tree.data, "/sub/page.html", &extra), Resolution::NotFound);
    }
}
