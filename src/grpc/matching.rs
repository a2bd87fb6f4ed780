//! `cashmatch.v1.Matching`: payments in, decisions out.

use super::convert::{FieldError, required};
use super::observe;
use super::pb::{self, matching_server};
use crate::domain::Payment;
use crate::formats::Format;
use crate::metrics::Metrics;
use crate::service::{MatchOutcome, Matched, Service};
use futures_util::FutureExt;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// Responses of one stream buffered for a slow reader before the service stops reading it.
const STREAM_WINDOW: usize = 256;

/// Requests of one stream decided as one batch at most.
const STREAM_BATCH: usize = 256;

/// A batch's responses, in request order.
type Batch = tokio::task::JoinHandle<Vec<Result<pb::MatchResponse, Status>>>;

pub(crate) struct MatchingApi {
    pub(crate) service: Arc<Service>,
    pub(crate) metrics: Arc<Metrics>,
}

fn response(o: MatchOutcome) -> pb::MatchResponse {
    let MatchOutcome { results, errors } = o;
    pb::MatchResponse {
        results: results.into_iter().map(matched).collect(),
        errors: errors.into_iter().map(pb::InputError::from).collect(),
    }
}

/// A raw file's bytes, name and format, validated; `field` is where it sits in the request.
pub(super) fn raw_input(
    raw: pb::RawRemittance,
    field: &str,
) -> Result<(Vec<u8>, String, Option<Format>), FieldError> {
    let pb::RawRemittance {
        content,
        format,
        file_name,
    } = raw;
    if content.is_empty() {
        return Err(FieldError::new(format!("{field}.content"), "is empty"));
    }
    let format = format
        .filter(|f| !f.trim().is_empty())
        .map(|f| {
            f.parse::<Format>()
                .map_err(|m| FieldError::new(format!("{field}.format"), m))
        })
        .transpose()?;
    let file = if file_name.trim().is_empty() {
        "<request>".to_string()
    } else {
        file_name
    };
    Ok((content, file, format))
}

/// A decision returned, as the wire carries it: a held receipt has no decision yet.
pub(super) fn matched(m: Matched) -> pb::MatchedPayment {
    let Matched {
        decision,
        replayed,
        held,
    } = m;
    match held {
        Some(h) => pb::MatchedPayment {
            decision: None,
            replayed,
            held: Some(pb::HeldReceipt {
                until: h.until.to_string(),
            }),
        },
        None => pb::MatchedPayment {
            decision: Some(decision.into()),
            replayed,
            held: None,
        },
    }
}

/// One request, validated.
enum Input {
    Raw {
        content: Vec<u8>,
        file: String,
        format: Option<Format>,
    },
    /// Boxed: a payment is several times the size of a raw request's fields.
    Payment(Box<Payment>),
}

impl TryFrom<pb::MatchRequest> for Input {
    type Error = FieldError;

    fn try_from(v: pb::MatchRequest) -> Result<Self, FieldError> {
        let pb::MatchRequest { input } = v;
        match input {
            Some(pb::match_request::Input::Raw(raw)) => {
                let (content, file, format) = raw_input(raw, "raw")?;
                Ok(Input::Raw {
                    content,
                    file,
                    format,
                })
            }
            Some(pb::match_request::Input::Payment(p)) => Ok(Input::Payment(Box::new(
                Payment::try_from(p).map_err(|e| e.within("payment"))?,
            ))),
            None => Err(FieldError::new("input", "is required: raw or payment")),
        }
    }
}

/// Decides requests, a single call's or a stream's batch: structured payments together, raw
/// remittances one by one, each request's response (or refusal) in request order.
pub(super) async fn decide(
    service: &Arc<Service>,
    batch: Vec<pb::MatchRequest>,
) -> Vec<Result<pb::MatchResponse, Status>> {
    let mut out: Vec<Option<Result<pb::MatchResponse, Status>>> = Vec::with_capacity(batch.len());
    let mut payments = Vec::new();
    for req in batch {
        match Input::try_from(req) {
            Ok(Input::Payment(p)) => {
                payments.push(*p);
                out.push(None);
            }
            Ok(Input::Raw {
                content,
                file,
                format,
            }) => out.push(Some(
                service
                    .match_raw(content, file, format)
                    .await
                    .map(response)
                    .map_err(Status::from),
            )),
            Err(e) => out.push(Some(Err(Status::from(e)))),
        }
    }
    let decided = match service.match_payments(payments).await {
        Ok(d) => d.into_iter().map(|r| r.map_err(Status::from)).collect(),
        Err(e) => vec![Err(Status::from(e))],
    };
    let mut decided = decided.into_iter();
    out.into_iter()
        .map(|slot| match slot {
            Some(r) => r,
            None => decided
                .next()
                .unwrap_or_else(|| Err(Status::internal("a payment went undecided")))
                .map(|m| {
                    response(MatchOutcome {
                        results: vec![m],
                        errors: vec![],
                    })
                }),
        })
        .collect()
}

