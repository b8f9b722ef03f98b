//! `misbehaving`: every way a plugin can go wrong, on purpose, so the host's containment is
//! tested with real wit-bindgen code. GET /plugins/misbehaving/<case>:
//! `spin` loops forever, `bomb` allocates without bound, `panic` panics, `exfiltrate` calls the
//! cloud metadata address, `ok` answers normally. Two probes show what the host lets through:
//! `fetch?<url>` fetches any URL (the grants decide), `headers` lists the request headers seen.

use thub_plugin_sdk::guest::{self, Plugin, Request, Response, http};

struct Misbehaving;

impl Plugin for Misbehaving {
    fn handle_request(request: Request) -> Result<Response, String> {
        match request.path.as_str() {
            "/spin" => {
                let mut counter: u64 = 0;
                loop {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
            }
            "/bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![7u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "/panic" => panic!("deliberate panic"),
            "/exfiltrate" => {
                let outgoing = http::Outgoing {
                    method: "GET".to_owned(),
                    url: "http://169.254.169.254/latest/meta-data/".to_owned(),
                    headers: Vec::new(),
                    body: Vec::new(),
                    timeout_ms: 1000,
                };
                match http::fetch(&outgoing) {
                    Ok(incoming) => Ok(guest::text(200, &format!("leaked {} bytes", incoming.body.len()))),
                    Err(error) => Ok(guest::text(403, &format!("refused: {error}"))),
                }
            }
            "/fetch" => {
                let outgoing = http::Outgoing {
                    method: "GET".to_owned(),
                    url: request.query.clone(),
                    headers: Vec::new(),
                    body: Vec::new(),
                    timeout_ms: 2000,
                };
                match http::fetch(&outgoing) {
                    Ok(incoming) => Ok(Response { status: incoming.status, headers: Vec::new(), body: incoming.body }),
                    Err(error) => Ok(guest::text(403, &format!("refused: {error}"))),
                }
            }
            "/headers" => {
                let names: Vec<String> = request.headers.iter().map(|header| header.name.to_lowercase()).collect();
                Ok(guest::text(200, &names.join("\n")))
            }
            "/ok" => Ok(guest::text(200, "fine")),
            _ => Ok(guest::text(404, "no such case")),
        }
    }
}

thub_plugin_sdk::export_plugin!(Misbehaving);
