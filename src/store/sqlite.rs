//! The embedded [`Store`]: one SQLite file in WAL mode.
//!
//! One writer thread owns the only writing connection and takes writes from a channel in call
//! order. It commits whatever has queued up as one transaction (group commit). Writes are refused
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

use super::{
    AuditEvent, AuditRecord, DayActivity, DecisionRecord, ExportQuery, LedgerWrite,
    OpenAmountChange, QueueSpan, Remainder, RemainderKind, Resolution, ResolutionRecord,
    ReviewFilter, ReviewRecord, ReviewState, ReviewSummary, ReviewTotals, Snapshot, Store,
    StoreError, StoreFuture, StoredDecision, TrainingExample,
};
use crate::domain::{
    Currency, Customer, Invoice, LabelSource, Payment, ReviewReason, Status, Terms,
};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The database file inside the data directory.
pub const DB_FILE: &str = "cashmatch.sqlite3";

/// Ledger rows (customers and invoices) in one group from which the writer checkpoints before
/// acknowledging the group, so that a bulk load pays for copying itself.
const BULK_ROWS: usize = 5_000;

/// The WAL file is cut back to this size when it starts over after a bulk load made it large.
const WAL_KEEP_BYTES: i64 = 64 * 1024 * 1024;

/// Writes committed together at most; enough to amortise the sync, few enough that one
/// transaction stays short.
const MAX_GROUP: usize = 512;

/// How often the checkpointer looks at what the writer has committed.
const CHECKPOINT_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Writes committed since the last checkpoint that call for the next one. A decision writes
/// about ten pages, so this is some 40 MiB of WAL: less than the WAL file kept
/// ([`WAL_KEEP_BYTES`]), which is then written over rather than grown and cut back each round.
/// Rounds of 4,096 writes overflowed it and tripled the p99 at 500 decisions/s
/// (docs/benchmarks.md).
const CHECKPOINT_WRITES: u64 = 1024;

/// The longest a committed write waits to be checkpointed when writes trickle in.
const CHECKPOINT_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Page cache of each connection, in KiB (SQLite's default is 2 MiB): the writer's B-tree pages
/// for the decision and application indexes stay in memory.
const CACHE_KIB: i64 = 64 * 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    parent_id TEXT,
    bank_accounts TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS invoices (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    number TEXT NOT NULL,
    po_number TEXT,
    invoice_date TEXT NOT NULL,
    due_date TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount TEXT NOT NULL,
    open_amount TEXT NOT NULL,
    terms TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    payment_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    customer_id TEXT,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    model_version TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    payment_json TEXT NOT NULL,
    decision_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS applications (
    id INTEGER PRIMARY KEY,
    payment_id TEXT NOT NULL,
    invoice_id TEXT NOT NULL,
    amount TEXT NOT NULL,
    discount TEXT NOT NULL,
    deduction TEXT NOT NULL,
    reason_code TEXT,
    source TEXT NOT NULL,
    applied_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS applications_payment ON applications (payment_id);
CREATE INDEX IF NOT EXISTS applications_invoice ON applications (invoice_id);
CREATE TABLE IF NOT EXISTS review_items (
    payment_id TEXT PRIMARY KEY,
    customer_id TEXT,
    amount TEXT NOT NULL,
    -- Ten-thousandths of the amount, to filter and order by; the amount itself is the text.
    amount_key INTEGER NOT NULL,
    currency TEXT NOT NULL,
    reason TEXT,
    confidence REAL NOT NULL,
    created_at TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    resolution_json TEXT,
    resolved_at TEXT
);
CREATE INDEX IF NOT EXISTS review_items_state ON review_items (state, customer_id);
-- The dashboard's per-day figures.
CREATE INDEX IF NOT EXISTS decisions_decided_at ON decisions (decided_at);
CREATE INDEX IF NOT EXISTS review_items_created_at ON review_items (created_at);
CREATE INDEX IF NOT EXISTS review_items_resolved_at ON review_items (resolved_at);
-- Auto decisions that left cash unapplied (overpayments) are few; the dashboard reads only those.
CREATE INDEX IF NOT EXISTS decisions_auto_remainder ON decisions (decided_at)
    WHERE status = 'auto' AND json_extract(decision_json, '$.unapplied') GLOB '*[1-9]*';
CREATE TABLE IF NOT EXISTS audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    before_json TEXT NOT NULL,
    after_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_subject ON audit_events (subject, id);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

enum Write {
    Ledger(LedgerWrite),
    Decision(Box<DecisionRecord>),
    Resolve(Box<ResolutionRecord>),
    ActiveModel(String, AuditRecord),
}

impl Write {
    fn ledger_rows(&self) -> usize {
        match self {
            Write::Ledger(w) => w.customers.len() + w.invoices.len(),
            _ => 0,
        }
    }
}

struct Job {
    write: Write,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

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
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    checkpointer: Mutex<Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
    path: PathBuf,
    readers: Arc<Mutex<Vec<Connection>>>,
}

fn backend(context: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Backend {
        context: context.to_string(),
        message: e.to_string(),
    }
}

fn corrupt(what: impl Into<String>, message: impl ToString) -> StoreError {
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
        let conn = Connection::open(&path).map_err(backend("opening the database"))?;
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
        let checkpoints = Connection::open(&path).map_err(backend("opening the checkpointer"))?;
        checkpoints
            .execute_batch(&format!(
                "PRAGMA synchronous = {sync}; PRAGMA busy_timeout = 5000;"
            ))
            .map_err(backend("setting up the checkpointer"))?;
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| StoreError::Backend {
                    context: format!("starting the {name} thread"),
                    message: e.to_string(),
                })
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let progress = Arc::new(Progress::default());
        let counted = Arc::clone(&progress);
        let thread = spawn(
            "cashmatch-store",
            Box::new(move || writer_loop(conn, rx, &counted)),
        )?;
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let checkpointer = spawn(
            "cashmatch-checkpoint",
            Box::new(move || checkpoint_loop(checkpoints, stop_rx, &progress)),
        )?;
        Ok(SqliteStore {
            writer: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
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
        lock(&self.writer).take();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
        if let Some((stop, t)) = lock(&self.checkpointer).take() {
            drop(stop);
            let _ = t.join();
        }
    }

    fn submit(&self, write: Write) -> StoreFuture<()> {
        let (reply, rx) = oneshot::channel();
        let sent = match lock(&self.writer).as_ref() {
            Some(w) => w.send(Job { write, reply }).is_ok(),
            None => false,
        };
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.unwrap_or(Err(StoreError::Closed))
        })
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

/// What [`backup`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSummary {
    /// The backup's database file.
    pub file: PathBuf,
    pub bytes: u64,
    pub invoices: u64,
    pub decisions: u64,
    pub open_reviews: u64,
}

/// Copies the store in `data_dir` into `out`, a new data directory that `cashmatch serve
/// --data-dir OUT` can start from. The copy is one consistent snapshot (`VACUUM INTO` in a read
/// transaction), taken beside a running service without stopping its writes: what was committed
/// before the snapshot began is in it, what came after is not. It is written under a temporary
/// name, checked (`quick_check`), and only then renamed into place, so a backup that exists is
/// whole. `out` must not exist yet or be empty.
pub fn backup(data_dir: &Path, out: &Path) -> Result<BackupSummary, StoreError> {
    let fail = |context: String| {
        move |e: std::io::Error| StoreError::Backend {
            context,
            message: e.to_string(),
        }
    };
    let source = existing(data_dir)?;
    if out.exists() {
        let mut entries =
            std::fs::read_dir(out).map_err(fail(format!("reading {}", out.display())))?;
        if entries.next().is_some() {
            return Err(StoreError::Backend {
                context: format!("backing up into {}", out.display()),
                message: "the directory is not empty; a backup never overwrites".into(),
            });
        }
    }
    std::fs::create_dir_all(out).map_err(fail(format!("creating {}", out.display())))?;
    let file = out.join(DB_FILE);
    let partial = out.join(format!("{DB_FILE}.partial"));
    let _ = std::fs::remove_file(&partial);
    let conn = Connection::open_with_flags(
        &source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(backend("opening the store to back it up"))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(backend("setting up the backup"))?;
    let target = partial.to_str().ok_or_else(|| StoreError::Backend {
        context: format!("backing up into {}", out.display()),
        message: "the path is not UTF-8".into(),
    })?;
    conn.execute("VACUUM INTO ?1", params![target])
        .map_err(backend("copying the store"))?;
    drop(conn);
    let copy = Connection::open(&partial).map_err(backend("opening the copy"))?;
    let check: String = copy
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(backend("checking the copy"))?;
    if check != "ok" {
        return Err(corrupt("backup copy", check));
    }
    let count = |sql: &str| -> Result<u64, StoreError> {
        copy.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(backend("counting the copy's rows"))
    };
    let invoices = count("SELECT COUNT(*) FROM invoices")?;
    let decisions = count("SELECT COUNT(*) FROM decisions")?;
    let open_reviews = count("SELECT COUNT(*) FROM review_items WHERE state = 'open'")?;
    drop(copy);
    std::fs::rename(&partial, &file).map_err(fail(format!("renaming {}", partial.display())))?;
    // The rename is only durable once the directory is synced.
    if let Ok(d) = std::fs::File::open(out) {
        let _ = d.sync_all();
    }
    let bytes = std::fs::metadata(&file).map_or(0, |m| m.len());
    Ok(BackupSummary {
        file,
        bytes,
        invoices,
        decisions,
        open_reviews,
    })
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// What the writer and the checkpointer tell each other.
#[derive(Default)]
struct Progress {
    /// Writes committed, counted by the writer.
    written: AtomicU64,
    /// Set by the checkpointer after a round, taken by the writer: copy what was committed
    /// during the round, so that the WAL can start over.
    finish: AtomicBool,
}

/// Copies the WAL into the database file as far as no reader's snapshot prevents it (PASSIVE:
/// never waits). False when it failed (logged; the next round retries).
fn checkpoint(conn: &Connection, who: &str) -> bool {
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, by = who, "a WAL checkpoint failed; the next round retries");
            false
        }
    }
}

/// Commits queued writes in groups, and finishes checkpoints (see the module doc).
fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>, progress: &Progress) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let results = run_group(&mut conn, &jobs);
        progress
            .written
            .fetch_add(jobs.len() as u64, Ordering::Relaxed);
        let bulk = jobs.iter().map(|j| j.write.ledger_rows()).sum::<usize>() >= BULK_ROWS;
        if bulk {
            // TRUNCATE also empties the WAL the load filled, so the next payment's commit does
            // not pay for cutting it back.
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "the checkpoint after a bulk load failed");
            }
        }
        let mut spent = Vec::with_capacity(jobs.len());
        for (job, r) in jobs.into_iter().zip(results) {
            let _ = job.reply.send(r);
            spent.push(job.write);
        }
        // Freeing a million invoices takes tens of milliseconds the next payments would wait.
        // (Should the thread not start, they are freed here.)
        if bulk {
            let _ = std::thread::Builder::new()
                .name("cashmatch-free".into())
                .spawn(move || drop(spent));
        }
        if progress.finish.swap(false, Ordering::Relaxed) {
            checkpoint(&conn, "writer");
        }
    }
}

