//! `cashmatch.v1.Review`: the analysts' queue.

use super::convert::{self, FieldError, decimal, required};
use super::pb::{self, review_server};
use super::{observe, principal};
use crate::domain::Allocation;
use crate::metrics::Metrics;
use crate::service::{
    AGE_BUCKETS, Actor, ActorKind, ApplyCashRequest, Assignment, Balance, CashApplied, ExportQuery,
    OwnerFilter, ReviewFilter, Waiting, WaitingCash, WaitingPayment, now,
};
use crate::service::{ApprovalDecision, ResolveAction, ResolveOutcome, ResolveRequest, Service};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Items listed when the request does not say.
const DEFAULT_LIMIT: u32 = 100;
/// Items listed at most.
const MAX_LIMIT: u32 = 1_000;

pub(crate) struct ReviewApi {
    pub(crate) service: Arc<Service>,
    pub(crate) metrics: Arc<Metrics>,
}

impl TryFrom<pb::ListReviewItemsRequest> for ReviewFilter {
    type Error = FieldError;

    fn try_from(v: pb::ListReviewItemsRequest) -> Result<Self, FieldError> {
        let pb::ListReviewItemsRequest {
            customer_id,
            min_amount,
            max_amount,
            min_age_days,
            max_age_days,
            limit,
            offset,
            include_resolved,
            reason,
            owner,
            unassigned,
        } = v;
        let owner = match (owner.filter(|o| !o.trim().is_empty()), unassigned) {
            (Some(_), true) => {
                return Err(FieldError::new(
                    "unassigned",
                    "cannot be asked with an owner: items of one analyst, or nobody's",
                ));
            }
            (Some(o), false) => Some(OwnerFilter::Analyst(o)),
            (None, true) => Some(OwnerFilter::Unassigned),
            (None, false) => None,
        };
        Ok(ReviewFilter {
            owner,
            reason: reason.and_then(convert::review_reason_from),
            customer_id: customer_id.filter(|c| !c.trim().is_empty()),
            min_amount: min_amount.map(|a| decimal("min_amount", &a)).transpose()?,
            max_amount: max_amount.map(|a| decimal("max_amount", &a)).transpose()?,
            min_age_days,
            max_age_days,
            include_resolved,
            limit: if limit == 0 {
                DEFAULT_LIMIT
            } else {
                limit.min(MAX_LIMIT)
            },
            offset,
            now: now(),
        })
    }
}

/// Who acts: the analyst the token names; without authentication, the one the request names.
/// With authentication a name in the request cannot change that.
fn acting_analyst(
    caller: crate::service::auth::Principal,
    named: Option<String>,
) -> Result<String, FieldError> {
    if caller.authenticated {
        Ok(caller.name)
    } else {
        required("analyst", named.unwrap_or_default())
    }
}

/// A resolution request, with the analyst taken from the token when there is one.
fn resolve_request(
    v: pb::ResolveReviewItemRequest,
    caller: crate::service::auth::Principal,
) -> Result<ResolveRequest, FieldError> {
    let pb::ResolveReviewItemRequest {
        payment_id,
        analyst,
        action,
        note,
    } = v;
    use pb::resolve_review_item_request::Action;
    let action = match action {
        Some(Action::AcceptSuggestion(pb::AcceptSuggestion { index })) => {
            ResolveAction::AcceptSuggestion(index)
        }
        Some(Action::ApplyAllocation(pb::ApplyAllocation {
            allocations,
            unapplied,
        })) => ResolveAction::ApplyAllocation {
            allocations: allocations
                .into_iter()
                .enumerate()
                .map(|(i, a)| {
                    Allocation::try_from(a)
                        .map_err(|e| e.within(format!("apply_allocation.allocations[{i}]")))
                })
                .collect::<Result<_, _>>()?,
            unapplied: unapplied
                .map(|u| decimal("apply_allocation.unapplied", &u))
                .transpose()?,
        },
        Some(Action::LeaveUnapplied(pb::LeaveUnapplied {})) => ResolveAction::LeaveUnapplied,
        Some(Action::PutOnAccount(pb::PutOnAccount { customer_id })) => {
            ResolveAction::PutOnAccount(required("put_on_account.customer_id", customer_id)?)
        }
        None => {
            return Err(FieldError::new(
                "action",
                "is required: accept_suggestion, apply_allocation, leave_unapplied or put_on_account",
            ));
        }
    };
    let analyst = acting_analyst(caller, analyst)?;
    Ok(ResolveRequest {
        payment_id: required("payment_id", payment_id)?,
        analyst,
        action,
        note,
    })
}

