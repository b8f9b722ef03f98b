//! Full-text search over name, tags, description and README: an index in memory of what
//! discovery shows (public, active endpoints), kept in step with the database, where a query is
//! matched, ranked and cut to the page. The same code on both backends, so the same query finds
//! the same endpoints in the same order on SQLite and on PostgreSQL.
//!
//! Why not the database's own full-text search: ranking (FTS5's `bm25()`, PostgreSQL's
//! `ts_rank_cd`) costs time in proportion to the matches, even when only the newest are ranked:
//! FTS5 counts every match of each word for its IDF and merges every list of a prefix, and
//! PostgreSQL reads each candidate's `tsvector` from the heap. Measured at 100 000 endpoints, a
//! word in half of them took 14–22 ms on SQLite and 5–8 ms on PostgreSQL from one client, and
//! 54–249 ms (p99) under 16. Here a query walks its words' lists from the newest down until it
//! has [`RANKED_MATCHES`] matches that the filters (type, suspended organizations) let through.
//!
//! Matching: user input never reaches a query language. It is cut into letter-and-digit words
//! ([`words`]), OR-ed; each matches whole words, the last also as a prefix (the word being
//! typed). Case and accents do not count ([`fold`]).
//!
//! Ranking, bounded: at most [`RANKED_MATCHES`] matches are ranked, the most recently created
//! ones; `total` counts within that window. Each gets a relevance in [0, 1] (see [`score`]):
//! per query word, the weight of the best field holding it, averaged; ties go to the newest.
//!
//! Kept in step (see [`SearchIndex`]):
//! - this instance's registry writes refresh the endpoints they touched after their commit,
//!   before the write answers, so a writer's next search sees its change;
//! - anything else (another instance's writes, endpoints deleted with their owner): a search
//!   more than `[plugins.registry] listing_cache_seconds` after the last comparison (or after
//!   a user or an organization changed here) reloads the endpoints changed since a minute
//!   before the newest change the index holds, and if the number of discoverable endpoints
//!   still differs, every endpoint whose last change differs ([`SearchIndex::compare`]). Every
//!   registry write sets `updated_at`.
//!
//! Memory: 8 bytes per distinct word of each indexed endpoint in its word's list, 4 in the
//! endpoint's own list, about 100 per endpoint, and each distinct word once.

use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};
use thub_plugin_sdk::Clock;
use unicode_normalization::UnicodeNormalization;

use crate::entity::endpoint;
use crate::model::{EndpointKind, Visibility};

/// At most this many words of a query are used.
const MAX_WORDS: usize = 16;

/// At most this many matches of a query are ranked (the newest); `total` counts up to it.
pub const RANKED_MATCHES: u64 = 500;

/// How much a word matching in each field counts: name, tags, description, README.
const FIELD_WEIGHTS: [f64; 4] = [1.0, 0.8, 0.6, 0.3];

/// Which fields hold a word: bit `i` for field `i` of [`FIELD_WEIGHTS`].
type Fields = u8;

/// Endpoints loaded from the database per query.
const LOAD_BATCH: u64 = 1_000;

/// How far behind the newest change the index holds a change may be stamped and still be
/// found by a comparison (see [`SearchIndex::compare`]): the longest write transaction, and the
/// most instances' clocks may differ.
const SKEW: chrono::Duration = chrono::Duration::seconds(60);

/// Relevance in [0, 1] of a match whose query words were found in these fields, one entry per
/// word: for each query word, the weight of the best field holding a word it [`matches`] (0 if
/// none), averaged over the query's words.
fn score(found: &[Fields]) -> f64 {
    if found.is_empty() {
        return 0.0;
    }
    let best = |fields: Fields| {
        FIELD_WEIGHTS
            .iter()
            .enumerate()
            .filter(|(field, _)| fields & (1 << field) != 0)
            .map(|(_, weight)| *weight)
            .fold(0.0, f64::max)
    };
    found.iter().map(|fields| best(*fields)).sum::<f64>() / found.len() as f64
}

/// Whether `word` (a run of letters and digits) is matched by a query of `query_words` (see
/// [`words`]), the way search matches: once [`fold`]ed, equal to one of them, or starting with
/// the last.
pub fn matches(query_words: &[String], word: &str) -> bool {
    let word = fold(word);
    (0..query_words.len()).any(|index| matched_by(query_words, index, &word))
}

