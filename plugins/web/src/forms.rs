//! Form plumbing: turning service errors into messages shown in an
//! error summary at the top and next to each field.

use thub_plugin_sdk::ApiError;

use crate::frame::detail_text;

/// Messages of a failed form: per field (in the order the form shows them) and general ones.
#[derive(Debug, Default, Clone)]
pub(crate) struct FormErrors {
    /// `(field name, message)`.
    pub(crate) fields: Vec<(String, String)>,
    /// Messages that belong to no one field.
    pub(crate) general: Vec<String>,
}

impl FormErrors {
    /// Whether there is nothing to show.
    pub(crate) fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.general.is_empty()
    }

    /// Adds a message for `field`.
    pub(crate) fn add(&mut self, field: &str, message: impl Into<String>) {
        self.fields.push((field.to_owned(), message.into()));
    }

    /// The message for `field`, if any.
    pub(crate) fn get(&self, field: &str) -> Option<&str> {
        self.fields.iter().find(|(name, _)| name == field).map(|(_, message)| message.as_str())
    }

    /// Messages from a service error: 422 lists map to their fields (`["body", field, …]`),
    /// known codes to the field they concern, anything else is a general message. `aliases`
    /// renames API field names to this form's (e.g. `new_password` → `password`).
    pub(crate) fn from_error(error: &ApiError, known_codes: &[(&str, &str)]) -> Self {
        let mut errors = Self::default();
        if let serde_json::Value::Array(items) = error.detail() {
            for item in items {
                let message = item.get("msg").and_then(serde_json::Value::as_str).unwrap_or("Invalid value");
                let field = item
                    .get("loc")
                    .and_then(serde_json::Value::as_array)
                    .and_then(|loc| loc.get(1))
                    .and_then(serde_json::Value::as_str);
                match field {
                    Some(field) if errors.get(field).is_none() => errors.add(field, message),
                    Some(_) => {}
                    None => errors.general.push(message.to_owned()),
                }
            }
            return errors;
        }
        match known_codes.iter().find(|(code, _)| *code == error.code()) {
            Some((_, field)) => errors.add(field, detail_text(error)),
            None => errors.general.push(detail_text(error)),
        }
        errors
    }

    /// The summary entries in display order: `(anchor, message)`; general messages have none.
    pub(crate) fn summary(&self) -> Vec<(String, String)> {
        let mut entries: Vec<(String, String)> =
            self.general.iter().map(|message| (String::new(), message.clone())).collect();
        entries.extend(self.fields.iter().map(|(field, message)| (format!("#field-{field}"), message.clone())));
        entries
    }
}

/// One form control with its label, value and message, for the field partial.
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) label: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) value: String,
    pub(crate) hint: &'static str,
    pub(crate) error: Option<String>,
    pub(crate) autocomplete: &'static str,
    pub(crate) required: bool,
}

impl Field {
    /// A text-like field (`kind` = `text`, `email`, `password`, `textarea`).
    pub(crate) fn new(name: &'static str, label: &'static str, kind: &'static str, value: &str) -> Self {
        Self { name, label, kind, value: value.to_owned(), hint: "", error: None, autocomplete: "off", required: false }
    }

    /// With a hint under the label.
    pub(crate) fn hint(mut self, hint: &'static str) -> Self {
        self.hint = hint;
        self
    }

    /// With an `autocomplete` token.
    pub(crate) fn autocomplete(mut self, token: &'static str) -> Self {
        self.autocomplete = token;
        self
    }

    /// Marked required.
    pub(crate) fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// With its message from `errors`.
    pub(crate) fn checked(mut self, errors: &FormErrors) -> Self {
        self.error = errors.get(self.name).map(str::to_owned);
        self
    }
}
