//! Cash that waits for invoices: when the AR system adds invoices for a customer, that
//! customer's waiting cash is matched again, and what the engine now applies on its own is
//! applied by it (postings as the engine's, with the model and rules versions; the audit trail
//! names the engine):
//!
//! - payments waiting in review with no candidate are decided again, and resolved through the
//!   resolution path;
//! - cash left unapplied or on account by an earlier application is decided again as a payment
//!   of what waits (its remittance lines without those of the invoices it already paid, which
//!   would read as a second payment of them), and applied as `super::waiting_cash` applies it.
//!
//! Only what the engine decides automatically is applied; the rest stays in the queue as it was.
//! Left for a person on purpose (docs/api.md says so to the AR system):
//!
//! - a payment whose payer is not identified: only its remittance could tie it to the customer
//!   whose invoices arrived, and reading every such item on every upsert costs a queue scan per
//!   batch; an analyst who identifies the payer puts the cash on that customer's account (or
//!   applies it), and cash on account is matched again when the customer's invoices arrive;
//! - a new decision that writes something off under the rules: a resolution posts cash,
//!   discounts and deductions, not the rules' write-offs, which are posted only with the
//!   decision the engine makes when a payment arrives.

use super::Service;
use super::api::*;
use super::waiting_cash::ApplyCashRequest;
use crate::domain::{Decision, Leftover, Payment, ReviewReason, Status};
use crate::store::{ActorKind, PostingKind, ReviewFilter, ReviewState, live_postings, now};
use crate::text::normalize;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The name the engine resolves under.
pub const ENGINE_ACTOR: &str = "engine";

/// Review items with no candidate looked at after one upsert, at most: the queue's first ones.
const REMATCH_LIMIT: u32 = 1_000;

