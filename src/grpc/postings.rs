//! `cashmatch.v1.Postings`: the journal the AR system books, paged and followed live.

use super::convert::FieldError;
use super::observe;
use super::pb::{self, postings_server};
use crate::metrics::Metrics;
use crate::service::{ActorKind, Posting, PostingFilter, PostingKind, PostingRecord, Service};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Postings read from the store per round of a watch, and the page size of a list by default.
const PAGE: u32 = 500;
/// Postings listed when the request does not say.
const DEFAULT_LIMIT: u32 = 100;
/// Postings listed at most.
const MAX_LIMIT: u32 = 1_000;

pub(crate) struct PostingsApi {
    pub(crate) service: Arc<Service>,
    pub(crate) metrics: Arc<Metrics>,
    /// True once the server shuts down: watches end (UNAVAILABLE) and the client reconnects.
    pub(crate) closing: tokio::sync::watch::Receiver<bool>,
}

impl From<PostingKind> for pb::PostingKind {
    fn from(v: PostingKind) -> Self {
        match v {
            PostingKind::Applied => pb::PostingKind::Applied,
            PostingKind::Discount => pb::PostingKind::Discount,
            PostingKind::Deduction => pb::PostingKind::Deduction,
            PostingKind::WriteOff => pb::PostingKind::WriteOff,
            PostingKind::Unapplied => pb::PostingKind::Unapplied,
            PostingKind::OnAccount => pb::PostingKind::OnAccount,
            PostingKind::ArAdjustment => pb::PostingKind::ArAdjustment,
            PostingKind::Reversal => pb::PostingKind::Reversal,
        }
    }
}

impl From<ActorKind> for pb::ActorKind {
    fn from(v: ActorKind) -> Self {
        match v {
            ActorKind::Engine => pb::ActorKind::Engine,
            ActorKind::Analyst => pb::ActorKind::Analyst,
            ActorKind::ArSystem => pb::ActorKind::ArSystem,
        }
    }
}

impl From<Posting> for pb::Posting {
    fn from(v: Posting) -> Self {
        let Posting {
            sequence,
            record:
                PostingRecord {
                    kind,
                    payment_id,
                    invoice_id,
                    customer_id,
                    currency,
                    amount,
                    reason_code,
                    actor_kind,
                    actor,
                    model_version,
                    rules_version,
                    reverses,
                    at,
                },
        } = v;
        pb::Posting {
            sequence,
            kind: pb::PostingKind::from(kind) as i32,
            payment_id,
            invoice_id,
            customer_id,
            currency: currency.as_str().to_string(),
            amount: amount.to_string(),
            reason_code,
            actor_kind: pb::ActorKind::from(actor_kind) as i32,
            actor,
            model_version,
            rules_version,
            reverses,
            at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}

type WatchStream = tokio_stream::wrappers::ReceiverStream<Result<pb::Posting, Status>>;

#[tonic::async_trait]
impl postings_server::Postings for PostingsApi {
    type WatchPostingsStream = WatchStream;

    async fn watch_postings(
        &self,
        request: Request<pb::WatchPostingsRequest>,
    ) -> Result<Response<Self::WatchPostingsStream>, Status> {
        observe(&self.metrics, "Postings/WatchPostings", async {
            let pb::WatchPostingsRequest { after_sequence } = request.into_inner();
            let (tx, rx) = tokio::sync::mpsc::channel(PAGE as usize);
            let service = Arc::clone(&self.service);
            let mut closing = self.closing.clone();
            tokio::spawn(async move {
                let mut changes = service.journal_changes();
                let mut last = after_sequence;
                loop {
                    // Marked seen before the read: a commit after this point changes it again,
                    // so the wait below cannot sleep through a posting the read missed.
                    changes.borrow_and_update();
                    let page = match service.postings(PostingFilter::All, last, PAGE).await {
                        Ok(p) => p,
                        Err(e) => {
                            let _ = tx.send(Err(Status::from(e))).await;
                            return;
                        }
                    };
                    let full = page.len() == PAGE as usize;
                    for p in page {
                        last = p.sequence;
                        if tx.send(Ok(p.into())).await.is_err() {
                            return; // The client went away.
                        }
                    }
                    if full {
                        continue;
                    }
                    // `wait_for`'s guard is not Send: only whether it fired leaves the select.
                    let go_on = tokio::select! {
                        changed = changes.changed() => changed.is_ok(),
                        _ = tx.closed() => return,
                        _ = closing.wait_for(|c| *c) => false,
                    };
                    if !go_on {
                        // The client reconnects to the next service with its last sequence.
                        let _ = tx
                            .send(Err(Status::unavailable("the service is shutting down")))
                            .await;
                        return;
                    }
                }
            });
            Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
        })
        .await
    }

    async fn list_postings(
        &self,
        request: Request<pb::ListPostingsRequest>,
    ) -> Result<Response<pb::ListPostingsResponse>, Status> {
        observe(&self.metrics, "Postings/ListPostings", async {
            let pb::ListPostingsRequest {
                subject,
                after_sequence,
                limit,
            } = request.into_inner();
            let filter = match subject {
                Some(pb::list_postings_request::Subject::PaymentId(p)) if !p.trim().is_empty() => {
                    PostingFilter::Payment(p)
                }
                Some(pb::list_postings_request::Subject::InvoiceId(i)) if !i.trim().is_empty() => {
                    PostingFilter::Invoice(i)
                }
                _ => {
                    return Err(
                        FieldError::new("subject", "give a payment_id or an invoice_id").into(),
                    );
                }
            };
            let limit = if limit == 0 {
                DEFAULT_LIMIT
            } else {
                limit.min(MAX_LIMIT)
            };
            let postings = self.service.postings(filter, after_sequence, limit).await?;
            let next_after = (postings.len() == limit as usize)
                .then(|| postings.last().map(|p| p.sequence))
                .flatten();
            Ok(pb::ListPostingsResponse {
                postings: postings.into_iter().map(Into::into).collect(),
                next_after,
            })
        })
        .await
    }
}
