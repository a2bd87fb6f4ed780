//! Resolving a review item: the analyst's choice checked against the open amounts as they are
//! now, applied, and recorded with who did what, before and after, in one transaction; or, above
//! the four-eyes limits, held for a second analyst (`super::approval`).

use super::api::*;
use super::approval::{Approved, ResolveOutcome};
use super::commit::*;
use super::ledger::open_amounts;
use super::state::Turn;
use super::{AuditRecord, Resolution, ResolutionAction, ReviewRecord, ReviewState, Service};
use crate::domain::{Allocation, Decision, Status, Suggestion};
use crate::store::{
    ActorKind, ApprovalState, ApprovalWrite, PostedBy, ResolutionRecord, StoreFuture,
    payment_postings,
};
use rust_decimal::Decimal;
use serde_json::json;
use std::sync::Arc;

/// Whether a resolution does what the engine proposed first: accepting (or re-entering) its first
/// suggestion, or, when it had none, applying nothing. Anything else overrides the engine and
/// needs a note.
pub(super) fn follows_engine(suggestions: &[Suggestion], action: &ResolveAction) -> bool {
    match (suggestions.first(), action) {
        (_, ResolveAction::AcceptSuggestion(0)) => true,
        (Some(top), ResolveAction::ApplyAllocation { allocations, .. }) => {
            *allocations == top.allocations
        }
        (None, ResolveAction::LeaveUnapplied | ResolveAction::PutOnAccount(_)) => true,
        _ => false,
    }
}

/// What an analyst's own allocations must satisfy before the ledger is consulted.
pub(super) fn check_analyst_allocations(allocations: &[Allocation]) -> Result<(), ServiceError> {
    for (i, a) in allocations.iter().enumerate() {
        let field = |f: &str| format!("allocations[{i}].{f}");
        if a.discount < Decimal::ZERO {
            return Err(ServiceError::invalid(
                field("discount"),
                format!(
                    "{} is negative; a discount reduces what is owed",
                    a.discount
                ),
            ));
        }
        if a.deduction < Decimal::ZERO {
            return Err(ServiceError::invalid(
                field("deduction"),
                format!(
                    "{} is negative; a deduction is what the customer kept back",
                    a.deduction
                ),
            ));
        }
        let code = a.reason_code.as_deref().map(str::trim).unwrap_or_default();
        if !a.deduction.is_zero() && code.is_empty() {
            return Err(ServiceError::invalid(
                field("reason_code"),
                format!(
                    "the deduction of {} on invoice {} needs a reason code",
                    a.deduction, a.invoice_id
                ),
            ));
        }
        if a.amount.is_zero() && a.discount.is_zero() && a.deduction.is_zero() {
            return Err(ServiceError::invalid(
                field("amount"),
                format!(
                    "the allocation to invoice {} applies nothing; leave it out",
                    a.invoice_id
                ),
            ));
        }
    }
    Ok(())
}

