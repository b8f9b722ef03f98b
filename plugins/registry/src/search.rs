//! Full-text search over name, tags, description and README, ranked in the database and cut
//! to the page there: FTS5 `bm25()` on SQLite (the `endpoint_search` table), `ts_rank_cd` over
//! the GIN-indexed `search_vector` on PostgreSQL. Both indexes hold only what discovery shows
//! (public, active endpoints) and are kept in step with every write in its own transaction
//! (triggers; a generated column and a partial index).
//!
//! Bounded work: a query ranks at most [`RANKED_MATCHES`] matches, the most recently created
//! ones, which both indexes hand out without touching the others (FTS5 walks its lists by
//! rowid from the top; PostgreSQL walks the primary key backwards, or for rare words reads the
//! GIN index). Ranking every match costs time in proportion to the matches (measured at
//! 100 000 endpoints, a word in half of them: 22 ms for FTS5's `ORDER BY rank`, 70 ms for
//! `ts_rank_cd`), which no page of ten hits is worth; `total` is counted within the same window.
//!
//! A relevance score in [0, 1] is then computed the same way on both backends (see
//! [`relevance`]), so scores are comparable across deployments and meaningful on small
//! catalogues, where bm25's IDF is ~0.
//! User input never reaches a query language: it is cut into letter-and-digit words, each
//! quoted and OR-ed; each matches whole words, the last also as a prefix (the word being typed:
//! a prefix costs FTS5 a merge of every matching term's list, twice with bm25).

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};

use crate::model::EndpointKind;

/// At most this many words of a query are used.
const MAX_WORDS: usize = 16;

/// At most this many matches of a query are ranked (the newest); `total` counts up to it.
pub const RANKED_MATCHES: u64 = 500;

/// One candidate: the endpoint id, in the backend's rank order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Hit {
    /// Endpoint id.
    pub(crate) id: i64,
}

/// How much a word matching in each field counts: name, tags, description, README.
const FIELD_WEIGHTS: [f64; 4] = [1.0, 0.8, 0.6, 0.3];

/// Relevance in [0, 1]: for each query word, the weight of the best field containing a word
/// it [`matches`] (0 if none), averaged over the query's words.
pub(crate) fn relevance(query_words: &[String], fields: [&str; 4]) -> f64 {
    if query_words.is_empty() {
        return 0.0;
    }
    let field_words: Vec<Vec<String>> = fields.iter().map(|field| all_words(field)).collect();
    let total: f64 = (0..query_words.len())
        .map(|index| {
            FIELD_WEIGHTS
                .iter()
                .zip(&field_words)
                .filter(|(_, words)| words.iter().any(|word| matched_by(query_words, index, word)))
                .map(|(weight, _)| *weight)
                .fold(0.0, f64::max)
        })
        .sum();
    total / query_words.len() as f64
}

/// Whether `word` (lowercase) is matched by a query of `query_words`, the way search matches:
/// equal to one of them, or starting with the last.
pub fn matches(query_words: &[String], word: &str) -> bool {
    (0..query_words.len()).any(|index| matched_by(query_words, index, word))
}

fn matched_by(query_words: &[String], index: usize, word: &str) -> bool {
    let query_word = query_words[index].as_str();
    if index + 1 == query_words.len() { word.starts_with(query_word) } else { word == query_word }
}

fn all_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()).map(str::to_lowercase).collect()
}

/// The words of a query: runs of Unicode letters and digits, lowercased, at most 64 characters
/// each, de-duplicated. Everything else (quotes, operators, `%`, `_`, `*`) is a separator.
pub fn words(query: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()) {
        let word: String = word.chars().take(64).collect::<String>().to_lowercase();
        if !word.is_empty() && !words.contains(&word) {
            words.push(word);
        }
        if words.len() == MAX_WORDS {
            break;
        }
    }
    words
}

