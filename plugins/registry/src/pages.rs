//! GitHub-style owner pages for API clients, `GET /{owner}` and `GET /{owner}/{slug}` as JSON,
//! and the one README renderer. Browsers (`Accept: text/html`) are left to the web plugin,
//! which renders the same paths as pages. The pages are a fallback: API, well-known and plugin
//! routes win, and a path is claimed only when the owner (and, for two segments, the endpoint)
//! exists, so static files at other paths keep working. READMEs are rendered from Markdown with
//! syntax highlighting and sanitised (no scripts, no event handlers, only safe link schemes).

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use poem::http::{Method, header};
use poem::{Request, Response};
use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use serde::Deserialize;
use syntect::html::{ClassStyle, ClassedHTMLGenerator};
use syntect::parsing::SyntaxSet;
use thub_plugin_sdk::html::escape;
use thub_plugin_sdk::html::wants_html;
use thub_plugin_sdk::{ApiError, Fallback, optional_user, page};

use crate::access::Viewer;
use crate::api::{EndpointPublicResponse, EndpointResponse};
use crate::error::RegistryError;
use crate::listings::Page;
use crate::service::{Owner, RegistryService};

const HIGHLIGHT: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "hl-" };

/// The owner pages.
pub struct OwnerPages {
    service: Arc<RegistryService>,
}

impl OwnerPages {
    /// Pages over the registry.
    pub fn new(service: Arc<RegistryService>) -> Self {
        Self { service }
    }
}

/// `/{owner}[/{slug}]` split into its segments, lowercase, if the path has that shape.
fn owner_path(request: &Request) -> Option<(String, Option<String>)> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return None;
    }
    let (owner, slug) = thub_plugin_sdk::slug::owner_path(request.uri().path())?;
    Some((owner.to_lowercase(), slug.map(str::to_lowercase)))
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    skip: Option<u64>,
    limit: Option<u64>,
}

#[async_trait]
impl Fallback for OwnerPages {
    async fn claims(&self, request: &Request) -> bool {
        if wants_html(request) {
            return false;
        }
        let Some((owner, slug)) = owner_path(request) else { return false };
        if anonymous_key(request).is_some_and(|key| self.service.listings().holds(&key)) {
            return true;
        }
        // A lookup that fails claims the request, so `handle` answers the failure (503) rather
        // than the static site answering as if nothing were there.
        let owner = match self.service.owner(&owner).await {
            Ok(Some(owner)) => owner,
            Ok(None) => return false,
            Err(_) => return true,
        };
        match slug {
            None => true,
            Some(slug) => !matches!(self.service.owner_endpoint(&owner, &slug).await, Ok(None)),
        }
    }

    async fn handle(&self, request: Request) -> poem::Result<Response> {
        let Some(key) = anonymous_key(&request) else { return self.answer(&request).await };
        // Anonymous callers all get the same answer: kept as a page (only successes are).
        let page = self
            .service
            .listings()
            .fetch(key, async || {
                let response = self.answer(&request).await?;
                Ok::<_, poem::Error>(Page::new(response.into_body().into_vec().await?))
            })
            .await?;
        Ok(page.respond(&request))
    }
}

/// The cache key of a request that carries no credentials (no `Authorization`, no cookie):
/// its lowercased path and its query.
fn anonymous_key(request: &Request) -> Option<String> {
    let headers = request.headers();
    if headers.contains_key(header::AUTHORIZATION) || headers.contains_key(header::COOKIE) {
        return None;
    }
    Some(format!("owner {}?{}", request.uri().path().to_lowercase(), request.uri().query().unwrap_or("")))
}

impl OwnerPages {
    async fn answer(&self, request: &Request) -> poem::Result<Response> {
        let (owner_name, slug) =
            owner_path(request).ok_or_else(|| ApiError::not_found("route.not_found", "Not Found"))?;
        let owner = self.service.owner(&owner_name).await?.ok_or(RegistryError::OwnerNotFound(owner_name))?;
        let principal = optional_user(request).await?;
        let viewer = self.service.viewer(principal).await?;
        match slug {
            None => self.owner_page(request, &viewer, &owner).await,
            Some(slug) => self.endpoint_page(&viewer, &owner, &slug).await,
        }
    }

