//! The plugins folder watcher: a changed manifest or component reloads that plugin, once per
//! burst of writes.

use std::time::Duration;

use super::WasmHost;

/// How long a burst of writes (a build) may take before the plugin is loaded again.
const SETTLE: Duration = Duration::from_millis(300);

/// Reloads a plugin when a file in its folder changes.
pub(super) fn watch(host: std::sync::Weak<WasmHost>) {
    let Some(strong) = host.upgrade() else { return };
    let dir = strong.dir.clone();
    drop(strong);
    if let Err(error) = std::fs::create_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), error = %error, "cannot create the plugins folder; not watching it");
        return;
    }
    let (changes, mut changed) = tokio::sync::mpsc::unbounded_channel::<String>();
    let watched = dir.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        for path in event.paths {
            // Only a manifest or a component matters: a cargo build in a plugin crate touches
            // thousands of other files.
            let relevant = path.file_name().is_some_and(|name| name == "plugin.toml")
                || path.extension().is_some_and(|extension| extension == "wasm");
            if !relevant {
                continue;
            }
            if let Some(id) = path
                .strip_prefix(&watched)
                .ok()
                .and_then(|inside| inside.components().next())
                .and_then(|first| first.as_os_str().to_str())
            {
                // Fails only once the host is gone, when nobody listens any more.
                let _ = changes.send(id.to_owned());
            }
        }
    });
    let mut watcher = match watcher {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(error = %error, "cannot watch the plugins folder; changes need `thub plugin reload`");
            return;
        }
    };
    if let Err(error) = notify::Watcher::watch(&mut watcher, &dir, notify::RecursiveMode::Recursive) {
        tracing::warn!(error = %error, "cannot watch the plugins folder; changes need `thub plugin reload`");
        return;
    }
    tokio::spawn(async move {
        let _watcher = watcher;
        while let Some(first) = changed.recv().await {
            // A build writes several files: let the burst settle, then reload each plugin once.
            tokio::time::sleep(SETTLE).await;
            let mut ids = vec![first];
            while let Ok(id) = changed.try_recv() {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            let Some(host) = host.upgrade() else { return };
            for id in ids {
                let manifest = host.dir.join(&id).join("plugin.toml");
                if manifest.is_file() {
                    // On a task of its own: a big component compiling never holds up the others.
                    host.load_in_background(manifest);
                }
            }
        }
    });
}