/// An ownership change, with the acting analyst taken from the token when there is one.
fn assignment(
    v: pb::AssignReviewItemRequest,
    caller: crate::service::auth::Principal,
) -> Result<(String, String, Assignment), FieldError> {
    let pb::AssignReviewItemRequest {
        payment_id,
        action,
        analyst,
    } = v;
    use pb::assign_review_item_request::Action;
    let assignment = match action {
        Some(Action::Claim(pb::Claim {})) => Assignment::Claim,
        Some(Action::AssignTo(to)) => Assignment::AssignTo(to),
        Some(Action::Release(pb::Release {})) => Assignment::Release,
        None => {
            return Err(FieldError::new(
                "action",
                "is required: claim, assign_to or release",
            ));
        }
    };
    let analyst = acting_analyst(caller, analyst)?;
    Ok((required("payment_id", payment_id)?, analyst, assignment))
}

/// A second analyst's decision, with the analyst taken from the token when there is one.
fn approval_decision(
    v: pb::DecideApprovalRequest,
    caller: crate::service::auth::Principal,
) -> Result<ApprovalDecision, FieldError> {
    let pb::DecideApprovalRequest {
        payment_id,
        analyst,
        note,
    } = v;
    let analyst = acting_analyst(caller, analyst)?;
    Ok(ApprovalDecision {
        payment_id: required("payment_id", payment_id)?,
        analyst,
        note,
    })
}

type ExportStream = tokio_stream::wrappers::ReceiverStream<Result<pb::TrainingExample, Status>>;

/// Labelled payments read from the store per page of an export: the stream holds one page (and
/// the channel's few messages), whatever the store's size.
const EXPORT_PAGE: u32 = 500;

#[tonic::async_trait]
impl review_server::Review for ReviewApi {
    async fn list_review_items(
        &self,
        request: Request<pb::ListReviewItemsRequest>,
    ) -> Result<Response<pb::ListReviewItemsResponse>, Status> {
        observe(&self.metrics, "Review/ListReviewItems", async {
            let filter = ReviewFilter::try_from(request.into_inner())?;
            let at = filter.now;
            let (items, total) = self.service.review_items(filter).await?;
            let sla = self.service.sla();
            Ok(pb::ListReviewItemsResponse {
                items: items
                    .into_iter()
                    .map(|s| convert::summary(s, at, &sla))
                    .collect(),
                total,
            })
        })
        .await
    }

    async fn get_review_item(
        &self,
        request: Request<pb::GetReviewItemRequest>,
    ) -> Result<Response<pb::ReviewItem>, Status> {
        observe(&self.metrics, "Review/GetReviewItem", async {
            let pb::GetReviewItemRequest { payment_id } = request.into_inner();
            let id = required("payment_id", payment_id)?;
            let item = self.service.review_item(id.clone()).await?;
            Ok(convert::review_item(
                item,
                self.service.pending_approval(&id),
                now(),
                &self.service.sla(),
            ))
        })
        .await
    }

