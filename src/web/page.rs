//! The page shell and the formatting every page shares: money exactly as the decimals hold it,
//! instants in UTC, ages, review reasons in words.

use super::{Analyst, url_encode};
use crate::domain::{Currency, ReviewReason};
use crate::service::{Resolution, ResolutionAction, ReviewRecord};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use rust_decimal::Decimal;

/// Which tab of the navigation is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Queue,
    Approvals,
    Advices,
    Dashboard,
    None,
}

/// A whole page: navigation, who is signed in, the content.
pub(crate) fn layout(
    title: &str,
    nav: Nav,
    who: Option<&Analyst>,
    auth_enabled: bool,
    content: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · cashmatch" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                header.topbar {
                    a.brand href="/queue" { span.logo { "cm" } "cashmatch " span.sub { "review workbench" } }
                    @if who.is_some() {
                        nav {
                            a href="/queue" class=[(nav == Nav::Queue).then_some("current")] { "Queue" }
                            a href="/approvals" class=[(nav == Nav::Approvals).then_some("current")] { "Approvals" }
                            a href="/advices" class=[(nav == Nav::Advices).then_some("current")] { "Advices" }
                            a href="/dashboard" class=[(nav == Nav::Dashboard).then_some("current")] { "Dashboard" }
                        }
                    }
                    div.who {
                        @if let Some(a) = who {
                            span { "Signed in as " strong { (a.principal.name) } }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(a.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                        button.link.help-button type="button" data-help hidden { "Shortcuts (?)" }
                    }
                }
                @if !auth_enabled {
                    div.banner.warn role="note" {
                        strong { "No authentication. " }
                        "This workbench runs without tokens (no [[tokens]] in the config): anyone who can \
                         reach it may act under any name. It listens on loopback only. Configure tokens \
                         before real use."
                    }
                }
                main { (content) }
                div #help .help hidden {
                    div.card {
                        h2 { "Keyboard shortcuts" }
                        table.keys {
                            tr { td { kbd { "j" } " / " kbd { "k" } } td { "next / previous row of the queue" } }
                            tr { td { kbd { "Enter" } " or " kbd { "o" } } td { "open the selected item" } }
                            tr { td { kbd { "n" } } td { "next item (skips the one shown)" } }
                            tr { td { kbd { "a" } } td { "accept the first suggestion" } }
                            tr { td { kbd { "e" } } td { "edit the allocation (first amount)" } }
                            tr { td { kbd { "u" } } td { "leave unapplied (focuses the note first)" } }
                            tr { td { kbd { "q" } } td { "back to the queue" } }
                            tr { td { kbd { "d" } } td { "dashboard" } }
                            tr { td { kbd { "/" } } td { "filter the queue" } }
                            tr { td { kbd { "?" } } td { "this help" } }
                        }
                        p.muted { "Shortcuts are off while you type in a field; " kbd { "Esc" } " leaves it." }
                    }
                }
            }
        }
    }
}

/// An amount exactly as the decimal holds it, with thousands separators: `-12,345.60`.
pub(crate) fn money(d: Decimal) -> String {
    let s = d.to_string();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.as_str()),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    if neg {
        out.push('-');
    }
    let n = int.len();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (n - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// An amount with its currency.
pub(crate) fn cash(c: Currency, d: Decimal) -> String {
    format!("{c} {}", money(d))
}

/// Cash per currency, one line each, or a dash.
pub(crate) fn cash_lines<'a>(it: impl IntoIterator<Item = (&'a Currency, &'a Decimal)>) -> Markup {
    let v: Vec<(&Currency, &Decimal)> = it.into_iter().collect();
    html! {
        @if v.is_empty() { span.muted { "—" } }
        @for (i, (c, d)) in v.iter().enumerate() {
            @if i > 0 { br; }
            span.amount { (cash(**c, **d)) }
        }
    }
}

