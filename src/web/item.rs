//! One review item: the payment and its remittance as received, the engine's ranked suggestions
//! with their explanations, the customer's open items in an allocation table, the ways to resolve
//! it, and its history.

use super::form::{ResolveForm, RowInput};
use super::page::{
    Nav, age, cash, describe_resolution, instant, layout, money, percent, reason_badge,
    reason_label, resolved_banner,
};
use super::{
    Analyst, Shared, Web, checked_post, error_page, html, refusal, refusal_for, to_login,
    url_encode,
};
use crate::domain::{Allocation, Currency, Invoice, Payment, Suggestion};
use crate::service::{AuditEvent, Resolution, ReviewRecord, ReviewState};
use crate::service::{ResolveOutcome, ResolveRequest};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html as m};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::HashMap;

/// Customer open items listed at most in the allocation table.
const MAX_OPEN_ROWS: usize = 300;
/// Rows for invoices typed by id (another customer's, say).
const FREE_ROWS: usize = 2;
/// Deduction reason codes offered as you type (X12 CARC-style adjustment codes the formats
/// carry); any other code may be typed.
const REASON_CODES: [(&str, &str); 8] = [
    ("01", "pricing"),
    ("04", "damaged goods"),
    ("05", "short shipment"),
    ("11", "returns"),
    ("12", "promotion / allowance"),
    ("20", "freight"),
    ("BF", "bank fee"),
    ("DP", "disputed"),
];

#[derive(Deserialize, Default)]
pub(crate) struct ItemQuery {
    /// Show this customer's open items instead of the decided customer's.
    #[serde(default)]
    customer: String,
    /// Load suggestion k into the allocation table.
    #[serde(default)]
    load: String,
    /// The item resolved just before this one was opened, to confirm.
    #[serde(default)]
    done: String,
}

pub(crate) async fn page(
    State(web): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Path(payment_id): Path<String>,
    Query(q): Query<ItemQuery>,
) -> Response {
    let Some(who) = web.analyst(&headers).await else {
        return to_login(&uri.to_string());
    };
    let view = View {
        customer: Some(q.customer.trim().to_string()).filter(|c| !c.is_empty()),
        load: q.load.trim().parse().ok(),
        done: Some(q.done.trim().to_string()).filter(|d| !d.is_empty()),
        submitted: None,
    };
    render(&web, &who, &payment_id, view, StatusCode::OK).await
}

/// What an item page shows besides the item.
struct View {
    customer: Option<String>,
    load: Option<usize>,
    done: Option<String>,
    /// A refused form, shown again as typed, with why.
    submitted: Option<(ResolveForm, String)>,
}

/// One row of the allocation table.
struct TableRow {
    key: usize,
    invoice: Option<Invoice>,
    input: RowInput,
    /// Which suggestions name this invoice (1-based ranks).
    suggested: Vec<usize>,
}