    async fn resolve_review_item(
        &self,
        request: Request<pb::ResolveReviewItemRequest>,
    ) -> Result<Response<pb::ReviewItem>, Status> {
        observe(&self.metrics, "Review/ResolveReviewItem", async {
            let caller = principal(&request);
            let req = resolve_request(request.into_inner(), caller)?;
            let payment_id = req.payment_id.clone();
            match self.service.resolve(req).await? {
                ResolveOutcome::Resolved(item) => Ok(convert::review_item(
                    *item,
                    None,
                    now(),
                    &self.service.sla(),
                )),
                ResolveOutcome::AwaitingApproval(a) => {
                    let item = self.service.review_item(payment_id).await?;
                    Ok(convert::review_item(
                        item,
                        Some(*a),
                        now(),
                        &self.service.sla(),
                    ))
                }
            }
        })
        .await
    }

    async fn assign_review_item(
        &self,
        request: Request<pb::AssignReviewItemRequest>,
    ) -> Result<Response<pb::ReviewItemSummary>, Status> {
        observe(&self.metrics, "Review/AssignReviewItem", async {
            let caller = principal(&request);
            let (payment_id, analyst, assignment) = assignment(request.into_inner(), caller)?;
            let item = self
                .service
                .assign_review_item(payment_id, analyst, assignment)
                .await?;
            Ok(convert::summary(item, now(), &self.service.sla()))
        })
        .await
    }

    async fn list_pending_approvals(
        &self,
        request: Request<pb::ListPendingApprovalsRequest>,
    ) -> Result<Response<pb::ListPendingApprovalsResponse>, Status> {
        observe(&self.metrics, "Review/ListPendingApprovals", async {
            let pb::ListPendingApprovalsRequest {} = request.into_inner();
            Ok(pb::ListPendingApprovalsResponse {
                approvals: self
                    .service
                    .pending_approvals()
                    .into_iter()
                    .map(pb::PendingApproval::from)
                    .collect(),
            })
        })
        .await
    }

    async fn approve_resolution(
        &self,
        request: Request<pb::DecideApprovalRequest>,
    ) -> Result<Response<pb::ReviewItem>, Status> {
        observe(&self.metrics, "Review/ApproveResolution", async {
            let caller = principal(&request);
            let req = approval_decision(request.into_inner(), caller)?;
            let item = self.service.approve(req).await?;
            Ok(convert::review_item(item, None, now(), &self.service.sla()))
        })
        .await
    }

    async fn reject_resolution(
        &self,
        request: Request<pb::DecideApprovalRequest>,
    ) -> Result<Response<pb::PendingApproval>, Status> {
        observe(&self.metrics, "Review/RejectResolution", async {
            let caller = principal(&request);
            let req = approval_decision(request.into_inner(), caller)?;
            Ok(self.service.reject(req).await?.into())
        })
        .await
    }

    async fn get_audit_trail(
        &self,
        request: Request<pb::GetAuditTrailRequest>,
    ) -> Result<Response<pb::GetAuditTrailResponse>, Status> {
        observe(&self.metrics, "Review/GetAuditTrail", async {
            let pb::GetAuditTrailRequest {
                payment_id,
                after_id,
                limit,
            } = request.into_inner();
            let subject = Some(payment_id).filter(|p| !p.trim().is_empty());
            let limit = if limit == 0 {
                MAX_LIMIT
            } else {
                limit.min(MAX_LIMIT)
            };
            let events = self.service.audit_events(subject, after_id, limit).await?;
            Ok(pb::GetAuditTrailResponse {
                events: events.into_iter().map(pb::AuditEvent::from).collect(),
            })
        })
        .await
    }

    async fn get_waiting_cash(
        &self,
        request: Request<pb::GetWaitingCashRequest>,
    ) -> Result<Response<pb::WaitingCash>, Status> {
        observe(&self.metrics, "Review/GetWaitingCash", async {
            let pb::GetWaitingCashRequest { customer_id } = request.into_inner();
            let customer_id = required("customer_id", customer_id)?;
            let w = self.service.waiting_cash(customer_id, now()).await?;
            Ok(waiting_cash(w))
        })
        .await
    }

