//! The queue: open review items, highest priority (amount and age) first, with filters, counts,
//! the cash waiting and the items past the SLA.

use super::page::{
    Nav, REASONS, age, cash, cash_lines, instant, layout, percent, reason_badge, reason_from_key,
    reason_key, reason_label, resolved_banner, sla_words,
};
use super::{Shared, error_page, html, refusal, to_login, url_encode};
use crate::domain::ReviewReason;
use crate::io::parse_money;
use crate::service::{OwnerFilter, ReviewFilter, ReviewState, now};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html as m;
use rust_decimal::Decimal;
use serde::Deserialize;

/// Items per page.
const PAGE: u32 = 50;

/// The queue's query string, as typed: a value that does not parse is reported, not a 400.
#[derive(Deserialize, Default, Clone)]
pub(crate) struct QueueQuery {
    #[serde(default)]
    customer: String,
    #[serde(default)]
    min: String,
    #[serde(default)]
    max: String,
    #[serde(default)]
    min_age: String,
    #[serde(default)]
    max_age: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    resolved: String,
    /// `me`, `none` (nobody's), or empty for anyone's.
    #[serde(default)]
    owner: String,
    #[serde(default)]
    page: String,
    /// A payment just resolved, to confirm on the page.
    #[serde(default)]
    done: String,
}

impl QueueQuery {
    /// The filter, with `me` the signed-in analyst, and what could not be read.
    fn filter(&self, me: &str) -> (ReviewFilter, Vec<String>) {
        let mut problems = Vec::new();
        let mut amount = |label: &str, v: &str| -> Option<Decimal> {
            let v = v.trim();
            if v.is_empty() {
                return None;
            }
            parse_money(v)
                .map_err(|e| problems.push(format!("{label}: {e}")))
                .ok()
        };
        let min_amount = amount("Minimum amount", &self.min);
        let max_amount = amount("Maximum amount", &self.max);
        let mut days = |label: &str, v: &str| -> Option<u32> {
            let v = v.trim();
            if v.is_empty() {
                return None;
            }
            v.parse()
                .map_err(|_| problems.push(format!("{label}: {v:?} is not a number of days")))
                .ok()
        };
        let min_age_days = days("Minimum age", &self.min_age);
        let max_age_days = days("Maximum age", &self.max_age);
        let reason = match self.reason.trim() {
            "" => None,
            k => {
                let r = reason_from_key(k);
                if r.is_none() {
                    problems.push(format!("Reason: {k:?} is not a review reason"));
                }
                r
            }
        };
        let owner = match self.owner.trim() {
            "" => None,
            "me" => Some(OwnerFilter::Analyst(me.to_string())),
            "none" => Some(OwnerFilter::Unassigned),
            other => {
                problems.push(format!("Owner: {other:?} is not me or none"));
                None
            }
        };
        let page: u32 = self.page.trim().parse().unwrap_or(0);
        (
            ReviewFilter {
                owner,
                customer_id: Some(self.customer.trim().to_string()).filter(|c| !c.is_empty()),
                min_amount,
                max_amount,
                min_age_days,
                max_age_days,
                reason,
                include_resolved: !self.resolved.is_empty(),
                limit: PAGE,
                offset: page.saturating_mul(PAGE),
                now: now(),
            },
            problems,
        )
    }

    /// This query with another reason and the first page: the links of the reason tabs.
    fn with_reason(&self, r: Option<ReviewReason>) -> String {
        let mut q = self.clone();
        q.reason = r.map(reason_key).unwrap_or_default().to_string();
        q.page.clear();
        q.done.clear();
        q.href()
    }

    fn with_page(&self, page: u32) -> String {
        let mut q = self.clone();
        q.page = page.to_string();
        q.done.clear();
        q.href()
    }