    async fn owner_page(&self, request: &Request, viewer: &Viewer, owner: &Owner) -> poem::Result<Response> {
        let query = request.params::<PageQuery>().map_err(|_| {
            ApiError::invalid_field(&["query"], "skip and limit must be whole numbers", serde_json::Value::Null)
        })?;
        let (skip, limit) = page(query.skip.unwrap_or(0), query.limit.unwrap_or(10))?;
        let endpoints = self.service.owner_endpoints(viewer, owner, skip, limit).await?;
        let shapes: Vec<EndpointPublicResponse> =
            endpoints.into_iter().map(|model| EndpointPublicResponse::new(model, owner.name().to_owned())).collect();
        Ok(json_response(&shapes))
    }

    async fn endpoint_page(&self, viewer: &Viewer, owner: &Owner, slug: &str) -> poem::Result<Response> {
        let not_found = || ApiError::not_found("registry.not_found", "Owner or endpoint not found");
        let model = self.service.owner_endpoint(owner, slug).await?.ok_or_else(not_found)?;
        let organization_active = match owner {
            Owner::User(_) => true,
            Owner::Organization(organization) => organization.is_active,
        };
        if !viewer.can_see(&model, organization_active) {
            if viewer.principal.is_none() && model.is_active {
                return Err(RegistryError::LoginRequired.into());
            }
            return Err(not_found().into());
        }
        if viewer.is_admin() || viewer.is_insider(&model) {
            Ok(json_response(&EndpointResponse::from(model)))
        } else {
            let id = viewer.principal.is_some().then_some(model.id);
            Ok(json_response(&EndpointPublicResponse {
                id,
                ..EndpointPublicResponse::new(model, owner.name().to_owned())
            }))
        }
    }
}

fn json_response<T: poem_openapi::types::ToJSON>(value: &T) -> Response {
    let body = value.to_json().map(|json| json.to_string()).unwrap_or_default();
    Response::builder().content_type("application/json").body(body)
}

fn syntax_set() -> &'static SyntaxSet {
    static SYNTAXES: OnceLock<SyntaxSet> = OnceLock::new();
    SYNTAXES.get_or_init(SyntaxSet::load_defaults_newlines)
}

fn highlight(code: &str, language: &str) -> String {
    let syntaxes = syntax_set();
    let Some(syntax) = syntaxes.find_syntax_by_token(language) else {
        return format!("<pre><code class=\"language-{}\">{}</code></pre>", escape(language), escape(code));
    };
    let mut generator = ClassedHTMLGenerator::new_with_class_style(syntax, syntaxes, HIGHLIGHT);
    for line in syntect::util::LinesWithEndings::from(code) {
        if generator.parse_html_for_line_which_includes_newline(line).is_err() {
            return format!("<pre><code>{}</code></pre>", escape(code));
        }
    }
    format!(
        "<pre class=\"highlight\"><code class=\"language-{}\">{}</code></pre>",
        escape(language),
        generator.finalize()
    )
}

/// Markdown → sanitised HTML, fenced code blocks highlighted.
pub fn render_markdown(markdown: &str) -> String {
    let mut events = Vec::new();
    let mut code: Option<(String, String)> = None;
    for event in
        Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS)
    {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let language = match kind {
                    CodeBlockKind::Fenced(info) => info.split_whitespace().next().unwrap_or("").to_owned(),
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((language, String::new()));
            }
            Event::Text(text) if code.is_some() => {
                if let Some((_, buffer)) = code.as_mut() {
                    buffer.push_str(&text);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((language, buffer)) = code.take() {
                    events.push(Event::Html(highlight(&buffer, &language).into()));
                }
            }
            other => events.push(other),
        }
    }
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    ammonia::Builder::default()
        .add_tag_attributes("span", &["class"])
        .add_tag_attributes("code", &["class"])
        .add_tag_attributes("pre", &["class"])
        .clean(&html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::render_markdown;

    #[test]
    fn readme_html_is_sanitised() {
        let html = render_markdown(
            "# Title\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[click](javascript:alert(3))\n\n<a href=\"https://ok.example\" onclick=\"x()\">ok</a>",
        );
        assert!(html.contains("<h1>Title</h1>"));
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onerror") && !html.contains("onclick"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains("href=\"https://ok.example\""), "{html}");
    }

    #[test]
    fn fenced_code_is_highlighted() {
        let html = render_markdown("```rust\nfn main() { let x = 1; }\n```\n");
        assert!(html.contains("class=\"language-rust\""), "{html}");
        assert!(html.contains("<span class=\"hl-"), "{html}");
        let unknown = render_markdown("```nosuchlang\n<b>x</b>\n```\n");
        assert!(unknown.contains("&lt;b&gt;"), "{unknown}");
    }
}
