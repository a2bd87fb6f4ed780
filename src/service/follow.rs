//! Following the other replicas on one database: each batch of the store's change feed
//! (`store::feed`) is applied to this replica's memory, so that its ledger index (open amounts,
//! new invoices and customers, who closed an item), its decided payments, review queue,
//! four-eyes requests and active model catch up with what the others committed.
//!
//! A batch holds rows as the store has them, never what the other replica meant to write. Rows
//! this replica has a write in flight for are left alone (`ChangeBatch::fresh`): that write
//! settles them. What changed makes every decision in flight decide again, as a local ledger
//! change does. Without a feed (SQLite, one process) nothing runs.

use super::Service;
use super::api::*;
use super::models::load_model;
use super::state::*;
use crate::ledger::Settlement;
use crate::model::artifact::Model;
use crate::store::{ChangeBatch, RowKey};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Delays kept for [`FeedStats::delays`].
const KEPT_DELAYS: usize = 4_096;

/// What the change feed did on this replica.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// The feed position applied: every change up to it is in memory.
    pub position: AtomicU64,
    /// Batches applied.
    pub batches: AtomicU64,
    /// Other replicas' write groups applied.
    pub changes: AtomicU64,
    /// Rows of a batch left alone because this replica had a write in flight for them.
    pub skipped: AtomicU64,
    /// Milliseconds from another replica's commit (by the database's clock) to its change being
    /// in this replica's memory, the most recent last.
    delays: Mutex<VecDeque<f64>>,
}

impl FeedStats {
    /// The most recent delays, in milliseconds, oldest first.
    pub fn delays(&self) -> Vec<f64> {
        lock(&self.delays).iter().copied().collect()
    }

    fn record(&self, delay_ms: f64) {
        let mut d = lock(&self.delays);
        if d.len() == KEPT_DELAYS {
            d.pop_front();
        }
        d.push_back(delay_ms);
    }
}

impl Service {
    /// Starts applying what other replicas change, for as long as the service lives; `None`
    /// when the store has no feed (SQLite) or the service follows it already. Call it once
    /// the service is shared; within the tokio runtime.
    pub fn follow(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if self.following.swap(true, Ordering::SeqCst) {
            return None;
        }
        let mut rx = self.store.follow(self.restored_seq)?;
        self.feed
            .position
            .store(self.restored_seq, Ordering::SeqCst);
        let weak = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                let Some(this) = weak.upgrade() else {
                    break;
                };
                let r = match batch {
                    Ok(b) => this.apply_changes(b).await,
                    Err(e) => Err(ServiceError::Store(e)),
                };
                if let Err(e) = r {
                    tracing::warn!(error = %e, "a batch of other replicas' changes was not applied");
                }
            }
        }))
    }

    /// The change feed's figures on this replica.
    pub fn feed_stats(&self) -> &FeedStats {
        &self.feed
    }

    async fn apply_changes(self: &Arc<Self>, batch: ChangeBatch) -> Result<(), ServiceError> {
        // A model another replica activated is loaded before the lock (it reads files); its
        // directory must be where this replica can read it too (a shared volume).
        let model = match &batch.model {
            Some(dir) if batch.fresh(&RowKey::Model) && *dir != lock(&self.active).source => {
                match load_model(PathBuf::from(dir)).await {
                    Ok(m) => Some((m, dir.clone())),
                    Err(e) => {
                        tracing::error!(error = %e, directory = %dir, "another replica activated a model this one cannot load; it keeps its own");
                        None
                    }
                }
            }
            _ => None,
        };
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.apply_changes_blocking(batch, model))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))??;
        // Journal watchers on this replica read the postings the others added.
        self.journal.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    fn apply_changes_blocking(
        &self,
        batch: ChangeBatch,
        model: Option<(Model, String)>,
    ) -> Result<(), ServiceError> {
        let mut skipped = 0u64;
        let mut fresh = |k: &RowKey| {
            let f = batch.fresh(k);
            skipped += u64::from(!f);
            f
        };
        let mut core = self.write()?;
        let ledger = core.engine.ledger_mut();
        let mut customers = false;
        for c in &batch.customers {
            if fresh(&RowKey::Customer(c.id.clone())) {
                ledger.upsert_customer(c.clone());
                customers = true;
            }
        }
        if customers {
            ledger.link_parents();
        }
        let mut moved = Vec::new();
        for inv in &batch.invoices {
            if !fresh(&RowKey::Invoice(inv.id.clone())) {
                continue;
            }
            match ledger.upsert_invoice(inv.clone()) {
                Ok(_) => moved.push(inv.id.clone()),
                Err(e) => {
                    tracing::warn!(invoice = %inv.id, error = %e, "an invoice another replica stored does not fit the ledger; left out")
                }
            }
        }
        for s in &batch.settlements {
            if let Some(idx) = ledger.invoice_idx(&s.invoice_id)
                && moved.contains(&s.invoice_id)
            {
                ledger.record_settlement(
                    idx,
                    Settlement {
                        payment_id: s.payment_id.clone(),
                        paid_on: s.paid_on,
                    },
                );
            }
        }
        if customers || !moved.is_empty() {
            // New candidates or moved open amounts: decisions in flight decide again.
            core.tick += 1;
            let tick = core.tick;
            for id in moved {
                core.touched.insert(id, tick);
            }
            core.epoch += 1;
            if core.touched.len() > MAX_TOUCHED {
                core.touched.clear();
            }
        }
        core.decided.extend(batch.decided.iter().cloned());
        if batch.full {
            let open: HashSet<&str> = batch.reviews.iter().map(|(id, _)| id.as_str()).collect();
            let gone: Vec<String> = core
                .open_reviews
                .iter()
                .filter(|id| !open.contains(id.as_str()))
                .cloned()
                .collect();
            for id in gone {
                if fresh(&RowKey::Payment(id.clone())) {
                    core.open_reviews.remove(&id);
                }
            }
        }
        for (id, open) in &batch.reviews {
            if !fresh(&RowKey::Payment(id.clone())) {
                continue;
            }
            if *open {
                core.open_reviews.insert(id.clone());
            } else {
                core.open_reviews.remove(id);
            }
        }
        if let Some(pending) = &batch.approvals {
            let mut next: HashMap<String, crate::store::Approval> = HashMap::new();
            for a in pending {
                if core.open_reviews.contains(&a.payment_id)
                    && fresh(&RowKey::Payment(a.payment_id.clone()))
                {
                    next.insert(a.payment_id.clone(), a.clone());
                }
            }
            for (id, a) in &core.awaiting {
                if !batch.fresh(&RowKey::Payment(id.clone())) {
                    next.insert(id.clone(), a.clone());
                }
            }
            core.awaiting = next;
        }
        if let Some((m, dir)) = model {
            tracing::info!(model = %m.version, directory = %dir, "another replica activated a model; activated here too");
            core.engine.set_model(Arc::new(m));
            core.epoch += 1;
            *lock(&self.active) = ActiveModel {
                source: dir,
                activated_at: crate::store::now(),
            };
        }
        drop(core);
        let now = crate::store::now();
        for c in &batch.committed {
            let ms = (now - *c).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0;
            self.feed.record(ms.max(0.0));
        }
        self.feed
            .changes
            .fetch_add(batch.committed.len() as u64, Ordering::Relaxed);
        self.feed.batches.fetch_add(1, Ordering::Relaxed);
        self.feed.skipped.fetch_add(skipped, Ordering::Relaxed);
        self.feed.position.store(batch.upto, Ordering::SeqCst);
        Ok(())
    }
}
