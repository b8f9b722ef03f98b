//! Scheduled tasks: each `[[schedule]]` of a granted plugin runs as `run-task(name)` every
//! `every_seconds` (at least `wasm.min_schedule_seconds`), never overlapping itself. Due is
//! measured on the host's clock, so a manual clock drives it in tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;

use super::WasmHost;
use super::runtime::Hook;

/// When each `(plugin, task)` is next due, and whether it is running now.
#[derive(Default)]
pub(super) struct Schedule {
    tasks: Mutex<HashMap<(String, String), TaskState>>,
}

struct TaskState {
    next_due: DateTime<Utc>,
    running: bool,
}

impl Schedule {
    fn finished(&self, key: &(String, String)) {
        if let Some(state) = self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get_mut(key) {
            state.running = false;
        }
    }
}

impl WasmHost {
    /// Starts every task that is due and not running; returns the started tasks. A task first
    /// becomes due one interval after the host first sees it.
    pub(super) fn run_schedules(self: &Arc<Self>) -> Vec<JoinHandle<()>> {
        let minimum = Duration::from_secs(self.config.min_schedule_seconds.max(1));
        let now = self.clock.now();
        let mut started = Vec::new();
        for (id, slot) in self.all_slots() {
            let loaded = slot.current();
            if slot.problem().is_some() || !loaded.services.granted("tasks") {
                continue;
            }
            for task in &loaded.services.manifest.schedule {
                let every = Duration::from_secs(task.every_seconds).max(minimum);
                let every = chrono::Duration::seconds(every.as_secs() as i64);
                let key = (id.clone(), task.name.clone());
                let due = {
                    let mut tasks = self.schedule.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    let state = tasks.entry(key.clone()).or_insert(TaskState { next_due: now + every, running: false });
                    let due = !state.running && now >= state.next_due;
                    if due {
                        *state = TaskState { next_due: now + every, running: true };
                    }
                    due
                };
                if due {
                    let host = self.clone();
                    started.push(tokio::spawn(async move {
                        let (id, name) = &key;
                        if let Err(error) = host.run_task(id, name.clone()).await {
                            tracing::warn!(plugin = %id, task = %name, error = %error, "scheduled task failed");
                        }
                        host.schedule.finished(&key);
                    }));
                }
            }
        }
        started
    }

    async fn run_task(&self, id: &str, name: String) -> Result<(), String> {
        let slot = self.slot(id).ok_or("the plugin is not loaded")?;
        let deadline = Duration::from_millis(self.config.task_timeout_ms);
        self.call(&slot, format!("task-{id}-{name}"), None, deadline, move |loaded, store| {
            Box::pin(async move { loaded.prepared.invoke(store, Hook::Task(name)).await })
        })
        .await
        .map_err(|refusal| format!("{refusal:?}"))?
        .map(|_| ())
    }
}
