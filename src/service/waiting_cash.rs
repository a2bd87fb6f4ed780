//! Applying cash that waits (unapplied, or on the customer's account) to invoices later: an
//! analyst's action, or the engine's when the AR system adds the invoices it was waiting for.
//!
//! The waiting postings of the payment are reversed, the cash applied to each invoice is posted,
//! and whatever is not applied waits again as it did (unapplied or on account), in one store
//! transaction with the open amounts and the audit event. An invoice is never relieved of more
//! than it has open: the ledger refuses, and the store refuses an open amount that moved meanwhile.

use super::Service;
use super::api::*;
use super::commit::*;
use super::ledger::open_amounts;
use crate::domain::{Allocation, Decision, Payment, Status};
use crate::store::AuditRecord;
use crate::store::{
    CashRecord, PostedBy, Posting, PostingKind, StoreError, StoredDecision, live_postings,
    payment_postings, reversal_postings,
};
use rust_decimal::Decimal;
use serde_json::json;
use std::sync::Arc;

/// Waiting cash of one payment to apply to invoices.
#[derive(Clone, Debug)]
pub struct ApplyCashRequest {
    pub payment_id: String,
    /// `(invoice id, cash)`: positive amounts, each invoice once.
    pub allocations: Vec<(String, Decimal)>,
    pub by: Actor,
    /// Why, for the audit trail.
    pub note: String,
}

/// Waiting cash applied: the postings written, and what of the payment still waits.
#[derive(Clone, Debug)]
pub struct CashApplied {
    pub payment_id: String,
    pub postings: Vec<Posting>,
    pub still_waiting: Decimal,
}

