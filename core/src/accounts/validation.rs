//! Input rules for accounts. Each failing field becomes one entry of a 422 `detail` list.

use serde_json::Value;
use thub_plugin_sdk::FieldError;

/// Names that would collide with hub routes (`/{owner}` pages) and so cannot be usernames.
pub const RESERVED_USERNAMES: &[&str] = &[
    "about",
    "account",
    "accounts",
    "admin",
    "api",
    "auth",
    "blog",
    "channel",
    "contact",
    "dashboard",
    "docs",
    "explore",
    "ftp",
    "health",
    "help",
    "login",
    "logout",
    "mail",
    "new",
    "openapi.json",
    "organization",
    "organizations",
    "org",
    "orgs",
    "plugins",
    "privacy",
    "profile",
    "proxy",
    "ready",
    "redoc",
    "register",
    "search",
    "settings",
    "static",
    "support",
    "terms",
    "user",
    "users",
    "www",
];

/// Top-level domains that never deliver mail (RFC 6761 special-use names).
const SPECIAL_USE_TLDS: &[&str] = &["test", "local", "localhost", "invalid", "onion", "example"];

/// Usernames hold 3 to 50 of these characters.
const USERNAME_LENGTH: (usize, usize) = (3, 50);
/// Longest display name, counted after trimming (its schema is `text::Name`'s).
pub const FULL_NAME_MAX: usize = thub_plugin_sdk::text::NAME_MAX_CHARS;
/// Longest password.
pub const PASSWORD_MAX: usize = 1024;
/// Longest avatar URL, in bytes (the schema's `maxLength` counts characters: equal for ASCII).
const AVATAR_URL_MAX: usize = 500;

thub_plugin_sdk::declared_string! {
    /// A username as a client sends it: the schema declares [`username`]'s rule (length,
    /// characters, at least one letter or digit, not reserved in any case).
    pub struct Username;
    schema = |schema| {
        let (min, max) = USERNAME_LENGTH;
        schema.min_length = Some(min);
        schema.max_length = Some(max);
        schema.pattern = Some(username_pattern());
    };
}

thub_plugin_sdk::declared_string! {
    /// An email address as a client sends it: the schema declares [`email`]'s rule.
    pub struct Email;
    schema = |schema| {
        schema.max_length = Some(254);
        schema.pattern = Some(email_pattern());
    };
}

thub_plugin_sdk::declared_string! {
    /// A new password as a client sends it: the schema declares [`new_password`]'s rule with
    /// the default minimum length; the served document states the configured one
    /// (`auth.min_password_length`, see `openapi::declare_password_length`).
    pub struct NewPassword;
    schema = |schema| {
        schema.min_length = Some(DEFAULT_MIN_PASSWORD_LENGTH);
        schema.max_length = Some(PASSWORD_MAX);
        schema.pattern = Some(PASSWORD_PATTERN.to_owned());
        schema.format = Some("password");
    };
}

thub_plugin_sdk::declared_string! {
    /// An avatar URL as a client sends it: the schema declares [`avatar_url`]'s rule.
    pub struct AvatarUrl;
    schema = |schema| {
        schema.max_length = Some(AVATAR_URL_MAX);
        schema.pattern = Some(format!("^(?:https?://[^{}]*)?$", thub_plugin_sdk::text::CONTROL_CLASS));
    };
}

/// The minimum password length when `auth.min_password_length` is not set.
pub const DEFAULT_MIN_PASSWORD_LENGTH: usize = 8;

/// A letter and a digit somewhere, in either order: unanchored, as JSON Schema searches for a
/// pattern (`[\s\S]` because `.` stops at line breaks; no lookahead, which stalls generators).
const PASSWORD_PATTERN: &str = r"\d[\s\S]*[^\W\d_]|[^\W\d_][\s\S]*\d";

/// [`username`] as a pattern: allowed characters with a letter or digit among them, and not a
/// reserved name in any case.
pub fn username_pattern() -> String {
    let reserved = thub_plugin_sdk::text::case_insensitive_alternatives(RESERVED_USERNAMES);
    format!("^(?!(?:{reserved})$)[A-Za-z0-9_-]*[A-Za-z0-9][A-Za-z0-9_-]*$")
}

/// [`email`] as a pattern (for ASCII local parts): a local part of printable ASCII without
/// quotes or `@` that neither starts nor ends with a dot, and a dotted domain of letter, digit and hyphen
/// labels whose last label is neither all digits nor a special-use name.
pub fn email_pattern() -> String {
    // Printable ASCII but `"` and `@` (and `.` at either end). The server takes other
    // characters too, but limits the local part to 64 and the address to 254 *bytes*, which a
    // pattern cannot count; for ASCII, bytes are characters, so the declared rule is exact.
    let inner = r"\x21\x23-\x3f\x41-\x7e";
    let edge = r"\x21\x23-\x2d\x2f-\x3f\x41-\x7e";
    let local = format!("(?:[{edge}]|[{edge}][{inner}]{{0,62}}[{edge}])");
    let label = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    let special = thub_plugin_sdk::text::case_insensitive_alternatives(SPECIAL_USE_TLDS);
    format!("^{local}@(?:{label}\\.)+(?!(?:{special}|[0-9]+)$){label}$")
}

