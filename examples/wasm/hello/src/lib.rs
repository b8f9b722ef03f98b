//! `hello`: a route that greets the caller and counts visits in the plugin's key-value store.
//!
//! GET /plugins/hello/greet       → "hello, <user>! visit #N"
//! GET /plugins/hello/count       → the visit count as JSON
//! PUT /plugins/hello/note        → stores the body under `note`; GET /plugins/hello/note reads it
//! GET /plugins/hello/whois?NAME  → that user's public profile (`users` grant)
//! GET /plugins/hello/endpoints?OWNER → the owner's endpoints the caller may see (`registry` grant)

use thub_plugin_sdk::guest::{self, Plugin, Request, Response, config, kv, registry, users};

struct Hello;

fn visits() -> u64 {
    kv::get("visits").and_then(|bytes| String::from_utf8(bytes).ok()).and_then(|text| text.parse().ok()).unwrap_or(0)
}

impl Plugin for Hello {
    fn handle_request(request: Request) -> Result<Response, String> {
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/greet") => {
                let count = visits() + 1;
                kv::set("visits", count.to_string().as_bytes())?;
                let who = request.principal.username.unwrap_or_else(|| "stranger".to_owned());
                let greeting = config::get("greeting").unwrap_or_else(|| "hello".to_owned());
                guest::info(&format!("greeted {who}"));
                Ok(guest::text(200, &format!("{greeting}, {who}! visit #{count}")))
            }
            ("GET", "/count") => Ok(guest::json(200, &format!("{{\"visits\": {}}}", visits()))),
            ("PUT", "/note") => {
                kv::set("note", &request.body)?;
                Ok(guest::text(204, ""))
            }
            ("GET", "/note") => match kv::get("note") {
                Some(note) => Ok(Response { status: 200, headers: Vec::new(), body: note }),
                None => Ok(guest::text(404, "no note yet")),
            },
            ("GET", "/whois") => match users::by_name(&request.query) {
                Some(user) => Ok(guest::text(200, &format!("{} is {} (#{})", user.username, user.full_name, user.id))),
                None => Ok(guest::text(404, "no such user")),
            },
            ("GET", "/endpoints") => {
                let slugs: Vec<String> = registry::list_by_owner(&request.query, 10)
                    .into_iter()
                    .map(|endpoint| format!("{}/{} ({})", endpoint.owner, endpoint.slug, endpoint.visibility))
                    .collect();
                Ok(guest::text(200, &slugs.join("\n")))
            }
            _ => Ok(guest::text(404, "no such page")),
        }
    }
}

thub_plugin_sdk::export_plugin!(Hello);
