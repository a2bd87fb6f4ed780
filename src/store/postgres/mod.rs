//! The [`Store`] on PostgreSQL, for several replicas on one database (`--store postgres://...`).
//!
//! Writes take the same path as SQLite's: the writer thread of `store::writer` hands this store
//! whatever has queued up, in call order, as one group, committed here as one transaction on the
//! writer's own connection. Each group first takes one transaction-scoped advisory lock
//! ([`WRITE_LOCK`]), so that the groups of every replica on the database commit one after the
//! other: the postings sequence and the audit chain's ids are the largest plus one, taken under
//! the lock, and so stay gap-free and in commit order whichever replica wrote them. A write whose
//! premise another replica broke first (an open amount that moved, a payment decided already)
//! is refused as [`StoreError::Conflict`] inside a savepoint of its own, leaving the rest of its
//! group in; the service reloads and decides again.
//!
//! Reads run on tokio's blocking pool, each on a connection of its own from a small pool: the
//! `postgres` client is synchronous (it drives its own small runtime), which is why it runs off
//! the async workers.
//!
//! Money is `NUMERIC`, written from and read back as decimal text (`$1::text::numeric`,
//! `amount::text`), so that no amount ever passes through a float. Instants are RFC 3339 text in
//! UTC, as in the SQLite store, so that both read their rows with the same parsers.

mod read;
mod schema;
#[cfg(test)]
pub(crate) mod testdb;
#[cfg(test)]
mod tests;
mod write;

use super::writer::{GroupBackend, Write, Writer};
use super::{
    Approval, ApprovalWrite, AuditEvent, AuditRecord, DayActivity, DecisionRecord, ExportQuery,
    LedgerWrite, PaymentReturn, Posting, PostingFilter, QueueSpan, Remainder, ResolutionRecord,
    ReversalRecord, ReviewFilter, ReviewRecord, ReviewSummary, ReviewTotals, Snapshot, Store,
    StoreError, StoreFuture, StoredDecision, TrainingExample,
};
use crate::domain::{Currency, Invoice};
use chrono::{DateTime, NaiveDate, Utc};
use postgres::{Client, NoTls};
use rust_decimal::Decimal;
use std::sync::{Arc, Mutex};

/// The advisory lock every write group holds until it commits (`pg_advisory_xact_lock`): one
/// writer at a time across replicas. An arbitrary constant, the same in every build.
const WRITE_LOCK: i64 = 0x6361_7368_6d61_7401;

/// The advisory lock migrations hold, so that replicas started together migrate once.
const MIGRATE_LOCK: i64 = 0x6361_7368_6d61_7402;

/// Idle reader connections kept for the next read.
const IDLE_READERS: usize = 8;

/// The PostgreSQL store of one database.
pub struct PgStore {
    writer: Writer,
    url: String,
    readers: Arc<Mutex<Vec<Client>>>,
}

pub(super) fn backend(context: &str) -> impl FnOnce(postgres::Error) -> StoreError + '_ {
    move |e| StoreError::Backend {
        context: context.to_string(),
        // The server's message, not just "db error".
        message: match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        },
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

/// The URL without its password, for messages and logs.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A PostgreSQL store's address, as `--store` takes it (`postgres://USER@HOST:PORT/DB`). Its
/// `Debug` hides the password, so settings can be logged whole.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl(String);

impl StoreUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for StoreUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<StoreUrl, String> {
        let s = s.trim();
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            // Parsed now, so that a malformed URL is refused at start, naming itself.
            s.parse::<postgres::Config>()
                .map_err(|e| format!("{}: {e}", redacted(s)))?;
            Ok(StoreUrl(s.to_string()))
        } else {
            Err(format!(
                "{}: the store must be postgres://USER@HOST:PORT/DB (SQLite, the default, is \
                 chosen by leaving --store out; its directory is --data-dir)",
                redacted(s)
            ))
        }
    }
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redacted(&self.0))
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redacted(&self.0))
    }
}

