//! A customer's cash that waits: unapplied and on-account balances per currency in age ranges,
//! the payments they come from, and applying a payment's waiting cash to the customer's open
//! invoices (the same call as gRPC `ApplyWaitingCash`: the service refuses more than waits or
//! more than an invoice has open, and audits who applied what).

use super::page::{Nav, cash, instant, layout, money};
use super::{
    Analyst, FindQuery, Shared, checked_post, error_page, find_page, html, refusal, to_login,
    url_encode,
};
use crate::domain::Invoice;
use crate::service::{AGE_BUCKETS, Actor, ActorKind, ApplyCashRequest, Waiting, WaitingCash};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html as m};
use rust_decimal::Decimal;
use serde::Deserialize;

/// Invoice rows of the apply form: a payment's waiting cash rarely goes to more.
const APPLY_ROWS: usize = 4;
/// Open items listed to choose from.
const MAX_OPEN_ROWS: usize = 200;

/// `/customers?id=...`: the find box's target.
pub(crate) async fn find(
    State(web): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<FindQuery>,
) -> Response {
    find_page(&web, &headers, &uri, &q.id, "customer", |id| {
        format!("/customers/{id}/cash")
    })
    .await
}

pub(crate) async fn page(
    State(web): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Path(customer_id): Path<String>,
    Query(q): Query<FindQuery>,
) -> Response {
    let Some(who) = web.analyst(&headers).await else {
        return to_login(&uri.to_string());
    };
    let auth = web.auth.enabled();
    let waiting = match web
        .service
        .waiting_cash(customer_id.clone(), crate::service::now())
        .await
    {
        Ok(w) => w,
        Err(e) => {
            let (status, message) = refusal(&e);
            return error_page(status, Some(&who), auth, "No waiting cash", &message);
        }
    };
    let open = web
        .service
        .customer_open_items(&customer_id)
        .map(|(_, mut items)| {
            items.truncate(MAX_OPEN_ROWS);
            items
        })
        .unwrap_or_default();
    let done = Some(q.done.trim()).filter(|d| !d.is_empty());
    html(
        StatusCode::OK,
        layout(
            &format!("Waiting cash of {customer_id}"),
            Nav::None,
            Some(&who),
            auth,
            body(&who, &waiting, &open, done),
        ),
    )
}

fn kind_word(k: Waiting) -> &'static str {
    match k {
        Waiting::Unapplied => "unapplied",
        Waiting::OnAccount => "on account",
    }
}

fn body(who: &Analyst, w: &WaitingCash, open: &[Invoice], done: Option<&str>) -> Markup {
    let cid = url_encode(&w.customer_id);
    m! {
        @if let Some(p) = done {
            div.banner.ok role="status" data-done { "Applied the waiting cash of payment " (p) "." }
        }
        div.page-head {
            div {
                h1 { "Cash waiting for " (w.customer_id) }
                p.muted { "Unapplied remainders and cash kept on account, from the postings in force, \
                           aged from when each payment's cash was first posted." }
            }
        }
        @if w.balances.is_empty() {
            p.muted #nothing-waiting { "No cash waits for this customer." }
        } @else {
            table.compact.balances {
                thead { tr {
                    th { "Currency" } th { "Where" }
                    @for (label, _, _) in AGE_BUCKETS { th.num { (label) " days" } }
                    th.num { "Total" }
                } }
                tbody {
                    @for (c, b) in &w.balances {
                        @for (word, row) in [("unapplied", &b.unapplied), ("on account", &b.on_account)] {
                            tr {
                                td { (c) } td { (word) }
                                @for v in row.iter() { td.num.amount { (money(*v)) } }
                                td.num.amount { strong { (money(row.iter().copied().sum::<Decimal>())) } }
                            }
                        }
                    }
                }
            }
        }
        @if !w.payments.is_empty() {
            h2 { "Payments with cash waiting" }
            table.compact.waiting {
                thead { tr { th { "Payment" } th { "Where" } th.num { "Amount" } th { "Since" } th { "Age" } } }
                tbody {
                    @for p in &w.payments {
                        tr data-payment=(p.payment_id) {
                            td { a href={"/payments/" (url_encode(&p.payment_id))} { (p.payment_id) } }
                            td { (kind_word(p.kind)) }
                            td.num.amount { (cash(p.currency, p.amount)) }
                            td { (instant(p.since)) }
                            td { (AGE_BUCKETS.get(p.bucket).map_or("", |b| b.0)) " days" }
                        }
                    }
                }
            }
            h2 { "Apply waiting cash to invoices" }
            form.card method="post" action={"/customers/" (cid) "/cash/apply"} data-apply-cash {
                input type="hidden" name="csrf" value=(who.csrf);
                label { "Payment "
                    select name="payment_id" required {
                        @for p in &w.payments {
                            option value=(p.payment_id) { (p.payment_id) " · " (kind_word(p.kind)) " · " (cash(p.currency, p.amount)) }
                        }
                    }
                }
                table.compact {
                    thead { tr { th { "Invoice" } th.num { "Cash to apply" } } }
                    tbody {
                        @for i in 0..APPLY_ROWS {
                            tr {
                                td { input type="text" name={"invoice_" (i)} list="open-invoices" maxlength="64"; }
                                td.num { input type="text" name={"amount_" (i)} inputmode="decimal" maxlength="24"; }
                            }
                        }
                    }
                }
                datalist #open-invoices {
                    @for inv in open { option value=(inv.id) { (cash(inv.currency, inv.open_amount)) " open" } }
                }
                label { "Note (required) " input type="text" name="note" required maxlength="300"; }
                button.primary type="submit" { "Apply" }
            }
        }
    }
}

