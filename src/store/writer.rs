//! The ordered write path, the same for every backend: writes are taken from a channel in call
//! order by one thread, and whatever has queued up is handed to the backend as one group to
//! apply in one transaction (group commit); each write's future resolves with its own result
//! once the group is durable.
//!
//! A backend implements [`GroupBackend`]: apply a group in one transaction, a refused write
//! reported in its place without taking the others with it. What it does between groups
//! (SQLite's checkpoints) hangs on the two hooks.

use super::feed::{LocalWrites, RowKey};
use super::{
    AdviceWrite, ApprovalWrite, AssignmentWrite, AuditRecord, CashRecord, DecisionRecord,
    LedgerWrite, OpenAmountChange, Outbox, ResolutionRecord, ReversalRecord, SessionWrite,
    StoreError, StoreFuture,
};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Writes committed together at most; enough to amortise the sync, few enough that one
/// transaction stays short.
const MAX_GROUP: usize = 512;

/// Ledger rows (customers and invoices) in one group from which the group counts as a bulk load:
/// the backend may then tidy up before it is acknowledged (SQLite checkpoints, so that a bulk
/// load pays for copying itself), and the group is freed off the writer thread.
pub(super) const BULK_ROWS: usize = 5_000;

/// One write, as the service asked for it.
pub(crate) enum Write {
    Ledger(LedgerWrite),
    Decision(Box<DecisionRecord>),
    Resolve(Box<ResolutionRecord>),
    Reverse(Box<ReversalRecord>),
    ActiveModel(String, AuditRecord),
    Approval(Box<ApprovalWrite>),
    Session(SessionWrite),
    Assign(Box<AssignmentWrite>),
    /// The bus publisher's cursor in an outbox (`store::outbox`).
    BusCursor(Outbox, u64),
    Cash(Box<CashRecord>),
    Advice(Box<AdviceWrite>),
}

impl Write {
    fn ledger_rows(&self) -> usize {
        match self {
            Write::Ledger(w) => w.customers.len() + w.invoices.len(),
            _ => 0,
        }
    }

    /// The rows the write changes, as the change feed names them.
    pub(crate) fn keys(&self) -> Vec<RowKey> {
        fn invoices(changes: &[OpenAmountChange]) -> impl Iterator<Item = RowKey> + '_ {
            changes
                .iter()
                .map(|c| RowKey::Invoice(c.invoice_id.clone()))
        }
        match self {
            Write::Ledger(w) => w
                .customers
                .iter()
                .map(|c| RowKey::Customer(c.id.clone()))
                .chain(w.invoices.iter().map(|i| RowKey::Invoice(i.id.clone())))
                .collect(),
            Write::Decision(r) => invoices(&r.changes)
                .chain([RowKey::Payment(r.payment.payment_id.clone())])
                .collect(),
            Write::Resolve(r) => invoices(&r.changes)
                .chain([RowKey::Payment(r.payment_id.clone())])
                .collect(),
            Write::Reverse(r) => invoices(&r.changes)
                .chain([RowKey::Payment(r.payment.payment_id.clone())])
                .collect(),
            Write::ActiveModel(..) => vec![RowKey::Model],
            Write::Approval(w) => vec![RowKey::Payment(w.approval.payment_id.clone())],
            // Read from the store on every use: nothing for the other replicas to re-read.
            Write::Session(_) => vec![],
            Write::Assign(w) => vec![RowKey::Payment(w.payment_id.clone())],
            // Read from the store by the publisher: nothing for the other replicas to re-read.
            Write::BusCursor(..) => vec![],
            Write::Cash(r) => invoices(&r.changes)
                .chain([RowKey::Payment(r.payment_id.clone())])
                .collect(),
            // Held items live in the memory of the replica that received them (docs/api.md):
            // nothing for the other replicas to re-read.
            Write::Advice(_) => vec![],
        }
    }
}

/// What a backend does for the writer thread, which owns it.
pub(crate) trait GroupBackend: Send + 'static {
    /// Applies `writes` in order in one transaction and returns each one's result in its place:
    /// a refused write (a conflict) leaves the others in, and a failed commit fails them all.
    /// When this returns, the group is as durable as the backend promises.
    fn apply_group(&mut self, writes: &[Write]) -> Vec<Result<(), StoreError>>;

    /// After a group of `writes` committed and before any of it is acknowledged; `bulk` when it
    /// loaded at least [`BULK_ROWS`] ledger rows.
    fn committed(&mut self, _writes: usize, _bulk: bool) {}

    /// After a group was acknowledged, before the next is taken.
    fn between_groups(&mut self) {}
}

