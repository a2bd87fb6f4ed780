//! `cashmatch.v1.Matching`: payments in, decisions out.

use super::convert::{FieldError, required};
use super::metrics::Metrics;
use super::observe;
use super::pb::{self, matching_server};
use crate::domain::Payment;
use crate::formats::Format;
use crate::service::{MatchOutcome, Matched, Service};
use crate::store::Store;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// Requests of one stream decided at once; the responses still leave in request order.
const STREAM_WINDOW: usize = 64;

pub(crate) struct MatchingApi<S: Store> {
    pub(crate) service: Arc<Service<S>>,
    pub(crate) metrics: Arc<Metrics>,
}

fn response(o: MatchOutcome) -> pb::MatchResponse {
    let MatchOutcome { results, errors } = o;
    pb::MatchResponse {
        results: results
            .into_iter()
            .map(|Matched { decision, replayed }| pb::MatchedPayment {
                decision: Some(decision.into()),
                replayed,
            })
            .collect(),
        errors: errors.into_iter().map(pb::InputError::from).collect(),
    }
}

/// One request, validated.
enum Input {
    Raw {
        content: Vec<u8>,
        file: String,
        format: Option<Format>,
    },
    Payment(Payment),
}

impl TryFrom<pb::MatchRequest> for Input {
    type Error = FieldError;

    fn try_from(v: pb::MatchRequest) -> Result<Self, FieldError> {
        let pb::MatchRequest { input } = v;
        match input {
            Some(pb::match_request::Input::Raw(pb::RawRemittance {
                content,
                format,
                file_name,
            })) => {
                if content.is_empty() {
                    return Err(FieldError::new("raw.content", "is empty"));
                }
                let format = format
                    .filter(|f| !f.trim().is_empty())
                    .map(|f| {
                        f.parse::<Format>()
                            .map_err(|m| FieldError::new("raw.format", m))
                    })
                    .transpose()?;
                let file = if file_name.trim().is_empty() {
                    "<request>".to_string()
                } else {
                    file_name
                };
                Ok(Input::Raw {
                    content,
                    file,
                    format,
                })
            }
            Some(pb::match_request::Input::Payment(p)) => Ok(Input::Payment(
                Payment::try_from(p).map_err(|e| e.within("payment"))?,
            )),
            None => Err(FieldError::new("input", "is required: raw or payment")),
        }
    }
}

async fn decide<S: Store>(
    service: &Arc<Service<S>>,
    req: pb::MatchRequest,
) -> Result<pb::MatchResponse, Status> {
    let outcome = match Input::try_from(req)? {
        Input::Raw {
            content,
            file,
            format,
        } => service.match_raw(content, file, format).await?,
        Input::Payment(p) => MatchOutcome {
            results: vec![service.match_payment(p).await?],
            errors: vec![],
        },
    };
    Ok(response(outcome))
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
impl<S: Store> matching_server::Matching for MatchingApi<S> {
    async fn match_payment(
        &self,
        request: Request<pb::MatchRequest>,
    ) -> Result<Response<pb::MatchResponse>, Status> {
        observe(
            &self.metrics,
            "Matching/MatchPayment",
            decide(&self.service, request.into_inner()),
        )
        .await
    }

    type MatchPaymentsStream = ReceiverStream<Result<pb::MatchResponse, Status>>;

    async fn match_payments(
        &self,
        request: Request<Streaming<pb::MatchRequest>>,
    ) -> Result<Response<Self::MatchPaymentsStream>, Status> {
        let mut inbound = request.into_inner();
        let (out_tx, out_rx) = mpsc::channel(STREAM_WINDOW);
        // Requests are decided concurrently as they arrive; a bounded queue of their tasks, read
        // in order, puts the responses back in request order and pushes back on the client.
        let (task_tx, mut task_rx) = mpsc::channel::<
            tokio::task::JoinHandle<Result<pb::MatchResponse, Status>>,
        >(STREAM_WINDOW);
        let service = Arc::clone(&self.service);
        let metrics = Arc::clone(&self.metrics);
        let err_tx = out_tx.clone();
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(req)) => {
                        let (service, metrics) = (Arc::clone(&service), Arc::clone(&metrics));
                        let task = tokio::spawn(async move {
                            observe(&metrics, "Matching/MatchPayments", decide(&service, req))
                                .await
                                .map(Response::into_inner)
                        });
                        if task_tx.send(task).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(s) => {
                        let _ = err_tx.send(Err(s)).await;
                        break;
                    }
                }
            }
        });
        tokio::spawn(async move {
            while let Some(task) = task_rx.recv().await {
                let item = match task.await {
                    Ok(Ok(r)) => Ok(r),
                    Ok(Err(s)) => as_item_error(&s).ok_or(s),
                    Err(e) => Err(Status::internal(format!("a matching task failed: {e}"))),
                };
                let end = item.is_err();
                if out_tx.send(item).await.is_err() || end {
                    break;
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
