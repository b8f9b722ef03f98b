//! The registry's domain values and their validation: kinds, visibility, versions, tags,
//! policies and connections. Each problem is reported as `(field, message)` so one validator
//! serves both single requests (422 per field) and sync batches (400 per index).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use thub_plugin_sdk::text::{self, line_problem, text_problem};
use thub_plugin_sdk::{Declaration, Declared, closed_object};

use crate::config::RegistryConfig;

/// What an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Enum)]
#[serde(rename_all = "snake_case")]
#[oai(rename_all = "snake_case")]
pub enum EndpointKind {
    /// A model.
    Model,
    /// A data source.
    DataSource,
    /// Both.
    ModelDataSource,
    /// An agent.
    Agent,
}

impl EndpointKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointKind::Model => "model",
            EndpointKind::DataSource => "data_source",
            EndpointKind::ModelDataSource => "model_data_source",
            EndpointKind::Agent => "agent",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        [EndpointKind::Model, EndpointKind::DataSource, EndpointKind::ModelDataSource, EndpointKind::Agent]
            .into_iter()
            .find(|kind| kind.as_str() == value)
    }
}

/// Who sees an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Enum)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum Visibility {
    /// Everyone, logged in or not; listed in discovery.
    Public,
    /// Every logged-in user of this hub.
    Internal,
    /// The owning user, or the owning organization's members; and site administrators.
    Private,
}

impl Visibility {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Internal => "internal",
            Visibility::Private => "private",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        [Visibility::Public, Visibility::Internal, Visibility::Private]
            .into_iter()
            .find(|visibility| visibility.as_str() == value)
    }
}

/// A field problem: `(field, message)`.
pub type Problem = (String, String);

fn problem(field: &str, message: impl Into<String>) -> Problem {
    (field.to_owned(), message.into())
}

/// The fields of an endpoint as a client sends them, before validation.
#[derive(Debug, Clone, Default)]
pub struct EndpointDraft {
    /// Display name.
    pub name: Option<String>,
    /// Explicit slug.
    pub slug: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Kind.
    pub kind: Option<EndpointKind>,
    /// Visibility.
    pub visibility: Option<Visibility>,
    /// Version.
    pub version: Option<String>,
    /// README.
    pub readme: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Policies, as JSON objects.
    pub policies: Option<Vec<Value>>,
    /// Connections, as JSON objects.
    pub connect: Option<Vec<Value>>,
    /// Contributor user ids.
    pub contributors: Option<Vec<i64>>,
}

/// Checked, normalised values of the fields a draft sets.
#[derive(Debug, Clone, Default)]
pub struct CheckedFields {
    /// Trimmed name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Semantic version.
    pub version: Option<String>,
    /// README.
    pub readme: Option<String>,
    /// Trimmed, de-duplicated tags.
    pub tags: Option<Vec<String>>,
    /// Policies with every key present.
    pub policies: Option<Vec<Value>>,
    /// Connections with every key present.
    pub connect: Option<Vec<Value>>,
}

/// Most tags an endpoint has (after removing duplicates).
pub const MAX_TAGS: usize = 20;

/// Most contributors an endpoint lists.
pub const MAX_CONTRIBUTORS: usize = 100;

/// Longest tag, counted after trimming.
const TAG_MAX_CHARS: usize = 50;

/// Longest version string.
const VERSION_MAX_CHARS: usize = 50;

thub_plugin_sdk::declared_string! {
    /// A tag as a client sends it: 1–50 characters on one line after trimming.
    pub struct Tag;
    schema = |schema| schema.pattern = Some(thub_plugin_sdk::text::trimmed_line_pattern(TAG_MAX_CHARS));
}

thub_plugin_sdk::declared_string! {
    /// A README as a client sends it: text ([`text_problem`]); its length bound is the
    /// configured `max_readme_chars`.
    pub struct Readme;
    schema = |schema| schema.pattern = Some(thub_plugin_sdk::text::TEXT_PATTERN.to_owned());
}

