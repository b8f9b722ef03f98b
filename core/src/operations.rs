//! Operating a hub: `thub backup` (a consistent SQLite copy while serving), `thub restore`
//! (checked before anything is replaced) and `thub doctor` (what is configured and what is
//! reachable, with a non-zero exit on problems).

use std::path::{Path, PathBuf};

use anyhow::Context;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use thub_migrations::{Migrator, MigratorTrait};

use crate::config::Config;
use crate::storage::{self, sqlite_file};

/// Tables every thub database has; a file without them is not a thub database.
const THUB_TABLES: &[&str] = &["seaql_migrations", "users", "sessions", "settings"];

/// Copies the live SQLite database to `target` with `VACUUM INTO`: one read transaction, so the
/// copy is consistent while the hub serves, and the live file is only read. On PostgreSQL it
/// says to use `pg_dump`. Returns the line to print.
pub async fn backup(config: &Config, target: &Path) -> anyhow::Result<String> {
    let url = config.database_url()?;
    anyhow::ensure!(
        url.starts_with("sqlite:"),
        "thub backup copies SQLite databases; for PostgreSQL use pg_dump (e.g. pg_dump --format=custom --file={} \"$DATABASE_URL\")",
        target.display()
    );
    let source = sqlite_file(&url).context("the database URL names no file")?;
    anyhow::ensure!(source.is_file(), "no database at {}: nothing to back up", source.display());
    let folder = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    anyhow::ensure!(
        folder.is_dir(),
        "cannot back up to {}: folder {} does not exist",
        target.display(),
        folder.display()
    );
    anyhow::ensure!(!target.exists(), "cannot back up to {}: it already exists", target.display());
    let target_text = target.to_str().context("the backup path is not valid UTF-8")?;
    let db = storage::open(&url, 1, config.database.connect_timeout_seconds).await?;
    let copied = db.execute_unprepared(&format!("VACUUM INTO '{}'", target_text.replace('\'', "''"))).await;
    db.close().await.ok();
    if let Err(error) = copied {
        // A partial copy (full disk, no permission) must not look like a backup.
        let _ = std::fs::remove_file(target);
        anyhow::bail!("backup to {} failed: {error}; the live database is untouched", target.display());
    }
    let size = std::fs::metadata(target).map(|metadata| metadata.len()).unwrap_or(0);
    Ok(format!("Backed up {} to {} ({size} bytes).", source.display(), target.display()))
}

/// Replaces the SQLite database with `backup` after checking it is a thub database (SQLite
/// header, integrity check, thub's tables). The replaced file is kept beside it. Stop the hub
/// first. Returns the lines to print.
pub async fn restore(config: &Config, backup: &Path) -> anyhow::Result<Vec<String>> {
    let url = config.database_url()?;
    anyhow::ensure!(
        url.starts_with("sqlite:"),
        "thub restore replaces SQLite databases; for PostgreSQL use pg_restore (or psql for a plain dump)"
    );
    let live = sqlite_file(&url).context("the database URL names no file")?;
    check_backup(backup).await?;

    let folder = live.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
    let staged = folder.join(".thub-restore.tmp");
    std::fs::copy(backup, &staged)
        .with_context(|| format!("cannot copy {} to {}", backup.display(), staged.display()))?;
    std::fs::File::open(&staged).and_then(|file| file.sync_all()).context("cannot flush the staged copy")?;
    let mut lines = Vec::new();
    if live.exists() {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let kept = live.with_extension(format!("db.before-restore-{stamp}"));
        std::fs::rename(&live, &kept).with_context(|| format!("cannot move {} aside", live.display()))?;
        lines.push(format!("The previous database is kept as {}.", kept.display()));
    }
    // The old write-ahead log belongs to the old file.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", live.display()));
    }
    std::fs::rename(&staged, &live).with_context(|| format!("cannot put the backup in place at {}", live.display()))?;
    lines.insert(0, format!("Restored {} from {}.", live.display(), backup.display()));
    Ok(lines)
}

