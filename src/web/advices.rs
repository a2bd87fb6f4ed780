//! Receipts and advices waiting for each other, side by side: the bank receipts held for their
//! remittance advice, the advices waiting for their money (and those whose hold ended, for a
//! person), the links the engine would make now, and the links in force. An analyst links a
//! receipt with advices by hand (the service refuses amounts that do not add up) and undoes a
//! link (the service reverses what it applied).

use super::page::{Nav, cash, instant, layout};
use super::{Shared, checked_post, error_page, html, refusal, to_login};
use crate::advice::Unlinked;
use crate::service::{Actor, ActorKind, AdviceLink, HeldState, UnlinkedItem};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html as m};
use serde::Deserialize;

pub(crate) async fn page(State(web): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let Some(who) = web.analyst(&headers).await else {
        return to_login(&uri.to_string());
    };
    let auth = web.auth.enabled();
    let view = match web.service.unlinked().await {
        Ok(v) => v,
        Err(e) => {
            let (status, message) = refusal(&e);
            return error_page(status, Some(&who), auth, "Unavailable", &message);
        }
    };
    let body = m! {
        div.page-head {
            div {
                h1 { "Receipts and advices" }
                p.muted {
                    "Bank receipts without remittance detail wait for their advice, and advices for \
                     their money, until their hold ends"
                    @if let Some(d) = view.as_of { " (holds reckoned at " (d) ")" }
                    ". Tick one receipt and its advices (or several receipts and one advice) to link \
                     them: the amounts must add up, less at most a bank fee."
                }
            }
        }
        form method="post" action="/advices/link" #link-form {
            input type="hidden" name="csrf" value=(who.csrf);
            div.columns {
                section #receipts {
                    h2 { "Receipts waiting (" (view.receipts.len()) ")" }
                    @if view.receipts.is_empty() { p.muted #no-receipts { "No receipt is waiting." } }
                    @for r in &view.receipts { (row(r, "receipt")) }
                }
                section #advices {
                    h2 { "Advices waiting (" (view.advices.len()) ")" }
                    @if view.advices.is_empty() { p.muted #no-advices { "No advice is waiting." } }
                    @for a in &view.advices { (row(a, "advice")) }
                }
            }
            label { "Note " input type="text" name="note" placeholder="why they belong together"; }
            " "
            button.primary type="submit" { "Link the ticked items" }
        }
        @if !view.proposals.is_empty() {
            h2 { "Links the engine proposes" }
            ul #proposals {
                @for p in &view.proposals {
                    li {
                        (p.receipts.join(" + ")) " ↔ " (p.advices.join(" + "))
                        @if !p.fee.is_zero() { " (fee " (super::page::money(p.fee)) ")" }
                        ": " (p.evidence.join("; "))
                    }
                }
            }
        }
        h2 { "Links in force" }
        @if view.links.is_empty() { p.muted #no-links { "No link." } }
        @for l in &view.links { (link_card(&who.csrf, l)) }
    };
    html(
        StatusCode::OK,
        layout("Receipts and advices", Nav::Advices, Some(&who), auth, body),
    )
}

/// One waiting item, with its checkbox.
fn row(u: &UnlinkedItem, side: &str) -> Markup {
    let p = &u.item.payment;
    let name = format!("{side}_ids");
    m! {
        div.card.held data-id=(p.payment_id) data-side=(side) {
            label {
                input type="checkbox" name=(name) value=(p.payment_id);
                " " strong { (p.payment_id) } " " (cash(p.currency, p.amount))
            }
            p.muted {
                @if let Some(d) = p.payment_date { "dated " (d) ", " }
                @if let Some(n) = &p.payer.name { (n) ", " }
                @if let Some(a) = &p.payer.account { "account " (a) ", " }
                "received " (instant(u.item.received_at))
            }
            @if !p.lines.is_empty() {
                p { (p.lines.len()) " line(s): "
                    (p.lines.iter().filter_map(|l| l.reference.clone()).collect::<Vec<_>>().join(", ")) }
            }
            p {
                @if u.item.state == HeldState::Review {
                    span.badge.overdue { "hold over: for a person" }
                } @else if let Some(d) = u.hold_until {
                    "waits until " (d)
                }
                @if u.item.state == HeldState::Waiting {
                    @match u.reason {
                        Some(Unlinked::NoCandidate) => " · nothing on the other side fits",
                        Some(Unlinked::Ambiguous) => " · several fit equally well: a person chooses",
                        None => " · the engine links it at the next settling",
                    }
                }
                @if !u.candidates.is_empty() { " · could be: " (u.candidates.join(", ")) }
            }
        }
    }
}

/// A link in force, with its unlink form.
fn link_card(csrf: &str, l: &AdviceLink) -> Markup {
    m! {
        div.card.link data-link=(l.id) {
            h3 { (l.receipts.join(" + ")) " ↔ " (l.advices.join(" + ")) }
            p.muted {
                "linked by " (l.linked_by) ", " (instant(l.linked_at))
                @if !l.fee.is_zero() { ", fee " (super::page::money(l.fee)) }
                ": " (l.evidence.join("; "))
            }
            form method="post" action="/advices/unlink" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="link_id" value=(l.id);
                label { "Note " input type="text" name="note" placeholder="required"; }
                " "
                button type="submit" { "Unlink (reverses what it applied)" }
            }
        }
    }
}

/// A link by hand: the form's ticked receipts and advices (repeated fields).
pub(crate) async fn link(
    State(web): State<Shared>,
    headers: HeaderMap,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let (mut csrf, mut note) = (String::new(), String::new());
    let (mut receipts, mut advices) = (Vec::new(), Vec::new());
    for (k, v) in pairs {
        match k.as_str() {
            "csrf" => csrf = v,
            "note" => note = v,
            "receipt_ids" => receipts.push(v),
            "advice_ids" => advices.push(v),
            _ => {}
        }
    }
    let auth = web.auth.enabled();
    let who = match checked_post(&web, &headers, &csrf, "link receipts and advices").await {
        Ok(who) => who,
        Err(page) => return page,
    };
    match web
        .service
        .link_by_hand(receipts, advices, note, &who.principal.name)
        .await
    {
        Ok(l) => {
            tracing::info!(analyst = %who.principal.name, link = %l.link.id, "linked by hand from the workbench");
            Redirect::to("/advices").into_response()
        }
        Err(e) => {
            let (status, message) = refusal(&e);
            error_page(
                status,
                Some(&who),
                auth,
                "Refused",
                &format!("{message}. Nothing was linked."),
            )
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct UnlinkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    link_id: String,
    #[serde(default)]
    note: String,
}

pub(crate) async fn unlink(
    State(web): State<Shared>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<UnlinkForm>,
) -> Response {
    let auth = web.auth.enabled();
    let who = match checked_post(&web, &headers, &form.csrf, "undo links").await {
        Ok(who) => who,
        Err(page) => return page,
    };
    let by = Actor {
        kind: ActorKind::Analyst,
        name: who.principal.name.clone(),
    };
    match web.service.unlink(form.link_id, form.note, by).await {
        Ok(_) => Redirect::to("/advices").into_response(),
        Err(e) => {
            let (status, message) = refusal(&e);
            error_page(
                status,
                Some(&who),
                auth,
                "Refused",
                &format!("{message}. Nothing was changed."),
            )
        }
    }
}