/// A word as search compares it: lowercase, accents dropped, so "Café", "CAFÉ" and "cafe" are
/// one word (as SQLite's FTS5 with `remove_diacritics` had it).
pub fn fold(word: &str) -> String {
    if word.is_ascii() {
        return word.to_ascii_lowercase();
    }
    // Only the accents of Latin, Greek and Cyrillic letters: kana's voicing marks, say, make
    // other letters, and stay.
    word.nfd().filter(|c| !ACCENTS.contains(c)).nfc().flat_map(char::to_lowercase).collect()
}

/// The Combining Diacritical Marks block.
const ACCENTS: std::ops::RangeInclusive<char> = '\u{300}'..='\u{36f}';

fn matched_by(query_words: &[String], index: usize, word: &str) -> bool {
    let query_word = query_words[index].as_str();
    if index + 1 == query_words.len() { word.starts_with(query_word) } else { word == query_word }
}

/// The distinct words of an endpoint's fields (runs of letters and digits, [`fold`]ed), each
/// with the fields it is in.
fn indexed_words(fields: [&str; 4]) -> HashMap<String, Fields> {
    let mut words: HashMap<String, Fields> = HashMap::new();
    for (field, text) in fields.iter().enumerate() {
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()) {
            *words.entry(fold(word)).or_default() |= 1 << field;
        }
    }
    words
}

/// The words of a query: runs of Unicode letters and digits, at most 64 characters each,
/// [`fold`]ed, de-duplicated. Everything else (quotes, operators, `%`, `_`, `*`) is a separator.
pub fn words(query: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()) {
        let word = fold(&word.chars().take(64).collect::<String>());
        if !word.is_empty() && !words.contains(&word) {
            words.push(word);
        }
        if words.len() == MAX_WORDS {
            break;
        }
    }
    words
}

/// What a search found: endpoint ids with their relevance, best first, and how many match
/// (counted up to [`RANKED_MATCHES`]).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Found {
    pub(crate) hits: Vec<(i64, f64)>,
    pub(crate) total: u64,
}