thub_plugin_sdk::declared_string! {
    /// A version as a client sends it: [`is_semver`] as a pattern.
    pub struct SemanticVersion;
    schema = |schema| {
        schema.max_length = Some(VERSION_MAX_CHARS);
        schema.pattern = Some(SEMVER_PATTERN.to_owned());
    };
}

/// Longest `type` of a policy, counted after trimming.
const POLICY_TYPE_MAX_CHARS: usize = 100;

/// Longest `type` of a connection, counted after trimming.
const CONNECTION_TYPE_MAX_CHARS: usize = 50;

/// A policy as a client sends it; [`declaration`] checks it.
pub type PolicyItem = Declared<PolicySchema>;

/// A connection as a client sends it; [`declaration`] checks it.
pub type ConnectionItem = Declared<ConnectionSchema>;

/// The schema of [`PolicyItem`].
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySchema;

/// The schema of [`ConnectionItem`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionSchema;

impl Declaration for PolicySchema {
    const NAME: &'static str = "Policy";
    fn schema() -> MetaSchema {
        declaration_schema(POLICY_TYPE_MAX_CHARS, true)
    }
}

impl Declaration for ConnectionSchema {
    const NAME: &'static str = "Connection";
    fn schema() -> MetaSchema {
        declaration_schema(CONNECTION_TYPE_MAX_CHARS, false)
    }
}

/// What [`declaration`] accepts, as a schema: `type` required, the keys it knows and no
/// others, the same length and character rules.
fn declaration_schema(max_type: usize, versioned: bool) -> MetaSchema {
    let inline = |schema: MetaSchema| MetaSchemaRef::Inline(Box::new(schema));
    let string = |pattern: String, max_length: Option<usize>| {
        let mut schema = MetaSchema::new("string");
        schema.pattern = Some(pattern);
        schema.max_length = max_length;
        inline(schema)
    };
    let space = text::WHITE_SPACE_CLASS;
    let mut schema = MetaSchema::new("object");
    schema.required = vec!["type"];
    schema.properties.push(("type", string(text::trimmed_line_pattern(max_type), None)));
    if versioned {
        schema.properties.push(("version", string(format!("^[{space}]*[0-9]+\\.[0-9]+[{space}]*$"), None)));
    }
    schema.properties.push(("enabled", inline(MetaSchema::new("boolean"))));
    schema.properties.push(("description", string(text::TEXT_PATTERN.to_owned(), Some(text::DESCRIPTION_MAX_CHARS))));
    schema.properties.push(("config", inline(MetaSchema::new("object"))));
    closed_object(&mut schema);
    schema
}

/// [`is_semver`]: three numbers without leading zeros, then optional pre-release identifiers
/// (numeric ones without leading zeros) and build identifiers.
const SEMVER_PATTERN: &str = concat!(
    r"^(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)",
    r"(?:-(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?",
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
);

