//! Opening the database (SQLite by default, PostgreSQL when configured) and migrating it.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, TransactionTrait};
use thub_migrations::{Migrator, MigratorTrait};

use crate::config::Config;

/// Opens the configured database: creates the data folder and the SQLite file on first start,
/// turns on WAL and foreign keys, and checks the database answers.
pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let url = config.database_url()?;
    if url.starts_with("sqlite:") && config.database.url.is_empty() {
        create_private_dir(&config.data_dir()?)?;
    }
    open(&url, config.database.max_connections, config.database.connect_timeout_seconds).await
}

/// Opens `url` with thub's connection settings.
pub async fn open(url: &str, max_connections: u32, timeout_seconds: u64) -> anyhow::Result<DatabaseConnection> {
    let shown = redact_url(url);
    anyhow::ensure!(
        url.starts_with("sqlite:") || url.starts_with("postgres:") || url.starts_with("postgresql:"),
        "unsupported database URL {shown}: use sqlite:// or postgres://"
    );
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(max_connections.max(1))
        .connect_timeout(Duration::from_secs(timeout_seconds))
        .acquire_timeout(Duration::from_secs(timeout_seconds))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|options| {
            options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .create_if_missing(true)
                .busy_timeout(Duration::from_secs(10))
                // A checkpoint that finds the log larger than this truncates it back, so one
                // burst of writes does not leave a huge -wal file behind for good.
                .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string())
        });
    let db = Database::connect(options)
        .await
        .map_err(|error| anyhow::anyhow!("cannot open database {shown}: {}", root_message(&error)))?;
    // SQLite opens anything lazily; a query proves the file really is a database.
    db.execute_unprepared("SELECT 1")
        .await
        .map_err(|error| anyhow::anyhow!("cannot use database {shown}: {}", root_message(&error)))?;
    Ok(db)
}

/// Applies every pending migration. On PostgreSQL the migration runs in one transaction under
/// an advisory lock, so instances starting together migrate one after the other.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    let failed = |error: sea_orm::DbErr| anyhow::anyhow!("cannot migrate the database: {}", root_message(&error));
    if db.get_database_backend() != DbBackend::Postgres {
        return Migrator::up(db, None).await.map_err(failed);
    }
    let transaction = db.begin().await.map_err(failed)?;
    transaction.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")).await.map_err(failed)?;
    Migrator::up(&transaction, None).await.map_err(failed)?;
    transaction.commit().await.map_err(failed)
}

/// The PostgreSQL advisory-lock key that serialises migrations ("thub" in ASCII).
const MIGRATION_LOCK: i64 = 0x7468_7562;

/// The size the SQLite write-ahead log is cut back to at checkpoints (64 MiB).
pub const WAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

/// Keeps the SQLite write-ahead log small: whenever writes pause (the `-wal` file has not grown
/// for one interval), a `TRUNCATE` checkpoint folds it into the database and empties it. Ends
/// when the database is closed. Does nothing on PostgreSQL or in-memory databases.
pub fn spawn_wal_maintenance(db: &DatabaseConnection, url: &str, interval: Duration) {
    if db.get_database_backend() != DbBackend::Sqlite {
        return;
    }
    let Some(file) = sqlite_file(url) else { return };
    let wal = std::path::PathBuf::from(format!("{}-wal", file.display()));
    let db = db.clone();
    tokio::spawn(async move {
        let mut last_size = 0;
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let size = std::fs::metadata(&wal).map(|metadata| metadata.len()).unwrap_or(0);
            if size > 0 && size == last_size {
                match db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await {
                    Ok(_) => {}
                    Err(sea_orm::DbErr::ConnectionAcquire(_)) => return,
                    Err(error) => tracing::debug!(error = %error, "WAL checkpoint postponed"),
                }
                last_size = std::fs::metadata(&wal).map(|metadata| metadata.len()).unwrap_or(0);
            } else {
                last_size = size;
            }
        }
    });
}

/// Closes the database for a clean stop: on SQLite the write-ahead log is checkpointed and
/// truncated first, so the last connection closing removes it and no `-wal` file is left.
pub async fn close(db: DatabaseConnection) {
    if db.get_database_backend() == DbBackend::Sqlite
        && let Err(error) = db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await
    {
        tracing::warn!(error = %error, "final WAL checkpoint failed");
    }
    if let Err(error) = db.close().await {
        tracing::warn!(error = %error, "closing the database failed");
    }
}

/// The file of a `sqlite://` URL, unless it is in memory.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| std::path::PathBuf::from(path))
}

/// Whether the database answers a trivial query (`/ready`).
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.execute_unprepared("SELECT 1").await.is_ok()
}

/// `url` with any password replaced, fit for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((credentials, host)) = rest.split_once('@') else { return url.to_owned() };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

fn root_message(error: &sea_orm::DbErr) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(next) = source {
        message = next.to_string();
        source = next.source();
    }
    message
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create data folder {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict data folder {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(redact_url("postgres://bob:pw@db:5432/x"), "postgres://bob:***@db:5432/x");
        assert_eq!(redact_url("postgres://bob@db/x"), "postgres://bob@db/x");
        assert_eq!(redact_url("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
    }
}
