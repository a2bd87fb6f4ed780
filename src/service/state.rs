//! The engine state that changes together under one lock, and how the service takes that lock:
//! reads share it, a change takes it whole and is refused once the service has stopped.

use super::Service;
use super::api::*;
use super::commit::*;
use crate::domain::{Allocation, Decision, Payment};
use crate::engine::Engine;
use crate::store::{OpenAmountChange, Sla};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use tokio::sync::watch;

/// Payments decided together under one hold of the read lock.
pub(super) const DECIDE_CHUNK: usize = 256;

/// Entries of the changed-invoice map before it is reset (forcing one round of re-decisions).
pub(super) const MAX_TOUCHED: usize = 100_000;

/// Engine state that changes together, under one lock.
pub(super) struct Core {
    pub(super) engine: Engine,
    /// Bumped by every change that may alter any decision: ledger upserts, a model swap.
    pub(super) epoch: u64,
    /// Bumped by every open-amount change.
    pub(super) tick: u64,
    /// Invoice id -> the tick of its last open-amount change.
    pub(super) touched: HashMap<String, u64>,
    pub(super) decided: HashSet<String>,
    pub(super) open_reviews: HashSet<String>,
    /// Open review items whose resolution waits for a second analyst, by payment id.
    pub(super) awaiting: HashMap<String, crate::store::Approval>,
    /// Above which amounts a resolution waits for a second analyst.
    pub(super) four_eyes: FourEyes,
    /// When an open review item becomes overdue, for the API's summaries.
    pub(super) sla: Sla,
}

impl Core {
    /// Whether a decision made at `(epoch, tick)` rests on a ledger that has since moved.
    pub(super) fn stale(&self, d: &Decision, epoch: u64, tick: u64) -> bool {
        if self.epoch != epoch {
            return true;
        }
        let moved = |a: &Allocation| self.touched.get(&a.invoice_id).is_some_and(|&t| t > tick);
        d.allocations.iter().any(moved)
            || d.suggestions
                .iter()
                .any(|s| s.allocations.iter().any(moved))
    }

    /// Applies allocations to the ledger, all or nothing, and reports the open-amount changes.
    pub(super) fn apply(
        &mut self,
        payment: &Payment,
        d: &Decision,
    ) -> Result<Vec<OpenAmountChange>, crate::ledger::LedgerError> {
        let mut before: Vec<(String, Decimal)> = Vec::new();
        for a in &d.allocations {
            if before.iter().any(|(id, _)| *id == a.invoice_id) {
                // Engine::apply would check both against the same open amount: refuse instead.
                return Err(crate::ledger::LedgerError::InvalidInvoice {
                    invoice_id: a.invoice_id.clone(),
                    message: "named by two allocations of one payment".into(),
                });
            }
            if let Some(idx) = self.engine.ledger().invoice_idx(&a.invoice_id) {
                before.push((
                    a.invoice_id.clone(),
                    self.engine.ledger().invoice(idx).open_amount,
                ));
            }
        }
        self.engine.apply(payment, d)?;
        self.tick += 1;
        let mut changes = Vec::with_capacity(before.len());
        for (id, b) in before {
            let after = self
                .engine
                .ledger()
                .invoice_idx(&id)
                .map(|i| self.engine.ledger().invoice(i).open_amount)
                .unwrap_or(b);
            self.touched.insert(id.clone(), self.tick);
            changes.push(OpenAmountChange {
                invoice_id: id,
                before: b,
                after,
            });
        }
        if self.touched.len() > MAX_TOUCHED {
            self.touched.clear();
            self.epoch += 1;
        }
        Ok(changes)
    }
}

impl Core {
    /// Gives invoices back what a reversed payment relieved of them (`(invoice id, relieved)`),
    /// all or nothing, and reports the open-amount changes. Refused, naming the invoice, when an
    /// open amount would leave the range between zero and the invoice amount: the AR system has
    /// changed the invoice since (reopened, adjusted or re-amounted it), and guessing how much
    /// of the reversal still applies is not the engine's call.
    pub(super) fn restore(
        &mut self,
        payment_id: &str,
        relieved: &[(String, Decimal)],
    ) -> Result<Vec<OpenAmountChange>, ServiceError> {
        let ledger = self.engine.ledger();
        let mut plan = Vec::with_capacity(relieved.len());
        for (id, amount) in relieved {
            let idx = ledger.invoice_idx(id).ok_or_else(|| {
                ServiceError::FailedPrecondition(format!(
                    "payment {payment_id}: invoice {id} is not in the ledger; nothing was reversed"
                ))
            })?;
            let mut inv = ledger.invoice(idx).clone();
            let before = inv.open_amount;
            let after = before.checked_add(*amount).ok_or_else(|| {
                ServiceError::FailedPrecondition(format!(
                    "payment {payment_id}: invoice {id} cannot take back {amount}"
                ))
            })?;
            let fits = if inv.is_credit() {
                after <= Decimal::ZERO && after >= inv.amount
            } else {
                after >= Decimal::ZERO && after <= inv.amount
            };
            if !fits {
                return Err(ServiceError::FailedPrecondition(format!(
                    "payment {payment_id}: invoice {} ({id}) has {before} open of its amount {}; \
                     giving back the {amount} the payment relieved would make it {after}, \
                     outside 0..{}: the AR system changed the invoice since; nothing was \
                     reversed (correct the invoice with AdjustInvoice first)",
                    inv.number, inv.amount, inv.amount
                )));
            }
            inv.open_amount = after;
            plan.push((inv, before));
        }
        let ledger = self.engine.ledger_mut();
        let mut changes = Vec::with_capacity(plan.len());
        for (inv, before) in plan {
            let (id, after) = (inv.id.clone(), inv.open_amount);
            // Through the upsert, which reopens a closed item in every index and forgets who
            // settled it.
            ledger.upsert_invoice(inv).map_err(|e| {
                ServiceError::Internal(format!("payment {payment_id}: restoring {id}: {e}"))
            })?;
            changes.push(OpenAmountChange {
                invoice_id: id,
                before,
                after,
            });
        }
        self.tick += 1;
        for ch in &changes {
            self.touched.insert(ch.invoice_id.clone(), self.tick);
        }
        // Open items came back: a decision in flight may have missed a candidate, not only
        // over-applied one; the epoch makes every one in flight decide again.
        self.epoch += 1;
        Ok(changes)
    }
}

/// Where the active model came from.
#[derive(Clone, Debug)]
pub(super) struct ActiveModel {
    pub(super) source: String,
    pub(super) activated_at: DateTime<Utc>,
}

/// One payment through steps 1 and 2 of the module documentation.
pub(super) enum Step {
    New {
        decision: Box<Decision>,
        commit: Commit,
    },
    Seen {
        wait: Option<watch::Receiver<bool>>,
    },
}

/// The turn of a resolution, an unapply or a reversal (see `Service::turn`): dropped once its
/// write has committed, or when it ends without one.
pub(super) type Turn = tokio::sync::OwnedMutexGuard<()>;

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Service {
    pub(super) fn read(&self) -> std::sync::RwLockReadGuard<'_, Core> {
        self.core.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the turn to change a payment's application; see the field `turn`.
    pub(super) async fn turn(&self) -> Turn {
        std::sync::Arc::clone(&self.turn).lock_owned().await
    }

    pub(super) fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, Core>, ServiceError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(ServiceError::Stopped);
        }
        let core = self.core.write().unwrap_or_else(|p| p.into_inner());
        if self.stopped.load(Ordering::SeqCst) {
            return Err(ServiceError::Stopped);
        }
        Ok(core)
    }
}
