//! The change feed on PostgreSQL (see `store::feed` for what a replica does with it).
//!
//! Every write group commits one row of `changes` (schema version 2) in its own transaction,
//! naming the rows it changed, at the sequence after the last one, under the write lock: a row
//! becomes visible only after every row before it, so a follower reading `seq > last` never
//! skips one. The group also sends `NOTIFY cashmatch_changes` with its replica's id, delivered at
//! commit, so that the other replicas read at once; as a notification is lost while a follower is
//! disconnected, each also reads every [`POLL`] whatever it heard.
//!
//! A follower is a thread with a connection of its own (the `postgres` client is synchronous). It
//! reads the rows after its position, skips its own replica's, and re-reads the rows the others
//! name, in one snapshot, into a [`ChangeBatch`] for the service. Should the position fall
//! behind the rows the store keeps ([`KEEP`]), it re-reads everything.

use super::read::{
    CUSTOMER_COLUMNS, INVOICE_COLUMNS, customer_row, invoice_row, last_applied, pending_approvals,
};
use super::{backend, connect, lock, redacted};
use crate::store::StoreError;
use crate::store::feed::{ChangeBatch, FeedReceiver, LocalWrites};
use crate::store::writer::Write;
use chrono::{DateTime, Utc};
use postgres::Client;
use postgres::fallible_iterator::FallibleIterator;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The channel every write group notifies, with its replica's id as the payload.
pub(super) const CHANNEL: &str = "cashmatch_changes";

/// How often a follower reads the feed without a notification: the bound on the delay when
/// notifications are lost (a reconnect), and the pace of catching up after one.
pub(super) const POLL: Duration = Duration::from_millis(500);

/// How long a follower waits for a notification before it looks at whether to stop.
const SLICE: Duration = Duration::from_millis(50);

/// Change rows read at once.
const PAGE: i64 = 2_000;

/// Change rows the store keeps behind the newest; older ones are deleted by the writers. A
/// replica further behind than this (disconnected for long) re-reads everything.
pub(super) const KEEP: i64 = 100_000;

/// Batches queued for the service before the follower waits for it.
const QUEUED: usize = 16;

/// What one write group changed, for its row of `changes`.
#[derive(Default)]
pub(super) struct GroupChanges {
    customers: BTreeSet<String>,
    invoices: BTreeSet<String>,
    payments: BTreeSet<String>,
    approvals: bool,
    model: bool,
}

impl GroupChanges {
    /// Adds what a committed (not refused) write changed.
    pub(super) fn add(&mut self, w: &Write) {
        use crate::store::feed::RowKey;
        for k in w.keys() {
            match k {
                RowKey::Customer(id) => {
                    self.customers.insert(id);
                }
                RowKey::Invoice(id) => {
                    self.invoices.insert(id);
                }
                RowKey::Payment(id) => {
                    self.payments.insert(id);
                }
                RowKey::Model => self.model = true,
            }
        }
        if matches!(w, Write::Approval(_)) {
            self.approvals = true;
        }
    }

    /// Writes the group's row at the next sequence and notifies the followers; returns the
    /// sequence. The caller holds the write lock.
    pub(super) fn insert(
        self,
        tx: &mut postgres::Transaction<'_>,
        stmts: &mut super::write::Statements,
        replica: &str,
        group: i64,
    ) -> Result<i64, StoreError> {
        let list = |s: BTreeSet<String>| s.into_iter().collect::<Vec<String>>();
        let insert = stmts.get(
            tx,
            "INSERT INTO changes (seq, replica, grp, customers, invoices, payments, approvals,
             model)
             SELECT COALESCE(MAX(seq), 0) + 1, $1, $2, $3, $4, $5, $6, $7 FROM changes
             RETURNING seq",
        )?;
        let seq: i64 = tx
            .query_one(
                &insert,
                &[
                    &replica,
                    &group,
                    &list(self.customers),
                    &list(self.invoices),
                    &list(self.payments),
                    &self.approvals,
                    &self.model,
                ],
            )
            .and_then(|r| r.try_get(0))
            .map_err(backend("writing the change feed"))?;
        let notify = stmts.get(tx, "SELECT pg_notify($1, $2)")?;
        tx.execute(&notify, &[&CHANNEL, &replica])
            .map_err(backend("notifying the change feed"))?;
        Ok(seq)
    }
}

/// The follower thread of a store, stopped with the store.
pub(super) struct Follower {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Follower {
    /// Starts following the database at `url` after position `after`, skipping the changes of
    /// `replica` (this store's own).
    pub(super) fn start(
        url: String,
        replica: String,
        after: u64,
        local: Arc<LocalWrites>,
    ) -> Result<(Follower, FeedReceiver), StoreError> {
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUED);
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("cashmatch-pg-feed".into())
            .spawn(move || {
                let mut f = Follow {
                    url,
                    replica,
                    last: after,
                    local,
                    conn: None,
                };
                f.run(&tx, &s);
            })
            .map_err(|e| StoreError::Backend {
                context: "starting the change feed's thread".into(),
                message: e.to_string(),
            })?;
        Ok((
            Follower {
                stop,
                thread: Mutex::new(Some(thread)),
            },
            rx,
        ))
    }

