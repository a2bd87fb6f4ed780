//! The review queue as the analysts and the retraining job read it: items, totals, the next
//! item, the dashboard, the audit trail and labelled examples.

use super::api::*;
use super::dashboard;
use super::{
    AuditEvent, ReviewFilter, ReviewRecord, ReviewSummary, ReviewTotals, Service, TrainingExample,
    now,
};
use chrono::{DateTime, Utc};

impl Service {
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

    /// Counts and cash of the review items a filter selects; open items that entered the queue
    /// before `sla_cutoff` are past the SLA.
    pub async fn review_totals(
        &self,
        filter: ReviewFilter,
        sla_cutoff: DateTime<Utc>,
    ) -> Result<ReviewTotals, ServiceError> {
        Ok(self.store.review_totals(filter, sla_cutoff).await?)
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
        let remainders = self.store.unapplied_remainders().await?;
        Ok(dashboard::compute(&q, &activity, &spans, &remainders))
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