async fn render(
    web: &Web,
    who: &Analyst,
    payment_id: &str,
    view: View,
    status: StatusCode,
) -> Response {
    let auth = web.auth.enabled();
    let item = match web.service.review_item(payment_id.to_string()).await {
        Ok(i) => i,
        Err(e) => {
            let (status, message) = refusal(&e);
            return error_page(status, Some(who), auth, "No such review item", &message);
        }
    };
    let history = match web
        .service
        .audit_events(Some(payment_id.to_string()), 0, 500)
        .await
    {
        Ok(h) => h,
        Err(e) => {
            let (status, message) = refusal(&e);
            return error_page(
                status,
                Some(who),
                auth,
                "The history could not be read",
                &message,
            );
        }
    };
    let done = match &view.done {
        Some(d) => web.service.review_item(d.clone()).await.ok(),
        None => None,
    };
    let next = web.service.next_open_item(payment_id).await.ok().flatten();
    let customer_id = view
        .customer
        .clone()
        .or_else(|| item.decision.customer_id.clone());
    let customer = customer_id
        .as_deref()
        .and_then(|c| web.service.customer_open_items(c));
    let rows = table_rows(
        web,
        &item,
        customer.as_ref().map(|(_, o)| o.as_slice()),
        &view,
    );
    let mut suggested_ids: Vec<&str> = Vec::new();
    for s in &item.decision.suggestions {
        for a in &s.allocations {
            suggested_ids.push(&a.invoice_id);
        }
    }
    let invoices: HashMap<String, Invoice> = web
        .service
        .invoices_now(suggested_ids)
        .into_iter()
        .map(|i| (i.id.clone(), i))
        .collect();
    let names = |c: &str| web.service.customer_name(c);
    let decided_name = item.decision.customer_id.as_deref().and_then(names);
    let now = crate::service::now();
    // A payment the bank returned has left the queue: nothing waits and nothing can be resolved.
    let returned = item.summary.state == ReviewState::Returned;
    let overdue = item.resolution.is_none()
        && !returned
        && web
            .service
            .sla()
            .overdue(item.summary.reason, item.summary.created_at, now);
    let pending = web.service.pending_approval(payment_id);
    let p = &item.payment;
    let body = m! {
        @if let Some(d) = &done { (resolved_banner(d)) }
        div.page-head {
            div {
                p.crumbs { a href="/queue" { "Queue" } " / " (payment_id) }
                h1 { "Payment " (payment_id) }
                div.meta {
                    span.big-amount { (cash(p.currency, p.amount)) }
                    (reason_badge(item.summary.reason))
                    @if returned { span.badge.done { "returned by the bank" } }
                    @else if item.resolution.is_some() { span.badge.done { "resolved" } }
                    @else if pending.is_some() { span.badge.overdue { "awaiting approval" } }
                    @else {
                        span.muted { "waiting " (age(item.summary.created_at, now)) }
                        @if overdue { span.badge.overdue { "past SLA" } }
                    }
                }
                @if item.summary.state == ReviewState::Open {
                    (super::assign::card(payment_id, item.summary.owner.as_deref(), &who.principal.name, &who.csrf))
                }
            }
            div.actions {
                @if let Some(n) = &next {
                    a.button data-next href={"/items/" (url_encode(n))} { "Next item " kbd { "n" } }
                }
            }
        }
        div.columns {
            div.col-main {
                @if let Some((_, e)) = &view.submitted {
                    div.banner.error role="alert" #resolve-error {
                        strong { "Not resolved. " } (e) @if !e.ends_with('.') { "." } " Nothing was changed."
                    }
                }
                @match &item.resolution {
                    Some(r) => { (resolution_card(r, p)) }
                    None if returned => {
                        p.muted { "The bank returned this payment; it left the queue. "
                            (item.decision.explanation.last().cloned().unwrap_or_default()) }
                    }
                    None if pending.is_some() => {
                        @if let Some(a) = &pending { (super::approvals::card(who, a)) }
                    }
                    None => {
                        (suggestions_card(&item.decision.suggestions, &invoices, p.currency, &names))
                        (resolve_card(who, &item, customer.as_ref().map(|(c, _)| c), customer_id.as_deref(), &rows, &view))
                    }
                }
            }
            div.col-side {
                (payment_card(p, &item, decided_name.as_deref()))
                (history_card(&item, &history, p.currency))
            }
        }
    };
    html(
        status,
        layout(
            &format!("Payment {payment_id}"),
            Nav::Queue,
            Some(who),
            auth,
            body,
        ),
    )
}

