//! `maintenance`: a read-only switch for the whole hub, as middleware.
//!
//! PUT /plugins/maintenance/mode with `on` or `off` (administrators) flips it; GET shows it.
//! While on, every API write answers 503 before it reaches the hub, except signing in and out,
//! and every response carries `x-read-only: on`.

use thub_plugin_sdk::guest::{self, Plugin, Request, Response, Verdict, kv};

struct Maintenance;

const WRITES: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];

fn is_on() -> bool {
    kv::get("mode").is_some_and(|mode| mode == b"on")
}

impl Plugin for Maintenance {
    fn on_request(request: Request) -> Verdict {
        let write = WRITES.contains(&request.method.as_str());
        let api = request.path.starts_with("/api/");
        let auth = request.path.starts_with("/api/v1/auth/");
        if write && api && !auth && is_on() {
            let mut answer = guest::json(503, r#"{"detail": "The hub is read-only for maintenance.", "code": "maintenance"}"#);
            answer.headers.push(guest::Header { name: "retry-after".to_owned(), value: "600".to_owned() });
            return Verdict::Respond(answer);
        }
        Verdict::Continue
    }

    fn on_response(_request: Request, _response: Response) -> Vec<guest::Header> {
        if is_on() { vec![guest::Header { name: "x-read-only".to_owned(), value: "on".to_owned() }] } else { Vec::new() }
    }

    fn handle_request(request: Request) -> Result<Response, String> {
        match request.method.as_str() {
            "GET" => Ok(guest::text(200, if is_on() { "on" } else { "off" })),
            _ if request.principal.role.as_deref() != Some("admin") => Ok(guest::text(403, "administrators only")),
            _ => match request.body.as_slice() {
                b"on" | b"off" => {
                    kv::set("mode", &request.body)?;
                    Ok(guest::text(204, ""))
                }
                _ => Ok(guest::text(422, "the mode is on or off")),
            },
        }
    }
}

thub_plugin_sdk::export_plugin!(Maintenance);
