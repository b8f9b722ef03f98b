//! `thub import config.json`: a Tufts Hub configuration into thub. Users keep their passwords
//! (the salted SHA-256 hash is verified once, then upgraded to argon2id at their next login);
//! proxies become `[plugins.proxy.apis.<name>]` sections of `thub.toml`.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use std::collections::BTreeMap;
use thub_plugin_sdk::Role;

use crate::accounts::password::LEGACY_SHA256_PREFIX;
use crate::accounts::{AccountsError, validation};
use crate::app::Hub;
use crate::config::Config;

#[derive(Debug, Deserialize)]
struct TuftsConfig {
    #[serde(default)]
    users: BTreeMap<String, (String, String)>,
    #[serde(default)]
    proxies: BTreeMap<String, TuftsProxy>,
}

#[derive(Debug, Deserialize)]
struct TuftsProxy {
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

fn is_hex(text: &str, length: usize) -> bool {
    text.len() == length && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// Imports `path` into `hub` and, for proxies, `thub.toml` at `config_file`. Returns a report.
pub async fn import(hub: &Hub, path: &Path, config_file: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let tufts: TuftsConfig = serde_json::from_str(&text).with_context(|| {
        format!("{} is not a Tufts Hub config.json (users: {{name: [hash, salt]}})", path.display())
    })?;
    let mut report = Vec::new();
    for (name, (hash, salt)) in &tufts.users {
        if !is_hex(hash, 64) || !is_hex(salt, 64) {
            report.push(format!("skipped user '{name}': the password is not a Tufts Hub [hash, salt] pair"));
            continue;
        }
        let username = match validation::username(name, &["users", name]) {
            Ok(username) => username,
            Err(error) => {
                report.push(format!("skipped user '{name}': {}", error.msg));
                continue;
            }
        };
        if hub.accounts.user_by_name(&username).await?.is_some() {
            report.push(format!("skipped user '{name}': already exists"));
            continue;
        }
        let stored = format!("{LEGACY_SHA256_PREFIX}{}${}", salt.to_lowercase(), hash.to_lowercase());
        let email = format!("{username}@users.invalid");
        match hub.accounts.insert_user(username.clone(), email, username.clone(), stored, Role::User).await {
            Ok(_) => {
                report.push(format!("imported user '{username}' (password kept; upgraded to argon2id at next login)"))
            }
            Err(AccountsError::UsernameTaken | AccountsError::EmailTaken) => {
                report.push(format!("skipped user '{name}': already exists"));
            }
            Err(error) => return Err(anyhow::anyhow!("cannot import user '{name}': {error}")),
        }
    }
    if !tufts.proxies.is_empty() {
        report.extend(append_proxies(&tufts.proxies, config_file)?);
    }
    if report.is_empty() {
        report.push("nothing to import".to_owned());
    }
    Ok(report)
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// Appends one `[plugins.proxy.apis.<name>]` table per new proxy to `thub.toml`, then checks the
/// whole file still loads; if not, the file is restored.
fn append_proxies(proxies: &BTreeMap<String, TuftsProxy>, config_file: &Path) -> anyhow::Result<Vec<String>> {
    let before = std::fs::read_to_string(config_file).unwrap_or_default();
    let existing = Config::from_toml(&before)
        .map(|config| {
            config.plugins.section::<thub_proxy::ProxyPlugin>().map(|section| section.settings.apis).unwrap_or_default()
        })
        .unwrap_or_default();
    let mut report = Vec::new();
    let mut added = String::new();
    for (name, proxy) in proxies {
        let valid_name =
            !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if !valid_name {
            report.push(format!("skipped proxy '{name}': names are letters, digits, '-' and '_'"));
            continue;
        }
        if existing.contains_key(name) {
            report.push(format!("skipped proxy '{name}': already in {}", config_file.display()));
            continue;
        }
        added.push_str(&format!("\n[plugins.proxy.apis.{name}]\nbase_url = {}\n", toml_string(&proxy.base_url)));
        if !proxy.headers.is_empty() {
            let headers: Vec<String> = proxy
                .headers
                .iter()
                .map(|(header, value)| format!("{} = {}", toml_string(header), toml_string(value)))
                .collect();
            added.push_str(&format!("headers = {{ {} }}\n", headers.join(", ")));
        }
        report.push(format!(
            "imported proxy '{name}' into {}{}",
            config_file.display(),
            if proxy.headers.is_empty() { "" } else { " (move secret header values to ${env:NAME} or ${file:PATH})" }
        ));
    }
    if added.is_empty() {
        return Ok(report);
    }
    let after = format!(
        "{before}{}# Imported from Tufts Hub config.json{added}",
        if before.is_empty() || before.ends_with('\n') { "" } else { "\n" }
    );
    Config::from_toml(&after)
        .with_context(|| format!("the imported proxies do not fit into {}; nothing written", config_file.display()))?;
    std::fs::write(config_file, after).with_context(|| format!("cannot write {}", config_file.display()))?;
    Ok(report)
}