struct Job {
    write: Write,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The writer thread and the channel to it.
pub(crate) struct Writer {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The writes in flight per row, for a store with a change feed.
    local: Option<Arc<LocalWrites>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind, still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Writer {
    /// Starts the thread `name`, which owns `backend` until [`Writer::close`].
    pub(crate) fn start(name: &str, backend: impl GroupBackend) -> Result<Writer, StoreError> {
        Writer::start_tracked(name, backend, None)
    }

    /// [`Writer::start`], keeping `local` up to date with the writes in flight (a store with a
    /// change feed, see `store::feed`).
    pub(crate) fn start_tracked(
        name: &str,
        backend: impl GroupBackend,
        local: Option<Arc<LocalWrites>>,
    ) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let tracked = local.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || writer_loop(backend, rx, tracked))
            .map_err(|e| StoreError::Backend {
                context: format!("starting the {name} thread"),
                message: e.to_string(),
            })?;
        Ok(Writer {
            sender: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            local,
        })
    }

    /// Queues a write behind those already queued; the future resolves when it is durable (or
    /// refused). After [`Writer::close`], every write is [`StoreError::Closed`].
    pub(crate) fn submit(&self, write: Write) -> StoreFuture<()> {
        let (reply, rx) = oneshot::channel();
        let sender = lock(&self.sender);
        let sent = match sender.as_ref() {
            Some(w) => {
                // Before the send, so that the writer thread never settles a write not counted.
                if let Some(local) = &self.local {
                    local.queued(&write.keys());
                }
                match w.send(Job { write, reply }) {
                    Ok(()) => true,
                    Err(mpsc::SendError(job)) => {
                        if let Some(local) = &self.local {
                            local.settled(&job.write.keys());
                        }
                        false
                    }
                }
            }
            None => false,
        };
        drop(sender);
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    /// Stops the thread after the writes already queued, and waits for it.
    pub(crate) fn close(&self) {
        lock(&self.sender).take();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

/// Applies queued writes in groups, in the order they were queued.
fn writer_loop(
    mut backend: impl GroupBackend,
    rx: mpsc::Receiver<Job>,
    local: Option<Arc<LocalWrites>>,
) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let (writes, replies): (Vec<Write>, Vec<_>) =
            jobs.into_iter().map(|j| (j.write, j.reply)).unzip();
        let results = backend.apply_group(&writes);
        let bulk = writes.iter().map(Write::ledger_rows).sum::<usize>() >= BULK_ROWS;
        backend.committed(writes.len(), bulk);
        if let Some(local) = &local {
            for w in &writes {
                local.settled(&w.keys());
            }
        }
        for (reply, r) in replies.into_iter().zip(results) {
            let _ = reply.send(r);
        }
        // Freeing a million invoices takes tens of milliseconds the next payments would wait.
        // (Should the thread not start, they are freed here.)
        if bulk {
            let _ = std::thread::Builder::new()
                .name("cashmatch-free".into())
                .spawn(move || drop(writes));
        }
        backend.between_groups();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Customer;
    use std::sync::Arc;

    /// Shared, so that the test sees what the writer thread did.
    type Log = Arc<Mutex<Vec<String>>>;

    /// Records each group and refuses customers named "refused".
    struct Recorder(Log);

    impl GroupBackend for Recorder {
        fn apply_group(&mut self, writes: &[Write]) -> Vec<Result<(), StoreError>> {
            let mut names = Vec::new();
            let results = writes
                .iter()
                .map(|w| match w {
                    Write::Ledger(l) => {
                        let id = l.customers[0].id.clone();
                        names.push(id.clone());
                        if id == "refused" {
                            Err(StoreError::Conflict(id))
                        } else {
                            Ok(())
                        }
                    }
                    _ => Ok(()),
                })
                .collect();
            lock(&self.0).push(format!("group {}", names.join(",")));
            results
        }

        fn committed(&mut self, writes: usize, bulk: bool) {
            lock(&self.0).push(format!("committed {writes} bulk={bulk}"));
        }
    }

    fn customer(id: &str) -> Write {
        Write::Ledger(LedgerWrite {
            postings: vec![],
            customers: vec![Customer {
                id: id.into(),
                name: id.into(),
                parent_id: None,
                bank_accounts: vec![],
            }],
            invoices: vec![],
            audit: None,
        })
    }

    #[test]
    fn writes_apply_in_call_order_and_a_refused_one_fails_alone() {
        let log = Log::default();
        let writer = Writer::start("test-writer", Recorder(Arc::clone(&log))).expect("start");
        let futures: Vec<_> = ["a", "refused", "b"]
            .into_iter()
            .map(|id| writer.submit(customer(id)))
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let results: Vec<_> = futures.into_iter().map(|f| rt.block_on(f)).collect();
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert!(matches!(results[1], Err(StoreError::Conflict(_))));
        writer.close();
        let applied: Vec<String> = lock(&log)
            .iter()
            .filter_map(|l| l.strip_prefix("group "))
            .flat_map(|g| g.split(',').map(str::to_string).collect::<Vec<_>>())
            .collect();
        assert_eq!(applied, ["a", "refused", "b"]);
        assert!(lock(&log).iter().any(|l| l.ends_with("bulk=false")));
        assert!(matches!(
            rt.block_on(writer.submit(customer("late"))),
            Err(StoreError::Closed)
        ));
    }
}