/// Refuses anything but an intact thub SQLite database.
async fn check_backup(backup: &Path) -> anyhow::Result<()> {
    let refuse = |why: &str| anyhow::anyhow!("refusing to restore {}: {why}; nothing was replaced", backup.display());
    let mut header = [0u8; 16];
    {
        use std::io::Read;
        let mut file = std::fs::File::open(backup).map_err(|error| refuse(&error.to_string()))?;
        file.read_exact(&mut header).map_err(|_| refuse("it is not a SQLite database"))?;
    }
    if &header != b"SQLite format 3\0" {
        return Err(refuse("it is not a SQLite database"));
    }
    // Opened read-only and as it is (no WAL switch): checking must not change the file.
    let mut options = sea_orm::ConnectOptions::new(format!("sqlite://{}?mode=ro", backup.display()));
    options.max_connections(1).sqlx_logging(false);
    let db = sea_orm::Database::connect(options).await.map_err(|error| refuse(&error.to_string()))?;
    let verdict = async {
        let integrity = scalar(&db, "PRAGMA integrity_check").await?;
        anyhow::ensure!(integrity == "ok", "its integrity check says {integrity}");
        for table in THUB_TABLES {
            let found =
                scalar(&db, &format!("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'"))
                    .await?;
            anyhow::ensure!(found == "1", "it is not a thub database (no {table} table)");
        }
        Ok(())
    }
    .await;
    db.close().await.ok();
    verdict.map_err(|error| refuse(&error.to_string()))
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> anyhow::Result<String> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_owned()))
        .await?
        .context("no answer")?;
    if let Ok(text) = row.try_get_by_index::<String>(0) {
        return Ok(text);
    }
    Ok(row.try_get_by_index::<i64>(0)?.to_string())
}

/// One finding of `thub doctor`.
struct Finding {
    ok: bool,
    what: &'static str,
    detail: String,
}

