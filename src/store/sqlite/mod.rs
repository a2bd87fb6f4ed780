//! The embedded [`Store`]: one SQLite file in WAL mode.
//!
//! The writer thread of `store::writer` owns the only writing connection and hands it writes in
//! call order, whatever has queued up as one group, committed here as one transaction (group
//! commit, in `commit`). Writes are refused
//! rarely (a payment decided twice, a stale open amount), so a group first runs without
//! savepoints; only when one write is refused is the group rolled back and run again with a
//! savepoint per write, so that the refused one leaves the others in. `synchronous=FULL` makes a
//! commit durable (the WAL is synced) before any write of the group is acknowledged.
//!
//! Checkpoints copy the WAL back into the database file, with a sync of their own. Left to
//! SQLite's automatic checkpoint they would run inside whichever commit crossed the WAL limit and
//! stall every request waiting on it, so they are split in two. A thread of their own copies the
//! bulk in PASSIVE mode, which never blocks the writer; but the writer keeps appending meanwhile,
//! so under steady load that alone never copies the whole WAL, and SQLite only starts the WAL
//! over once every frame is copied: the WAL would grow for as long as the load lasts (20 MiB/s at
//! 500 decisions/s). So after each such round the writer, between two groups, copies the few
//! frames committed since, and its next commit starts the WAL from the beginning. A bulk ledger
//! load is checkpointed by the writer, and the WAL emptied, before it is acknowledged: the cost
//! of copying a million invoices lands on the load, not on the payments that follow it.
//!
//! Reads run on tokio's blocking pool with connections of their own, which WAL lets proceed
//! beside the writer.

mod advice;
mod approval;
pub mod audit;
mod backup;
mod commit;
pub(super) mod read;
mod schema;
pub(super) mod session;
#[cfg(test)]
pub(super) mod tests;
pub(super) mod write;

pub use backup::{BackupSummary, backup};

use super::writer::{Write, Writer};
use super::{
    AdviceBook, AdviceWrite, Approval, ApprovalWrite, AssignmentWrite, AuditEvent, AuditRecord,
    CashRecord, DayActivity, DecisionEvent, DecisionRecord, ExportQuery, LedgerWrite, Outbox,
    PaymentReturn, Posting, PostingFilter, QueueSpan, Remainder, ResolutionRecord, ReversalRecord,
    ReviewFilter, ReviewRecord, ReviewSummary, ReviewTotals, SessionRecord, SessionWrite, Sla,
    Snapshot, Store, StoreError, StoreFuture, StoredDecision, TrainingExample,
};
use crate::domain::{Currency, Invoice};
use chrono::{DateTime, NaiveDate, Utc};
use commit::{Progress, SqliteWriter, WAL_KEEP_BYTES, checkpoint_loop};
use read::*;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use rust_decimal::Decimal;
use schema::SCHEMA;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// The database file inside the data directory.
pub const DB_FILE: &str = "cashmatch.sqlite3";

/// Page cache of each connection, in KiB (SQLite's default is 2 MiB): the writer's B-tree pages
/// for the decision and application indexes stay in memory.
const CACHE_KIB: i64 = 64 * 1024;

/// When a commit counts as durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// The WAL is synced at every commit: nothing acknowledged is lost even to a power cut. The
    /// latency floor of a write is one sync of the disk.
    #[default]
    Full,
    /// The WAL is synced at checkpoints only: nothing acknowledged is lost when the process dies
    /// (SIGKILL, a panic), but the last commits may be lost to an OS crash or a power cut.
    Normal,
}

/// The SQLite store of a data directory.
pub struct SqliteStore {
    writer: Writer,
    checkpointer: Mutex<Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
    path: PathBuf,
    readers: Arc<Mutex<Vec<Connection>>>,
}

pub(super) fn backend(context: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Backend {
        context: context.to_string(),
        message: e.to_string(),
    }
}

