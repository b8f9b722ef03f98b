//! URL slugs shared by owners and their endpoints (`/{owner}/{slug}`): validation, reserved
//! words, and generation from display names.

/// Slugs an endpoint may not take (they collide with hub pages).
pub const RESERVED_ENDPOINT_SLUGS: &[&str] = &[
    "api",
    "auth",
    "docs",
    "redoc",
    "openapi.json",
    "health",
    "admin",
    "www",
    "mail",
    "ftp",
    "blog",
    "help",
    "support",
    "about",
    "contact",
    "terms",
    "privacy",
    "login",
    "register",
    "dashboard",
    "settings",
    "profile",
    "search",
    "explore",
];

/// Slugs an organization may not take, besides [`RESERVED_ENDPOINT_SLUGS`].
pub const RESERVED_ORGANIZATION_SLUGS: &[&str] = &[
    "organizations",
    "org",
    "orgs",
    "organization",
    "user",
    "users",
    "account",
    "accounts",
    "channel",
    "logout",
    "new",
    "plugins",
    "proxy",
    "ready",
    "static",
];

/// Shortest and longest slug.
const SLUG_LENGTH: (usize, usize) = (3, 63);

/// [`slug_problem`] as a pattern: lowercase letters and digits in groups joined by single
/// hyphens, not one of `reserved`. The length bounds go in `minLength`/`maxLength`.
pub fn slug_pattern(reserved: &[&[&str]]) -> String {
    let words: Vec<&str> = reserved.iter().flat_map(|list| list.iter().copied()).collect();
    let reserved = crate::text::case_insensitive_alternatives(&words);
    format!("^(?!(?:{reserved})$)[a-z0-9]+(?:-[a-z0-9]+)*$")
}

fn declare_slug(schema: &mut poem_openapi::registry::MetaSchema, reserved: &[&[&str]]) {
    schema.min_length = Some(SLUG_LENGTH.0);
    schema.max_length = Some(SLUG_LENGTH.1);
    schema.pattern = Some(slug_pattern(reserved));
}

crate::declared_string! {
    /// An endpoint's slug as a client sends it: the schema declares [`slug_problem`] with
    /// [`RESERVED_ENDPOINT_SLUGS`].
    pub struct EndpointSlug;
    schema = |schema| declare_slug(schema, &[RESERVED_ENDPOINT_SLUGS]);
}

crate::declared_string! {
    /// An organization's slug as a client sends it: the schema declares [`slug_problem`]
    /// with both reserved lists.
    pub struct OrganizationSlug;
    schema = |schema| declare_slug(schema, &[RESERVED_ENDPOINT_SLUGS, RESERVED_ORGANIZATION_SLUGS]);
}

/// Why a slug is refused.
pub fn slug_problem(slug: &str, reserved: &[&[&str]]) -> Option<String> {
    let length = slug.chars().count();
    if !(SLUG_LENGTH.0..=SLUG_LENGTH.1).contains(&length) {
        return Some("Slug must be between 3 and 63 characters".to_owned());
    }
    if slug.chars().any(|c| c.is_ascii_uppercase()) {
        return Some("Slug must contain only lowercase letters".to_owned());
    }
    let shape_ok = slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if !shape_ok {
        return Some(
            "Slug must contain only lowercase letters, digits and hyphens, and start and end with a letter or digit"
                .to_owned(),
        );
    }
    if slug.contains("--") {
        return Some("Slug cannot contain consecutive hyphens".to_owned());
    }
    if reserved.iter().any(|list| list.contains(&slug)) {
        return Some(format!("'{slug}' is a reserved slug"));
    }
    None
}

