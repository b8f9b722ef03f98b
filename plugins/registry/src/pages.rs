//! GitHub-style owner pages, `GET /{owner}` and `GET /{owner}/{slug}`: JSON for API clients,
//! HTML for browsers (by `Accept`). They are a fallback: API, well-known and plugin routes win,
//! and a path is claimed only when the owner (and, for two segments, the endpoint) exists, so
//! static files at other paths keep working. READMEs are rendered from Markdown with syntax
//! highlighting and sanitised (no scripts, no event handlers, only safe link schemes).

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use poem::http::{Method, StatusCode, header};
use poem::{IntoResponse, Request, Response};
use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use serde::Deserialize;
use syntect::html::{ClassStyle, ClassedHTMLGenerator, css_for_theme_with_class_style};
use syntect::parsing::SyntaxSet;
use thub_plugin_sdk::html::escape;
use thub_plugin_sdk::html::wants_html;
use thub_plugin_sdk::{ApiError, Fallback, optional_user, page};

use crate::access::Viewer;
use crate::api::{EndpointPublicResponse, EndpointResponse};
use crate::entity::endpoint;
use crate::error::RegistryError;
use crate::service::{Owner, RegistryService, connections_of, contributors_of, policies_of, tags_of};

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
        let Some((owner, slug)) = owner_path(request) else { return false };
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
        let (owner_name, slug) =
            owner_path(&request).ok_or_else(|| ApiError::not_found("route.not_found", "Not Found"))?;
        let owner = self.service.owner(&owner_name).await?.ok_or(RegistryError::OwnerNotFound(owner_name))?;
        let principal = optional_user(&request).await?;
        let viewer = self.service.viewer(principal).await?;
        match slug {
            None => self.owner_page(&request, &viewer, &owner).await,
            Some(slug) => self.endpoint_page(&request, &viewer, &owner, &slug).await,
        }
    }
}

impl OwnerPages {
    async fn owner_page(&self, request: &Request, viewer: &Viewer, owner: &Owner) -> poem::Result<Response> {
        let query = request.params::<PageQuery>().map_err(|_| {
            ApiError::invalid_field(&["query"], "skip and limit must be whole numbers", serde_json::Value::Null)
        })?;
        let (skip, limit) =
            page(query.skip.unwrap_or(0), query.limit.unwrap_or(if wants_html(request) { 100 } else { 10 }))?;
        let endpoints = self.service.owner_endpoints(viewer, owner, skip, limit).await?;
        if wants_html(request) {
            return Ok(html_response(owner_html(owner, &endpoints)));
        }
        let shapes: Vec<EndpointPublicResponse> =
            endpoints.into_iter().map(|model| EndpointPublicResponse::new(model, owner.name().to_owned())).collect();
        Ok(json_response(&shapes))
    }