/// The search index of discoverable endpoints (see the module documentation).
pub(crate) struct SearchIndex {
    contents: RwLock<Contents>,
    /// Held by whoever reads the database to change the index, until the change is applied, so
    /// what an earlier reading saw never overwrites what a later one saw.
    changing: tokio::sync::Mutex<()>,
    /// How long the index is trusted without comparing it with the database.
    lifetime: chrono::Duration,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct Contents {
    /// When the index was last compared with the database (`None`: never built, or doubted).
    checked: Option<DateTime<Utc>>,
    /// How many times the index was doubted ([`SearchIndex::doubt`]).
    doubts: u64,
    /// Whether the index was ever built.
    built: bool,
    /// Every distinct word, in order (a prefix is a range), with its number.
    dictionary: BTreeMap<Arc<str>, u32>,
    /// Per word number: the endpoints holding it, ids ascending, each `id << 4 | fields`.
    postings: Vec<Vec<u64>>,
    /// Per word number: its spelling while in use.
    spellings: Vec<Option<Arc<str>>>,
    /// Word numbers free for reuse.
    free: Vec<u32>,
    endpoints: HashMap<i64, Indexed>,
}

/// An indexed endpoint: what a search filters on, and its words (to remove them).
struct Indexed {
    kind: Option<EndpointKind>,
    organization_id: Option<i64>,
    updated_at: DateTime<Utc>,
    words: Box<[u32]>,
}

/// An endpoint read from the database, its words counted, ready to enter the index.
struct Prepared {
    id: i64,
    discoverable: bool,
    kind: Option<EndpointKind>,
    organization_id: Option<i64>,
    updated_at: DateTime<Utc>,
    words: HashMap<String, Fields>,
}

impl Prepared {
    fn of(row: endpoint::Model) -> Self {
        let discoverable = row.is_active && row.visibility == Visibility::Public.as_str();
        let words = if discoverable {
            indexed_words([&row.name, &row.tags, &row.description, &row.readme])
        } else {
            HashMap::new()
        };
        Self {
            id: row.id,
            discoverable,
            kind: EndpointKind::parse(&row.kind),
            organization_id: row.organization_id,
            updated_at: row.updated_at,
            words,
        }
    }
}

/// Public, active endpoints: what the index holds.
fn discoverable() -> Condition {
    Condition::all()
        .add(endpoint::Column::Visibility.eq(Visibility::Public.as_str()))
        .add(endpoint::Column::IsActive.eq(true))
}

/// Each discoverable endpoint's id and last change: what tells the index what to reload.
fn stamps() -> Select<endpoint::Entity> {
    endpoint::Entity::find()
        .select_only()
        .column(endpoint::Column::Id)
        .column(endpoint::Column::UpdatedAt)
        .filter(discoverable())
}

impl SearchIndex {
    /// An empty index, built on first use; compared with the database when `lifetime_seconds`
    /// have passed since the last comparison.
    pub(crate) fn new(lifetime_seconds: u64, clock: Arc<dyn Clock>) -> Self {
        Self {
            contents: RwLock::default(),
            changing: tokio::sync::Mutex::new(()),
            lifetime: thub_plugin_sdk::seconds(lifetime_seconds),
            clock,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Contents> {
        self.contents.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Contents> {
        self.contents.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Discoverable endpoints matching the query's `words` (see [`words`]), of `kind` if given,
    /// not of the `hidden_organizations`: the best `limit`, and how many match (see [`Found`]).
    pub(crate) async fn search(
        &self,
        db: &DatabaseConnection,
        words: &[String],
        kind: Option<EndpointKind>,
        hidden_organizations: &[i64],
        limit: usize,
    ) -> Result<Found, DbErr> {
        if self.due() {
            self.catch_up(db).await?;
        }
        Ok(self.read().rank(words, kind, hidden_organizations, limit))
    }

    /// Whether the index must be compared with the database before it answers.
    fn due(&self) -> bool {
        self.read().checked.is_none_or(|checked| self.clock.now() - checked >= self.lifetime)
    }

    /// Has the next search compare the index with the database: something may have changed
    /// that no refresh announces (an owner deleted with its endpoints).
    pub(crate) fn doubt(&self) {
        let mut contents = self.write();
        contents.checked = None;
        contents.doubts += 1;
    }

    /// Builds the index, or compares it with the database and reloads what differs.
    pub(crate) async fn catch_up(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let _turn = self.changing.lock().await;
        if !self.due() {
            return Ok(()); // Whoever held the turn before did it.
        }
        let started = self.clock.now();
        let doubts = self.read().doubts;
        if self.read().built {
            self.compare(db).await?;
        } else {
            self.build(db).await?;
        }
        // A doubt raised meanwhile may concern what was read before it: it stands.
        let mut contents = self.write();
        if contents.doubts == doubts {
            contents.checked = Some(started);
        }
        Ok(())
    }

    /// Loads every discoverable endpoint, a batch at a time.
    async fn build(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        {
            // What a build that failed half-way loaded may be out of date by now.
            let mut contents = self.write();
            let doubts = contents.doubts;
            *contents = Contents { doubts, ..Contents::default() };
        }
        let mut after = 0;
        loop {
            let rows = endpoint::Entity::find()
                .filter(discoverable())
                .filter(endpoint::Column::Id.gt(after))
                .order_by_asc(endpoint::Column::Id)
                .limit(LOAD_BATCH)
                .all(db)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            let prepared: Vec<Prepared> = rows.into_iter().map(Prepared::of).collect();
            self.write().apply(prepared);
        }
        self.write().built = true;
        Ok(())
    }

    /// Compares the index with the database, reloading what differs: the endpoints changed
    /// within [`SKEW`] of the newest change the index holds (a later commit of an earlier
    /// change, or another instance's clock running behind, falls there), and, when the number
    /// of discoverable endpoints still differs, every endpoint whose last change differs.
    async fn compare(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let newest = self.read().endpoints.values().map(|indexed| indexed.updated_at).max();
        let mut recent = stamps();
        if let Some(newest) = newest {
            recent = recent.filter(endpoint::Column::UpdatedAt.gte(newest - SKEW));
        }
        let recent: Vec<(i64, DateTime<Utc>)> = recent.into_tuple().all(db).await?;
        let changed = self.read().differing(&recent);
        self.reload(db, &[], &changed).await?;
        let count = endpoint::Entity::find().filter(discoverable()).count(db).await?;
        if usize::try_from(count).ok() != Some(self.read().endpoints.len()) {
            self.reconcile(db).await?;
        }
        Ok(())
    }

    /// Reloads every endpoint whose last change differs from the index's, and drops those no
    /// longer discoverable.
    async fn reconcile(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let stored: Vec<(i64, DateTime<Utc>)> = stamps().into_tuple().all(db).await?;
        let (gone, changed) = {
            let contents = self.read();
            let kept: HashSet<i64> = stored.iter().map(|(id, _)| *id).collect();
            let gone: Vec<i64> = contents.endpoints.keys().copied().filter(|id| !kept.contains(id)).collect();
            (gone, contents.differing(&stored))
        };
        self.reload(db, &gone, &changed).await
    }

    /// Drops the endpoints `gone` and reads the endpoints `changed` again, applied in one step.
    async fn reload(&self, db: &DatabaseConnection, gone: &[i64], changed: &[i64]) -> Result<(), DbErr> {
        if gone.is_empty() && changed.is_empty() {
            return Ok(());
        }
        let prepared = Self::read_endpoints(db, changed).await?;
        let mut contents = self.write();
        contents.remove_all(gone);
        contents.remove_all(changed);
        contents.apply(prepared);
        Ok(())
    }

    /// Brings the endpoints `ids` up to date (after this instance changed them): each enters,
    /// changes in or leaves the index as it now is in the database.
    pub(crate) async fn refresh(&self, db: &DatabaseConnection, ids: &[i64]) -> Result<(), DbErr> {
        let _turn = self.changing.lock().await;
        if !self.read().built {
            return Ok(()); // The first search builds it from the database as it is then.
        }
        // Applied at once, so a search meanwhile finds each endpoint as it was or as it is.
        self.reload(db, &[], ids).await
    }

    /// The endpoints `ids` as stored (those deleted are missing), ready for the index.
    async fn read_endpoints(db: &DatabaseConnection, ids: &[i64]) -> Result<Vec<Prepared>, DbErr> {
        let mut prepared = Vec::with_capacity(ids.len());
        for batch in ids.chunks(LOAD_BATCH as usize) {
            let rows = endpoint::Entity::find().filter(endpoint::Column::Id.is_in(batch.to_vec())).all(db).await?;
            prepared.extend(rows.into_iter().map(Prepared::of));
        }
        Ok(prepared)
    }
}

impl Contents {
    /// Which of the `stored` endpoints (id, last change) the index holds otherwise, or not.
    fn differing(&self, stored: &[(i64, DateTime<Utc>)]) -> Vec<i64> {
        stored
            .iter()
            .filter(|(id, updated_at)| self.endpoints.get(id).is_none_or(|known| known.updated_at != *updated_at))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Puts each endpoint in the index as it was read: in it if discoverable, else out.
    fn apply(&mut self, prepared: Vec<Prepared>) {
        let ids: Vec<i64> = prepared.iter().map(|endpoint| endpoint.id).collect();
        self.remove_all(&ids);
        // Appended, then each list that got an id below its last sorted once (a build appends
        // in id order and sorts nothing).
        let mut unsorted: HashSet<u32> = HashSet::new();
        for endpoint in prepared.into_iter().filter(|endpoint| endpoint.discoverable) {
            let mut words = Vec::with_capacity(endpoint.words.len());
            for (word, fields) in endpoint.words {
                let number = self.number(word);
                let list = &mut self.postings[number as usize];
                if list.last().is_some_and(|last| (last >> 4) as i64 > endpoint.id) {
                    unsorted.insert(number);
                }
                list.push((endpoint.id as u64) << 4 | u64::from(fields));
                words.push(number);
            }
            let indexed = Indexed {
                kind: endpoint.kind,
                organization_id: endpoint.organization_id,
                updated_at: endpoint.updated_at,
                words: words.into_boxed_slice(),
            };
            self.endpoints.insert(endpoint.id, indexed);
        }
        for number in unsorted {
            self.postings[number as usize].sort_unstable();
        }
    }

    /// Takes the endpoints `ids` out of the index: each list they were in is walked once.
    fn remove_all(&mut self, ids: &[i64]) {
        let mut gone: HashSet<i64> = HashSet::new();
        let mut lists: HashSet<u32> = HashSet::new();
        for id in ids {
            if let Some(indexed) = self.endpoints.remove(id) {
                gone.insert(*id);
                lists.extend(indexed.words.iter());
            }
        }
        for number in lists {
            let list = &mut self.postings[number as usize];
            list.retain(|posting| !gone.contains(&((posting >> 4) as i64)));
            if list.is_empty() {
                *list = Vec::new(); // Its memory too.
                if let Some(spelling) = self.spellings[number as usize].take() {
                    self.dictionary.remove(&spelling);
                }
                self.free.push(number);
            }
        }
    }

    /// The number of `word`, given one if new.
    fn number(&mut self, word: String) -> u32 {
        if let Some(number) = self.dictionary.get(word.as_str()) {
            return *number;
        }
        let spelling: Arc<str> = word.into();
        let number = match self.free.pop() {
            Some(number) => number,
            None => {
                self.postings.push(Vec::new());
                self.spellings.push(None);
                (self.postings.len() - 1) as u32
            }
        };
        self.spellings[number as usize] = Some(spelling.clone());
        self.dictionary.insert(spelling, number);
        number
    }

    /// The query's matches (see the module documentation), best first, at most `limit`.
    fn rank(&self, words: &[String], kind: Option<EndpointKind>, hidden: &[i64], limit: usize) -> Found {
        // Every list a query word takes: its own, or for the last every word it begins.
        let mut lists: Vec<(usize, &[u64])> = Vec::new();
        for (index, word) in words.iter().enumerate() {
            if index + 1 == words.len() {
                let begun = self
                    .dictionary
                    .range::<str, _>((Bound::Included(word.as_str()), Bound::Unbounded))
                    .take_while(|(key, _)| key.starts_with(word));
                lists.extend(begun.map(|(_, number)| (index, self.postings[*number as usize].as_slice())));
            } else if let Some(number) = self.dictionary.get(word.as_str()) {
                lists.push((index, self.postings[*number as usize].as_slice()));
            }
        }
        // Walk the lists from their newest posting down, merged: (posting, list, position).
        let mut heads: BinaryHeap<(u64, usize, usize)> = lists
            .iter()
            .enumerate()
            .filter_map(|(list, (_, postings))| postings.last().map(|posting| (*posting, list, postings.len() - 1)))
            .collect();
        let mut ranked: Vec<(f64, i64)> = Vec::new();
        let mut current: Option<i64> = None;
        let mut found: Vec<Fields> = vec![0; words.len()];
        let admit = |id: i64, found: &[Fields], ranked: &mut Vec<(f64, i64)>| {
            let shown = self.endpoints.get(&id).is_some_and(|indexed| {
                kind.is_none_or(|kind| indexed.kind == Some(kind))
                    && indexed.organization_id.is_none_or(|organization| !hidden.contains(&organization))
            });
            if shown {
                ranked.push((score(found), id));
            }
        };
        while let Some((posting, list, position)) = heads.pop() {
            let id = (posting >> 4) as i64;
            if current != Some(id) {
                if let Some(previous) = current {
                    admit(previous, &found, &mut ranked);
                    if ranked.len() as u64 == RANKED_MATCHES {
                        current = None;
                        break;
                    }
                }
                current = Some(id);
                found.fill(0);
            }
            let (index, postings) = lists[list];
            found[index] |= (posting & 0xF) as Fields;
            if position > 0 {
                heads.push((postings[position - 1], list, position - 1));
            }
        }
        if let Some(last) = current {
            admit(last, &found, &mut ranked);
        }
        let total = ranked.len() as u64;
        // Best first; among equals, the newest.
        ranked.sort_by(|left, right| right.0.total_cmp(&left.0).then(right.1.cmp(&left.1)));
        ranked.truncate(limit);
        Found { hits: ranked.into_iter().map(|(score, id)| (id, score)).collect(), total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relevance of an endpoint with these fields (name, tags, description, README) to a query,
    /// from its text: what the index must agree with.
    fn relevance(query_words: &[String], fields: [&str; 4]) -> f64 {
        let indexed = indexed_words(fields);
        let found: Vec<Fields> = (0..query_words.len())
            .map(|index| {
                indexed
                    .iter()
                    .filter(|(word, _)| matched_by(query_words, index, word))
                    .fold(0, |all, (_, in_)| all | in_)
            })
            .collect();
        score(&found)
    }

    #[test]
    fn relevance_weighs_fields_and_coverage() {
        let query = words("image classifier");
        assert_eq!(relevance(&query, ["Image Classifier", "", "", ""]), 1.0);
        assert_eq!(relevance(&query, ["Image tool", "", "", "a classifier"]), (1.0 + 0.3) / 2.0);
        assert_eq!(relevance(&query, ["x", "", "", ""]), 0.0);
        assert_eq!(relevance(&words("class"), ["", "", "classification models", ""]), 0.6, "prefixes match");
        assert_eq!(relevance(&words("class model"), ["classification", "", "", "models"]), 0.15, "the last only");
    }

    #[test]
    fn whole_words_match_and_the_last_as_a_prefix() {
        let query = words("image class");
        assert!(matches(&query, "image") && matches(&query, "classifier"));
        assert!(!matches(&query, "images") && !matches(&query, "clas"));
        assert!(matches(&words("cafe"), "Café") && matches(&words("café"), "CAFE"));
    }

    #[test]
    fn queries_become_plain_words() {
        assert_eq!(words("Image  classification!"), ["image", "classification"]);
        assert_eq!(words("a% OR _b \"c\"* NEAR(d)"), ["a", "or", "b", "c", "near", "d"]);
        assert_eq!(words("'; DROP TABLE endpoints; --"), ["drop", "table", "endpoints"]);
        assert_eq!(words("Ünïcödé 数据 データ"), ["unicode", "数据", "データ"]);
        assert_eq!(words("Café CAFÉ cafe"), ["cafe"], "accents and case fold");
        assert!(words("%%% ___ ***").is_empty());
    }

    fn endpoint(id: i64, kind: EndpointKind, organization_id: Option<i64>, fields: [&str; 4]) -> Prepared {
        Prepared {
            id,
            discoverable: true,
            kind: Some(kind),
            organization_id,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            words: indexed_words(fields),
        }
    }

    fn ids(found: &Found) -> Vec<i64> {
        found.hits.iter().map(|(id, _)| *id).collect()
    }

    #[test]
    fn the_index_ranks_by_relevance_then_newest_and_filters() {
        let mut contents = Contents::default();
        contents.apply(vec![
            endpoint(1, EndpointKind::Model, None, ["Image classifier", "", "", ""]),
            endpoint(2, EndpointKind::Agent, Some(7), ["Tool", "[\"image\"]", "", ""]),
            endpoint(3, EndpointKind::Model, None, ["Other", "", "", "an image and a classifier"]),
            endpoint(4, EndpointKind::Model, None, ["Image classifier v2", "", "", ""]),
        ]);
        let query = words("image class");
        let found = contents.rank(&query, None, &[], 10);
        assert_eq!(ids(&found), [4, 1, 2, 3], "{found:?}");
        assert_eq!(found.hits[0].1, relevance(&query, ["Image classifier v2", "", "", ""]));
        assert_eq!(found.total, 4);
        assert_eq!(ids(&contents.rank(&query, Some(EndpointKind::Agent), &[], 10)), [2]);
        assert_eq!(ids(&contents.rank(&query, None, &[7], 10)), [4, 1, 3], "a hidden organization's endpoint");
        let cut = contents.rank(&query, None, &[], 1);
        assert_eq!((ids(&cut), cut.total), (vec![4], 4), "cut to the page, counted whole");
        assert!(
            contents.rank(&words("imag"), None, &[], 10).total == 4
                && contents.rank(&words("imag x"), None, &[], 10).total == 0
        );
    }

    #[test]
    fn removed_and_changed_endpoints_leave_no_words_behind() {
        let mut contents = Contents::default();
        contents.apply(vec![endpoint(1, EndpointKind::Model, None, ["Quasar", "", "", "pulsar"])]);
        contents.apply(vec![endpoint(1, EndpointKind::Model, None, ["Nebula", "", "", ""])]);
        assert_eq!(contents.rank(&words("quasar"), None, &[], 10), Found::default());
        assert_eq!(ids(&contents.rank(&words("nebula"), None, &[], 10)), [1]);
        contents.remove_all(&[1]);
        assert!(contents.dictionary.is_empty() && contents.endpoints.is_empty());
        assert_eq!(contents.free.len(), contents.postings.len(), "every word's number is free again");
    }

    #[test]
    fn only_the_newest_matches_are_ranked() {
        let mut contents = Contents::default();
        let count = RANKED_MATCHES as i64 + 5;
        contents.apply((1..=count).map(|id| endpoint(id, EndpointKind::Model, None, ["", "", "", "comet"])).collect());
        // The oldest is the best match, but outside the window.
        contents.apply(vec![endpoint(1, EndpointKind::Model, None, ["comet", "", "", ""])]);
        let found = contents.rank(&words("comet"), None, &[], 3);
        assert_eq!((ids(&found), found.total), (vec![count, count - 1, count - 2], RANKED_MATCHES));
    }
}