fn error(loc: &[&str], msg: impl Into<String>, input: &str) -> FieldError {
    FieldError::new("value_error", loc, msg, Value::String(input.to_owned()))
}

/// A username: 3–50 ASCII letters, digits, `_` or `-`, at least one letter or digit, not
/// reserved. Returned lowercase. ASCII only, because usernames are URL path segments
/// (`/{owner}/{slug}`) and look-alike Unicode names invite impersonation.
pub fn username(value: &str, loc: &[&str]) -> Result<String, FieldError> {
    let length = value.chars().count();
    if !(USERNAME_LENGTH.0..=USERNAME_LENGTH.1).contains(&length) {
        return Err(error(loc, "Username must be between 3 and 50 characters", value));
    }
    let allowed = value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !allowed || !value.chars().any(|c| c.is_ascii_alphanumeric()) {
        return Err(error(loc, "Username can only contain letters, numbers, underscores, and hyphens", value));
    }
    let lower = value.to_ascii_lowercase();
    if RESERVED_USERNAMES.contains(&lower.as_str()) {
        return Err(error(loc, format!("Username '{lower}' is reserved"), value));
    }
    Ok(lower)
}

/// An email address: `local@domain.tld`, no spaces or quotes, a dotted domain of letters,
/// digits and hyphens, not a special-use TLD. Returned lowercase.
pub fn email(value: &str, loc: &[&str]) -> Result<String, FieldError> {
    let invalid = || error(loc, "value is not a valid email address", value);
    if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c == '"' || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = value.rsplit_once('@').ok_or_else(invalid)?;
    if local.is_empty() || local.len() > 64 || local.contains('@') || local.starts_with('.') || local.ends_with('.') {
        return Err(invalid());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(invalid());
    }
    let tld = labels.last().map(|tld| tld.to_ascii_lowercase()).unwrap_or_default();
    if tld.chars().all(|c| c.is_ascii_digit()) || SPECIAL_USE_TLDS.contains(&tld.as_str()) {
        return Err(invalid());
    }
    Ok(value.to_lowercase())
}

/// A display name: 1–100 characters after trimming, no control characters.
pub fn full_name(value: &str, loc: &[&str]) -> Result<String, FieldError> {
    let trimmed = value.trim();
    let length = trimmed.chars().count();
    if length == 0 || length > FULL_NAME_MAX {
        return Err(error(loc, "Full name must be between 1 and 100 characters", value));
    }
    thub_plugin_sdk::text::check_line(trimmed, loc)?;
    Ok(trimmed.to_owned())
}

/// A new password: at least `min_length` characters (at most 1024), a letter and a digit.
/// The input is never echoed back.
pub fn new_password(value: &str, min_length: usize, loc: &[&str]) -> Result<(), FieldError> {
    let fail = |msg: String| FieldError::new("value_error", loc, msg, Value::Null);
    let length = value.chars().count();
    if length < min_length {
        return Err(fail(format!("Password must be at least {min_length} characters long")));
    }
    if length > PASSWORD_MAX {
        return Err(fail("Password must be at most 1024 characters long".to_owned()));
    }
    if !value.chars().any(|c| c.is_numeric()) {
        return Err(fail("Password must contain at least one digit".to_owned()));
    }
    if !value.chars().any(char::is_alphabetic) {
        return Err(fail("Password must contain at least one letter".to_owned()));
    }
    Ok(())
}

/// An avatar URL: at most 500 characters, `http(s)://` or empty.
pub fn avatar_url(value: &str, loc: &[&str]) -> Result<String, FieldError> {
    let ok = value.len() <= AVATAR_URL_MAX
        && (value.is_empty() || value.starts_with("https://") || value.starts_with("http://"));
    if !ok {
        return Err(error(loc, "Avatar URL must be an http(s) URL of at most 500 characters", value));
    }
    thub_plugin_sdk::text::check_line(value, loc)?;
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOC: &[&str] = &["body", "field"];

    #[test]
    fn usernames() {
        assert_eq!(username("Alice_01", LOC).unwrap(), "alice_01");
        assert_eq!(username("a-b", LOC).unwrap(), "a-b");
        for bad in ["ab", "___", "al ice", "al!ce", "ÄLICE", "api", "Docs", &"x".repeat(51)] {
            assert!(username(bad, LOC).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(email("Alice@Example.COM", LOC).unwrap(), "alice@example.com");
        assert!(email("bob+tag@mail.example.org", LOC).is_ok());
        for bad in
            ["x@localhost", "x@a.test", "x@a.local", "a b@c.com", "@c.com", "a@", "a@-c.com", "a@c..com", "a@1.2.3.4"]
        {
            assert!(email(bad, LOC).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn passwords() {
        assert!(new_password("abcdefg1", 8, LOC).is_ok());
        assert!(new_password("short1", 8, LOC).is_err());
        assert!(new_password("abcdefgh", 8, LOC).is_err());
        assert!(new_password("12345678", 8, LOC).is_err());
        let error = new_password("short1", 8, LOC).unwrap_err();
        assert_eq!(error.input, Value::Null, "passwords are never echoed");
    }
}