    async fn endpoint_page(
        &self,
        request: &Request,
        viewer: &Viewer,
        owner: &Owner,
        slug: &str,
    ) -> poem::Result<Response> {
        let not_found = || ApiError::not_found("registry.not_found", "Owner or endpoint not found");
        let model = self.service.owner_endpoint(owner, slug).await?.ok_or_else(not_found)?;
        let organization_active = match owner {
            Owner::User(_) => true,
            Owner::Organization(organization) => organization.is_active,
        };
        if !viewer.can_see(&model, organization_active) {
            if viewer.principal.is_none() && model.is_active {
                if wants_html(request) {
                    let next = format!("/login?next={}", request.uri().path());
                    return Ok(Response::builder()
                        .status(StatusCode::SEE_OTHER)
                        .header(header::LOCATION, next)
                        .finish());
                }
                return Err(RegistryError::LoginRequired.into());
            }
            return Err(not_found().into());
        }
        if wants_html(request) {
            return Ok(html_response(endpoint_html(owner, &model)));
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

fn html_response(body: String) -> Response {
    let mut response = poem::web::Html(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    response
}

fn syntax_set() -> &'static SyntaxSet {
    static SYNTAXES: OnceLock<SyntaxSet> = OnceLock::new();
    SYNTAXES.get_or_init(SyntaxSet::load_defaults_newlines)
}

fn highlight_css() -> &'static str {
    static CSS: OnceLock<String> = OnceLock::new();
    CSS.get_or_init(|| {
        let themes = syntect::highlighting::ThemeSet::load_defaults();
        themes
            .themes
            .get("InspiredGitHub")
            .and_then(|theme| css_for_theme_with_class_style(theme, HIGHLIGHT).ok())
            .unwrap_or_default()
    })
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

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1f2328;background:#fff}\
header{padding:1.2rem 2rem;border-bottom:1px solid #d0d7de}\
header a{color:#0969da;text-decoration:none}main{display:flex;gap:2rem;padding:1.5rem 2rem;flex-wrap:wrap}\
article{flex:3;min-width:20rem}aside{flex:1;min-width:14rem}\
.badge{display:inline-block;border:1px solid #d0d7de;border-radius:2em;padding:0 .6em;font-size:.8rem;margin-left:.5em}\
.stats span{margin-right:1.2rem}pre{background:#f6f8fa;padding:1rem;overflow:auto;border-radius:6px}\
.card{border:1px solid #d0d7de;border-radius:6px;padding:.8rem;margin-bottom:.8rem}dl{margin:.3rem 0}dt{font-weight:600}\
li{margin:.4rem 0}";

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}{}</style></head><body>{body}</body></html>\n",
        escape(title),
        highlight_css()
    )
}

fn owner_html(owner: &Owner, endpoints: &[endpoint::Model]) -> String {
    let name = owner.name();
    let items: String = endpoints
        .iter()
        .map(|model| {
            format!(
                "<li><a href=\"/{}/{}\">{}</a><span class=\"badge\">{}</span> — {} ★ {}</li>",
                escape(name),
                escape(&model.slug),
                escape(&model.name),
                escape(&model.visibility),
                escape(&model.description),
                model.stars_count
            )
        })
        .collect();
    let list = if items.is_empty() { "<p>No endpoints yet.</p>".to_owned() } else { format!("<ul>{items}</ul>") };
    layout(
        owner.display_name(),
        &format!("<header><h1>{}</h1></header><main><article>{list}</article></main>", escape(owner.display_name())),
    )
}

fn declarations(title: &str, items: &[serde_json::Value], empty: &str) -> String {
    if items.is_empty() {
        return format!("<h2>{title}</h2><p>{empty}</p>");
    }
    let cards: String = items
        .iter()
        .map(|item| {
            let kind = item.get("type").and_then(|value| value.as_str()).unwrap_or("");
            let enabled = item.get("enabled").and_then(|value| value.as_bool()).unwrap_or(true);
            let description = item.get("description").and_then(|value| value.as_str()).unwrap_or("");
            let config = item.get("config").and_then(|value| value.as_object()).map(|config| {
                config
                    .iter()
                    .map(|(key, value)| {
                        format!("<dt>{}</dt><dd><code>{}</code></dd>", escape(key), escape(&value.to_string()))
                    })
                    .collect::<String>()
            });
            format!(
                "<div class=\"card\"><strong>{}</strong><span class=\"badge\">{}</span><p>{}</p><dl>{}</dl></div>",
                escape(kind),
                if enabled { "enabled" } else { "disabled" },
                escape(description),
                config.unwrap_or_default()
            )
        })
        .collect();
    format!("<h2>{title}</h2>{cards}")
}

fn endpoint_html(owner: &Owner, model: &endpoint::Model) -> String {
    let contributors = contributors_of(model).len();
    let readme = if model.readme.trim().is_empty() {
        "<p>No README available.</p>".to_owned()
    } else {
        render_markdown(&model.readme)
    };
    let tags: String =
        tags_of(model).iter().map(|tag| format!("<span class=\"badge\">{}</span>", escape(tag))).collect();
    let body = format!(
        "<header><h1><a href=\"/{owner}\">{owner_display}</a> / <a href=\"/{owner}/{slug}\">{slug}</a><span class=\"badge visibility {visibility}\">{visibility}</span></h1>\
         <p>{description}</p><p class=\"stats\"><span><strong>{stars}</strong> stars</span><span>Version <strong>{version}</strong></span>\
         <span><strong>{contributors}</strong> contributor{plural}</span><span>{kind}</span></p><p>{tags}</p></header>\
         <main><article><h2>README</h2>{readme}</article><aside>{connections}{policies}</aside></main>",
        owner = escape(owner.name()),
        owner_display = escape(owner.display_name()),
        slug = escape(&model.slug),
        visibility = escape(&model.visibility),
        description = escape(&model.description),
        stars = model.stars_count,
        version = escape(&model.version),
        plural = if contributors == 1 { "" } else { "s" },
        kind = escape(&model.kind),
        connections = declarations("Connections", &connections_of(model), "No connections configured"),
        policies = declarations("Policies", &policies_of(model), "No policies configured"),
    );
    layout(&format!("{} · {}/{}", model.name, owner.display_name(), model.slug), &body)
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
