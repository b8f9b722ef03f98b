//! Discovery pages: home (trending, recently updated, counts), explore (filters, sort,
//! pagination in the URL) and search (ranked hits, matched words highlighted).

use std::sync::Arc;

use askama::Template;
use poem::Request;
use poem::http::StatusCode;
use poem::{Response, http::Method};
use serde::Deserialize;
use thub_plugin_sdk::ApiError;
use thub_registry::model::EndpointKind;
use thub_registry::search::{RANKED_MATCHES, words};
use thub_registry::{Exploration, OwnerKind, SortOrder};

use crate::Web;
use crate::frame::{Frame, encode_component};
use crate::views::{Card, KINDS, Segment, highlight, kind_label};

/// Cards in each home-page section.
const HOME_CARDS: u64 = 6;
/// Most search hits shown.
const SEARCH_HITS: u64 = 50;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    frame: &'a Frame,
    public_count: u64,
    trending: Vec<Card>,
    recent: Vec<Card>,
}

/// `GET /`: what is popular and what is new.
pub(crate) async fn home(web: Arc<Web>, request: Request) -> Response {
    let frame = match Frame::new(&web, &request).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    let result: Result<HomePage, ApiError> = async {
        let newest = |sort| Exploration { sort, limit: HOME_CARDS, ..Exploration::default() };
        let trending = web.registry.explore(&newest(SortOrder::Stars)).await?;
        let recent = web.registry.explore(&newest(SortOrder::Updated)).await?;
        Ok(HomePage {
            frame: &frame,
            public_count: trending.total,
            trending: Card::many(&trending.endpoints, &trending.owners),
            recent: Card::many(&recent.endpoints, &recent.owners),
        })
    }
    .await;
    match result {
        Ok(page) => frame.render(&page, StatusCode::OK),
        Err(error) => frame.error(&error),
    }
}

/// `?type=&tag=&owner=&sort=&page=` of the explore page, as typed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ExploreQuery {
    #[serde(rename = "type")]
    kind: String,
    tag: String,
    owner: String,
    sort: String,
    page: String,
}

#[derive(Template)]
#[template(path = "explore.html")]
struct ExplorePage<'a> {
    frame: &'a Frame,
    kind: String,
    tag: String,
    owner: String,
    sort: String,
    kinds: &'static [(&'static str, &'static str)],
    cards: Vec<Card>,
    total: u64,
    page: u64,
    pages: u64,
    previous: Option<String>,
    next: Option<String>,
}

/// The explore URL for these filters at `page` (1-based); empty filters are left out.
fn explore_url(query: &ExploreQuery, page: u64) -> String {
    let mut parts = Vec::new();
    for (name, value) in [("type", &query.kind), ("tag", &query.tag), ("owner", &query.owner), ("sort", &query.sort)] {
        if !value.is_empty() {
            parts.push(format!("{name}={}", encode_component(value)));
        }
    }
    if page > 1 {
        parts.push(format!("page={page}"));
    }
    if parts.is_empty() { "/explore".to_owned() } else { format!("/explore?{}", parts.join("&")) }
}

fn bad_filter(message: &str) -> ApiError {
    ApiError::bad_request("web.bad_filter", message.to_owned())
}

/// A `?page=` value: 1 when empty, else a whole number from 1 to 10 000.
pub(crate) fn page_number(text: &str) -> Result<u64, ApiError> {
    match text {
        "" => Ok(1),
        other => other
            .parse::<u64>()
            .ok()
            .filter(|page| (1..=10_000).contains(page))
            .ok_or_else(|| bad_filter("Page must be a whole number from 1 to 10000")),
    }
}

