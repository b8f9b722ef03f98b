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
        if !changes_content(&event.kind) {
            return;
        }
        for path in event.paths {
            if !is_plugin_file(&path) {
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

/// Whether `kind` can change what a plugin is. Opening and reading are not: the host reads the
/// manifest and the component on every load, and inotify reports those opens, so reacting to
/// them would reload the plugin again and again (hashing 18 MB each time for a Python one).
fn changes_content(kind: &notify::EventKind) -> bool {
    matches!(kind, notify::EventKind::Create(_) | notify::EventKind::Modify(_) | notify::EventKind::Remove(_))
}

/// Only a manifest or a component matters: a cargo build in a plugin crate touches thousands of
/// other files.
fn is_plugin_file(path: &std::path::Path) -> bool {
    path.file_name().is_some_and(|name| name == "plugin.toml")
        || path.extension().is_some_and(|extension| extension == "wasm")
}

#[cfg(test)]
mod tests {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, ModifyKind, RemoveKind, RenameMode};

    use super::{changes_content, is_plugin_file};

    #[test]
    fn reading_a_plugin_is_not_a_change() {
        for read in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Read),
        ] {
            assert!(!changes_content(&read), "{read:?}");
        }
        for change in [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Remove(RemoveKind::File),
        ] {
            assert!(changes_content(&change), "{change:?}");
        }
    }

    #[test]
    fn only_manifests_and_components_are_plugin_files() {
        assert!(is_plugin_file(std::path::Path::new("/p/hello/plugin.toml")));
        assert!(is_plugin_file(std::path::Path::new("/p/hello/plugin.wasm")));
        assert!(!is_plugin_file(std::path::Path::new("/p/hello/target/debug/build.rs")));
    }
}
