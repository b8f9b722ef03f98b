//! The OpenAPI document says what the server does: one pass over the generated document adds
//! what poem-openapi cannot derive from the Rust types, as rules that hold for every route.
//!
//! - An optional JSON field is `nullable`: poem-openapi reads `null` as absent, and an absent
//!   response field is sent as `null` (unless the field is skipped when empty).
//! - Every operation can answer an error: the framework does (401 from the auth extractors, 413,
//!   422 for parameters and bodies, 405, 500) even where the handler itself cannot fail, so every
//!   operation documents the one error shape as its `default` response, and every operation that
//!   needs credentials documents its 401 with `WWW-Authenticate`.
//!
//! - A closed object (the SDK's `closed_object`: unknown keys refused) says so with
//!   `additionalProperties: false`, which poem-openapi has no way to write.
//!
//! Bounds are declared by the types that enforce them (`Limit`, `Count` in the SDK) and 405s
//! carry `Allow` (`http::allow_methods`), so neither needs a rule here.
//!
//! One rule goes the other way, from the document to the server: poem-openapi reads a JSON
//! number or boolean where a string is declared (`"name": false` becomes `"false"`), so
//! [`strict_strings`] refuses such bodies with a 422 naming the field before they are parsed.

use std::sync::Arc;

use poem::http::{Method, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Response};
use serde_json::{Map, Value, json};
use thub_plugin_sdk::{ApiError, CLOSED_OBJECT};

/// Applies every rule to `document` (an OpenAPI 3.0 document as JSON).
pub fn tell_the_truth(document: &mut Value) {
    let form_schemas = form_schemas(document);
    if let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        for (name, schema) in schemas.iter_mut() {
            if !form_schemas.contains(name) {
                declare_nullable(schema);
            }
            close_object(schema);
        }
    }
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for operation in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|item| item.values_mut()) {
            document_errors(operation);
        }
    }
}

/// States the configured `auth.min_password_length` as the `minLength` of every new password
/// (the `format: password` strings `NewPassword` declares with the default); the types
/// cannot know the configuration.
pub fn declare_password_length(document: &mut Value, min_length: usize) {
    let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    let properties = schemas
        .values_mut()
        .filter_map(|schema| schema.get_mut("properties").and_then(Value::as_object_mut))
        .flat_map(|properties| properties.values_mut());
    for property in properties {
        if property.get("format").and_then(Value::as_str) == Some("password") {
            property["minLength"] = Value::from(min_length);
        }
    }
}

const ERROR_BODY: &str = "#/components/schemas/ErrorBody";

/// Schemas sent as HTML forms (`application/x-www-form-urlencoded`), where `null` cannot be
/// written: a field is there or not.
fn form_schemas(document: &Value) -> Vec<String> {
    let Some(paths) = document.get("paths").and_then(Value::as_object) else { return Vec::new() };
    paths
        .values()
        .filter_map(Value::as_object)
        .flat_map(|item| item.values())
        .filter_map(|operation| {
            operation.pointer("/requestBody/content/application~1x-www-form-urlencoded/schema/$ref")
        })
        .filter_map(Value::as_str)
        .filter_map(|reference| reference.rsplit('/').next())
        .map(str::to_owned)
        .collect()
}

/// Marks every optional property without a default as nullable, in this schema and the object
/// schemas nested in it.
fn declare_nullable(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else { return };
    let required: Vec<String> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    if let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, property) in properties.iter_mut() {
            declare_nullable(property);
            if !required.contains(name) && property.get("default").is_none() {
                make_nullable(property);
            }
        }
    }
    if let Some(items) = object.get_mut("items") {
        declare_nullable(items);
    }
}

/// Writes the SDK's closed-object marker as `additionalProperties: false`.
fn close_object(schema: &mut Value) {
    let marker = json!({ "type": CLOSED_OBJECT });
    if let Some(object) = schema.as_object_mut()
        && object.get("additionalProperties") == Some(&marker)
    {
        object.insert("additionalProperties".to_owned(), Value::Bool(false));
    }
}

/// OpenAPI 3.0 ignores siblings of `$ref`, so a bare reference is wrapped in `allOf` first.
fn make_nullable(property: &mut Value) {
    let Some(object) = property.as_object_mut() else { return };
    if let Some(reference) = object.remove("$ref") {
        object.insert("allOf".to_owned(), json!([{ "$ref": reference }]));
    }
    object.insert("nullable".to_owned(), Value::Bool(true));
}