/// Copies the WAL into the database file after [`CHECKPOINT_WRITES`] writes or
/// [`CHECKPOINT_MAX_WAIT`], whichever comes first, until the store closes; then once more,
/// truncating the WAL so that a closed store is one file.
fn checkpoint_loop(conn: Connection, stop: mpsc::Receiver<()>, progress: &Progress) {
    let (mut done, mut last) = (0u64, std::time::Instant::now());
    // A message or a hang-up both mean the store is closing.
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_POLL) {
        let now = progress.written.load(Ordering::Relaxed);
        let pending = now - done;
        if pending >= CHECKPOINT_WRITES || (pending > 0 && last.elapsed() >= CHECKPOINT_MAX_WAIT) {
            // What this round could not reach (committed meanwhile), the writer copies next.
            if checkpoint(&conn, "checkpointer") {
                progress.finish.store(true, Ordering::Relaxed);
            }
            (done, last) = (now, std::time::Instant::now());
        }
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "the closing WAL checkpoint failed; the next open replays it");
    }
}

/// Runs a group of writes in one transaction: first without savepoints, and only if a write is
/// refused, again with a savepoint per write.
fn run_group(conn: &mut Connection, jobs: &[Job]) -> Vec<Result<(), StoreError>> {
    match run_plain(conn, jobs) {
        Ok(()) => jobs.iter().map(|_| Ok(())).collect(),
        Err(()) => run_savepoints(conn, jobs),
    }
}

/// The whole group or nothing: `Err` (after rolling back) when any write is refused or the
/// commit fails.
fn run_plain(conn: &mut Connection, jobs: &[Job]) -> Result<(), ()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|_| ())?;
    for job in jobs {
        // Dropping the transaction rolls it back.
        apply_write(&tx, &job.write).map_err(|_| ())?;
    }
    tx.commit().map_err(|_| ())
}

/// Each write in its own savepoint, so that a refused write leaves the others in.
fn run_savepoints(conn: &mut Connection, jobs: &[Job]) -> Vec<Result<(), StoreError>> {
    let fail_all = |e: StoreError| -> Vec<Result<(), StoreError>> {
        jobs.iter()
            .map(|_| {
                Err(StoreError::Backend {
                    context: "commit".into(),
                    message: e.to_string(),
                })
            })
            .collect()
    };
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(backend("beginning a transaction")(e)),
    };
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        let r = match tx.savepoint() {
            Ok(sp) => {
                let r = apply_write(&sp, &job.write);
                match r {
                    Ok(()) => sp.commit().map_err(backend("releasing a savepoint")),
                    // Dropping the savepoint rolls it back.
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(backend("opening a savepoint")(e)),
        };
        results.push(r);
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => fail_all(backend("committing")(e)),
    }
}

fn apply_write(conn: &Connection, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::Ledger(w) => {
            for c in &w.customers {
                upsert_customer(conn, c)?;
            }
            for inv in &w.invoices {
                upsert_invoice(conn, inv)?;
            }
            if let Some(a) = &w.audit {
                insert_audit(conn, a)?;
            }
            Ok(())
        }
        Write::Decision(r) => record_decision(conn, r),
        Write::Resolve(r) => resolve(conn, r),
        Write::ActiveModel(dir, audit) => {
            conn.execute(
                "INSERT INTO settings (key, value) VALUES ('active_model', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![dir],
            )
            .map_err(backend("storing the active model"))?;
            insert_audit(conn, audit)
        }
    }
}

fn json<T: serde::Serialize>(v: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| corrupt(what, e))
}

fn upsert_customer(conn: &Connection, c: &Customer) -> Result<(), StoreError> {
    let Customer {
        id,
        name,
        parent_id,
        bank_accounts,
    } = c;
    let accounts = json(bank_accounts, "bank accounts")?;
    conn.prepare_cached(
        "INSERT INTO customers (id, name, parent_id, bank_accounts) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, parent_id = excluded.parent_id,
         bank_accounts = excluded.bank_accounts",
    )
    .and_then(|mut s| s.execute(params![id, name, parent_id, accounts]))
    .map_err(backend("storing a customer"))?;
    Ok(())
}

fn upsert_invoice(conn: &Connection, inv: &Invoice) -> Result<(), StoreError> {
    let Invoice {
        id,
        customer_id,
        number,
        po_number,
        invoice_date,
        due_date,
        currency,
        amount,
        open_amount,
        terms,
    } = inv;
    conn.prepare_cached(
        "INSERT INTO invoices (id, customer_id, number, po_number, invoice_date, due_date,
         currency, amount, open_amount, terms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (id) DO UPDATE SET customer_id = excluded.customer_id,
         number = excluded.number, po_number = excluded.po_number,
         invoice_date = excluded.invoice_date, due_date = excluded.due_date,
         currency = excluded.currency, amount = excluded.amount,
         open_amount = excluded.open_amount, terms = excluded.terms",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            customer_id,
            number,
            po_number,
            invoice_date.to_string(),
            due_date.to_string(),
            currency.as_str(),
            amount.to_string(),
            open_amount.to_string(),
            terms.to_string(),
        ])
    })
    .map_err(backend("storing an invoice"))?;
    Ok(())
}