/// Checks what `draft` sets; `creating` also requires name and kind.
pub fn check(draft: &EndpointDraft, config: &RegistryConfig, creating: bool) -> Result<CheckedFields, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut checked = CheckedFields::default();
    match &draft.name {
        Some(name) => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                problems.push(problem("name", "Name must be between 1 and 100 characters"));
            }
            if let Some(message) = line_problem(name) {
                problems.push(problem("name", message));
            }
            checked.name = Some(name.to_owned());
        }
        None if creating => problems.push(problem("name", "Field required")),
        None => {}
    }
    if creating && draft.kind.is_none() {
        problems.push(problem("type", "Field required"));
    }
    if let Some(description) = &draft.description {
        if description.chars().count() > 500 {
            problems.push(problem("description", "Description must be at most 500 characters"));
        }
        if let Some(message) = text_problem(description) {
            problems.push(problem("description", message));
        }
        checked.description = Some(description.clone());
    }
    if let Some(version) = &draft.version {
        if !is_semver(version) {
            problems.push(problem("version", "Version must be a semantic version (MAJOR.MINOR.PATCH[-pre][+build])"));
        }
        checked.version = Some(version.clone());
    }
    if let Some(readme) = &draft.readme {
        if readme.chars().count() > config.max_readme_chars {
            problems.push(problem("readme", format!("README must be at most {} characters", config.max_readme_chars)));
        }
        if let Some(message) = text_problem(readme) {
            problems.push(problem("readme", message));
        }
        checked.readme = Some(readme.clone());
    }
    if let Some(tags) = &draft.tags {
        let mut kept: Vec<String> = Vec::new();
        for tag in tags {
            let tag = tag.trim();
            if tag.is_empty() || tag.chars().count() > TAG_MAX_CHARS {
                problems.push(problem("tags", "Each tag must be between 1 and 50 characters"));
            } else if let Some(message) = line_problem(tag) {
                problems.push(problem("tags", message));
            } else if !kept.iter().any(|existing| existing == tag) {
                kept.push(tag.to_owned());
            }
        }
        if kept.len() > MAX_TAGS {
            problems.push(problem("tags", format!("At most {MAX_TAGS} tags")));
        }
        checked.tags = Some(kept);
    }
    if let Some(policies) = &draft.policies {
        checked.policies = Some(
            policies
                .iter()
                .enumerate()
                .filter_map(|(index, policy)| {
                    declaration(policy, &format!("policies.{index}"), POLICY_TYPE_MAX_CHARS, true)
                        .map_err(|found| problems.extend(found))
                        .ok()
                })
                .collect(),
        );
    }
    if let Some(connect) = &draft.connect {
        checked.connect = Some(
            connect
                .iter()
                .enumerate()
                .filter_map(|(index, connection)| {
                    declaration(connection, &format!("connect.{index}"), CONNECTION_TYPE_MAX_CHARS, false)
                        .map_err(|found| problems.extend(found))
                        .ok()
                })
                .collect(),
        );
    }
    if draft.contributors.as_ref().is_some_and(|contributors| contributors.len() > MAX_CONTRIBUTORS) {
        problems.push(problem("contributors", format!("At most {MAX_CONTRIBUTORS} contributors")));
    }
    if problems.is_empty() { Ok(checked) } else { Err(problems) }
}

/// A policy (`versioned`) or connection: `type` required, the rest defaulted, `config` any JSON
/// object kept exactly as given, unknown keys refused.
fn declaration(value: &Value, field: &str, max_type: usize, versioned: bool) -> Result<Value, Vec<Problem>> {
    let Some(object) = value.as_object() else {
        return Err(vec![problem(field, "Must be an object")]);
    };
    let mut problems = Vec::new();
    let allowed: &[&str] = if versioned {
        &["type", "version", "enabled", "description", "config"]
    } else {
        &["type", "enabled", "description", "config"]
    };
    for key in object.keys().filter(|key| !allowed.contains(&key.as_str())) {
        problems.push(problem(&format!("{field}.{key}"), "Extra inputs are not permitted"));
    }
    let kind = match object.get("type") {
        Some(Value::String(kind)) => {
            let kind = kind.trim();
            if kind.is_empty() || kind.chars().count() > max_type {
                problems.push(problem(
                    &format!("{field}.type"),
                    format!("Type must be between 1 and {max_type} characters"),
                ));
            }
            if let Some(message) = line_problem(kind) {
                problems.push(problem(&format!("{field}.type"), message));
            }
            kind.to_owned()
        }
        Some(_) => {
            problems.push(problem(&format!("{field}.type"), "Type must be a string"));
            String::new()
        }
        None => {
            problems.push(problem(&format!("{field}.type"), "Field required"));
            String::new()
        }
    };
    let text = |key: &str, default: &str, problems: &mut Vec<Problem>| match object.get(key) {
        None | Some(Value::Null) => default.to_owned(),
        Some(Value::String(text)) => text.trim().to_owned(),
        Some(_) => {
            problems.push(problem(&format!("{field}.{key}"), "Must be a string"));
            String::new()
        }
    };
    let description = text("description", "", &mut problems);
    if description.chars().count() > text::DESCRIPTION_MAX_CHARS {
        problems.push(problem(&format!("{field}.description"), "Description must be at most 500 characters"));
    }
    if let Some(message) = text_problem(&description) {
        problems.push(problem(&format!("{field}.description"), message));
    }
    let enabled = match object.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(enabled)) => *enabled,
        Some(_) => {
            problems.push(problem(&format!("{field}.enabled"), "Must be true or false"));
            true
        }
    };
    let config = match object.get("config") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(config @ Value::Object(_)) => config.clone(),
        Some(_) => {
            problems.push(problem(&format!("{field}.config"), "Must be an object"));
            Value::Null
        }
    };
    let mut normalised = Map::new();
    normalised.insert("type".to_owned(), Value::String(kind));
    if versioned {
        let version = text("version", "1.0", &mut problems);
        if !is_two_part_version(&version) {
            problems.push(problem(&format!("{field}.version"), "Version must be MAJOR.MINOR (e.g. 1.0)"));
        }
        normalised.insert("version".to_owned(), Value::String(version));
    }
    normalised.insert("enabled".to_owned(), Value::Bool(enabled));
    normalised.insert("description".to_owned(), Value::String(description));
    normalised.insert("config".to_owned(), config);
    if problems.is_empty() { Ok(Value::Object(normalised)) } else { Err(problems) }
}

