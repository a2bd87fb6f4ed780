//! Undoing what was applied: a payment the bank returned ([`Service::reverse_payment`]) and an
//! application found wrong ([`Service::unapply_payment`]).
//!
//! Both reverse every live posting of the payment (one `reversal` posting each, naming the
//! posting it undoes), give the invoices back what those postings relieved (in memory, and in
//! the store in the same transaction as the postings), and record where the payment stands now
//! with an audit event. What is reversed is what the journal says was posted, not what a
//! decision says: after an unapply and a second resolution, only the second one is live.
//!
//! Each runs in the turn shared with resolutions (see `Service::turn`): it reads the store with
//! every earlier resolution, unapply and reversal committed, and nothing changes the payment's
//! postings between that read and its own commit.

use super::api::*;
use super::commit::*;
use super::conflict::demote;
use super::ledger::open_amounts;
use super::state::*;
use super::{AuditRecord, ReviewRecord, ReviewState, ReviewSummary, Service};
use crate::domain::{ReviewReason, Status};
use crate::store::{
    PaymentReturn, PostedBy, Posting, PostingFilter, PostingKind, ReversalKind, ReversalRecord,
    StoredDecision, live_postings, reversal_postings,
};
use rust_decimal::Decimal;
use serde_json::json;
use std::sync::Arc;

/// Postings of one payment read from the store at a time.
const PAGE: u32 = 1_000;

/// What live postings relieved of each invoice: one entry per invoice, in the order first
/// posted. Postings on no invoice (unapplied, on account) relieve nothing.
fn relieved_by_invoice(live: &[&Posting]) -> Vec<(String, Decimal)> {
    let mut out: Vec<(String, Decimal)> = Vec::new();
    for p in live {
        let Some(id) = &p.record.invoice_id else {
            continue;
        };
        match out.iter_mut().find(|(i, _)| i == id) {
            Some((_, r)) => *r += p.record.amount,
            None => out.push((id.clone(), p.record.amount)),
        }
    }
    out
}

/// Where a decided payment stands, as the audit trail names it.
fn standing(status: Status, item: Option<&ReviewRecord>) -> &'static str {
    match (status, item.map(|i| i.summary.state)) {
        (Status::Returned, _) | (_, Some(ReviewState::Returned)) => "returned",
        (_, Some(ReviewState::Open)) => "open",
        (_, Some(ReviewState::Resolved)) => "resolved",
        (Status::Auto, None) => "auto",
        (Status::Review, None) => "review",
    }
}

fn sequences(live: &[&Posting]) -> Vec<u64> {
    live.iter().map(|p| p.sequence).collect()
}

fn required(field: &str, v: &str, why: &str) -> Result<String, ServiceError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(ServiceError::invalid(field, format!("is required: {why}")));
    }
    Ok(v.to_string())
}

impl Service {
    /// Every posting of a payment, in sequence order.
    pub(super) async fn postings_of(&self, payment_id: &str) -> Result<Vec<Posting>, ServiceError> {
        self.postings_where(PostingFilter::Payment(payment_id.to_string()))
            .await
    }

    /// Every posting `filter` selects, in sequence order.
    pub(super) async fn postings_where(
        &self,
        filter: PostingFilter,
    ) -> Result<Vec<Posting>, ServiceError> {
        let mut all: Vec<Posting> = Vec::new();
        loop {
            let after = all.last().map_or(0, |p| p.sequence);
            let page = self.store.postings(filter.clone(), after, PAGE).await?;
            let n = page.len();
            all.extend(page);
            if n < PAGE as usize {
                return Ok(all);
            }
        }
    }

    /// The reversals of a payment after sequence `after`: those the caller's write just added.
    async fn reversals_after(
        &self,
        payment_id: &str,
        after: u64,
    ) -> Result<Vec<Posting>, ServiceError> {
        let mut out = self.postings_of(payment_id).await?;
        out.retain(|p| p.sequence > after && p.record.kind == PostingKind::Reversal);
        Ok(out)
    }

