//! `cashmatch.v1.Advices`: remittance advices submitted on their own, and the analysts' links
//! between them and held bank receipts.

use super::convert::{self, FieldError};
use super::matching::{matched, raw_input};
use super::pb::{self, advices_server};
use super::{observe, principal};
use crate::advice::{Hold, Unlinked};
use crate::domain::Payment;
use crate::metrics::Metrics;
use crate::service::auth::{Principal, Role};
use crate::service::{
    Actor, ActorKind, AdviceLink, AdviceStanding, AdvicesSubmitted, HeldState, LinkUndone, Linked,
    ProposedLink, Service, UnlinkedItem, UnlinkedView,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub(crate) struct AdvicesApi {
    pub(crate) service: Arc<Service>,
    pub(crate) metrics: Arc<Metrics>,
}

/// The service admits both roles (`server.rs`); each method is one role's.
fn need(caller: &Principal, role: Role) -> Result<(), Status> {
    if caller.roles.contains(&role) {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "{} lacks the role {role} this call needs",
            caller.name
        )))
    }
}

/// Who acts: the analyst the token names; without authentication, the one the request names.
fn acting_analyst(caller: Principal, named: Option<String>) -> Result<String, FieldError> {
    if caller.authenticated {
        Ok(caller.name)
    } else {
        convert::required("analyst", named.unwrap_or_default())
    }
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl From<HeldState> for pb::HeldState {
    fn from(v: HeldState) -> Self {
        match v {
            HeldState::Waiting => pb::HeldState::Waiting,
            HeldState::Linked => pb::HeldState::Linked,
            HeldState::Alone => pb::HeldState::Alone,
            HeldState::Review => pb::HeldState::Review,
        }
    }
}

impl From<AdviceLink> for pb::AdviceLink {
    fn from(v: AdviceLink) -> Self {
        let AdviceLink {
            id,
            receipts,
            advices,
            fee,
            evidence,
            linked_by,
            linked_at,
            unlinked,
        } = v;
        let (unlinked_by, unlinked_at, unlink_note) = match unlinked {
            Some(u) => (Some(u.by), Some(time(u.at)), Some(u.note)),
            None => (None, None, None),
        };
        pb::AdviceLink {
            link_id: id,
            receipt_ids: receipts,
            advice_ids: advices,
            fee: fee.to_string(),
            evidence,
            linked_by,
            linked_at: time(linked_at),
            unlinked_by,
            unlinked_at,
            unlink_note,
        }
    }
}

impl From<AdviceStanding> for pb::AdviceStanding {
    fn from(v: AdviceStanding) -> Self {
        let AdviceStanding {
            advice_id,
            state,
            link,
            decisions,
            candidates,
        } = v;
        pb::AdviceStanding {
            advice_id,
            state: pb::HeldState::from(state) as i32,
            link: link.map(pb::AdviceLink::from),
            decisions: decisions.into_iter().map(matched).collect(),
            candidates,
        }
    }
}

impl From<UnlinkedItem> for pb::UnlinkedItem {
    fn from(v: UnlinkedItem) -> Self {
        let UnlinkedItem {
            item,
            reason,
            hold,
            hold_until,
            candidates,
        } = v;
        pb::UnlinkedItem {
            payment: Some(item.payment.into()),
            state: pb::HeldState::from(item.state) as i32,
            received_at: time(item.received_at),
            received_by: item.received_by,
            hold_until: hold_until.map(|d| d.to_string()).unwrap_or_default(),
            hold_expired: hold == Hold::Expired,
            reason: match reason {
                Some(Unlinked::NoCandidate) => "no_candidate".into(),
                Some(Unlinked::Ambiguous) => "ambiguous".into(),
                None => String::new(),
            },
            candidates,
        }
    }
}

impl From<ProposedLink> for pb::ProposedLink {
    fn from(v: ProposedLink) -> Self {
        let ProposedLink {
            receipts,
            advices,
            fee,
            evidence,
        } = v;
        pb::ProposedLink {
            receipt_ids: receipts,
            advice_ids: advices,
            fee: fee.to_string(),
            evidence,
        }
    }
}

fn submitted(v: AdvicesSubmitted) -> pb::SubmitAdviceResponse {
    let AdvicesSubmitted { advices, errors } = v;
    pb::SubmitAdviceResponse {
        advices: advices.into_iter().map(pb::AdviceStanding::from).collect(),
        errors: errors.into_iter().map(pb::InputError::from).collect(),
    }
}

/// One submission, validated.
enum Submission {
    Raw {
        content: Vec<u8>,
        file: String,
        format: Option<crate::formats::Format>,
    },
    Advice(Box<Payment>),
}

impl TryFrom<pb::SubmitAdviceRequest> for Submission {
    type Error = FieldError;

    fn try_from(v: pb::SubmitAdviceRequest) -> Result<Self, FieldError> {
        let pb::SubmitAdviceRequest { input } = v;
        match input {
            Some(pb::submit_advice_request::Input::Raw(raw)) => {
                let (content, file, format) = raw_input(raw, "raw")?;
                Ok(Submission::Raw {
                    content,
                    file,
                    format,
                })
            }
            Some(pb::submit_advice_request::Input::Advice(p)) => Ok(Submission::Advice(Box::new(
                Payment::try_from(p).map_err(|e| e.within("advice"))?,
            ))),
            None => Err(FieldError::new("input", "is required: raw or advice")),
        }
    }
}

#[tonic::async_trait]
impl advices_server::Advices for AdvicesApi {
    async fn submit_advice(
        &self,
        request: Request<pb::SubmitAdviceRequest>,
    ) -> Result<Response<pb::SubmitAdviceResponse>, Status> {
        observe(&self.metrics, "Advices/SubmitAdvice", async {
            let caller = principal(&request);
            need(&caller, Role::ArSystem)?;
            let out = match Submission::try_from(request.into_inner())? {
                Submission::Raw {
                    content,
                    file,
                    format,
                } => {
                    self.service
                        .submit_advice_file(content, file, format, &caller.name)
                        .await?
                }
                Submission::Advice(p) => {
                    self.service.submit_advices(vec![*p], &caller.name).await?
                }
            };
            Ok(submitted(out))
        })
        .await
    }

    async fn list_unlinked(
        &self,
        request: Request<pb::ListUnlinkedRequest>,
    ) -> Result<Response<pb::ListUnlinkedResponse>, Status> {
        observe(&self.metrics, "Advices/ListUnlinked", async {
            need(&principal(&request), Role::Analyst)?;
            let pb::ListUnlinkedRequest {} = request.into_inner();
            let UnlinkedView {
                as_of,
                receipts,
                advices,
                proposals,
                links,
            } = self.service.unlinked().await?;
            Ok(pb::ListUnlinkedResponse {
                as_of: as_of.map(|d| d.to_string()).unwrap_or_default(),
                receipts: receipts.into_iter().map(pb::UnlinkedItem::from).collect(),
                advices: advices.into_iter().map(pb::UnlinkedItem::from).collect(),
                proposals: proposals.into_iter().map(pb::ProposedLink::from).collect(),
                links: links.into_iter().map(pb::AdviceLink::from).collect(),
            })
        })
        .await
    }

    async fn link_advice(
        &self,
        request: Request<pb::LinkAdviceRequest>,
    ) -> Result<Response<pb::LinkAdviceResponse>, Status> {
        observe(&self.metrics, "Advices/LinkAdvice", async {
            let caller = principal(&request);
            need(&caller, Role::Analyst)?;
            let pb::LinkAdviceRequest {
                receipt_ids,
                advice_ids,
                note,
                analyst,
            } = request.into_inner();
            let analyst = acting_analyst(caller, analyst)?;
            let Linked { link, decisions } = self
                .service
                .link_by_hand(receipt_ids, advice_ids, note, &analyst)
                .await?;
            Ok(pb::LinkAdviceResponse {
                link: Some(link.into()),
                decisions: decisions.into_iter().map(matched).collect(),
            })
        })
        .await
    }

    async fn unlink_advice(
        &self,
        request: Request<pb::UnlinkAdviceRequest>,
    ) -> Result<Response<pb::UnlinkAdviceResponse>, Status> {
        observe(&self.metrics, "Advices/UnlinkAdvice", async {
            let caller = principal(&request);
            need(&caller, Role::Analyst)?;
            let pb::UnlinkAdviceRequest {
                link_id,
                note,
                analyst,
            } = request.into_inner();
            let link_id = convert::required("link_id", link_id)?;
            let name = acting_analyst(caller, analyst)?;
            let LinkUndone { link, unapplied } = self
                .service
                .unlink(
                    link_id,
                    note,
                    Actor {
                        kind: ActorKind::Analyst,
                        name,
                    },
                )
                .await?;
            Ok(pb::UnlinkAdviceResponse {
                link: Some(link.into()),
                unapplied,
            })
        })
        .await
    }
}
