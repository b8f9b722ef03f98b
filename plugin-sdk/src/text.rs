//! Shared rules for text people type (names, titles, labels, descriptions): no NUL or other
//! control characters, which terminals, logs, HTML, file names and C-based tools mishandle,
//! and which no person types on purpose.

use serde_json::Value;

use crate::FieldError;

/// The message of a value refused for its control characters.
pub const CONTROL_CHARACTERS: &str = "Must not contain control characters";

/// Why a one-line value (a name, a title, a label, a tag) is refused, if it is: any control
/// character (NUL, the C0 and C1 ranges, DEL).
pub fn line_problem(value: &str) -> Option<&'static str> {
    value.chars().any(char::is_control).then_some(CONTROL_CHARACTERS)
}

/// Why multi-line text (a description, a README) is refused, if it is: a control character
/// other than tab, line feed and carriage return.
pub fn text_problem(value: &str) -> Option<&'static str> {
    value
        .chars()
        .any(|character| character.is_control() && !matches!(character, '\t' | '\n' | '\r'))
        .then_some(CONTROL_CHARACTERS)
}

/// [`line_problem`] as the field error of a 422 at `loc` (e.g. `["body", "name"]`).
pub fn check_line(value: &str, loc: &[&str]) -> Result<(), FieldError> {
    match line_problem(value) {
        Some(message) => Err(FieldError::new("value_error", loc, message, Value::String(value.to_owned()))),
        None => Ok(()),
    }
}

/// [`text_problem`] as the field error of a 422 at `loc`.
pub fn check_text(value: &str, loc: &[&str]) -> Result<(), FieldError> {
    match text_problem(value) {
        Some(message) => Err(FieldError::new("value_error", loc, message, Value::String(value.to_owned()))),
        None => Ok(()),
    }
}

/// The characters `char::is_whitespace` (and so `str::trim`) takes as white space, as the body
/// of a regular-expression class in the syntax ECMA 262 and Python share (the OpenAPI
/// document's patterns are read by both).
pub const WHITE_SPACE_CLASS: &str = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// The characters `char::is_control` is true for, as the body of a regular-expression class.
pub const CONTROL_CLASS: &str = r"\x00-\x1f\x7f-\x9f";

/// The pattern of multi-line text ([`text_problem`]): no control character but tab, line feed
/// and carriage return.
pub const TEXT_PATTERN: &str = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$";

/// The pattern of a one-line value ([`line_problem`]) taken as is: no control character.
pub const LINE_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";

/// The pattern of a one-line value that is trimmed first and must then hold 1 to `max`
/// characters (`max` ≥ 2) with no control character: what names and titles are checked
/// against. White space around the value (which may include tabs and line breaks, as trimming
/// removes them) is free; lengths are counted after trimming, so the pattern, not
/// `maxLength`, bounds them.
pub fn trimmed_line_pattern(max: usize) -> String {
    let space = WHITE_SPACE_CLASS;
    let control = CONTROL_CLASS;
    let inner = max.saturating_sub(2);
    format!("^[{space}]*[^{space}{control}](?:[^{control}]{{0,{inner}}}[^{space}{control}])?[{space}]*$")
}

/// A case-insensitive alternative of `words` for a pattern (`api` → `[aA][pP][iI]`): OpenAPI
/// patterns have no flags, so letters list both cases. Other characters are escaped.
pub fn case_insensitive_alternatives(words: &[&str]) -> String {
    let alternative = |word: &&str| -> String {
        word.chars()
            .map(|character| {
                if character.is_ascii_alphabetic() {
                    format!("[{}{}]", character.to_ascii_lowercase(), character.to_ascii_uppercase())
                } else if character.is_ascii_alphanumeric() || character == '_' || character == '-' {
                    character.to_string()
                } else {
                    format!("\\{character}")
                }
            })
            .collect()
    };
    words.iter().map(alternative).collect::<Vec<_>>().join("|")
}

/// Longest name or title (a display name, an organization's or endpoint's name, a token
/// label), counted after trimming.
pub const NAME_MAX_CHARS: usize = 100;

/// Longest description (of an organization or an endpoint).
pub const DESCRIPTION_MAX_CHARS: usize = 500;

crate::declared_string! {
    /// A name or title as a client sends it: trimmed, 1 to [`NAME_MAX_CHARS`] characters on
    /// one line ([`line_problem`]).
    pub struct Name;
    schema = |schema| schema.pattern = Some(trimmed_line_pattern(NAME_MAX_CHARS));
}

