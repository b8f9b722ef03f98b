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