    fn href(&self) -> String {
        let pairs = [
            ("customer", &self.customer),
            ("min", &self.min),
            ("max", &self.max),
            ("min_age", &self.min_age),
            ("max_age", &self.max_age),
            ("reason", &self.reason),
            ("resolved", &self.resolved),
            ("owner", &self.owner),
            ("page", &self.page),
        ];
        let q: Vec<String> = pairs
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| format!("{k}={}", url_encode(v.trim())))
            .collect();
        if q.is_empty() {
            "/queue".into()
        } else {
            format!("/queue?{}", q.join("&"))
        }
    }
}

pub(crate) async fn page(
    State(web): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<QueueQuery>,
) -> Response {
    let Some(who) = web.analyst(&headers).await else {
        return to_login(&uri.to_string());
    };
    let auth = web.auth.enabled();
    let (filter, problems) = q.filter(&who.principal.name);
    let at = filter.now;
    let offset = filter.offset;
    let limits = web.service.sla();
    let listed = web.service.review_items(filter.clone()).await;
    let totals = web
        .service
        .review_totals(filter.clone(), limits.clone())
        .await;
    let ((items, total), totals) = match (listed, totals) {
        (Ok(l), Ok(t)) => (l, t),
        (Err(e), _) | (_, Err(e)) => {
            let (status, message) = refusal(&e);
            return error_page(
                status,
                Some(&who),
                auth,
                "The queue could not be read",
                &message,
            );
        }
    };
    let done = match q.done.trim() {
        "" => None,
        id => web.service.review_item(id.to_string()).await.ok(),
    };
    let names: Vec<Option<String>> = items
        .iter()
        .map(|i| {
            i.customer_id
                .as_deref()
                .and_then(|c| web.service.customer_name(c))
        })
        .collect();
    let all_reasons: u64 = totals.by_reason.iter().map(|(_, n)| n).sum();
    let sla = sla_words(&limits);
    let page_no = offset / PAGE;
    let pages = total.div_ceil(u64::from(PAGE)).max(1);
    let body = m! {
        @if let Some(d) = &done { (resolved_banner(d)) }
        div.page-head {
            h1 { "Review queue" }
            form.find method="get" action="/payments" {
                label { "Payment " input type="search" name="id" placeholder="payment id" maxlength="128"; }
                button.quiet type="submit" { "Open" }
            }
            form.find method="get" action="/customers" {
                label { "Waiting cash of " input type="search" name="id" placeholder="customer id" maxlength="128"; }
                button.quiet type="submit" { "Open" }
            }
            div.stats {
                div.stat { span.value { (total) } span.label { @if filter.include_resolved { "items" } @else { "open items" } } }
                div.stat { span.value { (cash_lines(totals.by_currency.iter().map(|(c, _, s)| (c, s)))) } span.label { "unapplied cash" } }
                div.stat class=[(totals.past_sla > 0).then_some("overdue")] {
                    span.value { (totals.past_sla) } span.label { "past the SLA (" (sla) ")" }
                }
            }
        }
        @if !problems.is_empty() {
            div.banner.error role="alert" {
                "Some filters were ignored: "
                @for p in &problems { br; (p) }
            }
        }
        nav.tabs aria-label="Why in review" {
            a href=(q.with_reason(None)) class=[filter.reason.is_none().then_some("current")] {
                "All " span.count { (all_reasons) }
            }
            @for r in REASONS {
                @let n = totals.by_reason.iter().find(|(x, _)| *x == Some(r)).map_or(0, |(_, n)| *n);
                @if n > 0 || filter.reason == Some(r) {
                    a href=(q.with_reason(Some(r))) class=[(filter.reason == Some(r)).then_some("current")] {
                        (reason_label(Some(r))) " " span.count { (n) }
                    }
                }
            }
        }
        form.filters method="get" action="/queue" {
            input type="hidden" name="reason" value=(q.reason);
            label { "Customer id" input #filter-customer type="text" name="customer" value=(q.customer) placeholder="e.g. C0042"; }
            label { "Amount from" input type="text" inputmode="decimal" name="min" value=(q.min) placeholder="0.00"; }
            label { "to" input type="text" inputmode="decimal" name="max" value=(q.max); }
            label { "Age from (days)" input type="number" min="0" name="min_age" value=(q.min_age); }
            label { "to" input type="number" min="0" name="max_age" value=(q.max_age); }
            label { "Owner" select name="owner" {
                option value="" selected[q.owner.trim().is_empty()] { "anyone" }
                option value="me" selected[q.owner.trim() == "me"] { "mine" }
                option value="none" selected[q.owner.trim() == "none"] { "nobody's" }
            } }
            label.check { input type="checkbox" name="resolved" value="1" checked[!q.resolved.is_empty()]; "include resolved" }
            button type="submit" { "Filter" }
            a.button.quiet href="/queue" { "Clear" }
        }
        @if items.is_empty() {
            div.card.empty {
                p { "Nothing waits for review with these filters." }
            }
        } @else {
            table.queue data-queue {
                thead { tr {
                    th.num { "#" }
                    th { "Payment" }
                    th { "Customer" }
                    th { "Why in review" }
                    th.num { "Amount" }
                    th.num { "Confidence" }
                    th { "Owner" }
                    th { "Waiting" }
                } }
                tbody {
                    @for (i, (item, name)) in items.iter().zip(&names).enumerate() {
                        @let overdue = item.state == ReviewState::Open && limits.overdue(item.reason, item.created_at, at);
                        @let href = format!("/items/{}", url_encode(&item.payment_id));
                        tr data-href=(href) class=[(item.state == ReviewState::Resolved).then_some("resolved")] {
                            td.num.muted { (u64::from(offset) + i as u64 + 1) }
                            td { a href=(href) { (item.payment_id) } }
                            td {
                                @match (&item.customer_id, name) {
                                    (Some(c), Some(n)) => { (n) br; span.muted.small { (c) } }
                                    (Some(c), None) => { (c) }
                                    (None, _) => { span.muted { "unknown" } }
                                }
                            }
                            td { (reason_badge(item.reason)) }
                            td.num.amount { (cash(item.currency, item.amount)) }
                            td.num { (percent(item.confidence)) }
                            td { @match &item.owner { Some(o) => { (o) } None => { span.muted { "—" } } } }
                            td {
                                @if item.state == ReviewState::Resolved {
                                    span.badge.done { "resolved" }
                                } @else {
                                    span title=(instant(item.created_at)) { (age(item.created_at, at)) }
                                    @if overdue { " " span.badge.overdue { "past SLA" } }
                                }
                            }
                        }
                    }
                }
            }
            @if pages > 1 {
                nav.pager {
                    @if page_no > 0 { a href=(q.with_page(page_no - 1)) { "← Previous" } }
                    span.muted { "Page " (page_no + 1) " of " (pages) }
                    @if u64::from(page_no) + 1 < pages { a href=(q.with_page(page_no + 1)) { "Next →" } }
                }
            }
        }
    };
    html(
        StatusCode::OK,
        layout("Review queue", Nav::Queue, Some(&who), auth, body),
    )
}

#[derive(Deserialize, Default)]
pub(crate) struct NextQuery {
    #[serde(default)]
    skip: String,
    #[serde(default)]
    done: String,
}

/// The open item of highest priority other than `skip`: the "next item" of the workbench.
pub(crate) async fn next(
    State(web): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<NextQuery>,
) -> Response {
    let Some(who) = web.analyst(&headers).await else {
        return to_login(&uri.to_string());
    };
    match web.service.next_open_item(q.skip.trim()).await {
        Ok(target) => {
            let done = if q.done.trim().is_empty() {
                String::new()
            } else {
                format!("done={}", url_encode(q.done.trim()))
            };
            let to = match (target, done.is_empty()) {
                (Some(id), true) => format!("/items/{}", url_encode(&id)),
                (Some(id), false) => format!("/items/{}?{done}", url_encode(&id)),
                (None, true) => "/queue".into(),
                (None, false) => format!("/queue?{done}"),
            };
            Redirect::to(&to).into_response()
        }
        Err(e) => {
            let (status, message) = refusal(&e);
            error_page(
                status,
                Some(&who),
                web.auth.enabled(),
                "No next item",
                &message,
            )
        }
    }
}