fn document_errors(operation: &mut Value) {
    let needs_credentials = operation.get("security").and_then(Value::as_array).is_some_and(|requirements| {
        !requirements.is_empty() && requirements.iter().all(|requirement| requirement != &json!({}))
    });
    let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { return };
    if !responses.contains_key("default") {
        responses.insert(
            "default".to_owned(),
            json!({
                "description": "Error: `{\"detail\": …, \"code\": …}`; 422 lists failing fields in `detail`.",
                "content": { "application/json": { "schema": { "$ref": ERROR_BODY } } },
            }),
        );
    }
    if needs_credentials && !responses.contains_key("401") {
        let mut headers = Map::new();
        headers.insert(
            "WWW-Authenticate".to_owned(),
            json!({ "description": "`Bearer`.", "required": true, "schema": { "type": "string" } }),
        );
        responses.insert(
            "401".to_owned(),
            json!({
                "description": "Missing, bad, expired or revoked credentials.",
                "headers": headers,
                "content": { "application/json": { "schema": { "$ref": ERROR_BODY } } },
            }),
        );
    }
}

/// The JSON request-body schemas of one path, by method, with the document's components to
/// resolve references against.
#[derive(Clone, Default)]
pub struct BodySchemas {
    /// `(method, body schema, whether the operation needs credentials)`.
    by_method: Vec<(Method, Value, bool)>,
    components: Arc<Value>,
}

impl BodySchemas {
    /// The JSON body schemas of `path` (OpenAPI syntax, `/users/{id}`) in `document`.
    pub fn of(document: &Value, path: &str) -> Self {
        let components = Arc::new(document.pointer("/components/schemas").cloned().unwrap_or(Value::Null));
        let Some(item) = document.get("paths").and_then(|paths| paths.get(path)).and_then(Value::as_object) else {
            return Self { by_method: Vec::new(), components };
        };
        let by_method = item
            .iter()
            .filter_map(|(method, operation)| {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).ok()?;
                let content = operation.pointer("/requestBody/content")?.as_object()?;
                let schema = content.iter().find(|(kind, _)| kind.starts_with("application/json"))?.1.get("schema")?;
                // `[{"bearer": []}]` needs credentials; `[{"bearer": []}, {}]` (optional) does not.
                let needs_credentials = operation.get("security").and_then(Value::as_array).is_some_and(|options| {
                    !options.is_empty()
                        && options.iter().all(|option| option.as_object().is_some_and(|o| !o.is_empty()))
                });
                Some((method, schema.clone(), needs_credentials))
            })
            .collect();
        Self { by_method, components }
    }
}

/// Refuses a JSON body that puts a number, a boolean (or anything else) where the document
/// declares a string, with a 422 naming the field; other bodies pass unchanged. An operation
/// that needs credentials checks them first, so a caller without them is answered at once,
/// before a body is read that would only be thrown away.
pub fn strict_strings<E: Endpoint + 'static>(inner: E, schemas: BodySchemas) -> impl Endpoint<Output = Response> {
    let schemas = Arc::new(schemas);
    inner.around(move |inner, mut request| {
        let schemas = schemas.clone();
        async move {
            let is_json = request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|kind| kind.starts_with("application/json"));
            let operation = schemas.by_method.iter().find(|(method, _, _)| method == request.method());
            if let (true, Some((_, schema, needs_credentials))) = (is_json, operation) {
                if *needs_credentials {
                    thub_plugin_sdk::require_user_once(&mut request).await?;
                }
                let bytes = request.take_body().into_bytes().await?;
                if let Ok(body) = serde_json::from_slice::<Value>(&bytes)
                    && let Some((loc, input)) = misplaced_string(&body, schema, &schemas.components, &mut Vec::new())
                {
                    let mut path = vec!["body".to_owned()];
                    path.extend(loc);
                    let loc: Vec<&str> = path.iter().map(String::as_str).collect();
                    return Err(ApiError::invalid_field(&loc, "Input should be a valid string", input).into());
                }
                request.set_body(bytes);
            }
            inner.call(request).await.map(IntoResponse::into_response)
        }
    })
}