crate::declared_string! {
    /// A description as a client sends it: at most [`DESCRIPTION_MAX_CHARS`] characters of
    /// text ([`text_problem`]), taken as is.
    pub struct Description;
    schema = |schema| {
        schema.max_length = Some(DESCRIPTION_MAX_CHARS);
        schema.pattern = Some(TEXT_PATTERN.to_owned());
    };
}

/// Declares a string type whose OpenAPI schema states the rule the server checks on it
/// (pattern, lengths, allowed values), so generated clients and fuzzers send what the server
/// accepts. The value parses as any JSON string: the service checks the rule (from the same
/// constants the schema is built from) and answers a 422 whose `detail` names the field, the
/// shape SyftHub clients read; a parser error could only name the whole body.
///
/// ```ignore
/// thub_plugin_sdk::declared_string! {
///     /// A username.
///     pub struct Username;
///     schema = |schema| schema.pattern = Some(USERNAME_PATTERN.to_owned());
/// }
/// ```
#[macro_export]
macro_rules! declared_string {
    ($(#[$meta:meta])* $vis:vis struct $name:ident; schema = $declare:expr;) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        $vis struct $name(pub String);

        impl $name {
            /// The string.
            #[allow(dead_code)]
            $vis fn into_inner(self) -> String {
                self.0
            }

            /// The declaration of this type's schema, applied to `schema`.
            #[allow(dead_code)]
            $vis fn declare(schema: &mut $crate::__private::poem_openapi::registry::MetaSchema) {
                let declare: fn(&mut $crate::__private::poem_openapi::registry::MetaSchema) = $declare;
                declare(schema);
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl $crate::__private::poem_openapi::types::Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> std::borrow::Cow<'static, str> {
                concat!("string(", stringify!($name), ")").into()
            }

            fn schema_ref() -> $crate::__private::poem_openapi::registry::MetaSchemaRef {
                let mut schema = $crate::__private::poem_openapi::registry::MetaSchema::new("string");
                Self::declare(&mut schema);
                $crate::__private::poem_openapi::registry::MetaSchemaRef::Inline(Box::new(schema))
            }

            fn as_raw_value(&self) -> Option<&Self::RawValueType> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
                Box::new(self.as_raw_value().into_iter())
            }

            fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl $crate::__private::poem_openapi::types::ParseFromJSON for $name {
            fn parse_from_json(
                value: Option<$crate::__private::serde_json::Value>,
            ) -> $crate::__private::poem_openapi::types::ParseResult<Self> {
                <String as $crate::__private::poem_openapi::types::ParseFromJSON>::parse_from_json(value)
                    .map(Self)
                    .map_err($crate::__private::poem_openapi::types::ParseError::propagate)
            }
        }

        impl $crate::__private::poem_openapi::types::ParseFromParameter for $name {
            fn parse_from_parameter(value: &str) -> $crate::__private::poem_openapi::types::ParseResult<Self> {
                Ok(Self(value.to_owned()))
            }
        }

        impl $crate::__private::poem_openapi::types::ToJSON for $name {
            fn to_json(&self) -> Option<$crate::__private::serde_json::Value> {
                Some($crate::__private::serde_json::Value::String(self.0.clone()))
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <String as $crate::__private::serde::Deserialize>::deserialize(deserializer).map(Self)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_refuse_every_control_character_and_text_keeps_line_breaks() {
        for bad in ["a\u{0}b", "\u{7}", "tab\there", "new\nline", "del\u{7f}", "c1\u{85}", "esc\u{1b}[31m"] {
            assert!(line_problem(bad).is_some(), "{bad:?}");
        }
        for good in ["Alice Example", "Zoë 🚀", "a-b_c.d", ""] {
            assert!(line_problem(good).is_none(), "{good:?}");
            assert!(text_problem(good).is_none(), "{good:?}");
        }
        assert!(text_problem("line one\nline two\r\n\tindented").is_none());
        for bad in ["a\u{0}b", "bell\u{7}", "esc\u{1b}[31m", "del\u{7f}"] {
            assert!(text_problem(bad).is_some(), "{bad:?}");
        }
        let error = check_line("x\u{0}", &["body", "name"]).unwrap_err();
        assert_eq!(error.loc, vec![Value::from("body"), Value::from("name")]);
        assert_eq!(error.msg, CONTROL_CHARACTERS);
    }
}
