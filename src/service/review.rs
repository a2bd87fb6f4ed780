//! The review queue as the analysts and the retraining job read it: items, totals, the next
//! item, the dashboard, the audit trail and labelled examples.

use super::api::*;
use super::dashboard;
use super::{
    AuditEvent, AuditRecord, ReviewFilter, ReviewRecord, ReviewState, ReviewSummary, ReviewTotals,
    Service, Sla, TrainingExample, now,
};
use crate::store::{AssignmentWrite, StoreError};

/// What an analyst does with a review item's ownership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assignment {
    /// The acting analyst takes the item; refused while another analyst owns it.
    Claim,
    /// The item goes to this analyst, whoever held it (a lead sharing out the queue).
    AssignTo(String),
    /// Nobody owns the item any more.
    Release,
}

impl Service {
    /// Puts new SLA limits in force for the summaries that follow (the `[ui]` settings: the
    /// workbench and the API mark the same items overdue).
    pub fn set_sla(&self, sla: Sla) {
        self.core.write().unwrap_or_else(|p| p.into_inner()).sla = sla;
    }

    /// The SLA limits in force.
    pub fn sla(&self) -> Sla {
        self.read().sla.clone()
    }

    /// Gives an open review item an owner, or none, as `analyst` asks; audited. Answers the item
    /// as it now stands.
    pub async fn assign_review_item(
        &self,
        payment_id: String,
        analyst: String,
        assignment: Assignment,
    ) -> Result<ReviewSummary, ServiceError> {
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ServiceError::Stopped);
        }
        let item = self.review_item(payment_id.clone()).await?.summary;
        if item.state != ReviewState::Open {
            return Err(ServiceError::FailedPrecondition(format!(
                "review item {payment_id} is not open: only open items have owners"
            )));
        }
        let (owner, claim, action) = match assignment {
            Assignment::Claim => {
                if let Some(other) = item.owner.as_ref().filter(|o| **o != analyst) {
                    return Err(ServiceError::FailedPrecondition(format!(
                        "review item {payment_id} is {other}'s: they may release it, or it can be \
                         assigned to you"
                    )));
                }
                (
                    Some(analyst.clone()),
                    Some(analyst.clone()),
                    "claim_review_item",
                )
            }
            Assignment::AssignTo(to) => {
                let to = to.trim().to_string();
                if to.is_empty() || to.chars().count() > 64 || to.chars().any(char::is_control) {
                    return Err(ServiceError::invalid(
                        "assign_to",
                        "names an analyst: 1 to 64 characters, no control characters",
                    ));
                }
                (Some(to), None, "assign_review_item")
            }
            Assignment::Release => (None, None, "release_review_item"),
        };
        let audit = AuditRecord {
            at: now(),
            actor: analyst,
            action: action.into(),
            subject: payment_id.clone(),
            before: serde_json::json!({ "owner": item.owner }),
            after: serde_json::json!({ "owner": owner }),
        };
        let write = AssignmentWrite {
            payment_id,
            owner: owner.clone(),
            unless_owned_by_other_than: claim,
            audit,
        };
        match self.store.assign(write).await {
            Ok(()) => Ok(ReviewSummary { owner, ..item }),
            // Resolved, returned or claimed by another analyst between the read and the write.
            Err(StoreError::Conflict(why)) => Err(ServiceError::FailedPrecondition(why)),
            Err(e) => Err(e.into()),
        }
    }

    /// Review items, highest priority first, and the number matching the filter.
    pub async fn review_items(
        &self,
        filter: ReviewFilter,
    ) -> Result<(Vec<ReviewSummary>, u64), ServiceError> {
        Ok(self.store.review_items(filter).await?)
    }

    /// The payment id of the open item first in the queue other than `skip`: the workbench's
    /// "next item". Items whose resolution waits for a second analyst are not next.
    pub async fn next_open_item(&self, skip: &str) -> Result<Option<String>, ServiceError> {
        let waiting: std::collections::HashSet<String> =
            self.read().awaiting.keys().cloned().collect();
        let (items, _) = self
            .review_items(ReviewFilter::open(
                u32::try_from(waiting.len())
                    .unwrap_or(u32::MAX)
                    .saturating_add(2),
                now(),
            ))
            .await?;
        Ok(items
            .into_iter()
            .map(|i| i.payment_id)
            .find(|id| id != skip && !waiting.contains(id)))
    }

    /// One review item.
    pub async fn review_item(&self, payment_id: String) -> Result<ReviewRecord, ServiceError> {
        self.store
            .review_item(payment_id.clone())
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!("no review item for payment {payment_id}"))
            })
    }

    /// Counts and cash of the review items a filter selects; open items waiting longer than
    /// their reason's `sla` are past it.
    pub async fn review_totals(
        &self,
        filter: ReviewFilter,
        sla: Sla,
    ) -> Result<ReviewTotals, ServiceError> {
        Ok(self.store.review_totals(filter, sla).await?)
    }

    /// The dashboard's figures: per UTC day over the query's window, and the unapplied cash now.
    pub async fn dashboard(
        &self,
        q: dashboard::DashboardQuery,
    ) -> Result<dashboard::Dashboard, ServiceError> {
        let first = q.first_day();
        let since = first
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(q.now);
        let activity = self.store.daily_activity(first).await?;
        let spans = self.store.queue_spans(since).await?;
        let journal = self
            .postings_where(crate::store::PostingFilter::All)
            .await?;
        let waiting = super::balances::waiting_payments(&journal, q.now);
        Ok(dashboard::compute(&q, &activity, &spans, &waiting))
    }

    /// Audit events on a subject (or all) after an id.
    pub async fn audit_events(
        &self,
        subject: Option<String>,
        after_id: u64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, ServiceError> {
        Ok(self.store.audit_events(subject, after_id, limit).await?)
    }

    /// A page of labelled payments for the retraining job.
    pub async fn training_examples(
        &self,
        query: crate::store::ExportQuery,
    ) -> Result<Vec<TrainingExample>, ServiceError> {
        Ok(self.store.training_examples(query).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::tests::{TestStore, cases_service_on, runtime};
    use crate::service::{OwnerFilter, ResolveAction, ResolveRequest};

    fn filter(owner: Option<OwnerFilter>) -> ReviewFilter {
        ReviewFilter {
            owner,
            ..ReviewFilter::open(1000, now())
        }
    }

    async fn ids(service: &Service, owner: Option<OwnerFilter>) -> Vec<String> {
        let (items, _) = service.review_items(filter(owner)).await.expect("queue");
        items.into_iter().map(|i| i.payment_id).collect()
    }

    #[test]
    fn items_are_claimed_assigned_and_released_with_an_audit_trail_and_no_one_takes_anothers() {
        for store in TestStore::each("assign") {
            runtime().block_on(async {
                let service = cases_service_on(&store).await;
                let all = ids(&service, None).await;
                assert!(all.len() >= 2, "the fixture has review items");
                let (first, second) = (all[0].clone(), all[1].clone());

                let claimed = service
                    .assign_review_item(first.clone(), "ana".into(), Assignment::Claim)
                    .await
                    .expect("claim");
                assert_eq!(claimed.owner.as_deref(), Some("ana"));
                // Claiming one's own again changes nothing; another analyst's claim is refused.
                service
                    .assign_review_item(first.clone(), "ana".into(), Assignment::Claim)
                    .await
                    .expect("claim again");
                let e = service
                    .assign_review_item(first.clone(), "bo".into(), Assignment::Claim)
                    .await
                    .expect_err("bo cannot take ana's item");
                assert!(
                    matches!(&e, ServiceError::FailedPrecondition(m) if m.contains("ana's")),
                    "{e}"
                );
                assert_eq!(
                    ids(&service, Some(OwnerFilter::Analyst("ana".into()))).await,
                    vec![first.clone()]
                );
                let unassigned = ids(&service, Some(OwnerFilter::Unassigned)).await;
                assert!(!unassigned.contains(&first) && unassigned.contains(&second));
                assert_eq!(unassigned.len(), all.len() - 1);

                // A lead gives it to bo; bo releases it; it is nobody's again.
                let moved = service
                    .assign_review_item(
                        first.clone(),
                        "lead".into(),
                        Assignment::AssignTo("bo".into()),
                    )
                    .await
                    .expect("assign");
                assert_eq!(moved.owner.as_deref(), Some("bo"));
                assert_eq!(
                    service
                        .review_item(first.clone())
                        .await
                        .expect("item")
                        .summary
                        .owner
                        .as_deref(),
                    Some("bo"),
                    "stored"
                );
                service
                    .assign_review_item(first.clone(), "bo".into(), Assignment::Release)
                    .await
                    .expect("release");
                assert_eq!(
                    ids(&service, Some(OwnerFilter::Unassigned)).await.len(),
                    all.len()
                );

                let trail = service
                    .audit_events(Some(first.clone()), 0, 100)
                    .await
                    .expect("audit");
                let moves: Vec<(String, String, serde_json::Value)> = trail
                    .iter()
                    .map(|e| {
                        (
                            e.record.actor.clone(),
                            e.record.action.clone(),
                            e.record.after.clone(),
                        )
                    })
                    .collect();
                assert_eq!(
                    moves,
                    vec![
                        (
                            "ana".into(),
                            "claim_review_item".into(),
                            serde_json::json!({"owner": "ana"})
                        ),
                        (
                            "ana".into(),
                            "claim_review_item".into(),
                            serde_json::json!({"owner": "ana"})
                        ),
                        (
                            "lead".into(),
                            "assign_review_item".into(),
                            serde_json::json!({"owner": "bo"})
                        ),
                        (
                            "bo".into(),
                            "release_review_item".into(),
                            serde_json::json!({"owner": null})
                        ),
                    ]
                );

                // A resolved item has no owner to change.
                service
                    .resolve(ResolveRequest {
                        payment_id: second.clone(),
                        analyst: "ana".into(),
                        action: ResolveAction::LeaveUnapplied,
                        note: "waiting for the customer's advice".into(),
                    })
                    .await
                    .expect("resolve");
                let e = service
                    .assign_review_item(second, "ana".into(), Assignment::Claim)
                    .await
                    .expect_err("resolved");
                assert!(matches!(e, ServiceError::FailedPrecondition(_)), "{e}");
                let e = service
                    .assign_review_item(first, "ana".into(), Assignment::AssignTo(" ".into()))
                    .await
                    .expect_err("no name");
                assert!(matches!(e, ServiceError::InvalidArgument { .. }), "{e}");
            });
        }
    }
}
