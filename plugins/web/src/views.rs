//! View models shared by several pages: plain structs built from service results, nothing
//! the templates have to compute.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use thub_registry::entity::endpoint;
use thub_registry::tags_of;

/// An endpoint as a card in a list.
pub(crate) struct Card {
    pub(crate) owner: String,
    pub(crate) slug: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) kind: &'static str,
    pub(crate) stars: i64,
    pub(crate) updated: String,
    pub(crate) tags: Vec<String>,
}

impl Card {
    /// Cards for `endpoints` whose owners are known (`owners`: endpoint id → owner name).
    pub(crate) fn many(endpoints: &[endpoint::Model], owners: &HashMap<i64, String>) -> Vec<Self> {
        endpoints
            .iter()
            .filter_map(|model| {
                Some(Self {
                    owner: owners.get(&model.id)?.clone(),
                    slug: model.slug.clone(),
                    name: model.name.clone(),
                    description: model.description.clone(),
                    kind: kind_label(&model.kind),
                    stars: model.stars_count,
                    updated: day(model.updated_at),
                    tags: tags_of(model),
                })
            })
            .collect()
    }
}

/// A person-readable name of an endpoint kind.
pub(crate) fn kind_label(kind: &str) -> &'static str {
    match kind {
        "model" => "Model",
        "data_source" => "Data source",
        "model_data_source" => "Model + data source",
        "agent" => "Agent",
        _ => "Endpoint",
    }
}

/// The endpoint kinds as `(value, label)`, in the order forms and filters show them.
pub(crate) const KINDS: &[(&str, &str)] = &[
    ("model", "Model"),
    ("data_source", "Data source"),
    ("model_data_source", "Model + data source"),
    ("agent", "Agent"),
];

/// A date as `2026-11-30`.
pub(crate) fn day(instant: DateTime<Utc>) -> String {
    instant.format("%Y-%m-%d").to_string()
}

/// A time as `2026-11-30 16:05 UTC`.
pub(crate) fn minute(instant: DateTime<Utc>) -> String {
    instant.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// One piece of highlighted text: `(text, matched)`.
pub(crate) type Segment = (String, bool);

/// Splits `text` into pieces, marking the letter-and-digit words that the query `words` match,
/// as search matches them (whole words, the last query word also as a prefix).
pub(crate) fn highlight(text: &str, words: &[String]) -> Vec<Segment> {
    let mut segments: Vec<Segment> = Vec::new();
    let mut push = |piece: &str, matched: bool| match segments.last_mut() {
        Some((last, last_matched)) if *last_matched == matched => last.push_str(piece),
        _ => segments.push((piece.to_owned(), matched)),
    };
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest.find(char::is_alphanumeric).unwrap_or(rest.len());
        push(&rest[..start], false);
        rest = &rest[start..];
        let end = rest.find(|c: char| !c.is_alphanumeric()).unwrap_or(rest.len());
        let word = &rest[..end];
        if !word.is_empty() {
            let lower = word.to_lowercase();
            push(word, thub_registry::search::matches(words, &lower));
        }
        rest = &rest[end..];
    }
    segments
}

/// The first letter of a name, for an avatar.
pub(crate) fn initial(name: &str) -> String {
    name.chars().find(|c| c.is_alphanumeric()).map(|c| c.to_uppercase().to_string()).unwrap_or_else(|| "?".to_owned())
}

#[cfg(test)]
mod tests {
    use super::highlight;

    #[test]
    fn matched_words_are_marked_as_search_matches_them() {
        let words = vec!["model".to_owned(), "net".to_owned()];
        let segments = highlight("Vision <b>model</b>, models, a network!", &words);
        let marked: Vec<&str> =
            segments.iter().filter(|(_, matched)| *matched).map(|(text, _)| text.as_str()).collect();
        assert_eq!(marked, ["model", "network"], "whole words, the last as a prefix");
        let joined: String = segments.iter().map(|(text, _)| text.as_str()).collect();
        assert_eq!(joined, "Vision <b>model</b>, models, a network!");
    }
}
