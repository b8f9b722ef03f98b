//! Full-text search over name, description, tags and README: FTS5 + bm25 on SQLite,
//! `tsvector` + `ts_rank` on PostgreSQL find and order candidates; a relevance score in [0, 1]
//! is then computed the same way on both backends (see [`relevance`]), so scores are
//! comparable across deployments and meaningful on small catalogues, where bm25's IDF is ~0.
//! User input never reaches a query language: it is cut into letter-and-digit words, each
//! matched as a prefix, OR-ed.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};

use crate::model::EndpointKind;

/// At most this many words of a query are used.
const MAX_WORDS: usize = 16;

/// One candidate: the endpoint id, in the backend's rank order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Hit {
    /// Endpoint id.
    pub(crate) id: i64,
}

/// How much a word matching in each field counts: name, tags, description, README.
const FIELD_WEIGHTS: [f64; 4] = [1.0, 0.8, 0.6, 0.3];

/// Relevance in [0, 1]: for each query word, the weight of the best field containing a word
/// that starts with it (0 if none), averaged over the query's words.
pub(crate) fn relevance(query_words: &[String], fields: [&str; 4]) -> f64 {
    if query_words.is_empty() {
        return 0.0;
    }
    let field_words: Vec<Vec<String>> = fields.iter().map(|field| all_words(field)).collect();
    let total: f64 = query_words
        .iter()
        .map(|query_word| {
            FIELD_WEIGHTS
                .iter()
                .zip(&field_words)
                .filter(|(_, words)| words.iter().any(|word| word.starts_with(query_word.as_str())))
                .map(|(weight, _)| *weight)
                .fold(0.0, f64::max)
        })
        .sum();
    total / query_words.len() as f64
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

/// Public, active endpoints matching `query`, in the backend's rank order, at most `limit`;
/// and how many match in all. `hidden_organizations` are suspended organizations whose endpoints never show.
pub(crate) async fn search(
    db: &DatabaseConnection,
    query: &str,
    kind: Option<EndpointKind>,
    hidden_organizations: &[i64],
    limit: u64,
) -> Result<(Vec<Hit>, u64), sea_orm::DbErr> {
    let words = words(query);
    if words.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let backend = db.get_database_backend();
    let (match_clause, rank, order, search_text) = match backend {
        DbBackend::Postgres => (
            "e.search_vector @@ to_tsquery('simple', $1)",
            "ts_rank(e.search_vector, to_tsquery('simple', $1), 32)",
            "rank DESC",
            words.iter().map(|word| format!("{word}:*")).collect::<Vec<_>>().join(" | "),
        ),
        _ => (
            "endpoints_fts MATCH $1",
            // bm25 is negative, smaller is better; weights favour name, then description and tags.
            "bm25(endpoints_fts, 10.0, 5.0, 5.0, 1.0)",
            "rank ASC",
            words.iter().map(|word| format!("\"{word}\"*")).collect::<Vec<_>>().join(" OR "),
        ),
    };
    let from = match backend {
        DbBackend::Postgres => "endpoints e",
        // CROSS JOIN fixes SQLite's join order: the full-text match drives, then each hit's row
        // is read by primary key. Left to itself the planner may walk the discovery index and
        // run the full-text query once per row.
        _ => "endpoints_fts CROSS JOIN endpoints e ON e.id = endpoints_fts.rowid",
    };
    let mut values: Vec<Value> = vec![search_text.into()];
    let mut filters = String::from(" AND e.visibility = 'public' AND e.is_active = $2");
    values.push(true.into());
    if let Some(kind) = kind {
        values.push(kind.as_str().into());
        filters.push_str(&format!(" AND e.type = ${}", values.len()));
    }
    for organization in hidden_organizations {
        values.push((*organization).into());
        filters.push_str(&format!(" AND (e.organization_id IS NULL OR e.organization_id <> ${})", values.len()));
    }
    // One pass: the window count gives the total number of matches beside the best `limit`
    // (in a subquery, because SQLite's bm25() may not sit beside a window function).
    let sql = format!(
        "SELECT id, rank, COUNT(*) OVER () AS total FROM (SELECT e.id AS id, {rank} AS rank FROM {from} \
         WHERE {match_clause}{filters}) AS matches ORDER BY {order}, id LIMIT {limit}"
    );
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
