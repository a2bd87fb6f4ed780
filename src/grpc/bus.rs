//! The event bus's messages (`crate::bus`): the gRPC API's own protobuf messages, decoded and
//! encoded here so that the bus, like the rest of the crate, never names prost. A payment that
//! arrives on the bus is decided by the very code that decides a `MatchPayments` stream's batch.

use super::matching::decide;
use super::pb;
use crate::domain::Decision;
use crate::service::{Posting, Service};
use prost::Message;
use std::sync::Arc;
use tonic::Code;

/// What became of one inbound message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Decided and durable, or a replay of a payment decided before: acknowledge it.
    Decided,
    /// The message can never be decided (it does not decode, or the request is invalid): deliver
    /// it no more, and say why.
    Refused(String),
    /// The service could not decide it now (a store failure, the service stopping): deliver it
    /// again later.
    Failed(String),
}

/// Decodes each payload as a `cashmatch.v1.MatchRequest` and decides the valid ones together,
/// as `MatchPayments` decides the requests of a stream that have arrived (one engine pass, one
/// group commit): each payload's verdict, in order. A decision is [`Verdict::Decided`] only once
/// its commit is durable.
pub(crate) async fn decide_payloads(service: &Arc<Service>, payloads: &[&[u8]]) -> Vec<Verdict> {
    let mut verdicts: Vec<Option<Verdict>> = Vec::with_capacity(payloads.len());
    let mut requests = Vec::new();
    for p in payloads {
        match pb::MatchRequest::decode(*p) {
            Ok(r) => {
                requests.push(r);
                verdicts.push(None);
            }
            Err(e) => verdicts.push(Some(Verdict::Refused(format!(
                "not a cashmatch.v1.MatchRequest: {e}"
            )))),
        }
    }
    let mut decided = decide(service, requests).await.into_iter();
    verdicts
        .into_iter()
        .map(|v| {
            v.unwrap_or_else(|| match decided.next() {
                Some(Ok(r)) => {
                    // A raw remittance with bad lines: the good payments are decided and durable,
                    // the bad lines can never be; both are final, and the bad ones are logged.
                    for e in &r.errors {
                        tracing::warn!(file = %e.file, position = %e.position, error = %e.message, "a remittance line from the bus was not decided");
                    }
                    Verdict::Decided
                }
                Some(Err(s)) => verdict_of(&s),
                None => Verdict::Failed("a payment went undecided".into()),
            })
        })
        .collect()
}

/// A refusal is final when the request itself is at fault; the service's own failures, and a
/// conflict with another replica's write, are worth another delivery.
fn verdict_of(s: &tonic::Status) -> Verdict {
    let why = format!("{:?}: {}", s.code(), s.message());
    match s.code() {
        Code::Unavailable | Code::Internal | Code::Unknown | Code::DataLoss | Code::Aborted => {
            Verdict::Failed(why)
        }
        _ => Verdict::Refused(why),
    }
}

/// A decision as the `cashmatch.v1.Decision` message `GetDecision` returns, encoded.
pub(crate) fn encode_decision(d: Decision) -> Vec<u8> {
    pb::Decision::from(d).encode_to_vec()
}

/// A posting as the `cashmatch.v1.Posting` message `WatchPostings` streams, encoded.
pub(crate) fn encode_posting(p: Posting) -> Vec<u8> {
    pb::Posting::from(p).encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_of_the_service_are_retried_and_faults_of_the_request_are_not() {
        assert!(matches!(
            verdict_of(&tonic::Status::unavailable("stopping")),
            Verdict::Failed(_)
        ));
        assert!(matches!(
            verdict_of(&tonic::Status::aborted("conflict")),
            Verdict::Failed(_)
        ));
        assert!(matches!(
            verdict_of(&tonic::Status::invalid_argument("payment.amount")),
            Verdict::Refused(_)
        ));
        assert!(matches!(
            verdict_of(&tonic::Status::already_exists("another payment")),
            Verdict::Refused(_)
        ));
    }
}
