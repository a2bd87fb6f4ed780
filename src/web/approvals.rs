//! Four eyes in the workbench: the resolutions waiting for a second analyst, each with approve
//! and reject buttons, on their own page and on their item's page. The service decides who may
//! approve (never the analyst who proposed it); the page only hides the button that analyst
//! would be refused.

use super::page::{Nav, cash, describe_resolution, instant, layout};
use super::{Analyst, Shared, checked_post, error_page, html, refusal, to_login, url_encode};
use crate::service::{Approval, ApprovalDecision};
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html as m};
use serde::Deserialize;

/// The pending resolutions, oldest first.
pub(crate) async fn page(State(web): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let Some(who) = web.analyst(&headers).await else {
        return to_login(&uri.to_string());
    };
    let pending = web.service.pending_approvals();
    let limits = web.service.four_eyes();
    let body = m! {
        div.page-head {
            div {
                h1 { "Waiting for approval" }
                p.muted {
                    "Write-offs, cash on account and manual allocations above "
                    (super::page::money(limits.above))
                    @for (c, l) in &limits.per_currency { " (" (cash(*c, *l)) ")" }
                    " post only once a second analyst approves them. The analyst who proposed one \
                     cannot approve it."
                }
            }
        }
        @if pending.is_empty() {
            p.muted #no-approvals { "Nothing is waiting for approval." }
        }
        @for a in &pending { (card(&who, a)) }
    };
    html(
        StatusCode::OK,
        layout(
            "Waiting for approval",
            Nav::Approvals,
            Some(&who),
            web.auth.enabled(),
            body,
        ),
    )
}

/// One pending resolution with what it would do, why it waits, and the buttons.
pub(crate) fn card(who: &Analyst, a: &Approval) -> Markup {
    let own = a.proposed.analyst.trim().to_lowercase() == who.principal.name.trim().to_lowercase();
    let action = format!("/approvals/{}", url_encode(&a.payment_id));
    m! {
        div.card.approval data-payment=(a.payment_id) {
            h2 {
                "Payment " a href={"/items/" (url_encode(&a.payment_id))} { (a.payment_id) }
                " " span.badge.overdue { "awaiting approval" }
            }
            p {
                strong { (a.proposed.analyst) } " proposed, " (instant(a.proposed.resolved_at)) ": "
                (describe_resolution(&a.proposed, a.currency))
            }
            @if !a.proposed.note.trim().is_empty() { p.muted { "Note: " (a.proposed.note) } }
            ul { @for r in &a.reasons { li { (r) } } }
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(who.csrf);
                label { "Note " input type="text" name="note" placeholder="required to reject"; }
                @if own {
                    p.muted { "You proposed this: a second analyst must approve it. You may withdraw it (reject)." }
                } @else {
                    button.primary type="submit" name="decision" value="approve" { "Approve and post" }
                }
                " "
                button type="submit" name="decision" value="reject" { "Reject" }
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    note: String,
}

/// Approves or rejects the resolution waiting on a payment, as the signed-in analyst.
pub(crate) async fn decide(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path(payment_id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let auth = web.auth.enabled();
    let refuse = |status, who: Option<&Analyst>, message: &str| {
        error_page(status, who, auth, "Refused", message)
    };
    let who = match checked_post(&web, &headers, &form.csrf, "approve or reject resolutions").await
    {
        Ok(who) => who,
        Err(page) => return page,
    };
    let req = ApprovalDecision {
        payment_id: payment_id.clone(),
        analyst: who.principal.name.clone(),
        note: form.note.trim().to_string(),
    };
    let r = match form.decision.as_str() {
        "approve" => web.service.approve(req).await.map(|_| "approved"),
        "reject" => web.service.reject(req).await.map(|_| "rejected"),
        other => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&who),
                &format!("decision {other:?}: approve or reject. Nothing was changed."),
            );
        }
    };
    match r {
        Ok(what) => {
            tracing::info!(analyst = %who.principal.name, payment_id = %payment_id, what, "four-eyes decision from the workbench");
            Redirect::to(&format!("/items/{}", url_encode(&payment_id))).into_response()
        }
        Err(e) => {
            let (status, message) = refusal(&e);
            refuse(
                status,
                Some(&who),
                &format!("{message}. Nothing was changed."),
            )
        }
    }
}
