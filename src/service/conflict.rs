//! A write the store refused because another writer (another replica on the same database)
//! changed its rows first. Nothing of it was written, but the in-memory ledger index already
//! holds its effect: the service reloads what the store holds for the rows involved and decides
//! the payment again, a bounded number of rounds, the last one for review (a review decision
//! moves no open amount, so only the payment id itself can still be refused: then the other
//! replica's decision is the payment's). The service never stops for a conflict.

use super::Service;
use super::api::*;
use super::state::*;
use crate::domain::{Decision, Payment, ReviewReason, Status, Suggestion};
use crate::store::StoreError;
use rust_decimal::Decimal;
use std::sync::Arc;

/// A review decision in place of an auto decision that can no longer be applied.
pub(super) fn demote(mut d: Decision, why: &str) -> Decision {
    let allocations = std::mem::take(&mut d.allocations);
    d.suggestions.insert(
        0,
        Suggestion {
            confidence: d.confidence,
            allocations,
            unapplied: d.unapplied,
            explanation: d.explanation.clone(),
        },
    );
    d.unapplied += d.suggestions[0]
        .allocations
        .iter()
        .map(|a| a.amount)
        .sum::<Decimal>();
    d.status = Status::Review;
    d.review_reason = Some(ReviewReason::LowConfidence);
    d.explanation.push(format!("review: {why}"));
    d
}

/// Rounds of deciding a refused payment again before giving up on it (the last goes to review).
pub(super) const MAX_REDECIDE: usize = 3;

/// Whether a service error is a write the store refused (see the module documentation).
pub(super) fn is_conflict(e: &ServiceError) -> bool {
    matches!(e, ServiceError::Store(StoreError::Conflict(_)))
}

/// Every invoice a decision names, in its allocations and its suggestions.
pub(super) fn invoices_of(d: &Decision) -> Vec<String> {
    let mut ids: Vec<String> = d
        .allocations
        .iter()
        .chain(d.suggestions.iter().flat_map(|s| s.allocations.iter()))
        .map(|a| a.invoice_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

impl Service {
    /// Replaces the in-memory invoices `ids` with what the store holds, and makes every decision
    /// in flight decide again (its ledger moved).
    pub(super) async fn reload_invoices(&self, ids: &[String]) -> Result<(), ServiceError> {
        let mut fresh = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(inv) = self.store.invoice(id.clone()).await? {
                fresh.push(inv);
            }
        }
        let mut core = self.write()?;
        for inv in fresh {
            let id = inv.id.clone();
            core.engine
                .ledger_mut()
                .upsert_invoice(inv)
                .map_err(|e| ServiceError::Internal(format!("reloading invoice {id}: {e}")))?;
        }
        core.tick += 1;
        let tick = core.tick;
        for id in ids {
            core.touched.insert(id.clone(), tick);
        }
        core.epoch += 1;
        Ok(())
    }

    /// Puts the payment's review item in or out of the in-memory queue as the store has it.
    pub(super) async fn reload_review(&self, payment_id: &str) -> Result<(), ServiceError> {
        let item = self.store.review_item(payment_id.to_string()).await?;
        let mut core = self.write()?;
        match item {
            Some(r) if r.summary.state == crate::store::ReviewState::Open => {
                core.open_reviews.insert(payment_id.to_string());
            }
            _ => {
                core.open_reviews.remove(payment_id);
            }
        }
        Ok(())
    }

    /// After a resolution, unapply or reversal of `payment_id` touching `invoices` was refused:
    /// memory takes the store's state back, and the caller gets the conflict (ABORTED: the
    /// analyst or the AR system looks again and retries).
    pub(super) async fn after_refused(
        &self,
        payment_id: &str,
        invoices: &[String],
        e: ServiceError,
    ) -> ServiceError {
        tracing::info!(payment_id, error = %e, "a write was refused by the store; reloading");
        if let Err(r) = self.reload_invoices(invoices).await {
            return r;
        }
        if let Err(r) = self.reload_review(payment_id).await {
            return r;
        }
        e
    }

    /// A failed commit of a change to `payment_id`'s application: a conflict is handed back
    /// after memory is reloaded for the invoices `decision` names (its allocations and
    /// suggestions: what a resolution or a reversal could have touched); other errors as they are.
    pub(super) async fn refused(
        &self,
        payment_id: &str,
        decision: &Decision,
        e: ServiceError,
    ) -> ServiceError {
        if !is_conflict(&e) {
            return e;
        }
        self.after_refused(payment_id, &invoices_of(decision), e)
            .await
    }

    /// Decides `payment` again after the store refused its decision `refused`.
    pub(super) async fn redecide(
        self: &Arc<Self>,
        payment: Payment,
        refused: Decision,
    ) -> Result<Matched, ServiceError> {
        let id = payment.payment_id.clone();
        let mut refused = refused;
        for round in 1..=MAX_REDECIDE {
            tracing::info!(payment_id = %id, round, "the store refused a decision; deciding again");
            let mut ids = invoices_of(&refused);
            let stored = self.store.decision(id.clone()).await?;
            if let Some(s) = &stored {
                ids.extend(invoices_of(&s.decision));
            }
            self.reload_invoices(&ids).await?;
            if stored.is_some() {
                // Decided elsewhere: that decision is the payment's, and this is a replay.
                self.reload_review(&id).await?;
                self.write()?.decided.insert(id.clone());
                return self.replay(payment, None).await;
            }
            {
                let mut core = self.write()?;
                core.decided.remove(&id);
                core.open_reviews.remove(&id);
            }
            let (this, p) = (Arc::clone(self), payment.clone());
            let last = round == MAX_REDECIDE;
            let step = tokio::task::spawn_blocking(move || {
                let (first, epoch, tick) = if last {
                    let core = this.read();
                    let d = core.engine.decide(&p);
                    let d = match d.status {
                        Status::Auto => demote(
                            d,
                            "the ledger kept changing under this payment on other replicas",
                        ),
                        _ => d,
                    };
                    (Some(d), core.epoch, core.tick)
                } else {
                    (None, 0, 0)
                };
                this.apply_one(&p, first, epoch, tick, None)
            })
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))??;
            match step {
                Step::Seen { wait } => return self.replay(payment, wait).await,
                Step::New { decision, commit } => match Self::commit(commit).await {
                    Ok(()) => {
                        return Ok(Matched {
                            decision: *decision,
                            replayed: false,
                            held: None,
                        });
                    }
                    Err(e) if is_conflict(&e) => refused = *decision,
                    Err(e) => return Err(e),
                },
            }
        }
        let e = ServiceError::Store(StoreError::Conflict(format!(
            "payment {id}: the store refused its decision {MAX_REDECIDE} times; send it again"
        )));
        let ids = invoices_of(&refused);
        {
            let mut core = self.write()?;
            core.decided.remove(&id);
            core.open_reviews.remove(&id);
        }
        Err(self.after_refused(&id, &ids, e).await)
    }
}
