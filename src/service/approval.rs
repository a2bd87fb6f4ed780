//! Four-eyes approval: a resolution that writes off, puts on account or allocates by hand more
//! than the configured limit ([`FourEyes`]) does not post when the analyst submits it. It waits,
//! stored ([`Approval`]) and in the audit trail (`request_approval`), until a second analyst
//! approves it (then it is checked again against the ledger as it is, posted, and audited as
//! `approve` by the second analyst) or rejects it (`reject_approval`; the item is open in the
//! queue again). The analyst who proposed it can do neither approve nor resolve it otherwise
//! while it waits.
//!
//! The amounts compared with the limit, all exact decimals in the payment's currency:
//! - a write-off: the deductions the resolution accepts (what the customer kept back, which
//!   nobody will collect), summed over its allocations, whatever the action;
//! - on account: the cash a `put_on_account` keeps on the customer's account;
//! - a manual allocation: the cash an `apply_allocation` (the analyst's own allocations, not
//!   the engine's suggestion) applies.

use super::api::*;
use super::commit::Commit;
use super::state::Turn;
use super::{AuditRecord, Resolution, ResolutionAction, ReviewRecord, Service};
use crate::domain::{Allocation, Currency};
use crate::store::{Approval, ApprovalState, ApprovalWrite};
use rust_decimal::Decimal;
use serde_json::json;
use std::sync::Arc;

/// Why a resolution needs a second analyst under `limits`; empty when it does not.
pub(super) fn reasons(
    limits: &FourEyes,
    currency: Currency,
    action: ResolutionAction,
    allocations: &[Allocation],
    unapplied: Decimal,
) -> Vec<String> {
    let limit = limits.limit(currency);
    let mut out = Vec::new();
    // Sums that overflow are above any limit.
    let sum = |f: fn(&Allocation) -> Decimal| {
        allocations
            .iter()
            .try_fold(Decimal::ZERO, |s, a| s.checked_add(f(a)))
            .unwrap_or(Decimal::MAX)
    };
    let written_off = sum(|a| a.deduction);
    if written_off > limit {
        out.push(format!(
            "write-off of {written_off} {currency} is above the four-eyes limit of {limit}"
        ));
    }
    match action {
        ResolutionAction::PutOnAccount if unapplied > limit => out.push(format!(
            "{unapplied} {currency} on account is above the four-eyes limit of {limit}"
        )),
        ResolutionAction::ApplyAllocation => {
            let applied = sum(|a| a.amount);
            if applied > limit {
                out.push(format!(
                    "manual allocation of {applied} {currency} is above the four-eyes limit \
                     of {limit}"
                ));
            }
        }
        _ => {}
    }
    out
}

/// The second analyst's answer to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalDecision {
    pub payment_id: String,
    /// The second analyst, from their credentials.
    pub analyst: String,
    /// Why; required for a rejection.
    pub note: String,
}

/// What a submitted resolution did.
#[derive(Clone, Debug)]
pub enum ResolveOutcome {
    /// Posted.
    Resolved(Box<ReviewRecord>),
    /// Above the four-eyes limit: waiting for a second analyst; nothing posted.
    AwaitingApproval(Box<Approval>),
}

impl ResolveOutcome {
    /// The resolved item, if it posted.
    pub fn resolved(self) -> Option<ReviewRecord> {
        match self {
            ResolveOutcome::Resolved(r) => Some(*r),
            ResolveOutcome::AwaitingApproval(_) => None,
        }
    }
}

/// An approval being carried out by `by`.
pub(super) struct Approved {
    pub(super) approval: Approval,
    pub(super) by: String,
    pub(super) note: String,
}