/// The rows of the allocation table: the suggested invoices first, then the customer's other
/// open items, then rows to type an invoice id; filled from the form being shown again, else
/// from the suggestion asked for (the first by default).
fn table_rows(
    web: &Web,
    item: &ReviewRecord,
    open: Option<&[Invoice]>,
    view: &View,
) -> Vec<TableRow> {
    let suggestions = &item.decision.suggestions;
    let mut ids: Vec<String> = Vec::new();
    for s in suggestions {
        for a in &s.allocations {
            if !ids.contains(&a.invoice_id) {
                ids.push(a.invoice_id.clone());
            }
        }
    }
    let submitted: Vec<&RowInput> = view
        .submitted
        .as_ref()
        .map(|(f, _)| f.used_rows())
        .unwrap_or_default();
    for r in &submitted {
        let id = r.invoice_id.trim().to_string();
        if !id.is_empty() && !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut invoices: Vec<Invoice> = web.service.invoices_now(ids.iter().map(String::as_str));
    for inv in open.unwrap_or_default().iter().take(MAX_OPEN_ROWS) {
        if !invoices.iter().any(|i| i.id == inv.id) {
            invoices.push(inv.clone());
        }
    }
    let fill: Option<&Suggestion> = if view.submitted.is_some() {
        None
    } else {
        suggestions.get(view.load.unwrap_or(0))
    };
    let mut rows: Vec<TableRow> = invoices
        .into_iter()
        .enumerate()
        .map(|(key, inv)| {
            let mut input = RowInput {
                key,
                invoice_id: inv.id.clone(),
                ..Default::default()
            };
            if let Some(a) =
                fill.and_then(|s| s.allocations.iter().find(|a| a.invoice_id == inv.id))
            {
                input = row_of(key, a);
            }
            if let Some(r) = submitted.iter().find(|r| r.invoice_id.trim() == inv.id) {
                input = RowInput {
                    key,
                    invoice_id: inv.id.clone(),
                    ..(*r).clone()
                };
            }
            let suggested = suggestions
                .iter()
                .enumerate()
                .filter(|(_, s)| s.allocations.iter().any(|a| a.invoice_id == inv.id))
                .map(|(k, _)| k + 1)
                .collect();
            TableRow {
                key,
                invoice: Some(inv),
                input,
                suggested,
            }
        })
        .collect();
    // Typed ids the ledger does not hold come back as typed, for the analyst to correct.
    let unknown: Vec<&RowInput> = submitted
        .iter()
        .copied()
        .filter(|r| {
            !rows
                .iter()
                .any(|t| t.input.invoice_id == r.invoice_id.trim())
        })
        .collect();
    let base = rows.len();
    for (i, r) in unknown.into_iter().enumerate() {
        rows.push(TableRow {
            key: base + i,
            invoice: None,
            input: RowInput {
                key: base + i,
                ..r.clone()
            },
            suggested: vec![],
        });
    }
    let base = rows.len();
    for i in 0..FREE_ROWS {
        rows.push(TableRow {
            key: base + i,
            invoice: None,
            input: RowInput {
                key: base + i,
                ..Default::default()
            },
            suggested: vec![],
        });
    }
    rows
}

fn row_of(key: usize, a: &Allocation) -> RowInput {
    let nz = |d: Decimal| {
        if d.is_zero() {
            String::new()
        } else {
            d.to_string()
        }
    };
    RowInput {
        key,
        invoice_id: a.invoice_id.clone(),
        amount: a.amount.to_string(),
        discount: nz(a.discount),
        deduction: nz(a.deduction),
        reason_code: a.reason_code.clone().unwrap_or_default(),
    }
}

fn payment_card(p: &Payment, item: &ReviewRecord, customer_name: Option<&str>) -> Markup {
    let d = &item.decision;
    m! {
        section.card {
            h2 { "Payment as received" }
            dl.facts {
                dt { "Amount" } dd.amount { (cash(p.currency, p.amount)) }
                dt { "Payment date" } dd { (p.payment_date.map(|d| d.to_string()).unwrap_or_else(|| "—".into())) }
                dt { "Payer" } dd { (p.payer.name.as_deref().unwrap_or("—")) }
                dt { "Account" } dd.mono { (p.payer.account.as_deref().unwrap_or("—")) }
                dt { "Format" } dd { (p.format) }
                dt { "Received" } dd { (instant(item.summary.created_at)) }
            }
            @if !p.lines.is_empty() {
                h3 { "Remittance lines" }
                @let has_invoice_amount = p.lines.iter().any(|l| l.invoice_amount.is_some());
                @let has_discount = p.lines.iter().any(|l| l.discount.is_some());
                @let has_adjustments = p.lines.iter().any(|l| !l.adjustments.is_empty());
                div.table-x { table.compact {
                    thead { tr {
                        th { "Reference" } th.num { "Paid" }
                        @if has_invoice_amount { th.num { "Invoice amt" } }
                        @if has_discount { th.num { "Discount" } }
                        @if has_adjustments { th { "Adjustments" } }
                    } }
                    tbody {
                        @for l in &p.lines {
                            tr {
                                td.mono { (l.reference.as_deref().unwrap_or("—")) }
                                td.num { (l.amount_paid.map(money).unwrap_or_default()) }
                                @if has_invoice_amount { td.num { (l.invoice_amount.map(money).unwrap_or_default()) } }
                                @if has_discount { td.num { (l.discount.map(money).unwrap_or_default()) } }
                                @if has_adjustments {
                                    td {
                                        @for a in &l.adjustments {
                                            span.small {
                                                (money(a.amount))
                                                @if let Some(c) = &a.reason_code { " code " (c) }
                                                @if let Some(t) = &a.text { " (" (t) ")" }
                                            }
                                            br;
                                        }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
            @if !p.free_text.is_empty() {
                h3 { "Memo" }
                @for t in &p.free_text { pre.memo { (t) } }
            }
            @if !p.warnings.is_empty() {
                h3 { "Parser warnings" }
                ul.warnings { @for w in &p.warnings { li { (w) } } }
            }
            h3 { "Engine" }
            dl.facts {
                dt { "Customer" } dd {
                    @match (&d.customer_id, customer_name) {
                        (Some(c), Some(n)) => { (n) " " span.muted { "(" (c) ")" } }
                        (Some(c), None) => { (c) }
                        (None, _) => { span.muted { "not identified" } }
                    }
                }
                dt { "Why review" } dd { (reason_label(d.review_reason)) }
                dt { "Confidence" } dd { (percent(d.confidence)) }
                dt { "Model" } dd.small { (d.model_version) " · " (d.rules_version) }
                dt { "Postings" } dd { a href={"/payments/" (url_encode(&d.payment_id))} data-postings-link { "Postings, unapply, reverse" } }
            }
            @if !d.explanation.is_empty() {
                ul.explain { @for e in &d.explanation { li { (e) } } }
            }
        }
    }
}

fn suggestions_card(
    suggestions: &[Suggestion],
    invoices: &HashMap<String, Invoice>,
    currency: Currency,
    names: &dyn Fn(&str) -> Option<String>,
) -> Markup {
    m! {
        section.card {
            h2 { "Suggestions" }
            @if suggestions.is_empty() {
                p.muted { "The engine found no allocation to suggest. Build one below, or leave the cash unapplied." }
            }
            @for (k, s) in suggestions.iter().enumerate() {
                div class={"suggestion" @if k == 0 { " top" }} {
                    div.suggestion-head {
                        span.rank { "#" (k + 1) }
                        span.confidence {
                            (super::chart::meter(s.confidence))
                            (percent(s.confidence)) " confidence"
                        }
                        span.muted { "leaves " (cash(currency, s.unapplied)) " unapplied" }
                        span.spacer {}
                        a.button.quiet href={"?load=" (k)} { "Edit" }
                        button form="resolve" type="submit" name="action" value={"accept:" (k)}
                            class={"button" @if k == 0 { " primary" }}
                            data-accept-top[k == 0] {
                            "Accept #" (k + 1) @if k == 0 { " " kbd { "a" } }
                        }
                    }
                    table.compact {
                        thead { tr { th { "Invoice" } th { "Customer" } th.num { "Open now" } th.num { "Cash" } th.num { "Discount" } th.num { "Deduction" } th { "Code" } } }
                        tbody {
                            @for a in &s.allocations {
                                @let inv = invoices.get(&a.invoice_id);
                                tr {
                                    td.mono { (inv.map_or(a.invoice_id.as_str(), |i| i.number.as_str())) }
                                    td.small { (inv.and_then(|i| names(&i.customer_id)).unwrap_or_default()) }
                                    td.num { (inv.map(|i| money(i.open_amount)).unwrap_or_else(|| "not in ledger".into())) }
                                    td.num.amount { (money(a.amount)) }
                                    td.num { @if !a.discount.is_zero() { (money(a.discount)) } }
                                    td.num { @if !a.deduction.is_zero() { (money(a.deduction)) } }
                                    td { (a.reason_code.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                    @if !s.explanation.is_empty() {
                        ul.explain { @for e in &s.explanation { li { (e) } } }
                    }
                }
            }
        }
    }
}

fn resolve_card(
    who: &Analyst,
    item: &ReviewRecord,
    customer: Option<&crate::domain::Customer>,
    customer_id: Option<&str>,
    rows: &[TableRow],
    view: &View,
) -> Markup {
    let p = &item.payment;
    let form = view.submitted.as_ref().map(|(f, _)| f);
    let prefilled: Decimal = rows
        .iter()
        .filter_map(|r| crate::io::parse_money(&r.input.amount).ok())
        .fold(Decimal::ZERO, |a, b| a.checked_add(b).unwrap_or(a));
    let unapplied = match form {
        Some(f) => f.unapplied.clone(),
        None => p
            .amount
            .checked_sub(prefilled)
            .map(|d| d.to_string())
            .unwrap_or_default(),
    };
    let note = form.map(|f| f.note.clone()).unwrap_or_default();
    let account = form
        .map(|f| f.account.clone())
        .or_else(|| item.decision.customer_id.clone())
        .unwrap_or_default();
    let action = format!("/items/{}/resolve", url_encode(&item.summary.payment_id));
    m! {
        section.card #resolve-card {
            h2 { "Resolve" }
            form #resolve method="post" action=(action) data-resolve {
                input type="hidden" name="csrf" value=(who.csrf);
                input type="hidden" name="analyst" value=(who.principal.name);
                h3 { "Allocation" }
                p.hint {
                    "Cash, discount and deduction per invoice; leave a row blank to skip it. "
                    "A deduction needs a reason code. No invoice may be relieved of more than it has open."
                }
                div.table-scroll {
                    table.alloc data-alloc data-payment=(p.amount) data-currency=(p.currency) {
                        thead { tr {
                            th { "Invoice" } th { "Due" } th.num { "Open" }
                            th.num { "Cash applied" } th.num { "Discount" } th.num { "Deduction" } th { "Reason code" } th { "" }
                        } }
                        tbody {
                            @for r in rows {
                                @let k = r.key;
                                tr data-row data-open=[r.invoice.as_ref().map(|i| i.open_amount.to_string())]
                                   class=[(!r.suggested.is_empty()).then_some("suggested")] {
                                    td {
                                        @match &r.invoice {
                                            Some(inv) => {
                                                input type="hidden" name={"inv." (k)} value=(inv.id);
                                                span.mono { (inv.number) }
                                                @for s in &r.suggested { " " span.badge.rank-badge title="named by this suggestion" { "#" (s) } }
                                                @if customer_id.is_some_and(|c| c != inv.customer_id) {
                                                    br; span.small.muted { "customer " (inv.customer_id) }
                                                }
                                                @if let Some(po) = &inv.po_number { br; span.small.muted { "PO " (po) } }
                                            }
                                            None => {
                                                input.id-input type="text" name={"inv." (k)} value=(r.input.invoice_id)
                                                    placeholder="another invoice id" aria-label="invoice id";
                                            }
                                        }
                                    }
                                    td.small.nowrap { (r.invoice.as_ref().map(|i| i.due_date.to_string()).unwrap_or_default()) }
                                    td.num { (r.invoice.as_ref().map(|i| money(i.open_amount)).unwrap_or_else(|| "—".into())) }
                                    td.num { input.amount-input type="text" inputmode="decimal" name={"amt." (k)} value=(r.input.amount) aria-label="cash applied"; }
                                    td.num { input.amount-input.narrow type="text" inputmode="decimal" name={"disc." (k)} value=(r.input.discount) aria-label="discount"; }
                                    td.num { input.amount-input.narrow type="text" inputmode="decimal" name={"ded." (k)} value=(r.input.deduction) aria-label="deduction"; }
                                    td { input.code-input type="text" name={"code." (k)} value=(r.input.reason_code) list="reason-codes" aria-label="reason code" maxlength="16"; }
                                    td.row-check data-check {}
                                }
                            }
                        }
                    }
                }
                div.balance {
                    div { span.label { "Payment" } span.amount { (money(p.amount)) } }
                    div { span.label { "Cash applied" } span.amount data-applied { "—" } }
                    div {
                        label.label for="unapplied" { "Unapplied (stays on the payment)" }
                        input #unapplied .amount-input type="text" inputmode="decimal" name="unapplied" value=(unapplied) data-auto[form.is_none()];
                    }
                    div.balance-check data-balance { span.muted { "Cash applied + unapplied must equal the payment." } }
                }
                datalist #reason-codes {
                    @for (c, label) in REASON_CODES { option value=(c) { (label) } }
                }
                div.form-actions {
                    button.primary type="submit" name="action" value="allocate" data-allocate { "Apply this allocation" }
                    span.muted.small {
                        "Customer's open items: "
                        @match customer {
                            Some(c) => { (c.name) " (" (c.id) ")" }
                            None => { "no customer identified" }
                        }
                    }
                }
                h3 { "Note" }
                label for="note" .hint { "Required unless you accept the first suggestion as it is: say why." }
                textarea #note name="note" rows="2" maxlength="2000" { (note) }
                h3 { "Or" }
                div.form-actions {
                    button type="submit" name="action" value="unapplied" data-leave { "Leave unapplied" }
                    span.or { "or" }
                    label.inline { "put on account of customer "
                        input.id-input type="text" name="account" value=(account) aria-label="customer id";
                    }
                    button type="submit" name="action" value="account" { "Put on account" }
                }
            }
            form.inline-form method="get" action="" {
                label { "Show the open items of another customer: "
                    input.id-input type="text" name="customer" value=(view.customer.as_deref().unwrap_or("")) placeholder="customer id";
                }
                button.quiet type="submit" { "Show" }
            }
        }
    }
}

fn resolution_card(r: &Resolution, p: &Payment) -> Markup {
    m! {
        section.card.resolved-card {
            h2 { "Resolved" }
            p.lead { (describe_resolution(r, p.currency)) }
            p.muted { "by " strong { (r.analyst) } " at " (instant(r.resolved_at)) }
            @if !r.allocations.is_empty() {
                table.compact {
                    thead { tr { th { "Invoice" } th.num { "Cash" } th.num { "Discount" } th.num { "Deduction" } th { "Code" } } }
                    tbody {
                        @for a in &r.allocations {
                            tr {
                                td.mono { (a.invoice_id) }
                                td.num.amount { (money(a.amount)) }
                                td.num { (money(a.discount)) }
                                td.num { (money(a.deduction)) }
                                td { (a.reason_code.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
            @if !r.note.is_empty() { blockquote.note { (r.note) } }
        }
    }
}

fn history_card(item: &ReviewRecord, events: &[AuditEvent], currency: Currency) -> Markup {
    m! {
        section.card #history {
            h2 { "History" }
            ol.timeline {
                li {
                    span.when { (instant(item.summary.created_at)) }
                    span.who { "engine" }
                    span.what { "sent to review (" (reason_label(item.decision.review_reason)) "), confidence " (percent(item.decision.confidence)) }
                }
                @for e in events {
                    @let r = &e.record;
                    li data-event=(r.action) {
                        span.when { (instant(r.at)) }
                        span.who { (r.actor) }
                        span.what {
                            @match serde_json::from_value::<Resolution>(r.after["resolution"].clone()) {
                                Ok(res) => { (describe_resolution(&res, currency)) }
                                Err(_) => {
                                    @match r.action.as_str() {
                                        "unapply" => { "unapplied: the cash was taken back and the item returned to the queue" }
                                        "reverse" => {
                                            "returned by the bank ("
                                            (r.after["return_code"].as_str().unwrap_or_default())
                                            @if let Some(why) = r.after["reason"].as_str().filter(|w| !w.is_empty()) { ": " (why) }
                                            ")"
                                        }
                                        other => { (other) }
                                    }
                                }
                            }
                        }
                        (open_amount_changes(&r.before, &r.after))
                        @if let Some(note) = r.after["resolution"]["note"].as_str().or(r.after["note"].as_str()).filter(|n| !n.is_empty()) {
                            blockquote.note { (note) }
                        }
                    }
                }
            }
        }
    }
}

/// The open amounts an audit event records before and after, side by side.
fn open_amount_changes(before: &serde_json::Value, after: &serde_json::Value) -> Markup {
    let Some(after_map) = after["open_amounts"].as_object() else {
        return m! {};
    };
    if after_map.is_empty() {
        return m! {};
    }
    m! {
        table.compact.changes {
            thead { tr { th { "Invoice" } th.num { "Open before" } th.num { "after" } } }
            tbody {
                @for (id, a) in after_map {
                    tr {
                        td.mono { (id) }
                        td.num { (before["open_amounts"][id].as_str().and_then(|s| s.parse::<Decimal>().ok()).map(money).unwrap_or_default()) }
                        td.num { (a.as_str().and_then(|s| s.parse::<Decimal>().ok()).map(money).unwrap_or_default()) }
                    }
                }
            }
        }
    }
}

/// Posts a resolution. Whatever is wrong, the analyst sees why and nothing changes: the origin,
/// session, CSRF token and role are checked before the form is read (`checked_post`), the actor is the session's, and every
/// rule about the money is the service's.
pub(crate) async fn resolve(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path(payment_id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let auth = web.auth.enabled();
    // The token as the form parser reads it (the last one sent), checked before the form is.
    let csrf = pairs
        .iter()
        .rev()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let who = match checked_post(&web, &headers, &csrf, "resolve review items").await {
        Ok(who) => who,
        Err(page) => return page,
    };
    let form = match ResolveForm::parse(pairs) {
        Ok(f) => f,
        Err(e) => {
            return error_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&who),
                auth,
                "Refused",
                &e,
            );
        }
    };
    if let Some(a) = form.analyst.as_deref().filter(|a| *a != who.principal.name) {
        tracing::warn!(analyst = %who.principal.name, claimed = %a, payment_id = %payment_id, "workbench post for another analyst refused");
        return error_page(
            StatusCode::FORBIDDEN,
            Some(&who),
            auth,
            "Refused",
            &format!(
                "This form acts as {a}, but you are signed in as {}. An analyst acts only as \
                 themself. Nothing was changed.",
                who.principal.name
            ),
        );
    }
    let action = match form.action() {
        Ok(a) => a,
        Err(e) => {
            return refused(
                &web,
                &who,
                &payment_id,
                form,
                e,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let invoices: Vec<String> = match &action {
        crate::service::ResolveAction::ApplyAllocation { allocations, .. } => {
            allocations.iter().map(|a| a.invoice_id.clone()).collect()
        }
        _ => vec![],
    };
    let req = ResolveRequest {
        payment_id: payment_id.clone(),
        analyst: who.principal.name.clone(),
        action,
        note: form.note.trim().to_string(),
    };
    match web.service.resolve(req).await {
        Ok(ResolveOutcome::Resolved(_)) => {
            tracing::info!(analyst = %who.principal.name, payment_id = %payment_id, "resolved from the workbench");
            let id = url_encode(&payment_id);
            Redirect::to(&format!("/next?skip={id}&done={id}")).into_response()
        }
        // Above the four-eyes limit: the item's page shows what waits, for whom.
        Ok(ResolveOutcome::AwaitingApproval(_)) => {
            tracing::info!(analyst = %who.principal.name, payment_id = %payment_id, "resolution awaits a second analyst");
            Redirect::to(&format!("/items/{}", url_encode(&payment_id))).into_response()
        }
        Err(e) => {
            let (status, message) = refusal_for(&e, &invoices);
            refused(&web, &who, &payment_id, form, message, status).await
        }
    }
}

/// The item page again, with the form as typed and why it was refused.
async fn refused(
    web: &Web,
    who: &Analyst,
    payment_id: &str,
    form: ResolveForm,
    message: String,
    status: StatusCode,
) -> Response {
    let view = View {
        customer: None,
        load: None,
        done: None,
        submitted: Some((form, message)),
    };
    render(web, who, payment_id, view, status).await
}