fn insert_audit(conn: &Connection, a: &AuditRecord) -> Result<(), StoreError> {
    let AuditRecord {
        at,
        actor,
        action,
        subject,
        before,
        after,
    } = a;
    conn.prepare_cached(
        "INSERT INTO audit_events (at, actor, action, subject, before_json, after_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            at.to_rfc3339(),
            actor,
            action,
            subject,
            before.to_string(),
            after.to_string()
        ])
    })
    .map_err(backend("storing an audit event"))?;
    Ok(())
}

/// Moves open amounts, refusing when a stored amount is not what the writer saw.
fn apply_changes(conn: &Connection, changes: &[OpenAmountChange]) -> Result<(), StoreError> {
    for ch in changes {
        let stored: Option<String> = conn
            .prepare_cached("SELECT open_amount FROM invoices WHERE id = ?1")
            .and_then(|mut s| s.query_row(params![ch.invoice_id], |r| r.get(0)).optional())
            .map_err(backend("reading an open amount"))?;
        let Some(stored) = stored else {
            return Err(StoreError::Conflict(format!(
                "invoice {} is not stored",
                ch.invoice_id
            )));
        };
        let stored: Decimal = stored
            .parse()
            .map_err(|e| corrupt(format!("open amount of invoice {}", ch.invoice_id), e))?;
        if stored != ch.before {
            return Err(StoreError::Conflict(format!(
                "invoice {}: open amount is {stored}, not {}",
                ch.invoice_id, ch.before
            )));
        }
        conn.prepare_cached("UPDATE invoices SET open_amount = ?1 WHERE id = ?2")
            .and_then(|mut s| s.execute(params![ch.after.to_string(), ch.invoice_id]))
            .map_err(backend("updating an open amount"))?;
    }
    Ok(())
}

fn insert_applications(
    conn: &Connection,
    payment_id: &str,
    allocations: &[crate::domain::Allocation],
    source: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    for a in allocations {
        conn.prepare_cached(
            "INSERT INTO applications (payment_id, invoice_id, amount, discount, deduction,
             reason_code, source, applied_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut s| {
            s.execute(params![
                payment_id,
                a.invoice_id,
                a.amount.to_string(),
                a.discount.to_string(),
                a.deduction.to_string(),
                a.reason_code,
                source,
                at.to_rfc3339(),
            ])
        })
        .map_err(backend("storing an application"))?;
    }
    Ok(())
}

/// Ten-thousandths of an amount, saturating: a sort and filter key, never money.
pub(crate) fn amount_key(d: Decimal) -> i64 {
    let saturated = if d.is_sign_negative() {
        i64::MIN
    } else {
        i64::MAX
    };
    d.checked_mul(Decimal::from(10_000))
        .and_then(|k| k.trunc().to_i64())
        .unwrap_or(saturated)
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Auto => "auto",
        Status::Review => "review",
    }
}

fn reason_name(r: ReviewReason) -> String {
    // The serde name, so the column reads like the decisions JSON.
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn record_decision(conn: &Connection, r: &DecisionRecord) -> Result<(), StoreError> {
    let DecisionRecord {
        payment,
        decision,
        changes,
        at,
    } = r;
    let exists: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM decisions WHERE payment_id = ?1")
        .and_then(|mut s| {
            s.query_row(params![payment.payment_id], |r| r.get(0))
                .optional()
        })
        .map_err(backend("checking a payment id"))?;
    if exists.is_some() {
        return Err(StoreError::Conflict(format!(
            "payment {} is already decided",
            payment.payment_id
        )));
    }
    let (payment_json, decision_json) = (json(payment, "payment")?, json(decision, "decision")?);
    conn.prepare_cached(
        "INSERT INTO decisions (payment_id, status, customer_id, amount, currency, model_version,
         decided_at, payment_json, decision_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            payment.payment_id,
            status_name(decision.status),
            decision.customer_id,
            payment.amount.to_string(),
            payment.currency.as_str(),
            decision.model_version,
            at.to_rfc3339(),
            payment_json,
            decision_json,
        ])
    })
    .map_err(backend("storing a decision"))?;
    apply_changes(conn, changes)?;
    match decision.status {
        Status::Auto => insert_applications(
            conn,
            &payment.payment_id,
            &decision.allocations,
            "auto",
            *at,
        ),
        Status::Review => {
            conn.prepare_cached(
                "INSERT INTO review_items (payment_id, customer_id, amount, amount_key, currency,
                 reason, confidence, created_at, created_ms, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'open')",
            )
            .and_then(|mut s| {
                s.execute(params![
                    payment.payment_id,
                    decision.customer_id,
                    payment.amount.to_string(),
                    amount_key(payment.amount),
                    payment.currency.as_str(),
                    decision.review_reason.map(reason_name),
                    decision.confidence,
                    at.to_rfc3339(),
                    at.timestamp_millis(),
                ])
            })
            .map_err(backend("storing a review item"))?;
            Ok(())
        }
    }
}

fn resolve(conn: &Connection, r: &ResolutionRecord) -> Result<(), StoreError> {
    let ResolutionRecord {
        payment_id,
        resolution,
        changes,
        audit,
    } = r;
    let resolution_json = json(resolution, "resolution")?;
    let n = conn
        .prepare_cached(
            "UPDATE review_items SET state = 'resolved', resolution_json = ?1, resolved_at = ?2
             WHERE payment_id = ?3 AND state = 'open'",
        )
        .and_then(|mut s| {
            s.execute(params![
                resolution_json,
                resolution.resolved_at.to_rfc3339(),
                payment_id
            ])
        })
        .map_err(backend("resolving a review item"))?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "review item {payment_id} is not open"
        )));
    }
    apply_changes(conn, changes)?;
    insert_applications(
        conn,
        payment_id,
        &resolution.allocations,
        "review",
        resolution.resolved_at,
    )?;
    insert_audit(conn, audit)
}

// ----- reading -----

fn time(s: &str, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(what, e))
}

fn decimal(s: &str, what: &str) -> Result<Decimal, StoreError> {
    s.parse().map_err(|e| corrupt(what, e))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt(what, e))
}

fn invoice_from_row(r: &Row<'_>) -> Result<Result<Invoice, StoreError>, rusqlite::Error> {
    let id: String = r.get(0)?;
    let text = |i: usize| r.get::<_, String>(i);
    let (customer_id, number, po_number) = (text(1)?, text(2)?, r.get::<_, Option<String>>(3)?);
    let (invoice_date, due_date, currency, amount, open_amount, terms) =
        (text(4)?, text(5)?, text(6)?, text(7)?, text(8)?, text(9)?);
    let what = |f: &str| format!("invoice {id} {f}");
    let date = |s: &str, f: &str| -> Result<NaiveDate, StoreError> {
        s.parse().map_err(|e| corrupt(what(f), e))
    };
    Ok((|| {
        Ok(Invoice {
            invoice_date: date(&invoice_date, "invoice_date")?,
            due_date: date(&due_date, "due_date")?,
            currency: currency.parse().map_err(|e| corrupt(what("currency"), e))?,
            amount: decimal(&amount, &what("amount"))?,
            open_amount: decimal(&open_amount, &what("open_amount"))?,
            terms: Terms::parse(&terms).map_err(|e| corrupt(what("terms"), e))?,
            customer_id,
            number,
            po_number,
            id: id.clone(),
        })
    })())
}

const INVOICE_COLUMNS: &str = "id, customer_id, number, po_number, invoice_date, due_date, \
                               currency, amount, open_amount, terms";