fn is_number(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()) && (part == "0" || !part.starts_with('0'))
}

fn is_two_part_version(version: &str) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() == 2 && parts.iter().all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()))
}

/// Semantic Versioning 2.0: `MAJOR.MINOR.PATCH`, optional `-pre.release` and `+build`.
pub fn is_semver(version: &str) -> bool {
    if version.len() > VERSION_MAX_CHARS {
        return false;
    }
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let identifiers_ok = |text: &str, numeric_rule: bool| {
        text.split('.').all(|identifier| {
            !identifier.is_empty()
                && identifier.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
                && (!numeric_rule || !identifier.bytes().all(|byte| byte.is_ascii_digit()) || is_number(identifier))
        })
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|part| is_number(part))
        && pre.is_none_or(|pre| identifiers_ok(pre, true))
        && build.is_none_or(|build| identifiers_ok(build, false))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn versions() {
        for good in ["0.1.0", "1.2.3", "10.20.30", "1.2.3-alpha", "1.0.0-rc.1+build.5"] {
            assert!(is_semver(good), "{good}");
        }
        for bad in ["1.2", "v1.2.3", "invalid", "01.2.3", "1.2.3-", "1.2.3-01", ""] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn policies_get_defaults_and_keep_config_exactly() {
        let config = json!({"nested": {"list": [1, null, "x"]}, "flag": null});
        let draft = EndpointDraft {
            policies: Some(vec![
                json!({"type": "  rate-limit "}),
                json!({"type": "x", "version": "2.5", "config": config.clone()}),
            ]),
            ..EndpointDraft::default()
        };
        let checked = check(&draft, &RegistryConfig::default(), false).unwrap();
        let policies = checked.policies.unwrap();
        assert_eq!(
            policies[0],
            json!({"type": "rate-limit", "version": "1.0", "enabled": true, "description": "", "config": {}})
        );
        assert_eq!(policies[1]["config"], config);
    }

    #[test]
    fn bad_policies_name_the_field() {
        let draft = EndpointDraft {
            policies: Some(vec![
                json!({"type": ""}),
                json!({"type": "x", "version": "1"}),
                json!({"type": "x", "extra": 1}),
                json!("str"),
            ]),
            ..EndpointDraft::default()
        };
        let problems = check(&draft, &RegistryConfig::default(), false).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|(field, _)| field.as_str()).collect();
        assert_eq!(fields, ["policies.0.type", "policies.1.version", "policies.2.extra", "policies.3"]);
    }
}