fn exploration(query: &ExploreQuery, page_size: u64) -> Result<(Exploration, u64), ApiError> {
    let kind = match query.kind.as_str() {
        "" => None,
        other => Some(EndpointKind::parse(other).ok_or_else(|| bad_filter("Unknown endpoint type"))?),
    };
    let owner_kind = match query.owner.as_str() {
        "" => None,
        "user" => Some(OwnerKind::User),
        "organization" => Some(OwnerKind::Organization),
        _ => return Err(bad_filter("Owner must be user or organization")),
    };
    let sort = match query.sort.as_str() {
        "" | "stars" => SortOrder::Stars,
        "updated" => SortOrder::Updated,
        "name" => SortOrder::Name,
        _ => return Err(bad_filter("Sort must be stars, updated or name")),
    };
    let page = page_number(&query.page)?;
    let tag = query.tag.trim();
    if tag.chars().count() > 50 {
        return Err(bad_filter("Tags are at most 50 characters"));
    }
    let exploration = Exploration {
        kind,
        tag: (!tag.is_empty()).then(|| tag.to_owned()),
        owner_kind,
        sort,
        skip: (page - 1) * page_size,
        limit: page_size,
    };
    Ok((exploration, page))
}

/// `GET /explore`.
pub(crate) async fn explore(web: Arc<Web>, request: Request) -> Response {
    let frame = match Frame::new(&web, &request).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return frame.not_found();
    }
    let query = request.params::<ExploreQuery>().unwrap_or_default();
    let result: Result<ExplorePage, ApiError> = async {
        let page_size = web.config.page_size;
        let (exploration, page) = exploration(&query, page_size)?;
        let found = web.registry.explore(&exploration).await?;
        let pages = found.total.div_ceil(page_size).max(1);
        Ok(ExplorePage {
            frame: &frame,
            kinds: KINDS,
            cards: Card::many(&found.endpoints, &found.owners),
            total: found.total,
            page,
            pages,
            previous: (page > 1).then(|| explore_url(&query, page - 1)),
            next: (page < pages).then(|| explore_url(&query, page + 1)),
            kind: query.kind.clone(),
            tag: query.tag.clone(),
            owner: query.owner.clone(),
            sort: if query.sort.is_empty() { "stars".to_owned() } else { query.sort.clone() },
        })
    }
    .await;
    match result {
        Ok(page) => frame.render(&page, StatusCode::OK),
        Err(error) => frame.error(&error),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SearchQuery {
    q: String,
}

/// One search result.
struct Hit {
    owner: String,
    slug: String,
    name: Vec<Segment>,
    description: Vec<Segment>,
    kind: &'static str,
    stars: i64,
    tags: Vec<String>,
    relevance: u32,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage<'a> {
    frame: &'a Frame,
    query: String,
    hits: Vec<Hit>,
    total: u64,
    /// The total is the most search counts: there may be more.
    capped: bool,
}

/// `GET /search?q=`.
pub(crate) async fn search(web: Arc<Web>, request: Request) -> Response {
    let mut frame = match Frame::new(&web, &request).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return frame.not_found();
    }
    let query = request.params::<SearchQuery>().unwrap_or_default();
    let text: String = query.q.trim().chars().take(200).collect();
    frame.query = text.clone();
    let result: Result<(Vec<Hit>, u64), ApiError> = async {
        if text.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let found = web.registry.search(&text, None, SEARCH_HITS).await?;
        let query_words = words(&text);
        let hits = found
            .endpoints
            .iter()
            .zip(&found.scores)
            .filter_map(|(model, score)| {
                Some(Hit {
                    owner: found.owners.get(&model.id)?.clone(),
                    slug: model.slug.clone(),
                    name: highlight(&model.name, &query_words),
                    description: highlight(&model.description, &query_words),
                    kind: kind_label(&model.kind),
                    stars: model.stars_count,
                    tags: thub_registry::tags_of(model),
                    relevance: (score * 100.0).round() as u32,
                })
            })
            .collect();
        let total = found.total;
        Ok((hits, total))
    }
    .await;
    match result {
        Ok((hits, total)) => {
            let capped = total >= RANKED_MATCHES;
            let page = SearchPage { frame: &frame, query: text.clone(), hits, total, capped };
            frame.render(&page, StatusCode::OK)
        }
        Err(error) => frame.error(&error),
    }
}