impl Service {
    /// Applies waiting cash of a payment to invoices of the customer whose cash it is. A payment
    /// with nothing waiting, an invoice of another customer or currency, more cash than waits,
    /// or more than an invoice has open is refused and changes nothing.
    pub async fn apply_waiting_cash(
        self: &Arc<Self>,
        req: ApplyCashRequest,
    ) -> Result<CashApplied, ServiceError> {
        let id = req.payment_id.trim().to_string();
        if id.is_empty() {
            return Err(ServiceError::invalid(
                "payment_id",
                "is required: the payment whose waiting cash is applied",
            ));
        }
        if req.allocations.is_empty() {
            return Err(ServiceError::invalid(
                "allocations",
                "name at least one invoice and the cash to apply to it",
            ));
        }
        for (i, (invoice, amount)) in req.allocations.iter().enumerate() {
            if invoice.trim().is_empty() {
                return Err(ServiceError::invalid(
                    format!("allocations[{i}].invoice_id"),
                    "is required",
                ));
            }
            if *amount <= Decimal::ZERO {
                return Err(ServiceError::invalid(
                    format!("allocations[{i}].amount"),
                    format!("{amount} is not a positive amount"),
                ));
            }
            if req.allocations[..i].iter().any(|(o, _)| o == invoice) {
                return Err(ServiceError::invalid(
                    format!("allocations[{i}].invoice_id"),
                    format!("{invoice} is named twice"),
                ));
            }
        }
        let turn = self.turn().await;
        let stored = self.decided(&id, "apply").await?;
        let postings = self.postings_of(&id).await?;
        let last = postings.last().map_or(0, |p| p.sequence);
        let invoices: Vec<String> = req.allocations.iter().map(|(i, _)| i.clone()).collect();
        let this = Arc::clone(self);
        let (still_waiting, commit) = tokio::task::spawn_blocking(move || {
            let r = this.apply_cash_blocking(stored, &postings, req);
            drop(turn);
            r
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??;
        if let Err(e) = Self::commit(commit).await {
            return Err(match e {
                e @ ServiceError::Store(StoreError::Conflict(_)) => {
                    self.after_refused(&id, &invoices, e).await
                }
                e => e,
            });
        }
        let mut written = self.postings_of(&id).await?;
        written.retain(|p| p.sequence > last);
        Ok(CashApplied {
            payment_id: id,
            postings: written,
            still_waiting,
        })
    }

    fn apply_cash_blocking(
        self: &Arc<Self>,
        stored: StoredDecision,
        postings: &[Posting],
        req: ApplyCashRequest,
    ) -> Result<(Decimal, Commit), ServiceError> {
        let StoredDecision {
            payment, decision, ..
        } = stored;
        let id = payment.payment_id.clone();
        let live = live_postings(postings);
        let waiting: Vec<&Posting> = live
            .into_iter()
            .filter(|p| {
                matches!(
                    p.record.kind,
                    PostingKind::Unapplied | PostingKind::OnAccount
                )
            })
            .collect();
        let total: Decimal = waiting.iter().map(|p| p.record.amount).sum();
        let Some(customer) = waiting.iter().find_map(|p| p.record.customer_id.clone()) else {
            return Err(ServiceError::FailedPrecondition(format!(
                "payment {id} has no cash waiting for a known customer"
            )));
        };
        let on_account = waiting
            .iter()
            .any(|p| p.record.kind == PostingKind::OnAccount);
        let applied: Decimal = req.allocations.iter().map(|(_, a)| *a).sum();
        if applied > total {
            return Err(ServiceError::invalid(
                "allocations",
                format!("apply {applied} of payment {id}, which has {total} waiting"),
            ));
        }
        let mut core = self.write()?;
        for (i, (invoice, _)) in req.allocations.iter().enumerate() {
            let ledger = core.engine.ledger();
            let inv = ledger
                .invoice_idx(invoice)
                .map(|idx| ledger.invoice(idx))
                .ok_or_else(|| {
                    ServiceError::NotFound(format!("invoice {invoice} is not in the ledger"))
                })?;
            if inv.customer_id != customer || inv.currency != payment.currency {
                return Err(ServiceError::invalid(
                    format!("allocations[{i}].invoice_id"),
                    format!(
                        "{invoice} is {}'s in {}: the waiting cash is {customer}'s in {}",
                        inv.customer_id, inv.currency, payment.currency
                    ),
                ));
            }
        }
        let allocations: Vec<Allocation> = req
            .allocations
            .iter()
            .map(|(invoice_id, amount)| Allocation {
                invoice_id: invoice_id.clone(),
                amount: *amount,
                discount: Decimal::ZERO,
                deduction: Decimal::ZERO,
                reason_code: None,
            })
            .collect();
        let ids: Vec<&str> = allocations.iter().map(|a| a.invoice_id.as_str()).collect();
        let before_open = open_amounts(core.engine.ledger(), &ids);
        // The ledger checks the cash applied now, as a payment of that amount: all or nothing,
        // and never past an invoice's open amount.
        let cash = Payment {
            amount: applied,
            ..payment.clone()
        };
        let now_applied = Decision {
            status: Status::Auto,
            allocations: allocations.clone(),
            unapplied: Decimal::ZERO,
            by_rules: Default::default(),
            ..decision
        };
        let changes = core.apply(&cash, &now_applied).map_err(|e| {
            ServiceError::FailedPrecondition(format!("the cash does not fit the invoices: {e}"))
        })?;
        let after_open = open_amounts(core.engine.ledger(), &ids);
        let at = crate::store::now();
        let by = PostedBy {
            kind: req.by.kind,
            name: req.by.name.clone(),
            model_version: (req.by.kind == crate::store::ActorKind::Engine)
                .then(|| core.engine.model().version.clone()),
            rules_version: Some(core.engine.rules().version().to_string()),
        };
        let still_waiting = total - applied;
        let mut records = reversal_postings(&waiting, &by, None, at);
        records.extend(payment_postings(
            &payment,
            Some(&customer),
            &allocations,
            still_waiting,
            on_account.then_some(customer.as_str()),
            &by,
            at,
        ));
        let audit = AuditRecord {
            at,
            actor: req.by.name.clone(),
            action: "apply_waiting_cash".into(),
            subject: id.clone(),
            before: json!({
                "waiting": total.to_string(),
                "on_account": on_account,
                "open_amounts": before_open,
            }),
            after: json!({
                "allocations": req.allocations.iter().map(|(i, a)| json!({"invoice_id": i, "amount": a.to_string()})).collect::<Vec<_>>(),
                "waiting": still_waiting.to_string(),
                "open_amounts": after_open,
                "note": req.note,
            }),
        };
        let write = self.store.apply_cash(CashRecord {
            payment_id: id,
            allocations,
            changes,
            audit,
            postings: records,
        });
        drop(core);
        Ok((still_waiting, self.spawn_commit(write, |_, _| {})))
    }
}