fn load(conn: &Connection) -> Result<Snapshot, StoreError> {
    let mut snap = Snapshot::default();
    let mut s = conn
        .prepare("SELECT id, name, parent_id, bank_accounts FROM customers ORDER BY rowid")
        .map_err(backend("reading customers"))?;
    let rows = s
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .map_err(backend("reading customers"))?;
    for row in rows {
        let (id, name, parent_id, accounts) = row.map_err(backend("reading customers"))?;
        let bank_accounts = from_json(&accounts, &format!("customer {id} bank accounts"))?;
        snap.customers.push(Customer {
            id,
            name,
            parent_id,
            bank_accounts,
        });
    }
    let mut s = conn
        .prepare(&format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices ORDER BY rowid"
        ))
        .map_err(backend("reading invoices"))?;
    let rows = s
        .query_map([], invoice_from_row)
        .map_err(backend("reading invoices"))?;
    for row in rows {
        snap.invoices
            .push(row.map_err(backend("reading invoices"))??);
    }
    snap.decided = strings(conn, "SELECT payment_id FROM decisions ORDER BY rowid")?;
    snap.open_reviews = strings(
        conn,
        "SELECT payment_id FROM review_items WHERE state = 'open' ORDER BY rowid",
    )?;
    snap.active_model = conn
        .query_row(
            "SELECT value FROM settings WHERE key = 'active_model'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend("reading settings"))?;
    Ok(snap)
}

fn strings(conn: &Connection, sql: &str) -> Result<Vec<String>, StoreError> {
    let mut s = conn.prepare(sql).map_err(backend("reading ids"))?;
    let rows = s
        .query_map([], |r| r.get(0))
        .map_err(backend("reading ids"))?;
    rows.collect::<Result<Vec<String>, _>>()
        .map_err(backend("reading ids"))
}

fn stored_decision(
    payment_json: &str,
    decision_json: &str,
    decided_at: &str,
    id: &str,
) -> Result<StoredDecision, StoreError> {
    Ok(StoredDecision {
        payment: from_json(payment_json, &format!("payment {id}"))?,
        decision: from_json(decision_json, &format!("decision {id}"))?,
        decided_at: time(decided_at, &format!("decision {id} time"))?,
    })
}

const SUMMARY_COLUMNS: &str =
    "payment_id, customer_id, amount, currency, reason, confidence, created_at, state";

type SummaryRow = (
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    f64,
    String,
    String,
);

fn summary_row(r: &Row<'_>) -> rusqlite::Result<SummaryRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn summary(row: SummaryRow) -> Result<ReviewSummary, StoreError> {
    let (payment_id, customer_id, amount, currency, reason, confidence, created_at, state) = row;
    let what = |f: &str| format!("review item {payment_id} {f}");
    let reason = reason_from_name(reason, &what("reason"))?;
    Ok(ReviewSummary {
        amount: decimal(&amount, &what("amount"))?,
        currency: currency.parse().map_err(|e| corrupt(what("currency"), e))?,
        reason,
        confidence,
        created_at: time(&created_at, &what("created_at"))?,
        state: if state == "open" {
            ReviewState::Open
        } else {
            ReviewState::Resolved
        },
        customer_id,
        payment_id,
    })
}

/// The WHERE clause of a review filter, with its arguments; the reason is left out when asked.
fn review_where(f: &ReviewFilter, with_reason: bool) -> (String, Vec<Value>) {
    let now_ms = f.now.timestamp_millis();
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if !f.include_resolved {
        clauses.push("state = 'open'".into());
    }
    if let Some(c) = &f.customer_id {
        args.push(Value::Text(c.clone()));
        clauses.push(format!("customer_id = ?{}", args.len()));
    }
    if let (Some(r), true) = (f.reason, with_reason) {
        args.push(Value::Text(reason_name(r)));
        clauses.push(format!("reason = ?{}", args.len()));
    }
    if let Some(a) = f.min_amount {
        args.push(Value::Integer(amount_key(a)));
        clauses.push(format!("amount_key >= ?{}", args.len()));
    }
    if let Some(a) = f.max_amount {
        args.push(Value::Integer(amount_key(a)));
        clauses.push(format!("amount_key <= ?{}", args.len()));
    }
    const DAY_MS: i64 = 86_400_000;
    if let Some(d) = f.min_age_days {
        args.push(Value::Integer(now_ms.saturating_sub(i64::from(d) * DAY_MS)));
        clauses.push(format!("created_ms <= ?{}", args.len()));
    }
    if let Some(d) = f.max_age_days {
        // Whole days: an item 3.5 days old is 3 days old.
        args.push(Value::Integer(
            now_ms.saturating_sub((i64::from(d) + 1) * DAY_MS),
        ));
        clauses.push(format!("created_ms > ?{}", args.len()));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (filter, args)
}

fn review_items(
    conn: &Connection,
    f: &ReviewFilter,
) -> Result<(Vec<ReviewSummary>, u64), StoreError> {
    let now_ms = f.now.timestamp_millis();
    let (filter, mut args) = review_where(f, true);
    let total: i64 = conn
        .query_row(
            &format!("SELECT COUNT(*) FROM review_items {filter}"),
            rusqlite::params_from_iter(args.iter()),
            |r| r.get(0),
        )
        .map_err(backend("counting review items"))?;
    args.push(Value::Integer(now_ms));
    let now_arg = args.len();
    args.push(Value::Integer(i64::from(f.limit)));
    let limit_arg = args.len();
    args.push(Value::Integer(i64::from(f.offset)));
    let offset_arg = args.len();
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM review_items {filter}
         ORDER BY state = 'open' DESC,
                  amount_key * (1.0 + MAX(0, ?{now_arg} - created_ms) / 86400000.0) DESC,
                  payment_id
         LIMIT ?{limit_arg} OFFSET ?{offset_arg}"
    );
    let mut s = conn
        .prepare(&sql)
        .map_err(backend("listing review items"))?;
    let rows = s
        .query_map(rusqlite::params_from_iter(args.iter()), summary_row)
        .map_err(backend("listing review items"))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(summary(row.map_err(backend("listing review items"))?)?);
    }
    Ok((out, u64::try_from(total).unwrap_or(0)))
}

fn review_item(conn: &Connection, id: &str) -> Result<Option<ReviewRecord>, StoreError> {
    let row = conn
        .query_row(
            &format!(
                "SELECT r.{}, r.resolution_json, d.payment_json, d.decision_json
                 FROM review_items r JOIN decisions d ON d.payment_id = r.payment_id
                 WHERE r.payment_id = ?1",
                SUMMARY_COLUMNS.replace(", ", ", r.")
            ),
            params![id],
            |r| {
                Ok((
                    summary_row(r)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, String>(9)?,
                    r.get::<_, String>(10)?,
                ))
            },
        )
        .optional()
        .map_err(backend("reading a review item"))?;
    let Some((s, resolution, payment, decision)) = row else {
        return Ok(None);
    };
    let resolution: Option<Resolution> = match resolution {
        Some(r) => Some(from_json(&r, &format!("resolution of {id}"))?),
        None => None,
    };
    Ok(Some(ReviewRecord {
        summary: summary(s)?,
        payment: from_json(&payment, &format!("payment {id}"))?,
        decision: from_json(&decision, &format!("decision {id}"))?,
        resolution,
    }))
}

fn audit_events(
    conn: &Connection,
    subject: Option<&str>,
    after_id: u64,
    limit: u32,
) -> Result<Vec<AuditEvent>, StoreError> {
    let after = i64::try_from(after_id).unwrap_or(i64::MAX);
    let mut s = conn
        .prepare(
            "SELECT id, at, actor, action, subject, before_json, after_json FROM audit_events
             WHERE (?1 IS NULL OR subject = ?1) AND id > ?2 ORDER BY id LIMIT ?3",
        )
        .map_err(backend("reading audit events"))?;
    let rows = s
        .query_map(params![subject, after, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })
        .map_err(backend("reading audit events"))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, at, actor, action, subject, before, after) =
            row.map_err(backend("reading audit events"))?;
        let what = format!("audit event {id}");
        out.push(AuditEvent {
            id: u64::try_from(id).unwrap_or(0),
            record: AuditRecord {
                at: time(&at, &what)?,
                actor,
                action,
                subject,
                before: from_json(&before, &what)?,
                after: from_json(&after, &what)?,
            },
        });
    }
    Ok(out)
}