/// Checks what a hub needs and prints one line per item; `Ok(false)` when something is wrong.
pub async fn doctor(config: &Config) -> anyhow::Result<bool> {
    let mut findings = Vec::new();
    let mut note = |ok: bool, what: &'static str, detail: String| findings.push(Finding { ok, what, detail });

    match crate::client::TrustedProxies::parse(&config.server.trusted_proxies) {
        Ok(_) => note(true, "trusted proxies", format!("{:?}", config.server.trusted_proxies)),
        Err(error) => note(false, "trusted proxies", error.to_string()),
    }
    let public_url = &config.server.public_url;
    match public_url.as_str() {
        "" => note(true, "public_url", "not set: taken from each request's Host (set it behind a proxy)".to_owned()),
        url if url.starts_with("https://") => note(true, "public_url", url.to_owned()),
        url if url.starts_with("http://") => {
            note(true, "public_url", format!("{url} (plain HTTP: cookies are not Secure)"));
        }
        url => note(false, "public_url", format!("{url:?} is not an http(s):// URL")),
    }

    let url = config.database_url()?;
    let shown = storage::redact_url(&url);
    let database = match sqlite_file(&url) {
        Some(file) if url.starts_with("sqlite:") && !file.exists() => {
            note(false, "database", format!("{shown}: no database yet (thub serve or thub migrate creates it)"));
            None
        }
        _ => match storage::open(&url, 1, config.database.connect_timeout_seconds).await {
            Ok(db) => {
                match Migrator::get_pending_migrations(&db).await {
                    Ok(pending) if pending.is_empty() => {
                        note(true, "database", format!("{shown}: reachable, schema up to date"))
                    }
                    Ok(pending) => note(
                        false,
                        "database",
                        format!("{shown}: reachable, {} migrations pending (thub migrate)", pending.len()),
                    ),
                    Err(error) => note(false, "database", format!("{shown}: {error}")),
                }
                Some(db)
            }
            Err(error) => {
                note(false, "database", error.to_string());
                None
            }
        },
    };
    if let Some(db) = &database {
        let keys = scalar(db, "SELECT COUNT(*) FROM signing_keys WHERE retired_at IS NULL").await;
        match keys.as_deref() {
            Ok("0") => note(false, "signing keys", "no active identity-provider key (thub keys rotate)".to_owned()),
            Ok(count) => note(true, "signing keys", format!("{count} active")),
            Err(error) => note(false, "signing keys", error.to_string()),
        }
        let secret = if !config.auth.secret.is_empty() {
            Ok("from the configuration".to_owned())
        } else {
            scalar(db, "SELECT COUNT(*) FROM settings WHERE key = 'auth.session_secret'")
                .await
                .map(|count| if count == "1" { "kept in the database".to_owned() } else { "missing".to_owned() })
        };
        match secret {
            Ok(state) if state != "missing" => note(true, "session secret", state),
            Ok(_) => note(false, "session secret", "none yet (created by the first thub serve)".to_owned()),
            Err(error) => note(false, "session secret", error.to_string()),
        }
        if db.get_database_backend() == DbBackend::Sqlite {
            let journal = scalar(db, "PRAGMA journal_mode").await.unwrap_or_default();
            note(journal == "wal", "sqlite journal", journal);
        }
    }
    if config.auth.secret.expose().len() < 32 && !config.auth.secret.is_empty() {
        note(false, "auth.secret", "shorter than 32 characters".to_owned());
    }

    match config.redis.url.expose() {
        "" => note(true, "redis", "not configured: shared state stays in this process (one instance only)".to_owned()),
        url => match crate::shared::Shared::connect(url, &config.redis.key_prefix).await {
            Ok(shared) if shared.ping().await == Some(true) => {
                note(true, "redis", format!("{}: answers", storage::redact_url(url)));
            }
            Ok(_) => note(false, "redis", format!("{}: does not answer", storage::redact_url(url))),
            Err(error) => note(false, "redis", error.to_string()),
        },
    }

    if config.wasm.enabled {
        let dir = config.wasm_dir()?;
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                let plugins =
                    entries.filter_map(Result::ok).filter(|entry| entry.path().join("plugin.toml").is_file()).count();
                note(true, "plugins folder", format!("{}: {plugins} plugins", dir.display()));
            }
            Err(_) if !dir.exists() => {
                note(true, "plugins folder", format!("{}: not created yet (no plugins)", dir.display()))
            }
            Err(error) => note(false, "plugins folder", format!("{}: {error}", dir.display())),
        }
    } else {
        note(true, "plugins folder", "WebAssembly plugins switched off".to_owned());
    }

    match crate::tls::tls_files(config) {
        Ok(None) => note(true, "tls", "plain HTTP (TLS ends at the proxy, or none)".to_owned()),
        Ok(Some(files)) => match crate::tls::rustls_config(&files).and_then(|_| check_pem(&files.cert, &files.key)) {
            Ok(()) => note(true, "tls", format!("{} + {}", files.cert.display(), files.key.display())),
            Err(error) => note(false, "tls", format!("{error:#}")),
        },
        Err(error) => note(false, "tls", error.to_string()),
    }
    note(true, "metrics", if config.metrics.enabled { "served at /metrics" } else { "off" }.to_owned());

    if let Some(db) = database {
        db.close().await.ok();
    }
    let healthy = findings.iter().all(|finding| finding.ok);
    for finding in &findings {
        println!("{} {}: {}", if finding.ok { "ok  " } else { "FAIL" }, finding.what, finding.detail);
    }
    println!("{}", if healthy { "No problems found." } else { "Problems found." });
    Ok(healthy)
}

/// The certificate and key parse as PEM (rustls only reads them when serving).
fn check_pem(cert: &Path, key: &Path) -> anyhow::Result<()> {
    let cert_text = std::fs::read_to_string(cert).with_context(|| format!("cannot read {}", cert.display()))?;
    anyhow::ensure!(cert_text.contains("BEGIN CERTIFICATE"), "{} holds no PEM certificate", cert.display());
    let key_text = std::fs::read_to_string(key).with_context(|| format!("cannot read {}", key.display()))?;
    anyhow::ensure!(key_text.contains("PRIVATE KEY"), "{} holds no PEM private key", key.display());
    Ok(())
}
