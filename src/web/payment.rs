//! One payment after its decision: what it was, how it was decided, every posting of its cash in
//! journal order, and the two ways back: unapply (the application was wrong; the payment waits
//! in the queue again) and reverse (the bank returned it). Both undo money already booked, so
//! each asks for a typed confirmation and a note, and the service audits who did it and why.

use super::page::{Nav, cash, instant, layout, percent, reason_label};
use super::{
    Analyst, FindQuery, Shared, checked_post, error_page, find_page, html, refusal, to_login,
    url_encode,
};
use crate::domain::Status;
use crate::service::{
    Actor, ActorKind, Posting, PostingFilter, ReverseRequest, StoredDecision, UnapplyRequest,
};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html as m};
use serde::Deserialize;

/// Postings a page lists; a payment has a handful, a hundred-line remittance a few hundred.
const MAX_POSTINGS: u32 = 2_000;

/// ACH (NACHA) and ISO 20022 return codes offered as you type; any other code may be typed.
const RETURN_CODES: [(&str, &str); 10] = [
    ("R01", "insufficient funds"),
    ("R02", "account closed"),
    ("R03", "no account / unable to locate"),
    ("R04", "invalid account number"),
    ("R08", "payment stopped"),
    ("R10", "customer advises not authorised"),
    ("R16", "account frozen"),
    ("AC04", "closed account number"),
    ("AM04", "insufficient funds"),
    ("MD06", "refund requested by end customer"),
];

/// `/payments?id=...`: the find box's target.
pub(crate) async fn find(
    State(web): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<FindQuery>,
) -> Response {
    find_page(&web, &headers, &uri, &q.id, "payment", |id| {
        format!("/payments/{id}")
    })
    .await
}

pub(crate) async fn page(
    State(web): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Path(payment_id): Path<String>,
    Query(q): Query<FindQuery>,
) -> Response {
    let Some(who) = web.analyst(&headers).await else {
        return to_login(&uri.to_string());
    };
    let auth = web.auth.enabled();
    let stored = match web.service.stored_decision(&payment_id).await {
        Ok(s) => s,
        Err(e) => {
            let (status, message) = refusal(&e);
            return error_page(status, Some(&who), auth, "No such payment", &message);
        }
    };
    let postings = match web
        .service
        .postings(PostingFilter::Payment(payment_id.clone()), 0, MAX_POSTINGS)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            let (status, message) = refusal(&e);
            return error_page(
                status,
                Some(&who),
                auth,
                "The postings could not be read",
                &message,
            );
        }
    };
    let done = match q.done.as_str() {
        "unapplied" => Some("Unapplied: the payment waits in the review queue again."),
        "reversed" => Some("Reversed: the payment is closed as returned by the bank."),
        _ => None,
    };
    let title = format!("Payment {payment_id}");
    html(
        StatusCode::OK,
        layout(
            &title,
            Nav::None,
            Some(&who),
            auth,
            body(&who, &stored, &postings, done),
        ),
    )
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Auto => "applied by the engine",
        Status::Review => "in review (or resolved by an analyst)",
        Status::Returned => "returned by the bank",
    }
}

fn body(who: &Analyst, s: &StoredDecision, postings: &[Posting], done: Option<&str>) -> Markup {
    let (p, d) = (&s.payment, &s.decision);
    let id = url_encode(&p.payment_id);
    // Postings a later reversal undid: shown struck through, never removed.
    let undone: std::collections::HashSet<u64> =
        postings.iter().filter_map(|x| x.record.reverses).collect();
    m! {
        @if let Some(done) = done { div.banner.ok role="status" data-done { (done) } }
        div.page-head {
            div {
                h1 { "Payment " (p.payment_id) }
                p.muted {
                    (cash(p.currency, p.amount))
                    @if let Some(n) = &p.payer.name { " from " (n) }
                    @if let Some(date) = p.payment_date { " on " (date) }
                    " · " (p.format)
                }
            }
            @if d.status == Status::Review { a href={"/items/" (id)} { "Review item and history" } }
        }
        div.card {
            dl.facts {
                dt { "Status" } dd data-status { (status_word(d.status)) }
                dt { "Customer" } dd {
                    @if let Some(c) = &d.customer_id {
                        (c) " · " a href={"/customers/" (url_encode(c)) "/cash"} data-cash-link { "waiting cash" }
                    } @else { "—" }
                }
                dt { "Decided" } dd { (instant(s.decided_at)) " · confidence " (percent(d.confidence)) }
                @if let Some(r) = d.review_reason { dt { "Review reason" } dd { (reason_label(Some(r))) } }
                dt { "Model" } dd.small { (d.model_version) " · " (d.rules_version) }
            }
        }
        h2 { "Postings" }
        @if postings.is_empty() {
            p.muted #no-postings { "No cash of this payment has been posted." }
        } @else {
            table.compact.postings {
                thead { tr {
                    th { "#" } th { "Kind" } th { "Invoice or customer" } th.num { "Amount" }
                    th { "Reason" } th { "By" } th { "At" } th { "Reverses" }
                } }
                tbody {
                    @for x in postings {
                        @let r = &x.record;
                        tr data-sequence=(x.sequence) class=[undone.contains(&x.sequence).then_some("reversed")] {
                            td { (x.sequence) }
                            td { (r.kind.name()) }
                            td { (r.invoice_id.as_deref().or(r.customer_id.as_deref()).unwrap_or("—")) }
                            td.num.amount { (cash(r.currency, r.amount)) }
                            td { (r.reason_code.as_deref().unwrap_or("")) }
                            td { (r.actor_kind.name()) ": " (r.actor) }
                            td { (instant(r.at)) }
                            td { @if let Some(n) = r.reverses { "#" (n) } }
                        }
                    }
                }
            }
            p.muted.small { "Struck-through rows were reversed later; the journal never changes a posting." }
        }
        @if d.status != Status::Returned {
            (undo_forms(who, &p.payment_id))
        }
    }
}