impl Service {
    /// Decides again the review items with no candidate of `customers`, and resolves those the
    /// engine now applies; returns their payment ids. A failure is logged and leaves the item
    /// in the queue: the upsert that prompted it stands.
    pub(super) async fn rematch_waiting(
        self: &Arc<Self>,
        customers: &BTreeSet<String>,
    ) -> Vec<String> {
        if customers.is_empty() {
            return Vec::new();
        }
        let filter = ReviewFilter {
            reason: Some(ReviewReason::NoCandidate),
            ..ReviewFilter::open(REMATCH_LIMIT, now())
        };
        let items = match self.review_items(filter).await {
            Ok((items, _)) => items,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the review items to match again");
                return Vec::new();
            }
        };
        let mut applied = Vec::new();
        for s in items {
            if !s
                .customer_id
                .as_ref()
                .is_some_and(|c| customers.contains(c))
            {
                continue;
            }
            match self.rematch_item(&s.payment_id).await {
                Ok(true) => applied.push(s.payment_id),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(payment_id = %s.payment_id, error = %e, "matching a waiting payment again failed; it stays in the queue")
                }
            }
        }
        for customer in customers {
            let waiting = match self.waiting_cash(customer.clone(), now()).await {
                Ok(w) => w.payments,
                Err(e) => {
                    tracing::warn!(customer_id = %customer, error = %e, "cannot read the customer's waiting cash");
                    continue;
                }
            };
            for w in waiting {
                match self.rematch_residual(&w.payment_id).await {
                    Ok(true) => applied.push(w.payment_id),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(payment_id = %w.payment_id, error = %e, "matching waiting cash again failed; it still waits")
                    }
                }
            }
        }
        if !applied.is_empty() {
            tracing::info!(payments = ?applied, "waiting payments applied after the AR system added invoices");
        }
        applied
    }

    /// Decides one open review item again; resolves it when the decision is automatic.
    async fn rematch_item(self: &Arc<Self>, payment_id: &str) -> Result<bool, ServiceError> {
        let turn = self.turn().await;
        let item = self.review_item(payment_id.to_string()).await?;
        if item.summary.state != ReviewState::Open || item.resolution.is_some() {
            return Ok(false);
        }
        let d = self.read().engine.decide(&item.payment);
        if !applies_alone(&d) {
            return Ok(false);
        }
        let why = d.explanation.last().cloned().unwrap_or_default();
        let req = ResolveRequest {
            payment_id: payment_id.to_string(),
            analyst: ENGINE_ACTOR.into(),
            action: ResolveAction::ApplyAllocation {
                allocations: d.allocations,
                unapplied: Some(d.unapplied),
            },
            note: format!(
                "matched again when the AR system added invoices for the customer ({why}; model \
                 {}, rules {})",
                d.model_version, d.rules_version
            ),
        };
        let decision = item.decision.clone();
        let this = Arc::clone(self);
        let (_, commit) =
            tokio::task::spawn_blocking(move || this.resolve_blocking(item, req, None, turn, true))
                .await
                .map_err(|e| ServiceError::Internal(e.to_string()))??;
        if let Err(e) = Self::commit(commit).await {
            return Err(self.refused(payment_id, &decision, e).await);
        }
        Ok(true)
    }

    /// Decides the cash a payment still has waiting (unapplied or on account) again, and applies
    /// it when the engine now would on its own.
    async fn rematch_residual(self: &Arc<Self>, payment_id: &str) -> Result<bool, ServiceError> {
        let stored = self.decided(payment_id, "match again").await?;
        let postings = self.postings_of(payment_id).await?;
        let live = live_postings(&postings);
        let waiting: rust_decimal::Decimal = live
            .iter()
            .filter(|p| {
                matches!(
                    p.record.kind,
                    PostingKind::Unapplied | PostingKind::OnAccount
                )
            })
            .map(|p| p.record.amount)
            .sum();
        if waiting <= rust_decimal::Decimal::ZERO {
            return Ok(false);
        }
        let paid: Vec<String> = live
            .iter()
            .filter(|p| p.record.kind == PostingKind::Applied)
            .filter_map(|p| p.record.invoice_id.clone())
            .collect();
        let rest = {
            let core = self.read();
            let ledger = core.engine.ledger();
            let paid_keys: Vec<String> = paid
                .iter()
                .filter_map(|id| ledger.invoice_idx(id).map(|i| ledger.invoice(i)))
                .flat_map(|inv| [Some(inv.number.clone()), inv.po_number.clone()])
                .flatten()
                .map(|k| normalize(&k))
                .collect();
            let mut rest = Payment {
                amount: waiting,
                ..stored.payment.clone()
            };
            rest.lines.retain(|l| {
                l.reference
                    .as_deref()
                    .is_none_or(|r| !paid_keys.contains(&normalize(r)))
            });
            rest
        };
        let d = self.read().engine.decide(&rest);
        if !applies_alone(&d)
            || d.allocations
                .iter()
                .any(|a| !a.discount.is_zero() || !a.deduction.is_zero())
        {
            return Ok(false);
        }
        let why = d.explanation.last().cloned().unwrap_or_default();
        self.apply_waiting_cash(ApplyCashRequest {
            payment_id: payment_id.to_string(),
            allocations: d
                .allocations
                .iter()
                .map(|a| (a.invoice_id.clone(), a.amount))
                .collect(),
            by: Actor {
                kind: ActorKind::Engine,
                name: ENGINE_ACTOR.into(),
            },
            note: format!(
                "matched again when the AR system added invoices for the customer ({why}; model \
                 {}, rules {})",
                d.model_version, d.rules_version
            ),
        })
        .await?;
        Ok(true)
    }
}

/// Whether a decision applies cash on its own in a way a resolution can post: automatic, to
/// invoices, and writing nothing off under the rules.
fn applies_alone(d: &Decision) -> bool {
    let writes_off = !d.by_rules.write_offs.is_empty()
        || matches!(d.by_rules.leftover, Leftover::WriteOff { .. });
    d.status == Status::Auto && !d.allocations.is_empty() && !writes_off
}