/// The apply form: up to [`APPLY_ROWS`] invoice and amount pairs, blank rows ignored.
#[derive(Deserialize)]
pub(crate) struct ApplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    payment_id: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    invoice_0: String,
    #[serde(default)]
    amount_0: String,
    #[serde(default)]
    invoice_1: String,
    #[serde(default)]
    amount_1: String,
    #[serde(default)]
    invoice_2: String,
    #[serde(default)]
    amount_2: String,
    #[serde(default)]
    invoice_3: String,
    #[serde(default)]
    amount_3: String,
}

impl ApplyForm {
    /// The filled rows as `(invoice, cash)`, or which row is wrong.
    fn allocations(&self) -> Result<Vec<(String, Decimal)>, String> {
        let rows = [
            (&self.invoice_0, &self.amount_0),
            (&self.invoice_1, &self.amount_1),
            (&self.invoice_2, &self.amount_2),
            (&self.invoice_3, &self.amount_3),
        ];
        let mut out = Vec::new();
        for (k, (inv, amount)) in rows.into_iter().enumerate() {
            let (inv, amount) = (inv.trim(), amount.trim());
            if inv.is_empty() && amount.is_empty() {
                continue;
            }
            if inv.is_empty() {
                return Err(format!("row {}: an amount without an invoice", k + 1));
            }
            let cash: Decimal = amount
                .replace(',', "")
                .parse()
                .map_err(|_| format!("row {} ({inv}): {amount:?} is not an amount", k + 1))?;
            out.push((inv.to_string(), cash));
        }
        if out.is_empty() {
            return Err("name at least one invoice and the cash to apply to it".into());
        }
        Ok(out)
    }
}

pub(crate) async fn apply(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path(customer_id): Path<String>,
    Form(form): Form<ApplyForm>,
) -> Response {
    let who = match checked_post(&web, &headers, &form.csrf, "apply waiting cash").await {
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
            &format!("{message}. Nothing was changed."),
        )
    };
    let allocations = match form.allocations() {
        Ok(a) => a,
        Err(e) => return refused(StatusCode::UNPROCESSABLE_ENTITY, &e),
    };
    if form.note.trim().is_empty() {
        return refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Say why the cash is applied now (the note)",
        );
    }
    let payment_id = form.payment_id.trim().to_string();
    let req = ApplyCashRequest {
        payment_id: payment_id.clone(),
        allocations,
        by: Actor {
            kind: ActorKind::Analyst,
            name: who.principal.name.clone(),
        },
        note: form.note,
    };
    match web.service.apply_waiting_cash(req).await {
        Ok(_) => {
            tracing::info!(analyst = %who.principal.name, payment_id = %payment_id, customer_id = %customer_id, "waiting cash applied from the workbench");
            Redirect::to(&format!(
                "/customers/{}/cash?done={}",
                url_encode(&customer_id),
                url_encode(&payment_id)
            ))
            .into_response()
        }
        Err(e) => {
            let (status, message) = refusal(&e);
            refused(status, &message)
        }
    }
}
