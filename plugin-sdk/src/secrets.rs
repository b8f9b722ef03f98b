//! Secrets in configuration: a value may be a reference, `${env:NAME}` or `${file:PATH}`, so the
//! secret itself stays out of `thub.toml`; `thub config` shows references and hides literals.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

/// Resolves `${env:NAME}` and `${file:PATH}` (trailing newline dropped); other values are
/// returned as they are. The error says which reference failed, never a value.
pub fn expand_secret(value: &str) -> Result<String, String> {
    let Some(reference) = value.strip_prefix("${").and_then(|rest| rest.strip_suffix('}')) else {
        return Ok(value.to_owned());
    };
    if let Some(name) = reference.strip_prefix("env:") {
        return std::env::var(name).map_err(|_| format!("environment variable {name} is not set"));
    }
    if let Some(path) = reference.strip_prefix("file:") {
        return std::fs::read_to_string(path)
            .map(|text| text.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|error| format!("cannot read {path}: {error}"));
    }
    Err(format!("unknown reference ${{{reference}}}: use ${{env:NAME}} or ${{file:PATH}}"))
}

/// Serialises a map whose values may be secrets: `${…}` references as written, literals as
/// `<redacted>`. For `#[serde(serialize_with = "…")]`.
pub fn serialize_redacted<S: Serializer>(values: &BTreeMap<String, String>, serializer: S) -> Result<S::Ok, S::Error> {
    let shown: BTreeMap<&String, &str> = values
        .iter()
        .map(|(name, value)| {
            (name, if value.starts_with("${") && value.ends_with('}') { value.as_str() } else { "<redacted>" })
        })
        .collect();
    shown.serialize(serializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_and_literals_pass_through() {
        assert_eq!(expand_secret("plain").unwrap(), "plain");
        let file = std::env::temp_dir().join(format!("thub-secret-{}", std::process::id()));
        std::fs::write(&file, "s3cret\n").unwrap();
        assert_eq!(expand_secret(&format!("${{file:{}}}", file.display())).unwrap(), "s3cret");
        std::fs::remove_file(&file).unwrap();
        assert!(expand_secret("${env:THUB_SURELY_UNSET_VARIABLE}").unwrap_err().contains("is not set"));
        assert!(expand_secret("${vault:x}").unwrap_err().contains("unknown reference"));
    }
}