    async fn apply_waiting_cash(
        &self,
        request: Request<pb::ApplyWaitingCashRequest>,
    ) -> Result<Response<pb::ApplyWaitingCashResponse>, Status> {
        observe(&self.metrics, "Review/ApplyWaitingCash", async {
            let caller = principal(&request);
            let pb::ApplyWaitingCashRequest {
                payment_id,
                allocations,
                note,
                analyst,
            } = request.into_inner();
            let name = acting_analyst(caller, analyst)?;
            let allocations = allocations
                .into_iter()
                .enumerate()
                .map(|(i, pb::CashToInvoice { invoice_id, amount })| {
                    let field = |f: &str| format!("allocations[{i}].{f}");
                    Ok((
                        required(&field("invoice_id"), invoice_id)?,
                        decimal(&field("amount"), &amount)?,
                    ))
                })
                .collect::<Result<Vec<_>, FieldError>>()?;
            let CashApplied {
                payment_id,
                postings,
                still_waiting,
            } = self
                .service
                .apply_waiting_cash(ApplyCashRequest {
                    payment_id: required("payment_id", payment_id)?,
                    allocations,
                    by: Actor {
                        kind: ActorKind::Analyst,
                        name,
                    },
                    note,
                })
                .await?;
            Ok(pb::ApplyWaitingCashResponse {
                payment_id,
                postings: postings.into_iter().map(pb::Posting::from).collect(),
                still_waiting: still_waiting.to_string(),
            })
        })
        .await
    }

    type ExportLabelsStream = ExportStream;

    async fn export_labels(
        &self,
        request: Request<pb::ExportLabelsRequest>,
    ) -> Result<Response<Self::ExportLabelsStream>, Status> {
        observe(&self.metrics, "Review/ExportLabels", async {
            let pb::ExportLabelsRequest { include_auto } = request.into_inner();
            let mut query = ExportQuery {
                include_auto,
                auto_decided_before: None,
                after: 0,
                limit: EXPORT_PAGE,
            };
            // The first page is read here, so a store fault is the call's status; later pages
            // are read as the client takes the stream, and a fault ends it with that status.
            let first = self.service.training_examples(query.clone()).await?;
            let (tx, rx) = tokio::sync::mpsc::channel(EXPORT_PAGE as usize);
            let service = Arc::clone(&self.service);
            tokio::spawn(async move {
                let mut page = first;
                loop {
                    let last = page.last().map(|e| e.position);
                    let full = page.len() >= query.limit as usize;
                    for e in page {
                        if tx.send(Ok(pb::TrainingExample::from(e))).await.is_err() {
                            return; // the client went away
                        }
                    }
                    let Some(after) = last.filter(|_| full) else {
                        return;
                    };
                    query.after = after;
                    page = match service.training_examples(query.clone()).await {
                        Ok(p) => p,
                        Err(e) => {
                            let _ = tx.send(Err(Status::from(e))).await;
                            return;
                        }
                    };
                }
            });
            Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
        })
        .await
    }
}

fn waiting_cash(v: WaitingCash) -> pb::WaitingCash {
    let WaitingCash {
        customer_id,
        balances,
        payments,
    } = v;
    let strings = |a: [rust_decimal::Decimal; 4]| a.iter().map(|d| d.to_string()).collect();
    pb::WaitingCash {
        customer_id,
        balances: balances
            .into_iter()
            .map(
                |(
                    currency,
                    Balance {
                        unapplied,
                        on_account,
                    },
                )| pb::WaitingBalance {
                    currency: currency.to_string(),
                    unapplied: strings(unapplied),
                    on_account: strings(on_account),
                },
            )
            .collect(),
        payments: payments
            .into_iter()
            .map(
                |WaitingPayment {
                     payment_id,
                     kind,
                     currency,
                     amount,
                     since,
                     bucket,
                 }| pb::WaitingPayment {
                    payment_id,
                    on_account: kind == Waiting::OnAccount,
                    currency: currency.to_string(),
                    amount: amount.to_string(),
                    since: since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    bucket: AGE_BUCKETS.get(bucket).map_or("", |b| b.0).to_string(),
                },
            )
            .collect(),
        buckets: AGE_BUCKETS.iter().map(|b| b.0.to_string()).collect(),
    }
}