/// The unapply and reverse forms. Each needs the payment id typed again and a note: undoing
/// booked cash is not a click to make by accident.
fn undo_forms(who: &Analyst, payment_id: &str) -> Markup {
    let id = url_encode(payment_id);
    m! {
        h2 { "Undo" }
        div.undo {
            form.card method="post" action={"/payments/" (id) "/unapply"} data-unapply {
                h3 { "Unapply" }
                p.muted { "The application was wrong: every live posting is reversed, the invoices' open \
                           amounts restored, and the payment waits in the review queue with this note. \
                           A payment still waiting in the queue has nothing to unapply." }
                input type="hidden" name="csrf" value=(who.csrf);
                label { "Why (required) " textarea name="note" required maxlength="500" {} }
                label { "Type the payment id to confirm " input type="text" name="confirm" required autocomplete="off"; }
                button.danger type="submit" { "Unapply" }
            }
            form.card method="post" action={"/payments/" (id) "/reverse"} data-reverse {
                h3 { "Returned by the bank" }
                p.muted { "NSF, a closed account, an ACH return: every live posting is reversed and the payment \
                           is closed as returned." }
                input type="hidden" name="csrf" value=(who.csrf);
                label { "Return code (required) "
                    input type="text" name="return_code" list="return-codes" required maxlength="8";
                }
                datalist #return-codes {
                    @for (code, words) in RETURN_CODES { option value=(code) { (words) } }
                }
                label { "Reason (required) " input type="text" name="reason" required maxlength="200"; }
                label { "Type the payment id to confirm " input type="text" name="confirm" required autocomplete="off"; }
                button.danger type="submit" { "Reverse" }
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct UndoForm {
    #[serde(default)]
    csrf: String,
    /// The payment id typed again.
    #[serde(default)]
    confirm: String,
    /// Unapply: why.
    #[serde(default)]
    note: String,
    /// Reverse: the bank's code and what it said.
    #[serde(default)]
    return_code: String,
    #[serde(default)]
    reason: String,
}

/// Which way back a form asked for.
enum Undo {
    Unapply,
    Reverse,
}

pub(crate) async fn unapply(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path(payment_id): Path<String>,
    Form(form): Form<UndoForm>,
) -> Response {
    undo(&web, &headers, payment_id, form, Undo::Unapply).await
}

pub(crate) async fn reverse(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path(payment_id): Path<String>,
    Form(form): Form<UndoForm>,
) -> Response {
    undo(&web, &headers, payment_id, form, Undo::Reverse).await
}

async fn undo(
    web: &super::Web,
    headers: &HeaderMap,
    payment_id: String,
    form: UndoForm,
    what: Undo,
) -> Response {
    let doing = match what {
        Undo::Unapply => "unapply payments",
        Undo::Reverse => "reverse returned payments",
    };
    let who = match checked_post(web, headers, &form.csrf, doing).await {
        Ok(who) => who,
        Err(page) => return page,
    };
    let auth = web.auth.enabled();
    let refused = |status, message: &str| {
        error_page(
            status,
            Some(&who),
            auth,
            "Refused",
            &format!("{message} Nothing was changed."),
        )
    };
    if form.confirm.trim() != payment_id {
        return refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The payment id typed to confirm does not match this payment.",
        );
    }
    // The service requires the unapply note; the workbench also requires the return's reason,
    // which the AR system's call may leave out but an analyst must give.
    if matches!(what, Undo::Reverse) && form.reason.trim().is_empty() {
        return refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Say why the payment is reversed (the reason).",
        );
    }
    let by = Actor {
        kind: ActorKind::Analyst,
        name: who.principal.name.clone(),
    };
    let id = url_encode(&payment_id);
    let result = match what {
        Undo::Unapply => web
            .service
            .unapply_payment(UnapplyRequest {
                payment_id: payment_id.clone(),
                note: form.note,
                by,
            })
            .await
            .map(|_| "unapplied"),
        Undo::Reverse => web
            .service
            .reverse_payment(ReverseRequest {
                payment_id: payment_id.clone(),
                return_code: form.return_code.trim().to_string(),
                reason: form.reason,
                by,
            })
            .await
            .map(|_| "reversed"),
    };
    match result {
        Ok(done) => {
            tracing::info!(analyst = %who.principal.name, payment_id = %payment_id, done, "payment undone from the workbench");
            Redirect::to(&format!("/payments/{id}?done={done}")).into_response()
        }
        Err(e) => {
            let (status, message) = refusal(&e);
            refused(status, &format!("{message}."))
        }
    }
}
