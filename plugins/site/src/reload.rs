//! Live reload: a file watcher on the hub folder and a server-sent-events stream that tells open
//! pages to reload. Changes inside dot-folders (the data folder, `.git`) are ignored.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use notify::{RecursiveMode, Watcher};
use poem::endpoint::BoxEndpoint;
use poem::web::sse::{Event, SSE};
use poem::{EndpointExt, IntoResponse};
use thub_plugin_sdk::PluginError;
use tokio::sync::broadcast;

/// The script injected into HTML pages.
pub(crate) const SCRIPT: &str =
    "<script>new EventSource('/_thub/reload').addEventListener('reload', () => location.reload());</script>";

/// Change notifications, one per burst of file changes.
#[derive(Clone)]
pub(crate) struct Reloads {
    sender: broadcast::Sender<()>,
    _watcher: Arc<notify::RecommendedWatcher>,
}

impl Reloads {
    /// Watches `root` recursively.
    pub(crate) fn watch(root: &Path) -> Result<Self, PluginError> {
        let (sender, _) = broadcast::channel(16);
        let (changes, mut changed) = tokio::sync::mpsc::unbounded_channel::<()>();
        let watched = root.to_path_buf();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            let visible = event.paths.iter().any(|path| {
                let inside = path.strip_prefix(&watched).unwrap_or(path);
                !inside
                    .components()
                    .any(|component| component.as_os_str().to_str().is_some_and(|name| name.starts_with('.')))
            });
            if visible {
                let _ = changes.send(());
            }
        })
        .map_err(|error| PluginError::Other(format!("cannot watch the hub folder: {error}")))?;
        watcher
            .watch(root, RecursiveMode::Recursive)
            .map_err(|error| PluginError::Other(format!("cannot watch {}: {error}", root.display())))?;
        let forward = sender.clone();
        tokio::spawn(async move {
            while changed.recv().await.is_some() {
                // An editor's save is several events: wait for the burst to settle.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while changed.try_recv().is_ok() {}
                let _ = forward.send(());
            }
        });
        Ok(Self { sender, _watcher: Arc::new(watcher) })
    }
}

/// `GET /_thub/reload`: a `reload` event after each change.
pub(crate) fn endpoint(reloads: Reloads) -> BoxEndpoint<'static> {
    poem::endpoint::make(move |_| {
        let receiver = reloads.sender.subscribe();
        async move {
            let stream = tokio_stream_of(receiver).map(|_| Event::message("changed").event_type("reload"));
            Ok::<_, poem::Error>(SSE::new(stream).keep_alive(Duration::from_secs(15)).into_response())
        }
    })
    .map_to_response()
    .boxed()
}

fn tokio_stream_of(receiver: broadcast::Receiver<()>) -> impl futures_util::Stream<Item = ()> {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(()) => return Some(((), receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}