/// An instant, to the minute, in UTC.
pub(crate) fn instant(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// An age in words: `35 min`, `5 h`, `2 d 4 h`.
pub(crate) fn age(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let m = (now - since).num_minutes().max(0);
    if m < 60 {
        format!("{m} min")
    } else if m < 24 * 60 {
        format!("{} h", m / 60)
    } else {
        let h = m / 60;
        format!("{} d {} h", h / 24, h % 24)
    }
}

/// A probability as a percentage (a rate, not money).
pub(crate) fn percent(p: f64) -> String {
    format!("{:.1}%", p * 100.0)
}

/// Every review reason, in the order the queue's filter lists them.
pub(crate) const REASONS: [ReviewReason; 10] = [
    ReviewReason::NoCustomer,
    ReviewReason::NoCandidate,
    ReviewReason::Ambiguous,
    ReviewReason::AmountMismatch,
    ReviewReason::Deduction,
    ReviewReason::LowConfidence,
    ReviewReason::NotMatchable,
    ReviewReason::PossibleDuplicate,
    ReviewReason::Unapplied,
    ReviewReason::ReturnedItem,
];

/// The reason's name in URLs (the serde name).
pub(crate) fn reason_key(r: ReviewReason) -> &'static str {
    match r {
        ReviewReason::NoCustomer => "no_customer",
        ReviewReason::NoCandidate => "no_candidate",
        ReviewReason::Ambiguous => "ambiguous",
        ReviewReason::AmountMismatch => "amount_mismatch",
        ReviewReason::Deduction => "deduction",
        ReviewReason::LowConfidence => "low_confidence",
        ReviewReason::NotMatchable => "not_matchable",
        ReviewReason::PossibleDuplicate => "possible_duplicate",
        ReviewReason::Unapplied => "unapplied",
        ReviewReason::ReturnedItem => "returned_item",
    }
}

pub(crate) fn reason_from_key(k: &str) -> Option<ReviewReason> {
    REASONS.into_iter().find(|r| reason_key(*r) == k)
}

/// The reason as an analyst reads it.
/// The SLA in words: "48 h", or "48 h; possible duplicate 4 h" where reasons have their own.
pub(crate) fn sla_words(sla: &crate::service::Sla) -> String {
    let mut out = format!("{} h", sla.default.num_hours());
    for (r, d) in &sla.by_reason {
        out.push_str(&format!(
            "; {} {} h",
            reason_label(Some(*r)).to_lowercase(),
            d.num_hours()
        ));
    }
    out
}

pub(crate) fn reason_label(r: Option<ReviewReason>) -> &'static str {
    match r {
        None => "unspecified",
        Some(ReviewReason::NoCustomer) => "no customer",
        Some(ReviewReason::NoCandidate) => "no candidate",
        Some(ReviewReason::Ambiguous) => "ambiguous",
        Some(ReviewReason::AmountMismatch) => "amount mismatch",
        Some(ReviewReason::Deduction) => "deduction",
        Some(ReviewReason::LowConfidence) => "low confidence",
        Some(ReviewReason::NotMatchable) => "not matchable",
        Some(ReviewReason::PossibleDuplicate) => "possible duplicate",
        Some(ReviewReason::Unapplied) => "unapplied",
        Some(ReviewReason::ReturnedItem) => "returned item",
    }
}

/// A reason badge.
pub(crate) fn reason_badge(r: Option<ReviewReason>) -> Markup {
    let key = r.map(reason_key).unwrap_or("none");
    html! { span class={"badge reason-" (key)} { (reason_label(r)) } }
}

/// What a resolution did, in one line.
pub(crate) fn describe_resolution(r: &Resolution, currency: Currency) -> String {
    let applied: Decimal = r
        .allocations
        .iter()
        .fold(Decimal::ZERO, |a, x| a.checked_add(x.amount).unwrap_or(a));
    let what = match r.action {
        ResolutionAction::AcceptSuggestion => format!(
            "accepted suggestion #{}",
            r.suggestion_index.map_or(0, |i| i + 1)
        ),
        ResolutionAction::ApplyAllocation => "applied an allocation".to_string(),
        ResolutionAction::LeaveUnapplied => "left unapplied".to_string(),
        ResolutionAction::PutOnAccount => format!(
            "put on account of {}",
            r.customer_id.as_deref().unwrap_or("?")
        ),
    };
    if r.allocations.is_empty() {
        format!("{what}, {} unapplied", cash(currency, r.unapplied))
    } else {
        format!(
            "{what}: {} to {} invoice(s), {} unapplied",
            cash(currency, applied),
            r.allocations.len(),
            cash(currency, r.unapplied)
        )
    }
}

/// The confirmation of the resolution an analyst just made.
pub(crate) fn resolved_banner(item: &ReviewRecord) -> Markup {
    html! {
        @if let Some(r) = &item.resolution {
            div.banner.ok role="status" {
                "Resolved " a href={"/items/" (url_encode(&item.summary.payment_id))} { (item.summary.payment_id) } ": "
                (describe_resolution(r, item.payment.currency))
                " (by " (r.analyst) ")."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn money_keeps_every_digit_and_groups_thousands() {
        assert_eq!(money(dec!(0)), "0");
        assert_eq!(money(dec!(12.5)), "12.5");
        assert_eq!(money(dec!(1234.50)), "1,234.50");
        assert_eq!(money(dec!(-1234567.005)), "-1,234,567.005");
        assert_eq!(money(dec!(100)), "100");
        assert_eq!(money(dec!(999999999999999.99)), "999,999,999,999,999.99");
    }
}
