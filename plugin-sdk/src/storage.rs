//! Database rules every plugin shares.

use sea_orm::{DbErr, SqliteTransactionMode, TransactionOptions, TransactionTrait};

/// Begins a transaction that will write. On SQLite it takes the write lock at `BEGIN`
/// (`BEGIN IMMEDIATE`), waiting for it under the busy timeout. A deferred transaction that
/// reads first and writes later fails at its first write with `SQLITE_BUSY_SNAPSHOT` whenever
/// another connection committed in between, at once and whatever the busy timeout: concurrent
/// writers would see 500s. PostgreSQL ignores the mode.
pub async fn begin_write<C: TransactionTrait>(db: &C) -> Result<C::Transaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}
