//! `thub new NAME`: a PyScript project skeleton, online (assets from pyscript.net) or offline
//! (assets copied from a local cache, downloaded once). Versions are CalVer (`2025.11.2`) and
//! compared as numbers, never as strings.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use thub_plugin_sdk::html::escape;

/// The version used when the latest cannot be looked up.
pub const FALLBACK_VERSION: CalVer = CalVer(2025, 11, 2);
/// The first version with offline assets.
pub const FIRST_OFFLINE_VERSION: CalVer = CalVer(2025, 11, 2);
/// Where PyScript releases live.
pub const PYSCRIPT_URL: &str = "https://pyscript.net";

/// A PyScript calendar version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CalVer(pub u32, pub u32, pub u32);

impl CalVer {
    /// Parses `YYYY.M.D`.
    pub fn parse(text: &str) -> Option<Self> {
        let parts: Vec<&str> = text.trim().split('.').collect();
        let [year, month, day] = parts.as_slice() else { return None };
        let number = |part: &str| {
            (!part.is_empty() && part.len() <= 4 && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse().ok())
                .flatten()
        };
        let version = CalVer(number(year)?, number(month)?, number(day)?);
        (version.0 >= 2000 && (1..=12).contains(&version.1) && version.2 <= 31).then_some(version)
    }
}

impl fmt::Display for CalVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// What `thub new` was asked for.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// Folder to create, in the working folder.
    pub name: String,
    /// Requested version; `None` looks up the latest.
    pub version: Option<String>,
    /// Copy the PyScript assets into the project.
    pub offline: bool,
    /// Base URL of PyScript releases.
    pub pyscript_url: String,
    /// The offline asset cache (`<cache>/<version>/pyscript/`).
    pub cache: PathBuf,
}

/// Creates the project; returns the messages to print. Nothing is left behind on failure.
pub async fn create(request: NewProject) -> anyhow::Result<Vec<String>> {
    let name = request.name.as_str();
    let valid_name = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control);
    anyhow::ensure!(valid_name, "'{name}' is not a folder name (no slashes, no leading dot)");
    let folder = PathBuf::from(name);
    // Check before any network call.
    anyhow::ensure!(!folder.exists(), "folder '{name}' already exists; choose another name");
    let mut messages = Vec::new();
    let explicit = request.version.is_some();
    let version = match &request.version {
        Some(text) => {
            CalVer::parse(text).with_context(|| format!("'{text}' is not a PyScript version like 2025.11.2"))?
        }
        None => match latest_version(&request.pyscript_url).await {
            Ok(version) => {
                messages.push(format!("Latest PyScript version: {version}"));
                version
            }
            Err(error) => {
                messages.push(format!(
                    "Could not look up the latest PyScript version ({error:#}); using {FALLBACK_VERSION}"
                ));
                FALLBACK_VERSION
            }
        },
    };
    let assets = if request.offline {
        let (assets, used) = offline_assets(&request, version, explicit, &mut messages).await?;
        Some((assets, used))
    } else {
        None
    };
    let used = assets.as_ref().map_or(version, |(_, used)| *used);
    std::fs::create_dir(&folder).with_context(|| format!("cannot create folder '{name}'"))?;
    let written = write_files(&folder, name, used, assets.as_ref().map(|(path, _)| path.as_path()));
    if let Err(error) = written {
        let _ = std::fs::remove_dir_all(&folder);
        return Err(error);
    }
    messages.push(format!(
        "Created PyScript project '{name}' with version {used}{}. Serve it with: cd {name} && thub serve",
        if request.offline { " (offline assets)" } else { "" }
    ));
    Ok(messages)
}

async fn latest_version(base: &str) -> anyhow::Result<CalVer> {
    crate::app::install_crypto_providers();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let text: String = client
        .get(format!("{}/version.json", base.trim_end_matches('/')))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    CalVer::parse(&text).with_context(|| format!("unexpected version {text:?}"))
}

fn cached(cache: &Path, version: CalVer) -> Option<PathBuf> {
    let assets = cache.join(version.to_string()).join("pyscript");
    (assets.join("core.js").is_file() && assets.join("core.css").is_file()).then_some(assets)
}

/// Cached versions, newest first (by number).
pub fn cached_versions(cache: &Path) -> Vec<CalVer> {
    let Ok(entries) = std::fs::read_dir(cache) else { return Vec::new() };
    let mut versions: Vec<CalVer> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| CalVer::parse(entry.file_name().to_str()?))
        .filter(|version| cached(cache, *version).is_some())
        .collect();
    versions.sort_by(|a, b| b.cmp(a));
    versions
}