fn connect(url: &str) -> Result<Client, StoreError> {
    Client::connect(url, NoTls).map_err(|e| StoreError::Backend {
        context: format!("connecting to {}", redacted(url)),
        message: e.to_string(),
    })
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://USER@HOST:PORT/DB`), brings its schema up
    /// to date and starts the writer. Blocking: call it off the async workers (see
    /// [`PgStore::open_async`]).
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let mut conn = connect(url)?;
        schema::migrate(&mut conn)?;
        let writer = Writer::start(
            "cashmatch-pg-store",
            PgWriter {
                conn,
                url: url.to_string(),
            },
        )?;
        Ok(PgStore {
            writer,
            url: url.to_string(),
            readers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// [`PgStore::open`] from async code.
    pub async fn open_async(url: &str) -> Result<PgStore, StoreError> {
        let url = url.to_string();
        tokio::task::spawn_blocking(move || PgStore::open(&url))
            .await
            .map_err(|e| StoreError::Backend {
                context: "opening the PostgreSQL store".into(),
                message: e.to_string(),
            })?
    }

    fn read<T, F>(&self, f: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Client) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = Arc::clone(&self.readers);
        let url = self.url.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut conn = match lock(&pool).pop() {
                    Some(c) if !c.is_closed() => c,
                    _ => connect(&url)?,
                };
                let out = f(&mut conn);
                let mut idle = lock(&pool);
                // A connection the server closed is dropped, and a new one made next time.
                if idle.len() < IDLE_READERS && !conn.is_closed() {
                    idle.push(conn);
                }
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

impl PgStore {
    /// Stops the writer after the writes already queued, and closes the idle readers.
    fn shut(&self) {
        self.writer.close();
        let idle = std::mem::take(&mut *lock(&self.readers));
        // Closing a client blocks on its own runtime, which panics on an async worker (where the
        // last service handle is often dropped): the clients are closed on a thread of their own.
        if !idle.is_empty() {
            let _ = std::thread::Builder::new()
                .name("cashmatch-pg-close".into())
                .spawn(move || drop(idle))
                .map(|t| t.join());
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.shut();
    }
}

/// The writing connection, owned by the writer thread.
struct PgWriter {
    conn: Client,
    url: String,
}

impl GroupBackend for PgWriter {
    fn apply_group(&mut self, writes: &[Write]) -> Vec<Result<(), StoreError>> {
        let fail_all = |e: StoreError| -> Vec<Result<(), StoreError>> {
            writes
                .iter()
                .map(|_| {
                    Err(StoreError::Backend {
                        context: "commit".into(),
                        message: e.to_string(),
                    })
                })
                .collect()
        };
        // A connection the server closed (a restart, a failover) is made again, so that the
        // groups after it commit; the group that met the closing failed and was not acknowledged.
        if self.conn.is_closed() {
            match connect(&self.url) {
                Ok(c) => self.conn = c,
                Err(e) => return fail_all(e),
            }
        }
        let mut tx = match self.conn.transaction() {
            Ok(tx) => tx,
            Err(e) => return fail_all(backend("beginning a transaction")(e)),
        };
        if let Err(e) = tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK]) {
            return fail_all(backend("taking the write lock")(e));
        }
        // A savepoint per write, unlike SQLite's first plain try: a refusal here is the normal
        // outcome of two replicas racing, and PostgreSQL aborts the whole transaction on any
        // error inside it, so a plain run could not tell which write to leave out.
        let mut results = Vec::with_capacity(writes.len());
        for w in writes {
            let r = match tx.savepoint("write") {
                Ok(mut sp) => match write::apply_write(&mut sp, w) {
                    Ok(()) => sp.commit().map_err(backend("releasing a savepoint")),
                    // Dropping the savepoint rolls it back.
                    Err(e) => Err(e),
                },
                Err(e) => Err(backend("opening a savepoint")(e)),
            };
            results.push(r);
        }
        match tx.commit() {
            Ok(()) => results,
            Err(e) => fail_all(backend("committing")(e)),
        }
    }
}

impl Store for PgStore {
    fn load(&self) -> StoreFuture<Snapshot> {
        self.read(read::load)
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

    fn reverse(&self, record: ReversalRecord) -> StoreFuture<()> {
        self.writer.submit(Write::Reverse(Box::new(record)))
    }

    fn payment_return(&self, payment_id: String) -> StoreFuture<Option<PaymentReturn>> {
        self.read(move |c| read::payment_return(c, &payment_id))
    }

    fn write_approval(&self, write: ApprovalWrite) -> StoreFuture<()> {
        self.writer.submit(Write::Approval(Box::new(write)))
    }

    fn pending_approvals(&self) -> StoreFuture<Vec<Approval>> {
        self.read(read::pending_approvals)
    }

    fn set_active_model(&self, directory: String, audit: AuditRecord) -> StoreFuture<()> {
        self.writer.submit(Write::ActiveModel(directory, audit))
    }

    fn decision(&self, payment_id: String) -> StoreFuture<Option<StoredDecision>> {
        self.read(move |c| read::decision(c, &payment_id))
    }

    fn decisions_by_amount(
        &self,
        currency: Currency,
        amount: Decimal,
        limit: u32,
    ) -> StoreFuture<Vec<StoredDecision>> {
        self.read(move |c| read::decisions_by_amount(c, currency, amount, limit))
    }

    fn invoice(&self, invoice_id: String) -> StoreFuture<Option<Invoice>> {
        self.read(move |c| read::invoice(c, &invoice_id))
    }

    fn review_items(&self, filter: ReviewFilter) -> StoreFuture<(Vec<ReviewSummary>, u64)> {
        self.read(move |c| read::review_items(c, &filter))
    }

    fn review_item(&self, payment_id: String) -> StoreFuture<Option<ReviewRecord>> {
        self.read(move |c| read::review_item(c, &payment_id))
    }

    fn audit_events(
        &self,
        subject: Option<String>,
        after_id: u64,
        limit: u32,
    ) -> StoreFuture<Vec<AuditEvent>> {
        self.read(move |c| read::audit_events(c, subject.as_deref(), after_id, limit))
    }

    fn training_examples(&self, query: ExportQuery) -> StoreFuture<Vec<TrainingExample>> {
        self.read(move |c| read::training_examples(c, &query))
    }

    fn review_totals(
        &self,
        filter: ReviewFilter,
        sla_cutoff: DateTime<Utc>,
    ) -> StoreFuture<ReviewTotals> {
        self.read(move |c| read::review_totals(c, &filter, sla_cutoff))
    }

    fn daily_activity(&self, since: NaiveDate) -> StoreFuture<Vec<DayActivity>> {
        self.read(move |c| read::daily_activity(c, since))
    }

    fn queue_spans(&self, since: DateTime<Utc>) -> StoreFuture<Vec<QueueSpan>> {
        self.read(move |c| read::queue_spans(c, since))
    }

    fn unapplied_remainders(&self) -> StoreFuture<Vec<Remainder>> {
        self.read(read::unapplied_remainders)
    }

    fn postings(&self, filter: PostingFilter, after: u64, limit: u32) -> StoreFuture<Vec<Posting>> {
        self.read(move |c| read::postings(c, &filter, after, limit))
    }

    fn close(&self) {
        self.shut();
    }
}