pub(super) fn corrupt(what: impl Into<String>, message: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        message: message.to_string(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind, still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SqliteStore {
    /// Opens (creating if need be) the store in `dir`, syncing every commit.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(dir, Durability::Full)
    }

    /// Opens the store in `dir` with the given durability.
    pub fn open_with(dir: &Path, durability: Durability) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend {
            context: format!("creating {}", dir.display()),
            message: e.to_string(),
        })?;
        let path = dir.join(DB_FILE);
        let mut conn = Connection::open(&path).map_err(backend("opening the database"))?;
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {sync};
             PRAGMA busy_timeout = 5000;
             PRAGMA wal_autocheckpoint = 0;
             PRAGMA journal_size_limit = {WAL_KEEP_BYTES};
             PRAGMA cache_size = -{CACHE_KIB};"
        ))
        .map_err(backend("setting WAL mode"))?;
        conn.execute_batch(SCHEMA)
            .map_err(backend("creating the schema"))?;
        conn.execute_batch(approval::SCHEMA)
            .map_err(backend("creating the approvals table"))?;
        conn.execute_batch(session::SCHEMA)
            .map_err(backend("creating the sessions table"))?;
        schema::migrate(&mut conn)?;
        let checkpoints = Connection::open(&path).map_err(backend("opening the checkpointer"))?;
        checkpoints
            .execute_batch(&format!(
                "PRAGMA synchronous = {sync}; PRAGMA busy_timeout = 5000;"
            ))
            .map_err(backend("setting up the checkpointer"))?;
        let progress = Arc::new(Progress::default());
        let writer = Writer::start(
            "cashmatch-store",
            SqliteWriter {
                conn,
                progress: Arc::clone(&progress),
            },
        )?;
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let checkpointer = std::thread::Builder::new()
            .name("cashmatch-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoints, stop_rx, &progress))
            .map_err(|e| StoreError::Backend {
                context: "starting the cashmatch-checkpoint thread".into(),
                message: e.to_string(),
            })?;
        Ok(SqliteStore {
            writer,
            checkpointer: Mutex::new(Some((stop_tx, checkpointer))),
            path,
            readers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the writer after the writes already queued, and waits for it.
    pub fn close(&self) {
        self.writer.close();
        if let Some((stop, t)) = lock(&self.checkpointer).take() {
            drop(stop);
            let _ = t.join();
        }
    }

    fn read<T, F>(&self, f: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = Arc::clone(&self.readers);
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let conn = match lock(&pool).pop() {
                    Some(c) => c,
                    None => Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(backend("opening a reader"))?,
                };
                let out = f(&conn);
                lock(&pool).push(conn);
                out
            })
            .await
            .map_err(|e| StoreError::Backend {
                context: "reader task".into(),
                message: e.to_string(),
            })?
        })
    }
}

/// The database file of the store in `data_dir`, or an error naming the directory when there is
/// none. For the commands that read an existing store: opening one creates it, so a mistyped
/// directory would otherwise read as an empty store.
pub fn existing(data_dir: &Path) -> Result<PathBuf, StoreError> {
    let file = data_dir.join(DB_FILE);
    if file.is_file() {
        Ok(file)
    } else {
        Err(StoreError::Backend {
            context: data_dir.display().to_string(),
            message: format!("no store here (no {DB_FILE}); give the service's --data-dir"),
        })
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        SqliteStore::close(self);
    }
}

impl Store for SqliteStore {
    fn load(&self) -> StoreFuture<Snapshot> {
        self.read(load)
    }

    fn write_ledger(&self, write: LedgerWrite) -> StoreFuture<()> {
        self.writer.submit(Write::Ledger(write))
    }

    fn record_decision(&self, record: DecisionRecord) -> StoreFuture<()> {
        self.writer.submit(Write::Decision(Box::new(record)))
    }

    fn resolve(&self, record: ResolutionRecord) -> StoreFuture<()> {
        self.writer.submit(Write::Resolve(Box::new(record)))
    }

    fn apply_cash(&self, record: CashRecord) -> StoreFuture<()> {
        self.writer.submit(Write::Cash(Box::new(record)))
    }

    fn reverse(&self, record: ReversalRecord) -> StoreFuture<()> {
        self.writer.submit(Write::Reverse(Box::new(record)))
    }

    fn payment_return(&self, payment_id: String) -> StoreFuture<Option<PaymentReturn>> {
        self.read(move |conn| payment_return(conn, &payment_id))
    }

    fn write_approval(&self, write: ApprovalWrite) -> StoreFuture<()> {
        self.writer.submit(Write::Approval(Box::new(write)))
    }

    fn pending_approvals(&self) -> StoreFuture<Vec<Approval>> {
        self.read(approval::pending)
    }

    fn write_advice(&self, write: AdviceWrite) -> StoreFuture<()> {
        self.writer.submit(Write::Advice(Box::new(write)))
    }

    fn advice_book(&self) -> StoreFuture<AdviceBook> {
        self.read(advice::book)
    }

    fn assign(&self, write: AssignmentWrite) -> StoreFuture<()> {
        self.writer.submit(Write::Assign(Box::new(write)))
    }

    fn write_session(&self, write: SessionWrite) -> StoreFuture<()> {
        self.writer.submit(Write::Session(write))
    }

    fn session(&self, id_hash: String) -> StoreFuture<Option<SessionRecord>> {
        self.read(move |conn| session::read(conn, &id_hash))
    }

    fn set_active_model(&self, directory: String, audit: AuditRecord) -> StoreFuture<()> {
        self.writer.submit(Write::ActiveModel(directory, audit))
    }