/// A stream's batch, decided, with each request's latency (the batch's) counted.
async fn decide_batch(
    service: Arc<Service>,
    metrics: Arc<Metrics>,
    batch: Vec<pb::MatchRequest>,
) -> Vec<Result<pb::MatchResponse, Status>> {
    let started = Instant::now();
    let out = decide(&service, batch).await;
    let elapsed = started.elapsed();
    for r in &out {
        let code = r.as_ref().map_or_else(Status::code, |_| tonic::Code::Ok);
        metrics.request("Matching/MatchPayments", code, elapsed);
    }
    out
}

/// A stream element's failure as a response, so that one bad request does not end the stream;
/// `None` when the failure is the service's own and the stream must end.
fn as_item_error(s: &Status) -> Option<pb::MatchResponse> {
    use tonic::Code;
    if matches!(
        s.code(),
        Code::Unavailable | Code::Internal | Code::Unknown | Code::DataLoss
    ) {
        return None;
    }
    Some(pb::MatchResponse {
        results: vec![],
        errors: vec![pb::InputError {
            file: String::new(),
            position: "request".into(),
            message: format!("{:?}: {}", s.code(), s.message()),
        }],
    })
}

#[tonic::async_trait]
impl matching_server::Matching for MatchingApi {
    async fn match_payment(
        &self,
        request: Request<pb::MatchRequest>,
    ) -> Result<Response<pb::MatchResponse>, Status> {
        observe(&self.metrics, "Matching/MatchPayment", async {
            decide(&self.service, vec![request.into_inner()])
                .await
                .pop()
                .unwrap_or_else(|| Err(Status::internal("no response")))
        })
        .await
    }

    type MatchPaymentsStream = ReceiverStream<Result<pb::MatchResponse, Status>>;

    async fn match_payments(
        &self,
        request: Request<Streaming<pb::MatchRequest>>,
    ) -> Result<Response<Self::MatchPaymentsStream>, Status> {
        let mut inbound = request.into_inner();
        let (out_tx, out_rx) = mpsc::channel(STREAM_WINDOW);
        // Requests that have already arrived are decided as one batch (one engine pass, one
        // group commit), batches concurrently; a bounded queue of their tasks, read in order,
        // puts the responses back in request order and pushes back on the client.
        let (task_tx, mut task_rx) = mpsc::channel::<Batch>(STREAM_WINDOW / 8);
        let service = Arc::clone(&self.service);
        let metrics = Arc::clone(&self.metrics);
        tokio::spawn(async move {
            let mut ended = false;
            while !ended {
                let mut batch = Vec::new();
                let mut failed = None;
                // Wait for one request, then take what is already there without waiting.
                let mut next = inbound.message().await;
                loop {
                    match next {
                        Ok(Some(req)) => batch.push(req),
                        Ok(None) => ended = true,
                        Err(s) => failed = Some(s),
                    }
                    if ended || failed.is_some() || batch.len() >= STREAM_BATCH {
                        break;
                    }
                    match inbound.message().now_or_never() {
                        Some(n) => next = n,
                        None => break,
                    }
                }
                if !batch.is_empty() {
                    let (service, metrics) = (Arc::clone(&service), Arc::clone(&metrics));
                    let task = tokio::spawn(decide_batch(service, metrics, batch));
                    if task_tx.send(task).await.is_err() {
                        return;
                    }
                }
                if let Some(s) = failed {
                    let _ = task_tx.send(tokio::spawn(async { vec![Err(s)] })).await;
                    return;
                }
            }
        });
        tokio::spawn(async move {
            while let Some(task) = task_rx.recv().await {
                let items = match task.await {
                    Ok(items) => items,
                    Err(e) => vec![Err(Status::internal(format!(
                        "a matching task failed: {e}"
                    )))],
                };
                for item in items {
                    let item = item.or_else(|s| as_item_error(&s).ok_or(s));
                    let end = item.is_err();
                    if out_tx.send(item).await.is_err() || end {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(out_rx)))
    }

    async fn get_decision(
        &self,
        request: Request<pb::GetDecisionRequest>,
    ) -> Result<Response<pb::Decision>, Status> {
        observe(&self.metrics, "Matching/GetDecision", async {
            let pb::GetDecisionRequest { payment_id } = request.into_inner();
            let id = required("payment_id", payment_id)?;
            Ok(self
                .service
                .decision(id)
                .await
                .map_err(Status::from)?
                .into())
        })
        .await
    }
}