    /// Stops the thread, within [`SLICE`] (or once its batch in hand is taken). Not waited for:
    /// the store may be closed by the last owner of the service, on the very task that takes
    /// the batches, which the thread could be waiting to hand one to.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        drop(lock(&self.thread).take());
    }
}

struct Follow {
    url: String,
    replica: String,
    /// The position: every change up to it was handed on (or was this replica's own).
    last: u64,
    local: Arc<LocalWrites>,
    conn: Option<Client>,
}

type Sender = tokio::sync::mpsc::Sender<Result<ChangeBatch, StoreError>>;

impl Follow {
    fn run(&mut self, tx: &Sender, stop: &AtomicBool) {
        let mut due = Instant::now();
        let mut backoff = Duration::from_millis(50);
        let mut down_since: Option<Instant> = None;
        while !stop.load(Ordering::SeqCst) {
            if self.conn.as_ref().is_none_or(Client::is_closed) {
                match self.listen() {
                    Ok(c) => {
                        if let Some(t) = down_since.take() {
                            tracing::info!(after = ?t.elapsed(), "the change feed is connected again");
                        }
                        self.conn = Some(c);
                        backoff = Duration::from_millis(50);
                        // Notifications sent while disconnected are lost: read now.
                        due = Instant::now();
                    }
                    Err(e) => {
                        if down_since.is_none() {
                            tracing::warn!(error = %e, "the change feed lost the database; connecting again");
                            down_since = Some(Instant::now());
                        }
                        let until = Instant::now() + backoff;
                        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                            std::thread::sleep(SLICE);
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        continue;
                    }
                }
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            if Instant::now() < due {
                // Another replica's notification makes the read due now; this replica's own
                // (its payload) does not.
                let mut n = conn.notifications();
                let mut heard = false;
                let mut lost = false;
                match n.timeout_iter(SLICE).next() {
                    Ok(Some(note)) => heard |= note.payload() != self.replica,
                    Ok(None) => {}
                    Err(_) => lost = true,
                }
                if !lost {
                    let mut pending = n.iter();
                    loop {
                        match pending.next() {
                            Ok(Some(note)) => heard |= note.payload() != self.replica,
                            Ok(None) => break,
                            Err(_) => {
                                lost = true;
                                break;
                            }
                        }
                    }
                }
                drop(n);
                if lost {
                    self.conn = None;
                    continue;
                }
                if heard {
                    due = Instant::now();
                }
                if Instant::now() < due {
                    continue;
                }
            }
            match self.read() {
                Ok((batch, more)) => {
                    if let Some(b) = batch
                        && tx.blocking_send(Ok(b)).is_err()
                    {
                        // The service is gone.
                        return;
                    }
                    due = if more {
                        Instant::now()
                    } else {
                        Instant::now() + POLL
                    };
                }
                Err(e) => {
                    if self.conn.as_ref().is_none_or(Client::is_closed) {
                        self.conn = None;
                    } else {
                        tracing::warn!(error = %e, "reading the change feed failed; trying again");
                    }
                    due = Instant::now() + POLL;
                }
            }
        }
    }

    fn listen(&self) -> Result<Client, StoreError> {
        let mut c = connect(&self.url)?;
        c.batch_execute(&format!("LISTEN {CHANNEL}"))
            .map_err(backend(&format!("listening on {}", redacted(&self.url))))?;
        Ok(c)
    }

    /// Reads the changes after the position; a batch when other replicas changed something,
    /// and whether more rows wait.
    fn read(&mut self) -> Result<(Option<ChangeBatch>, bool), StoreError> {
        let conn = self.conn.as_mut().ok_or(StoreError::Closed)?;
        // Before any row is read: a write of this replica settling after it makes its rows
        // stale in this batch.
        let mark = self.local.mark();
        let mut tx = conn
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(backend("beginning a read of the change feed"))?;
        let after = i64::try_from(self.last).unwrap_or(i64::MAX);
        let w = "reading the change feed";
        let rows = tx
            .query(
                "SELECT seq, replica, (extract(epoch FROM committed_at) * 1000000)::bigint,
                        customers, invoices, payments, approvals, model
                 FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &PAGE],
            )
            .map_err(backend(w))?;
        let Some(first) = rows.first() else {
            return Ok((None, false));
        };
        let first: i64 = first.try_get(0).map_err(backend(w))?;
        if first != after + 1 {
            // The rows after the position were deleted (KEEP): everything is read again.
            tracing::warn!(
                position = self.last,
                first,
                "the change feed fell behind what the store keeps; re-reading everything"
            );
            tx.commit().map_err(backend(w))?;
            let snap = super::read::load(conn)?;
            let approvals = pending_approvals(conn)?;
            self.last = snap.change_seq;
            let batch = ChangeBatch {
                upto: snap.change_seq,
                full: true,
                customers: snap.customers,
                invoices: snap.invoices,
                settlements: snap.last_applied,
                decided: snap.decided,
                reviews: snap.open_reviews.into_iter().map(|id| (id, true)).collect(),
                approvals: Some(approvals),
                model: snap.active_model,
                committed: Vec::new(),
                local: Some((Arc::clone(&self.local), mark)),
            };
            return Ok((Some(batch), false));
        }
        let more = rows.len() as i64 == PAGE;
        let mut customers = BTreeSet::new();
        let mut invoices = BTreeSet::new();
        let mut payments = BTreeSet::new();
        let (mut approvals, mut model) = (false, false);
        let mut committed = Vec::new();
        let mut upto = after;
        for r in &rows {
            upto = r.try_get(0).map_err(backend(w))?;
            let replica: String = r.try_get(1).map_err(backend(w))?;
            if replica == self.replica {
                continue;
            }
            let micros: i64 = r.try_get(2).map_err(backend(w))?;
            committed.extend(DateTime::<Utc>::from_timestamp_micros(micros));
            customers.extend(r.try_get::<_, Vec<String>>(3).map_err(backend(w))?);
            invoices.extend(r.try_get::<_, Vec<String>>(4).map_err(backend(w))?);
            payments.extend(r.try_get::<_, Vec<String>>(5).map_err(backend(w))?);
            approvals |= r.try_get::<_, bool>(6).map_err(backend(w))?;
            model |= r.try_get::<_, bool>(7).map_err(backend(w))?;
        }
        let upto_u = u64::try_from(upto).unwrap_or(self.last);
        if committed.is_empty() {
            // Only this replica's own changes.
            tx.commit().map_err(backend(w))?;
            self.last = upto_u;
            return Ok((None, more));
        }
        let list = |s: BTreeSet<String>| s.into_iter().collect::<Vec<String>>();
        let (customers, invoices, payments) = (list(customers), list(invoices), list(payments));
        let mut batch = ChangeBatch {
            upto: upto_u,
            full: false,
            customers: Vec::new(),
            invoices: Vec::new(),
            settlements: Vec::new(),
            decided: Vec::new(),
            reviews: Vec::new(),
            approvals: None,
            model: None,
            committed,
            local: Some((Arc::clone(&self.local), mark)),
        };
        if !customers.is_empty() {
            for r in tx
                .query(
                    &format!(
                        "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ANY($1) ORDER BY seq"
                    ),
                    &[&customers],
                )
                .map_err(backend("re-reading customers"))?
            {
                batch.customers.push(customer_row(&r)?);
            }
        }
        if !invoices.is_empty() {
            for r in tx
                .query(
                    &format!(
                        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = ANY($1) ORDER BY seq"
                    ),
                    &[&invoices],
                )
                .map_err(backend("re-reading invoices"))?
            {
                batch.invoices.push(invoice_row(&r)?);
            }
            batch.settlements = last_applied(&mut tx, Some(&invoices))?;
        }
        if !payments.is_empty() {
            let w = "re-reading decisions and review items";
            for r in tx
                .query(
                    "SELECT p.id, d.payment_id IS NOT NULL, r.state
                     FROM unnest($1::text[]) AS p(id)
                     LEFT JOIN decisions d ON d.payment_id = p.id
                     LEFT JOIN review_items r ON r.payment_id = p.id",
                    &[&payments],
                )
                .map_err(backend(w))?
            {
                let id: String = r.try_get(0).map_err(backend(w))?;
                let decided: bool = r.try_get(1).map_err(backend(w))?;
                let state: Option<String> = r.try_get(2).map_err(backend(w))?;
                if decided {
                    batch.decided.push(id.clone());
                }
                batch.reviews.push((id, state.as_deref() == Some("open")));
            }
        }
        if approvals {
            batch.approvals = Some(pending_approvals(&mut tx)?);
        }
        if model {
            batch.model = tx
                .query_opt("SELECT value FROM settings WHERE key = 'active_model'", &[])
                .map_err(backend("re-reading the active model"))?
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(backend("re-reading the active model"))?;
        }
        tx.commit().map_err(backend(w))?;
        self.last = upto_u;
        Ok((Some(batch), more))
    }
}

/// A random id for a store instance: the `replica` of its change rows.
pub(super) fn replica_id() -> Result<String, StoreError> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| StoreError::Backend {
        context: "making the replica's id".into(),
        message: e.to_string(),
    })?;
    Ok(nonce.iter().map(|b| format!("{b:02x}")).collect())
}