/// Public, active endpoints matching the query's `words` (see [`words`]), best first by the backend's rank, at most
/// `limit`; and how many match, counted up to [`RANKED_MATCHES`]. `hidden_organizations` are
/// suspended organizations whose endpoints never show.
pub(crate) async fn search(
    db: &DatabaseConnection,
    words: &[String],
    kind: Option<EndpointKind>,
    hidden_organizations: &[i64],
    limit: u64,
) -> Result<(Vec<Hit>, u64), sea_orm::DbErr> {
    if words.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let backend = db.get_database_backend();
    let mut values: Vec<Value> = Vec::new();
    let sql = match backend {
        DbBackend::Postgres => {
            values.push(terms(words, ":*", " | ").into());
            let mut filters = String::new();
            if let Some(kind) = kind {
                values.push(kind.as_str().into());
                filters.push_str(&format!(" AND type = ${}", values.len()));
            }
            if !hidden_organizations.is_empty() {
                let list = placeholders(&mut values, hidden_organizations);
                filters.push_str(&format!(" AND (organization_id IS NULL OR organization_id NOT IN ({list}))"));
            }
            // The predicate repeats the partial index's, so the planner may use it.
            format!(
                "SELECT id, rank, COUNT(*) OVER () AS total FROM (\
                   SELECT id, ts_rank_cd(search_vector, to_tsquery('simple', $1)) AS rank FROM (\
                     SELECT id, search_vector FROM endpoints WHERE search_vector @@ to_tsquery('simple', $1) \
                     AND visibility = 'public' AND is_active{filters} ORDER BY id DESC LIMIT {RANKED_MATCHES}\
                   ) AS newest\
                 ) AS ranked ORDER BY rank DESC, id LIMIT {limit}"
            )
        }
        _ => {
            // Each word quoted (words hold letters and digits only), so nothing the user typed
            // is FTS5 syntax; the column filter keeps words off the `kind` column.
            let quoted: Vec<String> = words.iter().map(|word| format!("\"{word}\"")).collect();
            let mut expression = format!("{{name tags description readme}} : ({})", terms(&quoted, "*", " OR "));
            if let Some(kind) = kind {
                expression.push_str(&format!(" AND kind : \"{}\"", kind.as_str().replace('_', "")));
            }
            values.push(expression.into());
            let mut filters = String::new();
            if !hidden_organizations.is_empty() {
                let list = placeholders(&mut values, hidden_organizations);
                filters.push_str(&format!(
                    " AND rowid NOT IN (SELECT id FROM endpoints WHERE organization_id IN ({list}))"
                ));
            }
            // bm25 is negative, smaller is better; weights favour name, then tags and description.
            // It sits in a subquery because SQLite's bm25() may not sit beside a window function.
            format!(
                "SELECT id, rank, COUNT(*) OVER () AS total FROM (\
                   SELECT rowid AS id, bm25(endpoint_search, 10.0, 5.0, 5.0, 1.0, 0.0) AS rank \
                   FROM endpoint_search WHERE endpoint_search MATCH $1{filters} \
                   ORDER BY rowid DESC LIMIT {RANKED_MATCHES}\
                 ) AS newest ORDER BY rank, id LIMIT {limit}"
            )
        }
    };
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    let mut total = 0;
    let mut hits = Vec::with_capacity(rows.len());
    for row in rows {
        // Columns by position: id, rank, total.
        total = row.try_get_by_index::<i64>(2)?.max(0) as u64;
        hits.push(Hit { id: row.try_get_by_index(0)? });
    }
    Ok((hits, total))
}

/// `words` joined by `or`, the last with `prefix` appended.
fn terms(words: &[String], prefix: &str, or: &str) -> String {
    let mut joined = words.join(or);
    joined.push_str(prefix);
    joined
}

/// `$n, $m, …` for `ids`, appended to `values`.
fn placeholders(values: &mut Vec<Value>, ids: &[i64]) -> String {
    ids.iter()
        .map(|id| {
            values.push((*id).into());
            format!("${}", values.len())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn relevance_weighs_fields_and_coverage() {
        let query = words("image classifier");
        assert_eq!(super::relevance(&query, ["Image Classifier", "", "", ""]), 1.0);
        assert_eq!(super::relevance(&query, ["Image tool", "", "", "a classifier"]), (1.0 + 0.3) / 2.0);
        assert_eq!(super::relevance(&query, ["x", "", "", ""]), 0.0);
        assert_eq!(super::relevance(&words("class"), ["", "", "classification models", ""]), 0.6, "prefixes match");
        assert_eq!(
            super::relevance(&words("class model"), ["classification", "", "", "models"]),
            0.15,
            "the last only"
        );
    }

    #[test]
    fn whole_words_match_and_the_last_as_a_prefix() {
        let query = words("image class");
        assert!(super::matches(&query, "image") && super::matches(&query, "classifier"));
        assert!(!super::matches(&query, "images") && !super::matches(&query, "clas"));
        assert_eq!(super::terms(&query, "*", " OR "), "image OR class*");
    }

    #[test]
    fn queries_become_plain_words() {
        assert_eq!(words("Image  classification!"), ["image", "classification"]);
        assert_eq!(words("a% OR _b \"c\"* NEAR(d)"), ["a", "or", "b", "c", "near", "d"]);
        assert_eq!(words("'; DROP TABLE endpoints; --"), ["drop", "table", "endpoints"]);
        assert_eq!(words("Ünïcödé 数据 データ"), ["ünïcödé", "数据", "データ"]);
        assert!(words("%%% ___ ***").is_empty());
    }
}