/// Two analysts are the same person when their names are, ignoring case and surrounding space
/// (a name typed in the unauthenticated workbench may differ in case).
fn same_person(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// The resolution request an approval stands for, as its analyst sent it.
fn request_of(a: &Approval) -> Result<ResolveRequest, ServiceError> {
    let p = &a.proposed;
    let action = match p.action {
        ResolutionAction::AcceptSuggestion => {
            ResolveAction::AcceptSuggestion(p.suggestion_index.ok_or_else(|| {
                ServiceError::Internal(format!("approval {} has no suggestion index", a.id))
            })?)
        }
        ResolutionAction::ApplyAllocation => ResolveAction::ApplyAllocation {
            allocations: p.allocations.clone(),
            unapplied: Some(p.unapplied),
        },
        ResolutionAction::LeaveUnapplied => ResolveAction::LeaveUnapplied,
        ResolutionAction::PutOnAccount => {
            ResolveAction::PutOnAccount(p.customer_id.clone().ok_or_else(|| {
                ServiceError::Internal(format!("approval {} has no customer", a.id))
            })?)
        }
    };
    Ok(ResolveRequest {
        payment_id: a.payment_id.clone(),
        analyst: p.analyst.clone(),
        action,
        note: p.note.clone(),
    })
}

impl Service {
    /// Puts new four-eyes limits in force for the resolutions that follow.
    pub fn set_four_eyes(&self, limits: FourEyes) {
        self.core
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .four_eyes = limits;
    }

    /// The four-eyes limits in force.
    pub fn four_eyes(&self) -> FourEyes {
        self.read().four_eyes.clone()
    }

    /// The resolutions waiting for a second analyst, oldest first. (An item that left the queue
    /// meanwhile, returned by the bank, has nothing left to approve.)
    pub fn pending_approvals(&self) -> Vec<Approval> {
        let core = self.read();
        let mut out: Vec<Approval> = core
            .awaiting
            .values()
            .filter(|a| core.open_reviews.contains(&a.payment_id))
            .cloned()
            .collect();
        drop(core);
        out.sort_by(|a, b| (a.proposed.resolved_at, &a.id).cmp(&(b.proposed.resolved_at, &b.id)));
        out
    }

    /// The resolution of `payment_id` waiting for a second analyst, if any.
    pub fn pending_approval(&self, payment_id: &str) -> Option<Approval> {
        let core = self.read();
        core.awaiting
            .get(payment_id)
            .filter(|_| core.open_reviews.contains(payment_id))
            .cloned()
    }

    /// A second analyst approves the resolution waiting on `payment_id`: it is checked against
    /// the ledger as it is now and posted, in the proposer's name, with the approval in the
    /// audit trail. The proposer may not approve their own.
    pub async fn approve(
        self: &Arc<Self>,
        req: ApprovalDecision,
    ) -> Result<ReviewRecord, ServiceError> {
        let turn = self.turn().await;
        let approval = self.pending_approval(&req.payment_id).ok_or_else(|| {
            ServiceError::NotFound(format!(
                "no resolution of payment {} awaits approval",
                req.payment_id
            ))
        })?;
        if same_person(&approval.proposed.analyst, &req.analyst) {
            return Err(ServiceError::PermissionDenied(format!(
                "{} proposed this resolution and cannot approve it: a second analyst must (four \
                 eyes); nothing was posted",
                req.analyst
            )));
        }
        let item = self.review_item(req.payment_id.clone()).await?;
        let request = request_of(&approval)?;
        let approved = Approved {
            approval,
            by: req.analyst,
            note: req.note,
        };
        let (payment_id, decision) = (item.summary.payment_id.clone(), item.decision.clone());
        let this = Arc::clone(self);
        let (outcome, commit) = tokio::task::spawn_blocking(move || {
            this.resolve_blocking(item, request, Some(approved), turn, false)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??;
        if let Err(e) = Self::commit(commit).await {
            return Err(self.refused(&payment_id, &decision, e).await);
        }
        outcome
            .resolved()
            .ok_or_else(|| ServiceError::Internal("an approved resolution was not posted".into()))
    }

    /// An analyst rejects the resolution waiting on `payment_id`, saying why: nothing posts and
    /// the item is open in the queue again. The proposer may withdraw their own this way.
    pub async fn reject(self: &Arc<Self>, req: ApprovalDecision) -> Result<Approval, ServiceError> {
        if req.note.trim().is_empty() {
            return Err(ServiceError::invalid(
                "note",
                "is required to reject a resolution: say why",
            ));
        }
        let turn = self.turn().await;
        // The lock is held in this block only: a guard alive across an await would make the
        // future not Send.
        let (approval, write) = {
            let mut core = self.write()?;
            let mut approval = core.awaiting.remove(&req.payment_id).ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "no resolution of payment {} awaits approval",
                    req.payment_id
                ))
            })?;
            let write = self.reject_write(&mut approval, req);
            (approval, write)
        };
        let commit = self.spawn_commit(write, move |_, _| drop(turn));
        Self::commit(commit).await?;
        Ok(approval)
    }

    /// Marks `approval` rejected by the analyst of `req` and queues it with its audit event.
    fn reject_write(
        &self,
        approval: &mut Approval,
        req: ApprovalDecision,
    ) -> crate::store::StoreFuture<()> {
        let at = crate::store::now();
        approval.state = ApprovalState::Rejected;
        approval.decided_by = Some(req.analyst.clone());
        approval.decided_at = Some(at);
        approval.decision_note = req.note;
        let audit = AuditRecord {
            at,
            actor: req.analyst,
            action: "reject_approval".into(),
            subject: req.payment_id,
            before: json!({ "state": "awaiting_approval", "approval_id": approval.id }),
            after: json!({
                "state": "open",
                "approval": serde_json::to_value(&approval).unwrap_or_default(),
            }),
        };
        self.store.write_approval(ApprovalWrite {
            approval: approval.clone(),
            audit: Some(audit),
        })
    }

    /// Holds a resolution above the limit for a second analyst: stores the request with its
    /// audit event and answers what waits. Called by `resolve_blocking` under the write lock.
    pub(super) fn request_approval(
        self: &Arc<Self>,
        core: &mut super::state::Core,
        proposed: Resolution,
        payment_id: String,
        currency: Currency,
        reasons: Vec<String>,
        turn: Turn,
    ) -> (ResolveOutcome, Commit) {
        let at = proposed.resolved_at;
        let approval = Approval {
            id: format!("{payment_id}@{}", at.timestamp_micros()),
            payment_id: payment_id.clone(),
            limit: core.four_eyes.limit(currency),
            proposed,
            currency,
            reasons,
            state: ApprovalState::Pending,
            decided_by: None,
            decided_at: None,
            decision_note: String::new(),
        };
        let audit = AuditRecord {
            at,
            actor: approval.proposed.analyst.clone(),
            action: "request_approval".into(),
            subject: payment_id.clone(),
            before: json!({ "state": "open" }),
            after: json!({
                "state": "awaiting_approval",
                "approval": serde_json::to_value(&approval).unwrap_or_default(),
            }),
        };
        core.awaiting.insert(payment_id, approval.clone());
        let write = self.store.write_approval(ApprovalWrite {
            approval: approval.clone(),
            audit: Some(audit),
        });
        let commit = self.spawn_commit(write, move |_, _| drop(turn));
        (ResolveOutcome::AwaitingApproval(Box::new(approval)), commit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn alloc(amount: Decimal, deduction: Decimal) -> Allocation {
        Allocation {
            invoice_id: "I-1".into(),
            amount,
            discount: Decimal::ZERO,
            deduction,
            reason_code: None,
        }
    }

    #[test]
    fn each_amount_is_compared_with_the_limit_of_its_currency_exactly() {
        let usd = Currency::USD;
        let jpy: Currency = "JPY".parse().expect("jpy");
        let f = FourEyes {
            above: dec!(1000.00),
            per_currency: [(jpy, dec!(150000))].into_iter().collect(),
        };
        let manual = ResolutionAction::ApplyAllocation;
        assert!(
            reasons(&f, usd, manual, &[alloc(dec!(1000.00), dec!(0))], dec!(0)).is_empty(),
            "at the limit is not above it"
        );
        let r = reasons(&f, usd, manual, &[alloc(dec!(1000.01), dec!(0))], dec!(0));
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(r[0].contains("manual allocation of 1000.01 USD"), "{r:?}");
        assert!(reasons(&f, jpy, manual, &[alloc(dec!(100000), dec!(0))], dec!(0)).is_empty());
        let r = reasons(
            &f,
            usd,
            ResolutionAction::AcceptSuggestion,
            &[alloc(dec!(10), dec!(600)), alloc(dec!(10), dec!(400.01))],
            dec!(0),
        );
        assert!(
            r.len() == 1 && r[0].contains("write-off of 1000.01"),
            "{r:?}"
        );
        let r = reasons(&f, usd, ResolutionAction::PutOnAccount, &[], dec!(5000));
        assert!(r.len() == 1 && r[0].contains("on account"), "{r:?}");
        assert!(reasons(&f, usd, ResolutionAction::LeaveUnapplied, &[], dec!(5000)).is_empty());
    }
}