fn training_examples(
    conn: &Connection,
    q: &ExportQuery,
) -> Result<Vec<TrainingExample>, StoreError> {
    // Keyset paging on the decisions' rowid: each page is one short read, and the export order
    // is the order the payments were decided in. A resolution joins its review decision.
    let mut s = conn
        .prepare(
            "SELECT d.rowid, d.payment_id, d.status, d.payment_json, d.decision_json, d.decided_at,
                    r.resolution_json
             FROM decisions d
             LEFT JOIN review_items r ON r.payment_id = d.payment_id AND r.state = 'resolved'
             WHERE d.rowid > ?1
               AND (r.resolution_json IS NOT NULL
                    OR (?2 AND d.status = 'auto'
                        AND (?3 IS NULL OR julianday(d.decided_at) < julianday(?3))))
             ORDER BY d.rowid
             LIMIT ?4",
        )
        .map_err(backend("reading labelled payments"))?;
    let after = i64::try_from(q.after).unwrap_or(i64::MAX);
    let before = q.auto_decided_before.map(|t| t.to_rfc3339());
    let rows = s
        .query_map(
            params![after, q.include_auto, before, i64::from(q.limit)],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            },
        )
        .map_err(backend("reading labelled payments"))?;
    let mut out = Vec::new();
    for row in rows {
        let (rowid, id, status, payment, decision, at, resolution) =
            row.map_err(backend("reading labelled payments"))?;
        let position = u64::try_from(rowid).unwrap_or(0);
        let example = match resolution {
            Some(resolution) => {
                let payment: Payment = from_json(&payment, &format!("payment {id}"))?;
                let resolution: Resolution =
                    from_json(&resolution, &format!("resolution of {id}"))?;
                TrainingExample {
                    payment,
                    source: LabelSource::Analyst,
                    allocations: resolution
                        .allocations
                        .into_iter()
                        .map(|a| (a.invoice_id, a.amount))
                        .collect(),
                    decided_at: resolution.resolved_at,
                    position,
                }
            }
            None if status == "auto" => {
                let StoredDecision {
                    payment,
                    decision,
                    decided_at,
                } = stored_decision(&payment, &decision, &at, &id)?;
                TrainingExample {
                    payment,
                    source: LabelSource::Auto,
                    allocations: decision
                        .allocations
                        .into_iter()
                        .map(|a| (a.invoice_id, a.amount))
                        .collect(),
                    decided_at,
                    position,
                }
            }
            None => continue,
        };
        out.push(example);
    }
    Ok(out)
}

fn reason_from_name(name: Option<String>, what: &str) -> Result<Option<ReviewReason>, StoreError> {
    name.map(|r| {
        serde_json::from_value::<ReviewReason>(serde_json::Value::String(r))
            .map_err(|e| corrupt(what, e))
    })
    .transpose()
}

fn currency(s: &str, what: &str) -> Result<Currency, StoreError> {
    s.parse().map_err(|e| corrupt(what, e))
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn review_totals(
    conn: &Connection,
    f: &ReviewFilter,
    sla_cutoff: DateTime<Utc>,
) -> Result<ReviewTotals, StoreError> {
    // The amounts are summed here, as decimals: SQLite would sum the text as floating point.
    let (filter, args) = review_where(f, false);
    let mut s = conn
        .prepare(&format!(
            "SELECT payment_id, currency, amount, reason, state, created_ms FROM review_items {filter}"
        ))
        .map_err(backend("totalling review items"))?;
    let rows = s
        .query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .map_err(backend("totalling review items"))?;
    let cutoff = sla_cutoff.timestamp_millis();
    let mut by_currency: BTreeMap<Currency, (u64, Decimal)> = BTreeMap::new();
    let mut by_reason: Vec<(Option<ReviewReason>, u64)> = Vec::new();
    let mut past_sla = 0;
    for row in rows {
        let (id, cur, amount, reason, state, created_ms) =
            row.map_err(backend("totalling review items"))?;
        let what = |f: &str| format!("review item {id} {f}");
        let reason = reason_from_name(reason, &what("reason"))?;
        match by_reason.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => by_reason.push((reason, 1)),
        }
        if f.reason.is_some() && f.reason != reason {
            continue;
        }
        let amount = decimal(&amount, &what("amount"))?;
        let e = by_currency
            .entry(currency(&cur, &what("currency"))?)
            .or_insert((0, Decimal::ZERO));
        e.0 += 1;
        e.1 = e.1.checked_add(amount).ok_or_else(|| {
            corrupt(
                what("amount"),
                "the queue's total is beyond the decimal range",
            )
        })?;
        if state == "open" && created_ms < cutoff {
            past_sla += 1;
        }
    }
    by_reason.sort_by_key(|(r, n)| (std::cmp::Reverse(*n), r.map(reason_name)));
    Ok(ReviewTotals {
        by_currency: by_currency
            .into_iter()
            .map(|(c, (n, sum))| (c, n, sum))
            .collect(),
        by_reason,
        past_sla,
    })
}

fn daily_activity(conn: &Connection, since: NaiveDate) -> Result<Vec<DayActivity>, StoreError> {
    // Instants are stored as RFC 3339 in UTC, so their first ten characters are the UTC day and
    // a bare date sorts before every instant of that day.
    let since = since.to_string();
    let mut days: BTreeMap<NaiveDate, DayActivity> = BTreeMap::new();
    fn day<'a>(
        days: &'a mut BTreeMap<NaiveDate, DayActivity>,
        d: &str,
    ) -> Result<&'a mut DayActivity, StoreError> {
        let parsed: NaiveDate = d.parse().map_err(|e| corrupt("a stored instant", e))?;
        Ok(days.entry(parsed).or_insert_with(|| DayActivity {
            day: parsed,
            ..Default::default()
        }))
    }
    let mut s = conn
        .prepare(
            "SELECT substr(decided_at, 1, 10) AS day, COUNT(*), SUM(status = 'auto')
             FROM decisions WHERE decided_at >= ?1 GROUP BY day",
        )
        .map_err(backend("counting decisions per day"))?;
    let rows = s
        .query_map(params![since], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(backend("counting decisions per day"))?;
    for row in rows {
        let (d, decided, auto) = row.map_err(backend("counting decisions per day"))?;
        let a = day(&mut days, &d)?;
        a.decided = count(decided);
        a.auto = count(auto);
    }
    let mut s = conn
        .prepare(
            "SELECT substr(created_at, 1, 10) AS day, reason, COUNT(*)
             FROM review_items WHERE created_at >= ?1 GROUP BY day, reason ORDER BY day, reason",
        )
        .map_err(backend("counting review items per day"))?;
    let rows = s
        .query_map(params![since], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(backend("counting review items per day"))?;
    for row in rows {
        let (d, reason, n) = row.map_err(backend("counting review items per day"))?;
        let reason = reason_from_name(reason, "a review item's reason")?;
        day(&mut days, &d)?
            .review_by_reason
            .push((reason, count(n)));
    }
    let mut s = conn
        .prepare(
            "SELECT substr(r.resolved_at, 1, 10) AS day, COUNT(*),
                    SUM(json_array_length(d.decision_json, '$.suggestions') > 0),
                    SUM(json_extract(r.resolution_json, '$.action') = 'accept_suggestion'
                        AND json_extract(r.resolution_json, '$.suggestion_index') = 0)
             FROM review_items r JOIN decisions d ON d.payment_id = r.payment_id
             WHERE r.state = 'resolved' AND r.resolved_at >= ?1 GROUP BY day",
        )
        .map_err(backend("counting resolutions per day"))?;
    let rows = s
        .query_map(params![since], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(backend("counting resolutions per day"))?;
    for row in rows {
        let (d, resolved, with_suggestion, top) =
            row.map_err(backend("counting resolutions per day"))?;
        let a = day(&mut days, &d)?;
        a.resolved = count(resolved);
        a.resolved_with_suggestion = count(with_suggestion);
        a.accepted_top = count(top);
    }
    Ok(days.into_values().collect())
}

fn queue_spans(conn: &Connection, since: DateTime<Utc>) -> Result<Vec<QueueSpan>, StoreError> {
    let mut s = conn
        .prepare(
            "SELECT payment_id, amount, currency, created_at, resolved_at FROM review_items
             WHERE state = 'open'
             UNION ALL
             SELECT payment_id, amount, currency, created_at, resolved_at FROM review_items
             WHERE state = 'resolved' AND resolved_at >= ?1",
        )
        .map_err(backend("reading the queue's history"))?;
    let rows = s
        .query_map(params![since.to_rfc3339()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .map_err(backend("reading the queue's history"))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, amount, cur, entered, left) =
            row.map_err(backend("reading the queue's history"))?;
        let what = |f: &str| format!("review item {id} {f}");
        out.push(QueueSpan {
            amount: decimal(&amount, &what("amount"))?,
            currency: currency(&cur, &what("currency"))?,
            entered: time(&entered, &what("created_at"))?,
            left: left.map(|l| time(&l, &what("resolved_at"))).transpose()?,
        });
    }
    Ok(out)
}

fn unapplied_remainders(conn: &Connection) -> Result<Vec<Remainder>, StoreError> {
    // A decimal is zero when no digit but 0 appears in it ("0", "0.00", "-0.0").
    let mut s = conn
        .prepare(
            "SELECT payment_id, json_extract(resolution_json, '$.unapplied'),
                    json_extract(resolution_json, '$.action'), currency, created_at
             FROM review_items
             WHERE state = 'resolved' AND json_extract(resolution_json, '$.unapplied') GLOB '*[1-9]*'
             UNION ALL
             SELECT payment_id, json_extract(decision_json, '$.unapplied'), 'auto', currency,
                    decided_at
             FROM decisions
             WHERE status = 'auto' AND json_extract(decision_json, '$.unapplied') GLOB '*[1-9]*'",
        )
        .map_err(backend("reading unapplied cash"))?;
    let rows = s
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .map_err(backend("reading unapplied cash"))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, amount, action, cur, received) = row.map_err(backend("reading unapplied cash"))?;
        let what = |f: &str| format!("payment {id} {f}");
        let kind = match action.as_str() {
            "leave_unapplied" => RemainderKind::LeftUnapplied,
            "put_on_account" => RemainderKind::OnAccount,
            _ => RemainderKind::Excess,
        };
        out.push(Remainder {
            kind,
            amount: decimal(&amount, &what("unapplied"))?,
            currency: currency(&cur, &what("currency"))?,
            received: time(&received, &what("decided_at"))?,
        });
    }
    Ok(out)
}

