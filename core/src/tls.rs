//! HTTPS: a configured certificate and key, or a mkcert-style pair found in the hub folder
//! (`NAME.pem` + `NAME-key.pem`, as Tufts Hub users make them). Ambiguity is an error, never a
//! guess.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::Config;

/// A certificate chain and its private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// The TLS files to serve with, if any.
pub fn tls_files(config: &Config) -> anyhow::Result<Option<TlsFiles>> {
    match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert: cert.clone(), key: key.clone() })),
        (Some(_), None) | (None, Some(_)) => anyhow::bail!("set both server.tls_cert and server.tls_key, or neither"),
        (None, None) => discover(&config.root()?),
    }
}

/// Finds exactly one `NAME.pem` + `NAME-key.pem` pair in `folder` (file names compared
/// case-insensitively). None, or only halves of pairs: plain HTTP.
pub fn discover(folder: &Path) -> anyhow::Result<Option<TlsFiles>> {
    let Ok(entries) = std::fs::read_dir(folder) else { return Ok(None) };
    let mut pems: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_file())
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_lowercase();
            name.ends_with(".pem").then(|| (name, entry.path()))
        })
        .collect();
    pems.sort();
    let mut pairs = Vec::new();
    for (name, key) in &pems {
        let Some(stem) = name.strip_suffix("-key.pem") else { continue };
        if let Some((_, cert)) = pems.iter().find(|(candidate, _)| *candidate == format!("{stem}.pem")) {
            pairs.push(TlsFiles { cert: cert.clone(), key: key.clone() });
        }
    }
    match pairs.len() {
        0 => Ok(None),
        1 => Ok(pairs.pop()),
        _ => {
            let names: Vec<String> = pairs.iter().map(|pair| pair.cert.display().to_string()).collect();
            anyhow::bail!(
                "several certificate pairs in the hub folder ({}); set server.tls_cert and server.tls_key",
                names.join(", ")
            )
        }
    }
}

/// The rustls configuration for `files`, checked now so a bad file fails at start-up.
pub fn rustls_config(files: &TlsFiles) -> anyhow::Result<poem::listener::RustlsConfig> {
    let cert =
        std::fs::read(&files.cert).with_context(|| format!("cannot read certificate {}", files.cert.display()))?;
    let key = std::fs::read(&files.key).with_context(|| format!("cannot read key {}", files.key.display()))?;
    Ok(poem::listener::RustlsConfig::new().fallback(poem::listener::RustlsCertificate::new().cert(cert).key(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mkcert_pairs_are_found_and_ambiguity_refused() {
        let folder = tempfile::tempdir().unwrap();
        assert_eq!(discover(folder.path()).unwrap(), None);
        std::fs::write(folder.path().join("localhost+2-key.pem"), "k").unwrap();
        assert_eq!(discover(folder.path()).unwrap(), None, "a lone key is not a pair");
        std::fs::write(folder.path().join("localhost+2.pem"), "c").unwrap();
        let found = discover(folder.path()).unwrap().unwrap();
        assert!(found.cert.ends_with("localhost+2.pem") && found.key.ends_with("localhost+2-key.pem"));
        std::fs::write(folder.path().join("other.pem"), "c").unwrap();
        std::fs::write(folder.path().join("other-key.pem"), "k").unwrap();
        let error = discover(folder.path()).unwrap_err().to_string();
        assert!(error.contains("several certificate pairs"), "{error}");
    }
}
