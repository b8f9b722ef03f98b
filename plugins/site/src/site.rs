//! The fallback that serves the hub folder: login first, then the file with ETag, Last-Modified,
//! ranges and HEAD; a 404 page for browsers and JSON for API clients.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use poem::error::StaticFileError;
use poem::http::{HeaderMap, Method, StatusCode, header};
use poem::web::{StaticFileRequest, StaticFileResponse};
use poem::{Body, FromRequest, IntoResponse, Request, Response};
use thub_plugin_sdk::html::wants_html;
use thub_plugin_sdk::slug::owner_path;
use thub_plugin_sdk::{ApiError, Fallback, optional_user};

use crate::paths::{HUB_PREFIXES, Resolution, resolve};
use crate::reload::{Reloads, SCRIPT};

/// The hub folder as a web site.
pub(crate) struct Site {
    root: PathBuf,
    data_dir: PathBuf,
    /// `data_dir` with its symlinks resolved, once it exists (it may appear after start).
    canonical_data_dir: OnceLock<PathBuf>,
    deny: Vec<String>,
    reloads: Option<Reloads>,
    served: Mutex<Served>,
}

/// Small files as last served, by path: a plain `GET` of a file whose modification time and
/// length are unchanged (one `stat`) is answered from here, with no blocking task and no file
/// opened, which was most of what such a request cost. Anything else (ranges, conditions, `HEAD`,
/// a changed file) takes the full path, which fills it again. At most [`SERVED_BYTES`]; past
/// that it starts over.
#[derive(Default)]
struct Served {
    bytes: usize,
    files: HashMap<PathBuf, Arc<ServedFile>>,
}

/// A file's answer (headers and bytes) and the metadata it was read with.
struct ServedFile {
    modified: SystemTime,
    len: u64,
    headers: HeaderMap,
    body: Bytes,
}

/// Most bytes of files kept in [`Served`].
const SERVED_BYTES: usize = 32 * 1024 * 1024;

/// Request headers that ask for more than the whole file (ranges, conditions): answered by the
/// full path.
const CONDITIONS: [header::HeaderName; 6] = [
    header::RANGE,
    header::IF_RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
];

impl Site {
    pub(crate) fn new(root: PathBuf, data_dir: PathBuf, deny: Vec<String>, reloads: Option<Reloads>) -> Self {
        Self { root, data_dir, canonical_data_dir: OnceLock::new(), deny, reloads, served: Mutex::default() }
    }

    fn served(&self) -> std::sync::MutexGuard<'_, Served> {
        self.served.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The answer kept for `path`, if the file is unchanged since.
    fn served_unchanged(&self, path: &Path) -> Option<Response> {
        let kept = self.served().files.get(path).cloned()?;
        let unchanged = std::fs::metadata(path)
            .is_ok_and(|now| now.len() == kept.len && now.modified().is_ok_and(|modified| modified == kept.modified));
        if !unchanged {
            return None;
        }
        let mut response = Response::builder().status(StatusCode::OK).body(Body::from_bytes(kept.body.clone()));
        *response.headers_mut() = kept.headers.clone();
        Some(response)
    }

    /// Keeps `response`, the whole file as read, for the next plain `GET` of `path`.
    fn keep(&self, path: PathBuf, response: &Response, whole: ReadWhole) {
        let mut served = self.served();
        if served.bytes + whole.body.len() > SERVED_BYTES {
            *served = Served::default();
        }
        served.bytes += whole.body.len();
        let file = ServedFile {
            modified: whole.modified,
            len: whole.len,
            headers: response.headers().clone(),
            body: whole.body,
        };
        if let Some(replaced) = served.files.insert(path, Arc::new(file)) {
            served.bytes -= replaced.body.len();
        }
    }

    /// The data folder as [`resolve`] compares it: canonical once it exists, resolved once.
    fn data_dir(&self) -> &Path {
        if let Some(canonical) = self.canonical_data_dir.get() {
            return canonical;
        }
        match self.data_dir.canonicalize() {
            Ok(canonical) => self.canonical_data_dir.get_or_init(|| canonical),
            // Not there (yet): nothing inside it exists to be served.
            Err(_) => &self.data_dir,
        }
    }
}

/// Percent-encodes everything but unreserved characters and `/`, for `?next=`.
fn encode_next(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[async_trait]
impl Fallback for Site {
    async fn claims(&self, request: &Request) -> bool {
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            return false;
        }
        let path = request.uri().path();
        if HUB_PREFIXES.iter().any(|prefix| path.starts_with(prefix)) {
            return false;
        }
        // "/" belongs to the site only when the folder has a home page; otherwise the hub's
        // welcome document answers there.
        path != "/" || self.root.join("index.html").is_file()
    }

    async fn handle(&self, request: Request) -> poem::Result<Response> {
        // `/{owner}[/{slug}]` paths belong to the owner pages, which did not claim this one (no
        // such owner or endpoint): an API client gets that 404 rather than a login prompt,
        // unless a real file or folder is there (which stays behind the login).
        let path = request.uri().path();
        if !wants_html(&request)
            && owner_path(path).is_some()
            && matches!(resolve(&self.root, self.data_dir(), path, &self.deny), Resolution::NotFound)
        {
            return Ok(not_found(&request));
        }
        if optional_user(&request).await?.is_none() {
            if wants_html(&request) {
                let target = request.uri().path_and_query().map_or("/", |path| path.as_str());
                let location = format!("/login?next={}", encode_next(target));
                return Ok(Response::builder()
                    .status(StatusCode::SEE_OTHER)
                    .header(header::LOCATION, location)
                    .finish());
            }
            return Err(ApiError::invalid_credentials().into());
        }
        match resolve(&self.root, self.data_dir(), request.uri().path(), &self.deny) {
            Resolution::NotFound => Ok(not_found(&request)),
            Resolution::AddSlash(location) => {
                let location = match request.uri().query() {
                    Some(query) => format!("{location}?{query}"),
                    None => location,
                };
                Ok(Response::builder()
                    .status(StatusCode::PERMANENT_REDIRECT)
                    .header(header::LOCATION, location)
                    .finish())
            }
            Resolution::File(path) => self.serve(&request, path).await,
        }
    }
}

