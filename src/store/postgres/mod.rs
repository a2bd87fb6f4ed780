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

mod advice;
pub mod audit;
mod batch;
mod feed;
mod read;
mod schema;
mod session;
// Compiled always, hidden: the library's unit tests, the integration tests (tests/) and
// `bench serve --store` share it.
#[doc(hidden)]
pub mod testdb;
#[cfg(test)]
mod tests;
mod write;

use super::feed::{FeedReceiver, LocalWrites};
use super::writer::{GroupBackend, Write, Writer};
use super::{
    AdviceBook, AdviceWrite, Approval, ApprovalWrite, AssignmentWrite, AuditEvent, AuditRecord,
    CashRecord, DayActivity, DecisionEvent, DecisionRecord, ExportQuery, LedgerWrite, Outbox,
    PaymentReturn, Posting, PostingFilter, QueueSpan, Remainder, ResolutionRecord, ReversalRecord,
    ReviewFilter, ReviewRecord, ReviewSummary, ReviewTotals, SessionRecord, SessionWrite, Sla,
    Snapshot, Store, StoreError, StoreFuture, StoredDecision, TrainingExample,
};
use crate::domain::{Currency, Invoice};
use chrono::{DateTime, NaiveDate, Utc};
use postgres::{Client, NoTls};
use rust_decimal::Decimal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use write::Statements;

/// How often a replica reads the change feed without a notification (see `feed`).
pub const FEED_POLL: Duration = feed::POLL;

/// The advisory lock every write group holds until it commits (`pg_advisory_xact_lock`): one
/// writer at a time across replicas. An arbitrary constant, the same in every build.
const WRITE_LOCK: i64 = 0x6361_7368_6d61_7401;

/// The advisory lock migrations hold, so that replicas started together migrate once.
const MIGRATE_LOCK: i64 = 0x6361_7368_6d61_7402;

/// Idle reader connections kept for the next read.
const IDLE_READERS: usize = 8;

/// How long the writer keeps trying to reach the database after losing its connection (a
/// restart, a failover) before it fails the writes waiting: they wait, unacknowledged, meanwhile.
const RECONNECT_FOR: Duration = Duration::from_secs(120);

/// Groups between two deletions of the change rows older than the [`feed::KEEP`] newest.
const PRUNE_EVERY: u32 = 1_024;