/// The segments of a `/{owner}` or `/{owner}/{slug}` path (a trailing slash allowed), if every
/// segment could be a name: 1–63 ASCII letters, digits, `_` or `-`. Owner pages claim these
/// paths; other plugins use it to tell an owner path from a file path.
pub fn owner_path(path: &str) -> Option<(&str, Option<&str>)> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let mut segments = path.strip_prefix('/')?.split('/');
    let owner = segments.next()?;
    let slug = segments.next();
    let name_like = |segment: &str| {
        !segment.is_empty()
            && segment.len() <= 63
            && segment.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
    };
    if segments.next().is_some() || !name_like(owner) || slug.is_some_and(|slug| !name_like(slug)) {
        return None;
    }
    Some((owner, slug))
}

/// A slug base from a display name: lowercase ASCII letters and digits, runs of anything else
/// become one hyphen; short results get `prefix` (`endpoint`, `org`), long ones are cut to 63.
/// Always a valid shape (reserved words and uniqueness are the caller's loop).
pub fn slug_from_name(name: &str, prefix: &str) -> String {
    let mut slug = String::new();
    for character in name.to_lowercase().chars() {
        if character.is_ascii_lowercase() || character.is_ascii_digit() {
            slug.push(character);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut slug = slug.trim_matches('-').to_owned();
    if slug.len() < 3 {
        slug = format!("{prefix}-{slug}").trim_end_matches('-').to_owned();
    }
    if slug.len() > 63 {
        slug.truncate(63);
        slug = slug.trim_end_matches('-').to_owned();
    }
    slug
}

/// `base-n`, cut so the whole stays within 63 characters.
pub fn numbered_slug(base: &str, number: u32) -> String {
    let suffix = format!("-{number}");
    let keep = 63 - suffix.len();
    let mut stem = base.to_owned();
    if stem.len() > keep {
        stem.truncate(keep);
    }
    format!("{}{suffix}", stem.trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_slugs_match_the_reference_examples() {
        assert_eq!(slug_from_name("Simple Name", "endpoint"), "simple-name");
        assert_eq!(slug_from_name("Complex Name With Spaces!", "endpoint"), "complex-name-with-spaces");
        assert_eq!(slug_from_name("Special-Characters#@$%", "endpoint"), "special-characters");
        assert_eq!(slug_from_name("A", "endpoint"), "endpoint-a");
        assert_eq!(slug_from_name("Multiple    Spaces", "endpoint"), "multiple-spaces");
        assert_eq!(slug_from_name("Café", "endpoint"), "caf");
        assert_eq!(slug_from_name("AB", "org"), "org-ab");
        // Fixed quirk: a name with no letters or digits still gives a valid slug.
        assert_eq!(slug_from_name("!!", "endpoint"), "endpoint");
        assert!(slug_problem(&slug_from_name(&"x".repeat(80), "endpoint"), &[]).is_none());
        assert_eq!(numbered_slug(&"y".repeat(63), 12).len(), 63);
    }

    #[test]
    fn owner_paths_have_one_or_two_name_like_segments() {
        assert_eq!(owner_path("/alice"), Some(("alice", None)));
        assert_eq!(owner_path("/Alice/my-model/"), Some(("Alice", Some("my-model"))));
        for other in
            ["/", "", "alice", "/alice/model/x", "/alice/index.html", "/a b", "//x", &format!("/{}", "a".repeat(64))]
        {
            assert_eq!(owner_path(other), None, "{other:?}");
        }
    }

    #[test]
    fn explicit_slugs_are_validated() {
        assert!(slug_problem("my-endpoint", &[RESERVED_ENDPOINT_SLUGS]).is_none());
        for bad in [
            "ab",
            &"a".repeat(64),
            "-invalid",
            "invalid-",
            "invalid--slug",
            "Invalid-Slug",
            "invalid_slug",
            "invalid slug",
            "api",
        ] {
            assert!(slug_problem(bad, &[RESERVED_ENDPOINT_SLUGS]).is_some(), "{bad} should be refused");
        }
        assert!(slug_problem("users", &[RESERVED_ENDPOINT_SLUGS]).is_none());
        assert!(slug_problem("users", &[RESERVED_ENDPOINT_SLUGS, RESERVED_ORGANIZATION_SLUGS]).is_some());
    }
}