    fn decision(&self, payment_id: String) -> StoreFuture<Option<StoredDecision>> {
        self.read(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT payment_json, decision_json, decided_at FROM decisions WHERE payment_id = ?1",
                )
                .and_then(|mut s| {
                    s.query_row(params![payment_id], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                    })
                    .optional()
                })
                .map_err(backend("reading a decision"))?;
            row.map(|(p, d, at)| stored_decision(&p, &d, &at, &payment_id)).transpose()
        })
    }

    fn decisions_by_amount(
        &self,
        currency: Currency,
        amount: Decimal,
        limit: u32,
    ) -> StoreFuture<Vec<StoredDecision>> {
        // The amount column is the text the payment was decided with, at its own scale: every
        // spelling of the amount from no decimals to four is asked for, and the exact value is
        // compared after reading.
        let spellings: Vec<String> = (0..=4u32)
            .filter_map(|scale| {
                let mut a = amount.normalize();
                (a.scale() <= scale).then(|| {
                    a.rescale(scale);
                    a.to_string()
                })
            })
            .collect();
        self.read(move |conn| {
            let marks = vec!["?"; spellings.len()].join(", ");
            let sql = format!(
                "SELECT payment_json, decision_json, decided_at, payment_id FROM decisions
                 WHERE currency = ? AND amount IN ({marks}) ORDER BY decided_at DESC, rowid DESC
                 LIMIT ?"
            );
            let mut s = conn
                .prepare_cached(&sql)
                .map_err(backend("finding decisions by amount"))?;
            let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(currency.to_string())];
            args.extend(
                spellings
                    .into_iter()
                    .map(|a| Box::new(a) as Box<dyn rusqlite::ToSql>),
            );
            args.push(Box::new(limit));
            let rows = s
                .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(backend("finding decisions by amount"))?;
            let mut out = Vec::new();
            for row in rows {
                let (p, d, at, id) = row.map_err(backend("finding decisions by amount"))?;
                let found = stored_decision(&p, &d, &at, &id)?;
                if found.payment.amount == amount {
                    out.push(found);
                }
            }
            Ok(out)
        })
    }

    fn invoice(&self, invoice_id: String) -> StoreFuture<Option<Invoice>> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = ?1"
            ))
            .and_then(|mut s| {
                s.query_row(params![invoice_id], invoice_from_row)
                    .optional()
            })
            .map_err(backend("reading an invoice"))?
            .transpose()
        })
    }

    fn review_items(&self, filter: ReviewFilter) -> StoreFuture<(Vec<ReviewSummary>, u64)> {
        self.read(move |conn| review_items(conn, &filter))
    }

    fn review_item(&self, payment_id: String) -> StoreFuture<Option<ReviewRecord>> {
        self.read(move |conn| review_item(conn, &payment_id))
    }

    fn audit_events(
        &self,
        subject: Option<String>,
        after_id: u64,
        limit: u32,
    ) -> StoreFuture<Vec<AuditEvent>> {
        self.read(move |conn| audit_events(conn, subject.as_deref(), after_id, limit))
    }

    fn training_examples(&self, query: ExportQuery) -> StoreFuture<Vec<TrainingExample>> {
        self.read(move |conn| training_examples(conn, &query))
    }

    fn review_totals(&self, filter: ReviewFilter, sla: Sla) -> StoreFuture<ReviewTotals> {
        self.read(move |conn| review_totals(conn, &filter, &sla))
    }

    fn daily_activity(&self, since: NaiveDate) -> StoreFuture<Vec<DayActivity>> {
        self.read(move |conn| daily_activity(conn, since))
    }

    fn queue_spans(&self, since: DateTime<Utc>) -> StoreFuture<Vec<QueueSpan>> {
        self.read(move |conn| queue_spans(conn, since))
    }

    fn unapplied_remainders(&self) -> StoreFuture<Vec<Remainder>> {
        self.read(unapplied_remainders)
    }

    fn postings(&self, filter: PostingFilter, after: u64, limit: u32) -> StoreFuture<Vec<Posting>> {
        self.read(move |conn| postings(conn, &filter, after, limit))
    }

    fn decision_events(&self, after: u64, limit: u32) -> StoreFuture<Vec<DecisionEvent>> {
        self.read(move |conn| decision_events(conn, after, limit))
    }

    fn bus_cursor(&self, outbox: Outbox) -> StoreFuture<u64> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT position FROM bus_cursors WHERE name = ?1")
                .and_then(|mut s| {
                    s.query_row(params![outbox.name()], |r| r.get::<_, i64>(0))
                        .optional()
                })
                .map(|p| p.map_or(0, |p| p.max(0) as u64))
                .map_err(backend("reading the bus cursor"))
        })
    }

    fn set_bus_cursor(&self, outbox: Outbox, position: u64) -> StoreFuture<()> {
        self.writer.submit(Write::BusCursor(outbox, position))
    }

    fn wal_bytes(&self) -> Option<u64> {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        // No file: closed, or emptied by a TRUNCATE checkpoint and not written since.
        Some(std::fs::metadata(wal).map_or(0, |m| m.len()))
    }

    fn close(&self) {
        SqliteStore::close(self);
    }
}
