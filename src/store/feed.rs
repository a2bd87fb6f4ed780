//! The change feed between replicas: what the other processes on one database changed, re-read
//! from the store, for a replica to bring its in-memory state (ledger index, decided payments,
//! review queue, four-eyes requests, active model) up to date.
//!
//! A store that only one process writes (SQLite) has no feed. The PostgreSQL store writes one
//! row per committed group to its `changes` table, naming the rows the group changed, and each
//! replica follows that table (see `store::postgres::feed`). A batch carries the rows as the
//! store holds them when they were read, never what the other replica said it wrote.
//!
//! A re-read row can be older than this replica's own memory: a write of this replica may have
//! been queued (its effect already in memory) and not yet committed when the row was read. Such
//! a row must not overwrite memory. [`LocalWrites`] counts this replica's writes in flight per
//! row, and [`ChangeBatch::fresh`] says whether a row was untouched by them from the moment the
//! batch began reading until now: a row that was not is left alone, and the write in flight
//! settles it (committed, memory was right; refused, the service reloads the row).

use super::{LastApplied, StoreError};
use crate::domain::{Customer, Invoice};
use crate::store::Approval;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A row the feed may re-read, as this replica's writes touch it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RowKey {
    Customer(String),
    Invoice(String),
    /// A payment's decision, review item and four-eyes request.
    Payment(String),
    /// The active model.
    Model,
}

/// One batch of the feed: the rows other replicas changed, as the store holds them now.
#[derive(Debug)]
pub struct ChangeBatch {
    /// The feed position after this batch: a replica that applied it has seen every change up
    /// to this sequence.
    pub upto: u64,
    /// Everything, not only what changed: the replica fell behind the changes the store keeps
    /// and re-reads the whole state (`reviews` then lists every open item, and a payment not
    /// in it is not open).
    pub full: bool,
    pub customers: Vec<Customer>,
    pub invoices: Vec<Invoice>,
    /// Who closed the changed invoices that are closed.
    pub settlements: Vec<LastApplied>,
    /// Payment ids decided by other replicas.
    pub decided: Vec<String>,
    /// Review items whose state changed: payment id, and whether it is open.
    pub reviews: Vec<(String, bool)>,
    /// Every pending four-eyes request, when one changed.
    pub approvals: Option<Vec<Approval>>,
    /// The active model directory, when another replica activated one.
    pub model: Option<String>,
    /// When each change in the batch was committed, by the database's clock.
    pub committed: Vec<DateTime<Utc>>,
    /// This replica's writes, to tell a fresh row from a stale one.
    pub(crate) local: Option<(Arc<LocalWrites>, u64)>,
}

impl ChangeBatch {
    /// Whether `key` as read into this batch may replace memory: no write of this replica
    /// touching it was in flight at any moment since the batch began reading.
    pub fn fresh(&self, key: &RowKey) -> bool {
        match &self.local {
            Some((local, mark)) => local.fresh(key, *mark),
            None => true,
        }
    }
}

/// What a store's feed hands the service: batches in sequence order, or the error that ended
/// the feed.
pub type FeedReceiver = tokio::sync::mpsc::Receiver<Result<ChangeBatch, StoreError>>;

/// This replica's writes in flight, per row (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct LocalWrites {
    inner: Mutex<LocalInner>,
}

#[derive(Debug, Default)]
struct LocalInner {
    /// Bumped at every queued and every settled write.
    generation: u64,
    /// Per row: writes in flight, and the generation at which one was last queued or settled.
    rows: HashMap<RowKey, (u32, u64)>,
}

impl LocalWrites {
    fn lock(&self) -> std::sync::MutexGuard<'_, LocalInner> {
        // Plain data: usable after a panic elsewhere.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A write touching `keys` was queued (its effect is in memory already).
    pub(crate) fn queued(&self, keys: &[RowKey]) {
        let mut g = self.lock();
        g.generation += 1;
        let generation = g.generation;
        for k in keys {
            let e = g.rows.entry(k.clone()).or_insert((0, generation));
            e.0 += 1;
            e.1 = generation;
        }
    }

    /// A write touching `keys` committed or was refused.
    pub(crate) fn settled(&self, keys: &[RowKey]) {
        let mut g = self.lock();
        g.generation += 1;
        let generation = g.generation;
        for k in keys {
            if let Some(e) = g.rows.get_mut(k) {
                e.0 = e.0.saturating_sub(1);
                e.1 = generation;
            }
        }
    }

    /// Where a batch begins reading; also forgets the rows without a write in flight, which
    /// this batch and every later one read after their writes settled.
    pub(crate) fn mark(&self) -> u64 {
        let mut g = self.lock();
        g.rows.retain(|_, (n, _)| *n > 0);
        g.generation
    }

    fn fresh(&self, key: &RowKey, mark: u64) -> bool {
        match self.lock().rows.get(key) {
            None => true,
            Some(&(n, at)) => n == 0 && at <= mark,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_written_by_this_replica_since_the_mark_is_not_fresh() {
        let local = LocalWrites::default();
        let (a, b) = (RowKey::Invoice("a".into()), RowKey::Invoice("b".into()));
        local.queued(std::slice::from_ref(&a));
        local.settled(std::slice::from_ref(&a));
        // Settled before the mark: what the batch reads includes it.
        let mark = local.mark();
        assert!(local.fresh(&a, mark));
        // In flight at the mark, settled before the batch is applied: the read may miss it.
        local.queued(std::slice::from_ref(&b));
        let mark = local.mark();
        assert!(!local.fresh(&b, mark));
        local.settled(std::slice::from_ref(&b));
        assert!(!local.fresh(&b, mark));
        // The next batch reads after the write settled.
        let mark = local.mark();
        assert!(local.fresh(&b, mark));
        assert!(local.lock().rows.is_empty(), "settled rows are forgotten");
    }
}
