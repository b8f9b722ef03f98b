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
//! Bounds are declared by the types that enforce them (`Limit`, `Count` in the SDK) and 405s
//! carry `Allow` (`http::allow_methods`), so neither needs a rule here.

use serde_json::{Map, Value, json};

/// Applies every rule to `document` (an OpenAPI 3.0 document as JSON).
pub fn tell_the_truth(document: &mut Value) {
    let form_schemas = form_schemas(document);
    if let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        for (name, schema) in schemas.iter_mut() {
            if !form_schemas.contains(name) {
                declare_nullable(schema);
            }
        }
    }
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for operation in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|item| item.values_mut()) {
            document_errors(operation);
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
}