impl Site {
    async fn serve(&self, request: &Request, path: PathBuf) -> poem::Result<Response> {
        let is_html = path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("html"));
        if self.reloads.is_some() && is_html {
            // With live reload, pages get the reload script; they are small and never cached.
            let text = tokio::fs::read_to_string(&path)
                .await
                .map_err(|error| ApiError::internal(format!("read {}: {error}", path.display())))?;
            let injected = match text.rfind("</body>") {
                Some(at) => format!("{}{SCRIPT}{}", &text[..at], &text[at..]),
                None => format!("{text}{SCRIPT}"),
            };
            let mut response = poem::web::Html(injected).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
            return Ok(response);
        }
        let plain =
            request.method() == Method::GET && !CONDITIONS.iter().any(|name| request.headers().contains_key(name));
        if plain && let Some(response) = self.served_unchanged(&path) {
            return Ok(response);
        }
        let is_python = path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("py"));
        let conditions = StaticFileRequest::from_request_without_body(request).await?;
        // no-cache: browsers revalidate with the ETag each time (a cheap 304), so edits show at
        // once, yet large PyScript and Pyodide assets are not downloaded again.
        let opened = path.clone();
        let (response, whole) = tokio::task::spawn_blocking(move || open(conditions, &opened))
            .await
            .map_err(|error| ApiError::internal(format!("static file task: {error}")))??;
        let mut response = response.into_response();
        // PyScript fetches .py files; name them as Python (mime_guess says text/plain).
        if is_python && response.status().is_success() {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/x-python; charset=utf-8"));
        }
        if let Some(whole) = whole.filter(|_| plain && response.status() == StatusCode::OK) {
            self.keep(path, &response, whole);
        }
        Ok(response)
    }
}

/// Files up to this size are read whole in the blocking task that opens them. Streamed through
/// tokio's `File`, every 4 KiB read is one more hop to a blocking thread: five for a 10 KiB file,
/// most of the time such a request took.
const READ_WHOLE_BYTES: u64 = 256 * 1024;

/// A small file read whole, with the metadata it had just before.
struct ReadWhole {
    modified: SystemTime,
    len: u64,
    body: Bytes,
}

/// The response for `path` under the request's conditions (ETag, Last-Modified, ranges), on a
/// blocking thread; and the file read whole, if it is small and was served whole.
fn open(
    conditions: StaticFileRequest,
    path: &Path,
) -> Result<(StaticFileResponse, Option<ReadWhole>), StaticFileError> {
    // Read before the headers are made and compared after the bytes are read: the file is kept
    // only if nothing changed in between, so its headers (ETag) and bytes agree.
    let before = std::fs::metadata(path)?;
    match conditions.create_response(path, true, true)? {
        StaticFileResponse::Ok {
            body,
            content_length,
            content_type,
            etag,
            last_modified,
            content_range: None,
            cache_control,
        } if content_length <= READ_WHOLE_BYTES => {
            drop(body);
            let data = Bytes::from(std::fs::read(path)?);
            // A file rewritten in between is served as it is now; its ETag catches up on the next
            // request, and it is not kept.
            let after = std::fs::metadata(path)?;
            let whole = match (before.modified(), after.modified()) {
                (Ok(modified), Ok(still))
                    if modified == still && before.len() == after.len() && after.len() == data.len() as u64 =>
                {
                    Some(ReadWhole { modified, len: after.len(), body: data.clone() })
                }
                _ => None,
            };
            let response = StaticFileResponse::Ok {
                content_length: data.len() as u64,
                body: Body::from_bytes(data),
                content_type,
                etag,
                last_modified,
                content_range: None,
                cache_control,
            };
            Ok((response, whole))
        }
        response => Ok((response, None)),
    }
}

fn not_found(request: &Request) -> Response {
    if !wants_html(request) {
        return ApiError::not_found("site.not_found", "Not Found").into_response();
    }
    Response::builder().status(StatusCode::NOT_FOUND).content_type("text/html; charset=utf-8").body(NOT_FOUND_PAGE)
}

const NOT_FOUND_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>404 - Page Not Found</title>
<style>body{font-family:system-ui,sans-serif;display:flex;min-height:100vh;align-items:center;justify-content:center;margin:0;text-align:center}a{display:inline-block;margin-top:1rem;padding:.6rem 1.2rem;border-radius:6px;background:#2b5cff;color:#fff;text-decoration:none}</style>
</head><body><main><h1>404</h1><h2>Oops! Page Not Found</h2>
<p>The page you are looking for seems to be playing hide and seek.</p>
<a href="/">Take Me Home</a></main></body></html>
"#;