/// The first place in `value` where `schema` declares a string and a number, a boolean, an
/// array or an object is there: its path and the value found.
fn misplaced_string(
    value: &Value,
    schema: &Value,
    components: &Value,
    path: &mut Vec<String>,
) -> Option<(Vec<String>, Value)> {
    if let Some(name) = schema.get("$ref").and_then(Value::as_str).and_then(|reference| reference.rsplit('/').next()) {
        return misplaced_string(value, components.get(name)?, components, path);
    }
    for part in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        if let Some(found) = misplaced_string(value, part, components, path) {
            return Some(found);
        }
    }
    if schema.get("type").and_then(Value::as_str) == Some("string") {
        // `null` is poem's to judge (absent for an optional field, refused for a required one).
        return match value {
            Value::String(_) | Value::Null => None,
            other => Some((path.clone(), other.clone())),
        };
    }
    if let (Some(properties), Value::Object(fields)) = (schema.get("properties").and_then(Value::as_object), value) {
        for (name, field) in fields {
            if let Some(property) = properties.get(name) {
                path.push(name.clone());
                let found = misplaced_string(field, property, components, path);
                path.pop();
                if found.is_some() {
                    return found;
                }
            }
        }
    }
    if let (Some(items), Value::Array(elements)) = (schema.get("items"), value) {
        for (index, element) in elements.iter().enumerate() {
            path.push(index.to_string());
            let found = misplaced_string(element, items, components, path);
            path.pop();
            if found.is_some() {
                return found;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_become_nullable_and_every_operation_documents_errors() {
        let mut document = json!({
            "paths": {
                "/a": {
                    "get": { "responses": { "200": {} }, "security": [{ "bearer": [] }] },
                    "post": {
                        "responses": { "200": {} },
                        "security": [{ "bearer": [] }, {}],
                        "requestBody": { "content": { "application/x-www-form-urlencoded": {
                            "schema": { "$ref": "#/components/schemas/Form" } } } },
                    },
                },
            },
            "components": { "schemas": {
                "Thing": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {
                        "id": { "type": "integer" },
                        "avatar_url": { "type": "string" },
                        "owner": { "$ref": "#/components/schemas/Owner" },
                        "limit": { "type": "integer", "default": 10 },
                    },
                },
                "Form": { "type": "object", "properties": { "grant_type": { "type": "string" } } },
            } },
        });
        tell_the_truth(&mut document);
        let thing = &document["components"]["schemas"]["Thing"]["properties"];
        assert_eq!(thing["avatar_url"]["nullable"], true);
        assert_eq!(thing["owner"], json!({ "allOf": [{ "$ref": "#/components/schemas/Owner" }], "nullable": true }));
        assert!(thing["id"].get("nullable").is_none(), "required fields are not nullable");
        assert!(thing["limit"].get("nullable").is_none(), "fields with a default are not nullable");
        assert!(document["components"]["schemas"]["Form"]["properties"]["grant_type"].get("nullable").is_none());

        let get = &document["paths"]["/a"]["get"]["responses"];
        assert_eq!(get["default"]["content"]["application/json"]["schema"]["$ref"], ERROR_BODY);
        assert!(get["401"]["headers"].get("WWW-Authenticate").is_some());
        let post = &document["paths"]["/a"]["post"]["responses"];
        assert!(post.get("401").is_none(), "optional credentials are never a 401");
    }

    #[test]
    fn strings_are_found_where_numbers_or_booleans_stand() {
        let components = json!({
            "Body": { "type": "object", "properties": {
                "name": { "type": "string" },
                "tags": { "type": "array", "items": { "type": "string" } },
                "owner": { "allOf": [{ "$ref": "#/components/schemas/Owner" }], "nullable": true },
                "count": { "type": "integer" },
            } },
            "Owner": { "type": "object", "properties": { "slug": { "type": "string" } } },
        });
        let schema = json!({ "$ref": "#/components/schemas/Body" });
        let check = |body: Value| misplaced_string(&body, &schema, &components, &mut Vec::new());
        assert_eq!(check(json!({"name": "x", "tags": ["a"], "owner": null, "count": 1, "extra": 5})), None);
        assert_eq!(check(json!({"name": null})), None);
        assert_eq!(check(json!({"name": false})), Some((vec!["name".to_owned()], json!(false))));
        assert_eq!(check(json!({"tags": ["a", 2]})), Some((vec!["tags".to_owned(), "1".to_owned()], json!(2))));
        assert_eq!(
            check(json!({"owner": {"slug": 1.5}})),
            Some((vec!["owner".to_owned(), "slug".to_owned()], json!(1.5)))
        );
    }
}
