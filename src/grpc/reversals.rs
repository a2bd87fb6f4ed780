//! `cashmatch.v1.Reversals`: a payment the bank returned, and an application undone.

use super::convert::{self, FieldError};
use super::pb::{self, reversals_server};
use super::{observe, principal};
use crate::metrics::Metrics;
use crate::service::auth::{Principal, Role};
use crate::service::{
    Actor, ActorKind, PaymentReturn, ReverseRequest, Reversed, Service, Unapplied, UnapplyRequest,
    now,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub(crate) struct ReversalsApi {
    pub(crate) service: Arc<Service>,
    pub(crate) metrics: Arc<Metrics>,
}

/// Who acts, and as what. With authentication the token names the caller; its roles say whether
/// it acts as the AR system or as an analyst, and a token holding both acts as `both` (the AR
/// system books bank returns, an analyst undoes applications). Without authentication the
/// request must name the actor.
fn actor(caller: Principal, named: Option<String>, both: ActorKind) -> Result<Actor, FieldError> {
    let name = if caller.authenticated {
        caller.name
    } else {
        convert::required("actor", named.unwrap_or_default())?
    };
    let ar = caller.roles.contains(&Role::ArSystem);
    let analyst = caller.roles.contains(&Role::Analyst);
    let kind = match (ar, analyst) {
        (true, false) => ActorKind::ArSystem,
        (false, true) => ActorKind::Analyst,
        _ => both,
    };
    Ok(Actor { kind, name })
}

impl From<PaymentReturn> for pb::PaymentReturn {
    fn from(v: PaymentReturn) -> Self {
        let PaymentReturn {
            return_code,
            reason,
            actor_kind,
            actor,
            at,
        } = v;
        pb::PaymentReturn {
            return_code,
            reason,
            actor_kind: pb::ActorKind::from(actor_kind) as i32,
            actor,
            returned_at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}

#[tonic::async_trait]
impl reversals_server::Reversals for ReversalsApi {
    async fn reverse_payment(
        &self,
        request: Request<pb::ReversePaymentRequest>,
    ) -> Result<Response<pb::ReversePaymentResponse>, Status> {
        observe(&self.metrics, "Reversals/ReversePayment", async {
            let caller = principal(&request);
            let pb::ReversePaymentRequest {
                payment_id,
                reason,
                return_code,
                actor: named,
            } = request.into_inner();
            let by = actor(caller, named, ActorKind::ArSystem)?;
            let Reversed {
                decision,
                returned,
                postings,
                replayed,
            } = self
                .service
                .reverse_payment(ReverseRequest {
                    payment_id,
                    return_code,
                    reason,
                    by,
                })
                .await?;
            Ok(pb::ReversePaymentResponse {
                decision: Some(decision.into()),
                returned: Some(returned.into()),
                postings: postings.into_iter().map(pb::Posting::from).collect(),
                replayed,
            })
        })
        .await
    }

    async fn unapply_payment(
        &self,
        request: Request<pb::UnapplyPaymentRequest>,
    ) -> Result<Response<pb::UnapplyPaymentResponse>, Status> {
        observe(&self.metrics, "Reversals/UnapplyPayment", async {
            let caller = principal(&request);
            let pb::UnapplyPaymentRequest {
                payment_id,
                note,
                actor: named,
            } = request.into_inner();
            let by = actor(caller, named, ActorKind::Analyst)?;
            let Unapplied { item, postings } = self
                .service
                .unapply_payment(UnapplyRequest {
                    payment_id,
                    note,
                    by,
                })
                .await?;
            Ok(pb::UnapplyPaymentResponse {
                item: Some(convert::review_item(item, None, now(), &self.service.sla())),
                postings: postings.into_iter().map(pb::Posting::from).collect(),
            })
        })
        .await
    }
}