impl Store for SqliteStore {
    fn load(&self) -> StoreFuture<Snapshot> {
        self.read(load)
    }

    fn write_ledger(&self, write: LedgerWrite) -> StoreFuture<()> {
        self.submit(Write::Ledger(write))
    }

    fn record_decision(&self, record: DecisionRecord) -> StoreFuture<()> {
        self.submit(Write::Decision(Box::new(record)))
    }

    fn resolve(&self, record: ResolutionRecord) -> StoreFuture<()> {
        self.submit(Write::Resolve(Box::new(record)))
    }

    fn set_active_model(&self, directory: String, audit: AuditRecord) -> StoreFuture<()> {
        self.submit(Write::ActiveModel(directory, audit))
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

    fn review_totals(
        &self,
        filter: ReviewFilter,
        sla_cutoff: DateTime<Utc>,
    ) -> StoreFuture<ReviewTotals> {
        self.read(move |conn| review_totals(conn, &filter, sla_cutoff))
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

    fn wal_bytes(&self) -> Option<u64> {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        // No file: closed, or emptied by a TRUNCATE checkpoint and not written since.
        Some(std::fs::metadata(wal).map_or(0, |m| m.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Allocation, Currency, Decision, Direction, Payer};
    use crate::store::ResolutionAction;
    use rust_decimal_macros::dec;

    fn customer(id: &str) -> Customer {
        Customer {
            id: id.into(),
            name: format!("{id} Inc"),
            parent_id: None,
            bank_accounts: vec!["1234567".into()],
        }
    }

    fn invoice(id: &str, amount: Decimal) -> Invoice {
        let d = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default();
        Invoice {
            id: id.into(),
            customer_id: "C1".into(),
            number: format!("INV-{id}"),
            po_number: None,
            invoice_date: d,
            due_date: d,
            currency: Currency::USD,
            amount,
            open_amount: amount,
            terms: Terms::default(),
        }
    }

    /// Customer C1 and its invoices.
    fn ledger(invoices: Vec<Invoice>) -> LedgerWrite {
        LedgerWrite {
            customers: vec![customer("C1")],
            invoices,
            audit: None,
        }
    }

    fn payment(id: &str, amount: Decimal) -> Payment {
        Payment {
            payment_id: id.into(),
            format: "grpc".into(),
            direction: Direction::Credit,
            payment_date: None,
            amount,
            currency: Currency::USD,
            payer: Payer::default(),
            lines: vec![],
            free_text: vec![],
            warnings: vec![],
        }
    }

    fn decision(
        id: &str,
        status: Status,
        allocations: Vec<Allocation>,
        unapplied: Decimal,
    ) -> Decision {
        Decision {
            payment_id: id.into(),
            status,
            confidence: 0.5,
            customer_id: Some("C1".into()),
            allocations,
            unapplied,
            suggestions: vec![],
            explanation: vec!["why".into()],
            review_reason: (status == Status::Review).then_some(ReviewReason::LowConfidence),
            model_version: "m".into(),
            rules_version: "r".into(),
        }
    }

    fn alloc(inv: &str, amount: Decimal) -> Allocation {
        Allocation {
            invoice_id: inv.into(),
            amount,
            discount: Decimal::ZERO,
            deduction: Decimal::ZERO,
            reason_code: None,
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_backup_of_a_running_store_is_a_data_directory_holding_what_was_acknowledged() {
        let root = std::env::temp_dir().join(format!("cashmatch-backup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (live, copy) = (root.join("data"), root.join("backup"));
        rt().block_on(async {
            let store = SqliteStore::open(&live).expect("open");
            store
                .write_ledger(ledger(vec![
                    invoice("I1", dec!(100.00)),
                    invoice("I2", dec!(50.00)),
                ]))
                .await
                .expect("ledger");
            let auto = |id: &str, inv: &str, before: Decimal, paid: Decimal| DecisionRecord {
                payment: payment(id, paid),
                decision: decision(id, Status::Auto, vec![alloc(inv, paid)], Decimal::ZERO),
                changes: vec![OpenAmountChange {
                    invoice_id: inv.into(),
                    before,
                    after: before - paid,
                }],
                at: crate::store::now(),
            };
            store
                .record_decision(auto("P1", "I1", dec!(100.00), dec!(60.00)))
                .await
                .expect("P1");
            store
                .record_decision(DecisionRecord {
                    payment: payment("P2", dec!(7.00)),
                    decision: decision("P2", Status::Review, vec![], dec!(7.00)),
                    changes: vec![],
                    at: crate::store::now(),
                })
                .await
                .expect("P2");

            // Taken while the store is open and its last commits are still in the WAL.
            let summary = backup(&live, &copy).expect("backup");
            assert_eq!(
                (summary.invoices, summary.decisions, summary.open_reviews),
                (2, 2, 1)
            );
            assert!(summary.file.is_file() && summary.bytes > 0);
            assert!(!copy.join(format!("{DB_FILE}.partial")).exists());

            // Written after the snapshot: not in the copy.
            store
                .record_decision(auto("P3", "I2", dec!(50.00), dec!(50.00)))
                .await
                .expect("P3");
            let again = backup(&live, &copy).expect_err("the backup directory is not empty");
            assert!(again.to_string().contains("not empty"), "{again}");
            let nowhere = backup(&root.join("nothing"), &root.join("b2")).expect_err("no store");
            assert!(nowhere.to_string().contains("no store here"), "{nowhere}");
            store.close();

            let restored = SqliteStore::open(&copy).expect("the backup opens as a store");
            let snap = restored.load().await.expect("snapshot");
            let open: Vec<(String, Decimal)> = snap
                .invoices
                .iter()
                .map(|i| (i.id.clone(), i.open_amount))
                .collect();
            assert_eq!(
                open,
                vec![("I1".into(), dec!(40.00)), ("I2".into(), dec!(50.00))]
            );
            assert_eq!(snap.decided.len(), 2);
            assert_eq!(snap.open_reviews, vec!["P2".to_string()]);
            restored.close();
        });
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_bulk_load_leaves_an_empty_wal_and_steady_writes_keep_starting_it_over() {
        let dir = std::env::temp_dir().join(format!("cashmatch-store-wal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        rt().block_on(async {
            // NORMAL: the checkpoint schedule is the same, without a disk sync per commit.
            let store = SqliteStore::open_with(&dir, Durability::Normal).expect("open");
            let invoices: Vec<Invoice> = (0..BULK_ROWS)
                .map(|i| invoice(&format!("I{i}"), dec!(100.00)))
                .collect();
            store.write_ledger(ledger(invoices)).await.expect("ledger");
            assert_eq!(
                store.wal_bytes().unwrap_or(0),
                0,
                "the load copied and emptied its WAL"
            );

            // One write after another, never a pause long enough for the checkpointer alone to
            // catch up: without the writer finishing each round the WAL would only grow.
            let record = |i: usize| DecisionRecord {
                payment: payment(&format!("P{i}"), dec!(7.00)),
                decision: decision(&format!("P{i}"), Status::Review, vec![], dec!(7.00)),
                changes: vec![],
                at: crate::store::now(),
            };
            let first = CHECKPOINT_WRITES as usize / 2;
            for i in 0..first {
                store.record_decision(record(i)).await.expect("decision");
            }
            let per_write = store.wal_bytes().unwrap_or(0) / first as u64;
            assert!(per_write > 0);
            let total = 8 * CHECKPOINT_WRITES as usize;
            for i in first..total {
                store.record_decision(record(i)).await.expect("decision");
            }
            // Grown without a restart the WAL would hold all `total` writes; starting over after
            // each round of CHECKPOINT_WRITES it holds a round and what came in during the next
            // (about 1,900 writes here), and is cut back to WAL_KEEP_BYTES at each start.
            let bytes = store.wal_bytes().unwrap_or(0);
            assert!(
                bytes < per_write * total as u64 / 2,
                "WAL {bytes} bytes after {total} writes of about {per_write} bytes each"
            );
            store.close();
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn decisions_and_open_amounts_survive_a_reopen_and_a_stale_before_is_refused() {
        let dir = std::env::temp_dir().join(format!("cashmatch-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        rt().block_on(async {
            let store = SqliteStore::open(&dir).expect("open");
            store
                .write_ledger(ledger(vec![
                    invoice("I1", dec!(100.00)),
                    invoice("I2", dec!(50.00)),
                ]))
                .await
                .expect("ledger");
            let now = crate::store::now();
            let auto = DecisionRecord {
                payment: payment("P1", dec!(60.00)),
                decision: decision(
                    "P1",
                    Status::Auto,
                    vec![alloc("I1", dec!(60.00))],
                    Decimal::ZERO,
                ),
                changes: vec![OpenAmountChange {
                    invoice_id: "I1".into(),
                    before: dec!(100.00),
                    after: dec!(40.00),
                }],
                at: now,
            };
            // Queued together: one group, each in its own savepoint.
            let stale = DecisionRecord {
                payment: payment("P2", dec!(60.00)),
                decision: decision(
                    "P2",
                    Status::Auto,
                    vec![alloc("I1", dec!(60.00))],
                    Decimal::ZERO,
                ),
                changes: vec![OpenAmountChange {
                    invoice_id: "I1".into(),
                    before: dec!(100.00),
                    after: dec!(40.00),
                }],
                at: now,
            };
            let review = DecisionRecord {
                payment: payment("P3", dec!(7.00)),
                decision: decision("P3", Status::Review, vec![], dec!(7.00)),
                changes: vec![],
                at: now,
            };
            let (a, b, c) = (
                store.record_decision(auto.clone()),
                store.record_decision(stale),
                store.record_decision(review),
            );
            assert!(a.await.is_ok());
            assert!(matches!(b.await, Err(StoreError::Conflict(_))));
            assert!(c.await.is_ok());
            assert!(matches!(
                store.record_decision(auto).await,
                Err(StoreError::Conflict(_))
            ));
            store.close();
            drop(store);

            let store = SqliteStore::open(&dir).expect("reopen");
            let snap = store.load().await.expect("load");
            assert_eq!(snap.customers.len(), 1);
            let i1 = snap.invoices.iter().find(|i| i.id == "I1").expect("I1");
            assert_eq!(i1.open_amount, dec!(40.00));
            assert_eq!(snap.decided, vec!["P1".to_string(), "P3".to_string()]);
            assert_eq!(snap.open_reviews, vec!["P3".to_string()]);
            let d = store
                .decision("P1".into())
                .await
                .expect("read")
                .expect("stored");
            assert_eq!(d.decision.allocations, vec![alloc("I1", dec!(60.00))]);
            assert!(store.decision("P2".into()).await.expect("read").is_none());
            let (items, total) = store
                .review_items(ReviewFilter {
                    customer_id: None,
                    min_amount: Some(dec!(5)),
                    max_amount: Some(dec!(7.00)),
                    min_age_days: None,
                    max_age_days: Some(0),
                    reason: None,
                    include_resolved: false,
                    limit: 10,
                    offset: 0,
                    now: crate::store::now(),
                })
                .await
                .expect("list");
            assert_eq!((items.len(), total), (1, 1));
            assert_eq!(items[0].reason, Some(ReviewReason::LowConfidence));
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn review(id: &str, amount: Decimal, reason: ReviewReason, suggested: bool) -> DecisionRecord {
        let mut d = decision(id, Status::Review, vec![], amount);
        d.review_reason = Some(reason);
        if suggested {
            d.suggestions.push(crate::domain::Suggestion {
                confidence: 0.4,
                allocations: vec![alloc("I1", dec!(10.00))],
                unapplied: amount - dec!(10.00),
                explanation: vec![],
            });
        }
        DecisionRecord {
            payment: payment(id, amount),
            decision: d,
            changes: vec![],
            at: crate::store::now(),
        }
    }

    fn resolution(
        id: &str,
        action: ResolutionAction,
        allocations: Vec<Allocation>,
        unapplied: Decimal,
        index: Option<u32>,
    ) -> ResolutionRecord {
        let at = crate::store::now();
        ResolutionRecord {
            payment_id: id.into(),
            resolution: Resolution {
                action,
                analyst: "alice".into(),
                resolved_at: at,
                allocations,
                unapplied,
                customer_id: None,
                suggestion_index: index,
                note: String::new(),
            },
            changes: vec![],
            audit: AuditRecord {
                at,
                actor: "alice".into(),
                action: "resolve".into(),
                subject: id.into(),
                before: serde_json::json!({}),
                after: serde_json::json!({}),
            },
        }
    }

    #[test]
    fn dashboard_queries_count_days_reasons_acceptance_queue_and_unapplied_cash_exactly() {
        use ResolutionAction as A;
        let dir = std::env::temp_dir().join(format!("cashmatch-store-dash-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        rt().block_on(async {
            let store = SqliteStore::open(&dir).expect("open");
            store
                .write_ledger(LedgerWrite {
                    customers: vec![customer("C1")],
                    invoices: vec![invoice("I1", dec!(1000.00))],
                    audit: None,
                })
                .await
                .expect("ledger");
            let now = crate::store::now();
            // An overpayment applied automatically leaves 0.10 unapplied; an exact one nothing.
            let mut over = decision(
                "A1",
                Status::Auto,
                vec![alloc("I1", dec!(100.00))],
                dec!(0.10),
            );
            over.unapplied = dec!(0.10);
            let writes = vec![
                DecisionRecord {
                    payment: payment("A1", dec!(100.10)),
                    decision: over,
                    changes: vec![OpenAmountChange {
                        invoice_id: "I1".into(),
                        before: dec!(1000.00),
                        after: dec!(900.00),
                    }],
                    at: now,
                },
                DecisionRecord {
                    payment: payment("A2", dec!(50.00)),
                    decision: decision(
                        "A2",
                        Status::Auto,
                        vec![alloc("I1", dec!(50.00))],
                        dec!(0.00),
                    ),
                    changes: vec![OpenAmountChange {
                        invoice_id: "I1".into(),
                        before: dec!(900.00),
                        after: dec!(850.00),
                    }],
                    at: now,
                },
                review("R1", dec!(0.10), ReviewReason::Ambiguous, true),
                review("R2", dec!(0.20), ReviewReason::Ambiguous, true),
                review("R3", dec!(300.01), ReviewReason::NoCustomer, false),
                review("R4", dec!(40.00), ReviewReason::Deduction, true),
            ];
            for w in writes {
                store.record_decision(w).await.expect("decision");
            }
            store
                .resolve(resolution(
                    "R1",
                    A::AcceptSuggestion,
                    vec![],
                    dec!(0.10),
                    Some(0),
                ))
                .await
                .expect("R1");
            store
                .resolve(resolution(
                    "R3",
                    A::LeaveUnapplied,
                    vec![],
                    dec!(300.01),
                    None,
                ))
                .await
                .expect("R3");
            store
                .resolve(resolution("R4", A::PutOnAccount, vec![], dec!(40.00), None))
                .await
                .expect("R4");

            let filter = ReviewFilter {
                customer_id: None,
                min_amount: None,
                max_amount: None,
                min_age_days: None,
                max_age_days: None,
                reason: Some(ReviewReason::Ambiguous),
                include_resolved: true,
                limit: 1,
                offset: 0,
                now: crate::store::now(),
            };
            let t = store
                .review_totals(filter.clone(), now + chrono::Duration::hours(1))
                .await
                .expect("totals");
            // 0.10 + 0.20 exactly: summed as decimals, not as floats.
            assert_eq!(t.by_currency, vec![(Currency::USD, 2, dec!(0.30))]);
            assert_eq!(
                t.by_reason.first(),
                Some(&(Some(ReviewReason::Ambiguous), 2))
            );
            assert_eq!(t.by_reason.len(), 3);
            assert_eq!(t.past_sla, 1, "only R2 is still open");
            let (items, total) = store.review_items(filter).await.expect("list");
            assert_eq!((items.len(), total), (1, 2));

            let days = store.daily_activity(now.date_naive()).await.expect("days");
            assert_eq!(days.len(), 1);
            let d = &days[0];
            assert_eq!((d.day, d.decided, d.auto), (now.date_naive(), 6, 2));
            assert_eq!(d.review_by_reason.iter().map(|(_, n)| n).sum::<u64>(), 4);
            assert_eq!(
                (d.resolved, d.resolved_with_suggestion, d.accepted_top),
                (3, 2, 1)
            );
            let tomorrow = now.date_naive().succ_opt().expect("date");
            assert!(
                store
                    .daily_activity(tomorrow)
                    .await
                    .expect("days")
                    .is_empty()
            );

            let spans = store
                .queue_spans(now - chrono::Duration::days(1))
                .await
                .expect("spans");
            assert_eq!(spans.len(), 4);
            assert_eq!(spans.iter().filter(|s| s.left.is_none()).count(), 1);

            let mut rem = store.unapplied_remainders().await.expect("remainders");
            rem.sort_by_key(|r| r.kind);
            let got: Vec<(RemainderKind, Decimal)> =
                rem.iter().map(|r| (r.kind, r.amount)).collect();
            assert_eq!(
                got,
                vec![
                    (RemainderKind::Excess, dec!(0.10)),
                    (RemainderKind::Excess, dec!(0.10)),
                    (RemainderKind::LeftUnapplied, dec!(300.01)),
                    (RemainderKind::OnAccount, dec!(40.00)),
                ]
            );
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// (payment, source, (invoice, cash) of each allocation)
    type Exported = (String, LabelSource, Vec<(String, Decimal)>);

    #[test]
    fn labelled_payments_page_in_decision_order_with_young_auto_applies_left_out() {
        let dir = std::env::temp_dir().join(format!("cashmatch-export-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        rt().block_on(async {
            let store = SqliteStore::open(&dir).expect("open");
            store
                .write_ledger(LedgerWrite {
                    customers: vec![customer("C1")],
                    invoices: vec![
                        invoice("I1", dec!(100.00)),
                        invoice("I2", dec!(50.00)),
                        invoice("I3", dec!(30.00)),
                        invoice("I4", dec!(20.00)),
                    ],
                    audit: None,
                })
                .await
                .expect("ledger");
            let now = crate::store::now();
            let old = now - chrono::Duration::days(40);
            let auto = |id: &str, inv: &str, amount: Decimal, open: Decimal, at| DecisionRecord {
                payment: payment(id, amount),
                decision: decision(id, Status::Auto, vec![alloc(inv, amount)], Decimal::ZERO),
                changes: vec![OpenAmountChange {
                    invoice_id: inv.into(),
                    before: open,
                    after: open - amount,
                }],
                at,
            };
            let review = |id: &str, amount: Decimal| DecisionRecord {
                payment: payment(id, amount),
                decision: decision(id, Status::Review, vec![], amount),
                changes: vec![],
                at: old,
            };
            // P1 auto (old), P2 review left open, P3 review resolved, P4 auto (too young),
            // P5 auto (old).
            for r in [
                auto("P1", "I1", dec!(60.00), dec!(100.00), old),
                review("P2", dec!(5.00)),
                review("P3", dec!(7.00)),
                auto("P4", "I3", dec!(30.00), dec!(30.00), now),
                auto("P5", "I4", dec!(20.00), dec!(20.00), old),
            ] {
                store.record_decision(r).await.expect("decision");
            }
            let resolution = Resolution {
                action: ResolutionAction::ApplyAllocation,
                analyst: "ana".into(),
                resolved_at: now,
                allocations: vec![alloc("I2", dec!(7.00))],
                unapplied: Decimal::ZERO,
                customer_id: None,
                suggestion_index: None,
                note: String::new(),
            };
            store
                .resolve(ResolutionRecord {
                    payment_id: "P3".into(),
                    resolution,
                    changes: vec![OpenAmountChange {
                        invoice_id: "I2".into(),
                        before: dec!(50.00),
                        after: dec!(43.00),
                    }],
                    audit: AuditRecord {
                        at: now,
                        actor: "ana".into(),
                        action: "resolve".into(),
                        subject: "P3".into(),
                        before: serde_json::Value::Null,
                        after: serde_json::Value::Null,
                    },
                })
                .await
                .expect("resolve");
            let mut query = ExportQuery {
                include_auto: true,
                auto_decided_before: Some(now - chrono::Duration::days(30)),
                after: 0,
                limit: 2,
            };
            let mut pages = Vec::new();
            loop {
                let page = store.training_examples(query.clone()).await.expect("page");
                let ids: Vec<Exported> = page
                    .iter()
                    .map(|e| {
                        (
                            e.payment.payment_id.clone(),
                            e.source,
                            e.allocations.clone(),
                        )
                    })
                    .collect();
                let last = page.last().map(|e| e.position);
                pages.push(ids);
                match last {
                    Some(p) if page.len() == 2 => query.after = p,
                    _ => break,
                }
            }
            let row = |id: &str, s, inv: &str, a| (id.to_string(), s, vec![(inv.to_string(), a)]);
            assert_eq!(
                pages,
                vec![
                    vec![
                        row("P1", LabelSource::Auto, "I1", dec!(60.00)),
                        row("P3", LabelSource::Analyst, "I2", dec!(7.00)),
                    ],
                    vec![row("P5", LabelSource::Auto, "I4", dec!(20.00))],
                ]
            );
            // Analysts' decisions only; and every auto-apply when no age is asked for.
            query.after = 0;
            query.include_auto = false;
            let only = store.training_examples(query.clone()).await.expect("page");
            assert_eq!(only.len(), 1);
            query.include_auto = true;
            query.auto_decided_before = None;
            query.limit = 10;
            let all = store.training_examples(query).await.expect("page");
            assert_eq!(all.len(), 4);
            store.close();
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn amount_key_orders_like_the_amounts() {
        assert!(amount_key(dec!(10.0001)) > amount_key(dec!(10.0000)));
        assert_eq!(amount_key(dec!(-1.5)), -15_000);
        assert_eq!(amount_key(Decimal::MAX), i64::MAX);
    }
}