async fn offline_assets(
    request: &NewProject,
    version: CalVer,
    explicit: bool,
    messages: &mut Vec<String>,
) -> anyhow::Result<(PathBuf, CalVer)> {
    if let Some(assets) = cached(&request.cache, version) {
        messages.push(format!("Using cached PyScript {version} assets"));
        return Ok((assets, version));
    }
    match download(request, version).await {
        Ok(assets) => {
            messages.push(format!("Downloaded PyScript {version} offline assets"));
            Ok((assets, version))
        }
        // A version the user named is never silently replaced by another one.
        Err(error) if explicit => Err(error.context(format!("cannot get offline assets for PyScript {version}"))),
        Err(error) => {
            let newest = cached_versions(&request.cache).into_iter().next().with_context(|| {
                format!("cannot download PyScript {version} offline assets ({error:#}) and none are cached")
            })?;
            messages.push(format!("Could not download PyScript {version} ({error:#}); using cached {newest} instead"));
            Ok((cached(&request.cache, newest).context("cache vanished")?, newest))
        }
    }
}

async fn download(request: &NewProject, version: CalVer) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(
        version >= FIRST_OFFLINE_VERSION,
        "PyScript {version} has no offline assets (they start at {FIRST_OFFLINE_VERSION})"
    );
    let file =
        if version == FIRST_OFFLINE_VERSION { "offline.zip".to_owned() } else { format!("offline_{version}.zip") };
    let url = format!("{}/releases/{version}/{file}", request.pyscript_url.trim_end_matches('/'));
    crate::app::install_crypto_providers();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
    let bytes = client.get(&url).send().await?.error_for_status()?.bytes().await?;
    let target = request.cache.join(version.to_string());
    let extracted = extract_pyscript(&bytes, &target);
    if extracted.is_err() {
        let _ = std::fs::remove_dir_all(&target);
    }
    extracted?;
    cached(&request.cache, version).context("the archive has no pyscript/core.js and core.css")
}

/// Extracts the `pyscript/` folder of the archive (at any depth) into `<target>/pyscript/`.
fn extract_pyscript(bytes: &[u8], target: &Path) -> anyhow::Result<()> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).context("not a zip archive")?;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index)?;
        // `enclosed_name` refuses absolute paths and `..`: a hostile archive cannot write outside.
        let Some(path) = entry.enclosed_name() else { continue };
        let components: Vec<_> = path.components().collect();
        let Some(start) = components.iter().position(|component| component.as_os_str() == "pyscript") else { continue };
        let relative: PathBuf = components[start..].iter().collect();
        let destination = target.join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&destination)?;
            continue;
        }
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut output = std::fs::File::create(&destination)?;
        std::io::copy(&mut entry, &mut output)?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn write_files(folder: &Path, name: &str, version: CalVer, offline: Option<&Path>) -> anyhow::Result<()> {
    let (css, js, offline_attribute) = match offline {
        Some(assets) => {
            copy_tree(assets, &folder.join("pyscript"))?;
            ("./pyscript/core.css".to_owned(), "./pyscript/core.js".to_owned(), " offline")
        }
        None => (
            format!("https://pyscript.net/releases/{version}/core.css"),
            format!("https://pyscript.net/releases/{version}/core.js"),
            "",
        ),
    };
    let title = escape(name);
    let index = format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{title}</title>
    <link rel="stylesheet" href="{css}">
    <script type="module" src="{js}"{offline_attribute}></script>
    <link rel="stylesheet" href="./style.css">
</head>
<body>
    <h1>{title}</h1>
    <script type="mpy" src="./main.py" config="./settings.json" terminal></script>
</body>
</html>
"#
    );
    let files: [(&str, &str); 5] = [
        ("index.html", &index),
        ("main.py", "print(\"Hello, World!\")\n"),
        ("settings.json", "{}\n"),
        ("style.css", STYLE),
        (".gitignore", GITIGNORE),
    ];
    for (file, text) in files {
        std::fs::write(folder.join(file), text).with_context(|| format!("cannot write {file}"))?;
    }
    Ok(())
}

const STYLE: &str = "body {\n    font-family: system-ui, sans-serif;\n    margin: 0 auto;\n    max-width: 60rem;\n    padding: 1rem;\n    background-color: #ffffff;\n    color: #1d1d1f;\n}\n\n@media (prefers-color-scheme: dark) {\n    body {\n        background-color: #111111;\n        color: #eeeeee;\n    }\n}\n";

const GITIGNORE: &str = "# thub\n.thub/\nthub.toml\nconfig.json\n*.pem\n\n# Python\n__pycache__/\n*.py[cod]\n.venv/\nvenv/\n\n# Editors and builds\n.idea/\n.vscode/\ndist/\nbuild/\n*.log\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calver_orders_as_numbers() {
        let mut versions: Vec<CalVer> =
            ["2025.9.9", "2025.12.1", "2024.11.2", "2025.10.1"].iter().filter_map(|v| CalVer::parse(v)).collect();
        versions.sort_by(|a, b| b.cmp(a));
        let shown: Vec<String> = versions.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["2025.12.1", "2025.10.1", "2025.9.9", "2024.11.2"], "2025.12.1 is newer than 2025.9.9");
        for bad in ["invalid", "2025.12", "2025.13.1", "v2025.1.1", "2025.1.1.1", "../x", ""] {
            assert!(CalVer::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(CalVer::parse("2025.1.10"), Some(CalVer(2025, 1, 10)));
    }
}
