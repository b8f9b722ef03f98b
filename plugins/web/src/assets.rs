//! The stylesheet and the script, served under content-hashed names (`/_thub/web/app.<hash>.css`)
//! with a one-year immutable cache lifetime: a changed file gets a new name, so browsers never
//! keep a stale one.

use poem::http::{StatusCode, header};
use poem::{Request, Response};
use sha2::{Digest, Sha256};

const CSS: &str = include_str!("../assets/app.css");
const JS: &str = include_str!("../assets/app.js");

/// Where the hashed assets live.
pub(crate) const PREFIX: &str = "/_thub/web/";

/// The two assets and their hashed paths.
pub(crate) struct Assets {
    css: String,
    pub(crate) css_path: String,
    pub(crate) js_path: String,
}

fn hashed(name: &str, extension: &str, content: &str) -> String {
    let digest = hex::encode(Sha256::digest(content.as_bytes()));
    format!("{PREFIX}{name}.{}.{extension}", &digest[..16])
}

impl Assets {
    /// Our stylesheet (which also colours README code: the registry's highlighter marks tokens
    /// with `hl-` classes) and our script.
    pub(crate) fn new() -> Self {
        // Runs of white space collapse to one space (safe in CSS).
        let css = CSS.split_whitespace().collect::<Vec<_>>().join(" ");
        Self { css_path: hashed("app", "css", &css), js_path: hashed("app", "js", JS), css }
    }

    /// Serves an asset by its hashed path; old or unknown names are 404.
    pub(crate) fn serve(&self, request: &Request) -> Response {
        let path = request.uri().path();
        let (body, content_type) = if path == self.css_path {
            (self.css.clone(), "text/css; charset=utf-8")
        } else if path == self.js_path {
            (JS.to_owned(), "text/javascript; charset=utf-8")
        } else {
            return Response::builder().status(StatusCode::NOT_FOUND).content_type("text/plain").body("Not Found");
        };
        Response::builder()
            .content_type(content_type)
            .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .body(body)
    }

    /// Total size in bytes of what a first visit downloads besides the page.
    pub(crate) fn total_bytes(&self) -> usize {
        self.css.len() + JS.len()
    }
}