    /// The stored decision of a payment (after its commit, when it is still in flight), or
    /// NOT_FOUND naming the payment and what could not be done to it.
    pub(super) async fn decided(
        &self,
        payment_id: &str,
        what: &str,
    ) -> Result<StoredDecision, ServiceError> {
        let wait = lock(&self.pending).get(payment_id).cloned();
        if let Some(mut w) = wait {
            w.wait_for(|v| *v)
                .await
                .map_err(|_| ServiceError::Stopped)?;
        }
        self.store
            .decision(payment_id.to_string())
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "payment {payment_id} is not decided: there is nothing to {what}"
                ))
            })
    }

    /// A decided payment with its stored decision, for showing it (NOT_FOUND when undecided).
    pub async fn stored_decision(&self, payment_id: &str) -> Result<StoredDecision, ServiceError> {
        self.decided(payment_id, "show").await
    }

    /// Reverses a payment the bank returned: every live posting of it is reversed, the open
    /// amounts it relieved are restored, its decision becomes returned and its review item, if
    /// it waits in the queue, leaves it. Sent again with the same code and reason, it returns
    /// the first result and writes nothing; with another, FAILED_PRECONDITION.
    pub async fn reverse_payment(
        self: &Arc<Self>,
        req: ReverseRequest,
    ) -> Result<Reversed, ServiceError> {
        let id = required(
            "payment_id",
            &req.payment_id,
            "the payment the bank returned",
        )?;
        let req = ReverseRequest {
            return_code: required(
                "return_code",
                &req.return_code,
                "the bank's return reason code (R01, AC04, ...)",
            )?,
            reason: req.reason.trim().to_string(),
            payment_id: id.clone(),
            ..req
        };
        let turn = self.turn().await;
        let stored = self.decided(&id, "reverse").await?;
        if stored.decision.status == Status::Returned {
            return self.replay_return(stored, &req).await;
        }
        let postings = self.postings_of(&id).await?;
        let item = self.store.review_item(id.clone()).await?;
        let last = postings.last().map_or(0, |p| p.sequence);
        let this = Arc::clone(self);
        let (decision, returned, commit) = tokio::task::spawn_blocking(move || {
            this.reverse_blocking(stored, postings, item, req, turn)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??;
        if let Err(e) = Self::commit(commit).await {
            return Err(self.refused(&id, &decision, e).await);
        }
        Ok(Reversed {
            decision,
            returned,
            postings: self.reversals_after(&id, last).await?,
            replayed: false,
        })
    }

    async fn replay_return(
        &self,
        stored: StoredDecision,
        req: &ReverseRequest,
    ) -> Result<Reversed, ServiceError> {
        let id = &req.payment_id;
        let returned = self
            .store
            .payment_return(id.clone())
            .await?
            .ok_or_else(|| {
                ServiceError::Internal(format!("payment {id} is returned, but no return is stored"))
            })?;
        if returned.return_code != req.return_code || returned.reason != req.reason {
            return Err(ServiceError::FailedPrecondition(format!(
                "payment {id} was already returned ({}: {}) by {} at {}; a payment is returned \
                 once",
                returned.return_code,
                returned.reason,
                returned.actor,
                returned.at.to_rfc3339()
            )));
        }
        // The return's reversals carry its code; an earlier unapply's carry none.
        let mut postings = self.postings_of(id).await?;
        postings.retain(|p| {
            p.record.kind == PostingKind::Reversal
                && p.record.reason_code.as_deref() == Some(returned.return_code.as_str())
        });
        Ok(Reversed {
            decision: stored.decision,
            returned,
            postings,
            replayed: true,
        })
    }

    fn reverse_blocking(
        self: &Arc<Self>,
        stored: StoredDecision,
        postings: Vec<Posting>,
        item: Option<ReviewRecord>,
        req: ReverseRequest,
        turn: Turn,
    ) -> Result<(crate::domain::Decision, PaymentReturn, Commit), ServiceError> {
        let StoredDecision {
            payment,
            mut decision,
            ..
        } = stored;
        let ReverseRequest {
            payment_id,
            return_code,
            reason,
            by,
        } = req;
        let live = live_postings(&postings);
        let relieved = relieved_by_invoice(&live);
        let before_state = standing(decision.status, item.as_ref());
        let at = crate::store::now();
        let mut core = self.write()?;
        let ids: Vec<&str> = relieved.iter().map(|(i, _)| i.as_str()).collect();
        let before_open = open_amounts(core.engine.ledger(), &ids);
        let changes = core.restore(&payment_id, &relieved)?;
        let after_open = open_amounts(core.engine.ledger(), &ids);
        core.open_reviews.remove(&payment_id);
        let returned = PaymentReturn {
            return_code,
            reason,
            actor_kind: by.kind,
            actor: by.name.clone(),
            at,
        };
        decision.status = Status::Returned;
        decision.explanation.push(format!(
            "returned by the bank ({}{}{}): {} posting(s) reversed by {} at {}",
            returned.return_code,
            if returned.reason.is_empty() { "" } else { ": " },
            returned.reason,
            live.len(),
            by.name,
            at.to_rfc3339()
        ));
        let reversals = reversal_postings(
            &live,
            &PostedBy {
                kind: by.kind,
                name: by.name.clone(),
                model_version: None,
                rules_version: Some(core.engine.rules().version().to_string()),
            },
            Some(&returned.return_code),
            at,
        );
        let audit = AuditRecord {
            at,
            actor: by.name,
            action: "reverse".into(),
            subject: payment_id,
            before: json!({
                "state": before_state,
                "live_postings": sequences(&live),
                "open_amounts": before_open,
            }),
            after: json!({
                "state": "returned",
                "return_code": returned.return_code,
                "reason": returned.reason,
                "actor_kind": returned.actor_kind.name(),
                "open_amounts": after_open,
            }),
        };
        let write = self.store.reverse(ReversalRecord {
            payment,
            decision: decision.clone(),
            kind: ReversalKind::Return(returned.clone()),
            changes,
            postings: reversals,
            audit,
            at,
        });
        drop(core);
        let commit = self.spawn_commit(write, move |_, _| drop(turn));
        Ok((decision, returned, commit))
    }

    /// Undoes the application of a payment (automatic or an analyst's): every live posting of
    /// it is reversed, the open amounts restored, and the payment waits in the review queue
    /// again, its explanation saying who unapplied it and why. A payment already in the queue,
    /// or returned by the bank, is FAILED_PRECONDITION.
    pub async fn unapply_payment(
        self: &Arc<Self>,
        req: UnapplyRequest,
    ) -> Result<Unapplied, ServiceError> {
        let id = required("payment_id", &req.payment_id, "the payment to unapply")?;
        let req = UnapplyRequest {
            note: required("note", &req.note, "say why the application is undone")?,
            payment_id: id.clone(),
            ..req
        };
        let turn = self.turn().await;
        let stored = self.decided(&id, "unapply").await?;
        let item = self.store.review_item(id.clone()).await?;
        match (
            stored.decision.status,
            item.as_ref().map(|i| i.summary.state),
        ) {
            (Status::Auto, None) | (Status::Review, Some(ReviewState::Resolved)) => {}
            (Status::Returned, _) | (_, Some(ReviewState::Returned)) => {
                return Err(ServiceError::FailedPrecondition(format!(
                    "payment {id} was returned by the bank: there is no application to undo"
                )));
            }
            (_, Some(ReviewState::Open)) => {
                return Err(ServiceError::FailedPrecondition(format!(
                    "payment {id} is already in the review queue, applied to nothing: resolve it \
                     there"
                )));
            }
            (status, state) => {
                return Err(ServiceError::Internal(format!(
                    "payment {id}: a {status:?} decision with review item {state:?}"
                )));
            }
        }
        let postings = self.postings_of(&id).await?;
        let last = postings.last().map_or(0, |p| p.sequence);
        let this = Arc::clone(self);
        let (item, commit) = tokio::task::spawn_blocking(move || {
            this.unapply_blocking(stored, postings, item, req, turn)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??;
        if let Err(e) = Self::commit(commit).await {
            return Err(self.refused(&id, &item.decision, e).await);
        }
        Ok(Unapplied {
            item,
            postings: self.reversals_after(&id, last).await?,
        })
    }

    fn unapply_blocking(
        self: &Arc<Self>,
        stored: StoredDecision,
        postings: Vec<Posting>,
        item: Option<ReviewRecord>,
        req: UnapplyRequest,
        turn: Turn,
    ) -> Result<(ReviewRecord, Commit), ServiceError> {
        let StoredDecision {
            payment, decision, ..
        } = stored;
        let UnapplyRequest {
            payment_id,
            note,
            by,
        } = req;
        let live = live_postings(&postings);
        let relieved = relieved_by_invoice(&live);
        let before_state = standing(decision.status, item.as_ref());
        let at = crate::store::now();
        let why = format!(
            "unapplied by {} ({}) at {}: {note}",
            by.name,
            by.kind.name(),
            at.to_rfc3339()
        );
        // What was applied, for the audit trail: the resolution, or the auto decision's cash.
        let applied = match &item {
            Some(rec) => {
                json!({ "resolution": serde_json::to_value(&rec.resolution).unwrap_or_default() })
            }
            None => json!({
                "allocations": serde_json::to_value(&decision.allocations).unwrap_or_default(),
                "unapplied": decision.unapplied.to_string(),
            }),
        };
        let (decision, summary, reopen) = match item {
            Some(rec) => {
                let mut d = decision;
                d.explanation.push(format!("review: {why}"));
                let summary = ReviewSummary {
                    state: ReviewState::Open,
                    ..rec.summary
                };
                (d, summary, true)
            }
            None => {
                // The auto decision's allocation becomes the first suggestion, as for a decision
                // the ledger moved under.
                let mut d = demote(decision, &why);
                d.review_reason = Some(ReviewReason::Unapplied);
                let summary = ReviewSummary {
                    payment_id: payment_id.clone(),
                    customer_id: d.customer_id.clone(),
                    amount: payment.amount,
                    currency: payment.currency,
                    reason: d.review_reason,
                    confidence: d.confidence,
                    created_at: at,
                    state: ReviewState::Open,
                    owner: None,
                };
                (d, summary, false)
            }
        };
        let mut core = self.write()?;
        let ids: Vec<&str> = relieved.iter().map(|(i, _)| i.as_str()).collect();
        let before_open = open_amounts(core.engine.ledger(), &ids);
        let changes = core.restore(&payment_id, &relieved)?;
        let after_open = open_amounts(core.engine.ledger(), &ids);
        core.open_reviews.insert(payment_id.clone());
        let reversals = reversal_postings(
            &live,
            &PostedBy {
                kind: by.kind,
                name: by.name.clone(),
                model_version: None,
                rules_version: Some(core.engine.rules().version().to_string()),
            },
            None,
            at,
        );
        let audit = AuditRecord {
            at,
            actor: by.name.clone(),
            action: "unapply".into(),
            subject: payment_id,
            before: json!({
                "state": before_state,
                "applied": applied,
                "live_postings": sequences(&live),
                "open_amounts": before_open,
            }),
            after: json!({
                "state": "open",
                "note": note,
                "actor_kind": by.kind.name(),
                "open_amounts": after_open,
            }),
        };
        let write = self.store.reverse(ReversalRecord {
            payment: payment.clone(),
            decision: decision.clone(),
            kind: ReversalKind::Unapply { reopen },
            changes,
            postings: reversals,
            audit,
            at,
        });
        drop(core);
        let commit = self.spawn_commit(write, move |_, _| drop(turn));
        Ok((
            ReviewRecord {
                summary,
                payment,
                decision,
                resolution: None,
            },
            commit,
        ))
    }
}