/// The PostgreSQL store of one database.
pub struct PgStore {
    writer: Writer,
    url: String,
    readers: Arc<Mutex<Vec<Client>>>,
    /// This store's id in the change feed: its own changes are not followed.
    replica: String,
    /// Its writes in flight, which the feed must not overwrite (see `store::feed`).
    local: Arc<LocalWrites>,
    follower: Mutex<Option<feed::Follower>>,
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

/// Whether a failure is the connection going away (the server restarting or closing it, the
/// network), after which the statement may be tried again on a new connection, rather than the
/// statement failing.
fn connection_lost(conn: &mut Client) -> bool {
    conn.is_closed() || conn.is_valid(Duration::from_secs(5)).is_err()
}

fn connect(url: &str) -> Result<Client, StoreError> {
    Client::connect(url, NoTls).map_err(|e| StoreError::Backend {
        context: format!("connecting to {}", redacted(url)),
        message: e.to_string(),
    })
}

/// The writer's connection. Its statements are prepared once (`write::Statements`), and
/// PostgreSQL would soon plan them once too, for whatever the tables held then: a plan made
/// while `decisions` was empty scans it whole to look up a group's payment ids, which at twenty
/// thousand decisions took 200 ms a group. Planned at each run instead, with the tables' sizes
/// as they are (parsing is still saved).
fn connect_writer(url: &str) -> Result<Client, StoreError> {
    let mut conn = connect(url)?;
    conn.batch_execute("SET plan_cache_mode = force_custom_plan")
        .map_err(backend("setting up the writer's connection"))?;
    Ok(conn)
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://USER@HOST:PORT/DB`), brings its schema up
    /// to date and starts the writer. Blocking: call it off the async workers (see
    /// [`PgStore::open_async`]).
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let mut conn = connect_writer(url)?;
        schema::migrate(&mut conn)?;
        let replica = feed::replica_id()?;
        let local = Arc::new(LocalWrites::default());
        let writer = Writer::start_tracked(
            "cashmatch-pg-store",
            PgWriter {
                conn: Some(conn),
                url: url.to_string(),
                replica: replica.clone(),
                group: 0,
                since_prune: 0,
                stmts: Statements::default(),
            },
            Some(Arc::clone(&local)),
        )?;
        Ok(PgStore {
            writer,
            url: url.to_string(),
            readers: Arc::new(Mutex::new(Vec::new())),
            replica,
            local,
            follower: Mutex::new(None),
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
        F: Fn(&mut Client) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = Arc::clone(&self.readers);
        let url = self.url.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut conn = match lock(&pool).pop() {
                    Some(c) if !c.is_closed() => c,
                    _ => connect(&url)?,
                };
                let mut out = f(&mut conn);
                if out.is_err() && connection_lost(&mut conn) {
                    // An idle connection the server closed since (a restart): once more on a
                    // new one. A read changes nothing, so trying it again is safe.
                    conn = connect(&url)?;
                    out = f(&mut conn);
                }
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
    /// Stops the feed and the writer after the writes already queued, and closes the idle
    /// readers.
    fn shut(&self) {
        if let Some(f) = lock(&self.follower).take() {
            f.stop();
        }
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
    /// `None` after the connection was lost and could not be made again yet.
    conn: Option<Client>,
    url: String,
    replica: String,
    /// Groups this writer committed (with `replica`, names its change rows).
    group: i64,
    since_prune: u32,
    /// Prepared on `conn`.
    stmts: Statements,
}

/// How one try at committing a group ended.
enum Attempt {
    /// Committed: each write's result in its place (a refused write is a conflict).
    Done(Vec<Result<(), StoreError>>),
    /// The connection went away. `sent`: the commit of the change row at this sequence was
    /// sent, with these results, and may have happened.
    Lost {
        error: StoreError,
        sent: Option<(i64, Vec<Result<(), StoreError>>)>,
    },
    /// Failed on a live connection: nothing was committed.
    Failed(StoreError),
}

/// A group's results, and the sequence of its change row when it wrote one.
type GroupResults = (Option<i64>, Vec<Result<(), StoreError>>);

/// Why a group did not commit, and what was sent for commit (the sequence of its change row and
/// the results) when the commit itself failed and may have happened.
type GroupFailure = (StoreError, Option<(i64, Vec<Result<(), StoreError>>)>);

/// Whether a group leaves nothing for the change feed and may be committed again should its
/// commit's answer be lost: only bus cursors, which move forward only (`GREATEST`). Such a group
/// writes no change row, which the other replicas would read for nothing: the publisher moves
/// its cursor after every batch it publishes.
fn needs_no_change_row(writes: &[Write]) -> bool {
    writes.iter().all(|w| matches!(w, Write::BusCursor(..)))
}

/// One transaction for the group: the write lock, each run of decisions with one statement per
/// table (`batch`), every other write in a savepoint of its own, the group's change row, the
/// commit. On failure, the error and, when the commit itself failed, what was sent for commit (it
/// may have happened).
fn commit_group(
    conn: &mut Client,
    stmts: &mut Statements,
    writes: &[Write],
    replica: &str,
    group: i64,
) -> Result<GroupResults, GroupFailure> {
    let mut tx = conn
        .transaction()
        .map_err(|e| (backend("beginning a transaction")(e), None))?;
    let lock = stmts
        .get(&mut tx, "SELECT pg_advisory_xact_lock($1)")
        .map_err(|e| (e, None))?;
    tx.execute(&lock, &[&WRITE_LOCK])
        .map_err(|e| (backend("taking the write lock")(e), None))?;
    let mut results = Vec::with_capacity(writes.len());
    let mut changes = feed::GroupChanges::default();
    let mut i = 0;
    while i < writes.len() {
        let run: Vec<&DecisionRecord> = writes[i..]
            .iter()
            .map_while(|w| match w {
                Write::Decision(r) => Some(&**r),
                _ => None,
            })
            .collect();
        if !run.is_empty() {
            match batch::record_decisions(&mut tx, stmts, &run) {
                Ok(rs) => {
                    for (w, r) in writes[i..i + run.len()].iter().zip(&rs) {
                        if r.is_ok() {
                            changes.add(w);
                        }
                    }
                    results.extend(rs);
                    i += run.len();
                    continue;
                }
                // Rolled back whole: the run goes the one-at-a-time way below, which refuses or
                // fails exactly the decisions that must be.
                Err(e) => {
                    tracing::debug!(error = %e, "a run of decisions is written one at a time")
                }
            }
        }
        for w in &writes[i..i + run.len().max(1)] {
            // A savepoint per write, unlike SQLite's first plain try: a refusal here is the
            // normal outcome of two replicas racing, and PostgreSQL aborts the whole transaction
            // on any error inside it, so a plain run could not tell which write to leave out.
            let r = match tx.savepoint("write") {
                Ok(mut sp) => match write::apply_write(&mut sp, w) {
                    Ok(()) => sp.commit().map_err(backend("releasing a savepoint")),
                    // Dropping the savepoint rolls it back.
                    Err(e) => Err(e),
                },
                Err(e) => Err(backend("opening a savepoint")(e)),
            };
            if r.is_ok() {
                changes.add(w);
            }
            results.push(r);
        }
        i += run.len().max(1);
    }
    let seq = if needs_no_change_row(writes) {
        None
    } else {
        Some(
            changes
                .insert(&mut tx, stmts, replica, group)
                .map_err(|e| (e, None))?,
        )
    };
    match tx.commit() {
        Ok(()) => Ok((seq, results)),
        Err(e) => {
            let error = backend(&match seq {
                Some(seq) => format!("committing change {seq}"),
                None => "committing bus cursors".to_string(),
            })(e);
            // Without a change row, nothing tells whether the commit happened; the group is
            // written again, which changes nothing if it had.
            Err((error, seq.map(|seq| (seq, results))))
        }
    }
}

impl PgWriter {
    fn attempt(&mut self, writes: &[Write]) -> Attempt {
        let Some(conn) = self.conn.as_mut() else {
            return Attempt::Lost {
                error: StoreError::Closed,
                sent: None,
            };
        };
        let group = self.group + 1;
        match commit_group(conn, &mut self.stmts, writes, &self.replica, group) {
            Ok((_, results)) => {
                self.group = group;
                Attempt::Done(results)
            }
            Err((error, sent)) if connection_lost(conn) => Attempt::Lost { error, sent },
            Err((error, _)) => Attempt::Failed(error),
        }
    }

    /// Whether the group whose change row was sent for commit at `seq` committed: the row at
    /// `seq` is this writer's next group. Under the write lock, which the old transaction held
    /// if the server still runs it (a connection lost on the client's side only): the answer
    /// waits until that transaction has ended, so it is final.
    fn committed_earlier(&mut self, seq: i64) -> Result<bool, StoreError> {
        let conn = self.conn.as_mut().ok_or(StoreError::Closed)?;
        let mut tx = conn
            .transaction()
            .map_err(backend("checking whether a group committed"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
            .map_err(backend("taking the write lock"))?;
        let row = tx
            .query_opt("SELECT replica, grp FROM changes WHERE seq = $1", &[&seq])
            .map_err(backend("checking whether a group committed"))?;
        tx.commit()
            .map_err(backend("checking whether a group committed"))?;
        Ok(match row {
            Some(r) => {
                let (replica, grp): (String, i64) = (
                    r.try_get(0).map_err(backend("checking a group"))?,
                    r.try_get(1).map_err(backend("checking a group"))?,
                );
                replica == self.replica && grp == self.group + 1
            }
            None => false,
        })
    }
}

impl GroupBackend for PgWriter {
    /// Commits the group; when the connection goes away (the server restarting, a failover, an
    /// administrator closing it), connects again and tries the whole group again, for up to
    /// [`RECONNECT_FOR`], the writes waiting unacknowledged meanwhile. A commit whose answer was
    /// lost is looked up by its change row before anything is written again, so a group is
    /// never committed twice, and a write is acknowledged only once its commit is known.
    fn apply_group(&mut self, writes: &[Write]) -> Vec<Result<(), StoreError>> {
        let fail_all = |e: &StoreError| -> Vec<Result<(), StoreError>> {
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
        let started = Instant::now();
        let mut backoff = Duration::from_millis(20);
        let mut sent: Option<(i64, Vec<Result<(), StoreError>>)> = None;
        let mut last_error: Option<StoreError> = None;
        loop {
            if self.conn.as_ref().is_none_or(Client::is_closed) {
                self.conn = connect_writer(&self.url).ok();
                self.stmts.clear();
            }
            if self.conn.is_some()
                && let Some((seq, results)) = sent.take()
            {
                match self.committed_earlier(seq) {
                    Ok(true) => {
                        tracing::info!(seq, "a commit whose answer was lost had happened");
                        self.group += 1;
                        return results;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        // Still unknown: ask again on the next connection.
                        sent = Some((seq, results));
                        last_error = Some(e);
                        self.conn = None;
                    }
                }
            }
            if self.conn.is_some() && sent.is_none() {
                match self.attempt(writes) {
                    Attempt::Done(results) => {
                        if started.elapsed() > Duration::from_millis(100) && last_error.is_some() {
                            tracing::info!(after = ?started.elapsed(), "the database is back; the writes waiting are committed");
                        }
                        return results;
                    }
                    Attempt::Failed(e) => return fail_all(&e),
                    Attempt::Lost { error, sent: s } => {
                        if last_error.is_none() {
                            tracing::warn!(error = %error, "the store lost its connection; writes wait while it connects again");
                        }
                        last_error = Some(error);
                        sent = s;
                        self.conn = None;
                    }
                }
            }
            if started.elapsed() > RECONNECT_FOR {
                let e = StoreError::Backend {
                    context: format!(
                        "reaching {} for {} s",
                        redacted(&self.url),
                        RECONNECT_FOR.as_secs()
                    ),
                    message: last_error.map(|e| e.to_string()).unwrap_or_default(),
                };
                return fail_all(&e);
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    fn between_groups(&mut self) {
        self.since_prune += 1;
        if self.since_prune < PRUNE_EVERY {
            return;
        }
        self.since_prune = 0;
        if let Some(conn) = self.conn.as_mut() {
            // The newest row always stays: the next sequence is counted from it.
            if let Err(e) = conn.execute(
                "DELETE FROM changes WHERE seq < (SELECT MAX(seq) FROM changes) - $1",
                &[&feed::KEEP],
            ) {
                tracing::warn!(error = %backend("pruning the change feed")(e), "the change feed keeps its old rows for now");
            }
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

    fn apply_cash(&self, record: CashRecord) -> StoreFuture<()> {
        self.writer.submit(Write::Cash(Box::new(record)))
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
        self.read(move |c| session::read(c, &id_hash))
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

    fn review_totals(&self, filter: ReviewFilter, sla: Sla) -> StoreFuture<ReviewTotals> {
        self.read(move |c| read::review_totals(c, &filter, &sla))
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

    fn decision_events(&self, after: u64, limit: u32) -> StoreFuture<Vec<DecisionEvent>> {
        self.read(move |c| read::decision_events(c, after, limit))
    }

    fn bus_cursor(&self, outbox: Outbox) -> StoreFuture<u64> {
        self.read(move |c| read::bus_cursor(c, outbox))
    }

    fn set_bus_cursor(&self, outbox: Outbox, position: u64) -> StoreFuture<()> {
        self.writer.submit(Write::BusCursor(outbox, position))
    }

    fn follow(&self, after: u64) -> Option<FeedReceiver> {
        let mut slot = lock(&self.follower);
        if slot.is_some() {
            tracing::error!("the change feed is followed once per store");
            return None;
        }
        match feed::Follower::start(
            self.url.clone(),
            self.replica.clone(),
            after,
            Arc::clone(&self.local),
        ) {
            Ok((f, rx)) => {
                *slot = Some(f);
                Some(rx)
            }
            Err(e) => {
                tracing::error!(error = %e, "the change feed did not start");
                None
            }
        }
    }

    fn close(&self) {
        self.shut();
    }
}