impl Service {
    /// Resolves an open review item: applies the chosen cash (checking the open amounts as they
    /// are now) and records who did what, before and after, in one transaction. A resolution
    /// above the four-eyes limits posts nothing and waits for a second analyst
    /// ([`ResolveOutcome::AwaitingApproval`]).
    pub async fn resolve(
        self: &Arc<Self>,
        req: ResolveRequest,
    ) -> Result<ResolveOutcome, ServiceError> {
        let turn = self.turn().await;
        let item = self.review_item(req.payment_id.clone()).await?;
        if item.resolution.is_some() || item.summary.state != ReviewState::Open {
            return Err(ServiceError::FailedPrecondition(format!(
                "review item {} is {}",
                req.payment_id,
                match item.summary.state {
                    ReviewState::Returned => "closed: the bank returned the payment",
                    _ => "already resolved",
                }
            )));
        }
        let (payment_id, decision) = (item.summary.payment_id.clone(), item.decision.clone());
        let this = Arc::clone(self);
        let (outcome, commit) = tokio::task::spawn_blocking(move || {
            this.resolve_blocking(item, req, None, turn, false)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??;
        if let Err(e) = Self::commit(commit).await {
            return Err(self.refused(&payment_id, &decision, e).await);
        }
        Ok(outcome)
    }

    /// `approved`: the second analyst's approval this resolution carries out, if any. `by_engine`:
    /// the engine resolves the item itself, having decided it again with confidence (the AR
    /// system added the invoices it waited for): posted as the engine's, with the model and
    /// rules versions, and, like any automatic application, without four eyes.
    pub(super) fn resolve_blocking(
        self: &Arc<Self>,
        mut item: ReviewRecord,
        req: ResolveRequest,
        approved: Option<Approved>,
        turn: Turn,
        by_engine: bool,
    ) -> Result<(ResolveOutcome, Commit), ServiceError> {
        let ResolveRequest {
            payment_id,
            analyst,
            action,
            note,
        } = req;
        let payment = &item.payment;
        let follows_engine = follows_engine(&item.decision.suggestions, &action);
        let (kind, allocations, customer_id, suggestion_index, expected) = match action {
            ResolveAction::AcceptSuggestion(k) => {
                let s = item.decision.suggestions.get(k as usize).ok_or_else(|| {
                    ServiceError::invalid(
                        "accept_suggestion.index",
                        format!(
                            "the decision has {} suggestion(s)",
                            item.decision.suggestions.len()
                        ),
                    )
                })?;
                (
                    ResolutionAction::AcceptSuggestion,
                    s.allocations.clone(),
                    None,
                    Some(k),
                    None,
                )
            }
            ResolveAction::ApplyAllocation {
                allocations,
                unapplied,
            } => {
                if allocations.is_empty() {
                    return Err(ServiceError::invalid(
                        "apply_allocation.allocations",
                        "at least one allocation; use leave_unapplied to apply nothing",
                    ));
                }
                check_analyst_allocations(&allocations)?;
                (
                    ResolutionAction::ApplyAllocation,
                    allocations,
                    None,
                    None,
                    unapplied,
                )
            }
            ResolveAction::LeaveUnapplied => {
                (ResolutionAction::LeaveUnapplied, vec![], None, None, None)
            }
            ResolveAction::PutOnAccount(c) => {
                (ResolutionAction::PutOnAccount, vec![], Some(c), None, None)
            }
        };
        if !follows_engine && note.trim().is_empty() {
            return Err(ServiceError::invalid(
                "note",
                "is required when the resolution differs from the engine's first suggestion: \
                 say why",
            ));
        }
        // Checked: the amounts are the analyst's, and the engine sums them again unchecked.
        let overflow = || ServiceError::invalid("allocations", "amounts too large to add up");
        let mut applied = Decimal::ZERO;
        for a in &allocations {
            a.amount
                .checked_add(a.discount)
                .and_then(|r| r.checked_add(a.deduction))
                .ok_or_else(overflow)?;
            applied = applied.checked_add(a.amount).ok_or_else(overflow)?;
        }
        let unapplied = payment.amount.checked_sub(applied).ok_or_else(overflow)?;
        if unapplied < Decimal::ZERO {
            return Err(ServiceError::invalid(
                "allocations",
                format!(
                    "apply {applied} in all, more than the payment's {}",
                    payment.amount
                ),
            ));
        }
        if let Some(expected) = expected {
            if expected != unapplied {
                let total = applied.checked_add(expected).ok_or_else(overflow)?;
                return Err(ServiceError::invalid(
                    "unapplied",
                    format!(
                        "the amounts do not balance: {applied} applied + {expected} unapplied = \
                         {total}, but the payment is {}",
                        payment.amount
                    ),
                ));
            }
        }
        let mut core = self.write()?;
        if !core.open_reviews.contains(&payment_id) {
            return Err(ServiceError::FailedPrecondition(format!(
                "review item {payment_id} is already resolved"
            )));
        }
        match (core.awaiting.get(&payment_id), &approved) {
            (Some(a), None) => {
                return Err(ServiceError::FailedPrecondition(format!(
                    "review item {payment_id} awaits a second analyst's approval of the \
                     resolution {} proposed at {}: approve or reject that first",
                    a.proposed.analyst,
                    a.proposed.resolved_at.format("%Y-%m-%d %H:%M UTC")
                )));
            }
            (None, Some(_)) => {
                return Err(ServiceError::FailedPrecondition(format!(
                    "no resolution of payment {payment_id} awaits approval any more"
                )));
            }
            _ => {}
        }
        let ledger = core.engine.ledger();
        if let Some(c) = &customer_id {
            if ledger.customer_idx(c).is_none() {
                return Err(ServiceError::invalid(
                    "put_on_account.customer_id",
                    format!("customer {c} is not in the ledger"),
                ));
            }
        }
        for (i, a) in allocations.iter().enumerate() {
            // Engine::apply checks each allocation against the open amount before any is
            // applied, so the same invoice twice could pass both checks and then cross zero.
            if allocations[..i]
                .iter()
                .any(|b| b.invoice_id == a.invoice_id)
            {
                return Err(ServiceError::invalid(
                    format!("allocations[{i}].invoice_id"),
                    format!(
                        "invoice {} appears twice; give one allocation per invoice",
                        a.invoice_id
                    ),
                ));
            }
            let idx = ledger.invoice_idx(&a.invoice_id).ok_or_else(|| {
                ServiceError::invalid(
                    format!("allocations[{i}].invoice_id"),
                    format!("invoice {} is not in the ledger", a.invoice_id),
                )
            })?;
            let inv = ledger.invoice(idx);
            if inv.currency != payment.currency {
                return Err(ServiceError::invalid(
                    format!("allocations[{i}].invoice_id"),
                    format!(
                        "invoice {} is in {}, the payment in {}",
                        inv.id, inv.currency, payment.currency
                    ),
                ));
            }
            // Engine::apply refuses this too; checked here to say which invoice and by how much.
            let relieved = a.relieved();
            let fits = if inv.is_credit() {
                relieved >= inv.open_amount && relieved <= Decimal::ZERO
            } else {
                relieved <= inv.open_amount && relieved >= Decimal::ZERO
            };
            if !fits {
                return Err(ServiceError::FailedPrecondition(format!(
                    "invoice {} ({}) has {} open, and allocation {} would relieve {} of it \
                     (cash {} + discount {} + deduction {}); nothing was applied",
                    inv.number,
                    inv.id,
                    inv.open_amount,
                    i + 1,
                    relieved,
                    a.amount,
                    a.discount,
                    a.deduction
                )));
            }
        }
        let reasons = super::approval::reasons(
            &core.four_eyes,
            payment.currency,
            kind,
            &allocations,
            unapplied,
        );
        if approved.is_none() && !reasons.is_empty() && !by_engine {
            let proposed = Resolution {
                action: kind,
                analyst,
                resolved_at: crate::store::now(),
                allocations,
                unapplied,
                customer_id,
                suggestion_index,
                note,
            };
            let currency = payment.currency;
            return Ok(
                self.request_approval(&mut core, proposed, payment_id, currency, reasons, turn)
            );
        }
        let ledger = core.engine.ledger();
        let ids: Vec<&str> = allocations.iter().map(|a| a.invoice_id.as_str()).collect();
        let before_open = open_amounts(ledger, &ids);
        let mut changes = Vec::new();
        if !allocations.is_empty() {
            let applied_decision = Decision {
                status: Status::Auto,
                allocations: allocations.clone(),
                unapplied,
                // A resolution applies what it states and nothing else: the rules' write-offs of
                // the decision it started from (an unapplied auto decision comes back to the
                // queue with them) would relieve invoices in memory that neither the store nor
                // the journal hears of.
                by_rules: Default::default(),
                ..item.decision.clone()
            };
            changes = core.apply(payment, &applied_decision).map_err(|e| {
                ServiceError::FailedPrecondition(format!("the allocation no longer fits: {e}"))
            })?;
        }
        let after_open = open_amounts(core.engine.ledger(), &ids);
        core.open_reviews.remove(&payment_id);
        let resolution = Resolution {
            action: kind,
            analyst: analyst.clone(),
            resolved_at: crate::store::now(),
            allocations,
            unapplied,
            customer_id,
            suggestion_index,
            note,
        };
        let audit = match &approved {
            None => AuditRecord {
                at: resolution.resolved_at,
                actor: analyst,
                action: "resolve".into(),
                subject: payment_id.clone(),
                before: json!({ "state": "open", "unapplied": payment.amount.to_string(), "open_amounts": before_open }),
                after: json!({
                    "state": "resolved",
                    "resolution": serde_json::to_value(&resolution).unwrap_or_default(),
                    "open_amounts": after_open,
                }),
            },
            // The second step of four eyes: the approver is the actor; the proposer and the
            // request are named, and the request itself is the `request_approval` event.
            Some(a) => AuditRecord {
                at: resolution.resolved_at,
                actor: a.by.clone(),
                action: "approve".into(),
                subject: payment_id.clone(),
                before: json!({
                    "state": "awaiting_approval",
                    "approval_id": a.approval.id,
                    "requested_by": analyst,
                    "reasons": a.approval.reasons,
                    "unapplied": payment.amount.to_string(),
                    "open_amounts": before_open,
                }),
                after: json!({
                    "state": "resolved",
                    "approved_by": a.by,
                    "approval_note": a.note,
                    "resolution": serde_json::to_value(&resolution).unwrap_or_default(),
                    "open_amounts": after_open,
                }),
            },
        };
        let postings = payment_postings(
            payment,
            item.decision.customer_id.as_deref(),
            &resolution.allocations,
            resolution.unapplied,
            resolution.customer_id.as_deref(),
            &PostedBy {
                kind: if by_engine {
                    ActorKind::Engine
                } else {
                    ActorKind::Analyst
                },
                name: resolution.analyst.clone(),
                model_version: by_engine.then(|| core.engine.model().version.clone()),
                rules_version: Some(core.engine.rules().version().to_string()),
            },
            resolution.resolved_at,
        );
        let write = self.store.resolve(ResolutionRecord {
            payment_id: payment_id.clone(),
            resolution: resolution.clone(),
            changes,
            audit,
            postings,
        });
        // Queued behind the resolution: should the two not commit together, a restart finds
        // the request pending on an item no longer open and drops it (`Service::open`).
        let write: StoreFuture<()> = match approved {
            None => write,
            Some(Approved {
                mut approval,
                by,
                note,
            }) => {
                core.awaiting.remove(&payment_id);
                approval.state = ApprovalState::Approved;
                approval.decided_by = Some(by);
                approval.decided_at = Some(resolution.resolved_at);
                approval.decision_note = note;
                let decided = self.store.write_approval(ApprovalWrite {
                    approval,
                    audit: None,
                });
                Box::pin(async move {
                    write.await?;
                    decided.await
                })
            }
        };
        drop(core);
        let commit = self.spawn_commit(write, move |_, _| drop(turn));
        item.summary.state = ReviewState::Resolved;
        item.resolution = Some(resolution);
        Ok((ResolveOutcome::Resolved(Box::new(item)), commit))
    }
}
