//! `events`: reacts to hub events. It counts `user.registered` and `endpoint.created` in its
//! key-value store, emits `plugin.events.seen` for each, counts runs of its scheduled task
//! `tick`, and shows the counts at GET /plugins/events/stats.

use thub_plugin_sdk::guest::{self, Event, Plugin, Request, Response, hub, kv};

struct Events;

fn count(key: &str) -> u64 {
    kv::get(key).and_then(|bytes| String::from_utf8(bytes).ok()).and_then(|text| text.parse().ok()).unwrap_or(0)
}

impl Plugin for Events {
    fn on_event(event: Event) -> Result<(), String> {
        let key = format!("count:{}", event.kind);
        kv::set(&key, (count(&key) + 1).to_string().as_bytes())?;
        // Event ids make redeliveries recognisable: at-least-once delivery may repeat one.
        kv::set(&format!("last:{}", event.kind), event.id.as_bytes())?;
        hub::emit("seen", &format!("{{\"kind\": \"{}\", \"id\": \"{}\"}}", event.kind, event.id))?;
        guest::info(&format!("saw {}", event.kind));
        Ok(())
    }

    fn run_task(name: String) -> Result<(), String> {
        let key = format!("count:task:{name}");
        kv::set(&key, (count(&key) + 1).to_string().as_bytes())
    }

    fn handle_request(request: Request) -> Result<Response, String> {
        if request.path != "/stats" {
            return Ok(guest::text(404, "no such page"));
        }
        let body = format!(
            "{{\"user.registered\": {}, \"endpoint.created\": {}, \"tick\": {}}}",
            count("count:user.registered"),
            count("count:endpoint.created"),
            count("count:task:tick")
        );
        Ok(guest::json(200, &body))
    }
}

thub_plugin_sdk::export_plugin!(Events);
