//! The dashboard: touchless rate, exceptions per 1,000 payments, queue depth and its cash,
//! top-suggestion acceptance, per UTC day with charts; unapplied cash now with its ageing.
//! The figures are [`crate::service::dashboard`]'s; this page only draws them.

use super::chart::{self, Bar};
use super::page::{Nav, REASONS, cash_lines, layout, percent, reason_key, reason_label};
use super::{Shared, error_page, html, refusal, to_login};
use crate::domain::Currency;
use crate::service::dashboard::{Dashboard, DashboardQuery};
use crate::service::now;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use maud::{Markup, html as m};
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;

/// The windows offered, in days.
const WINDOWS: [u32; 4] = [7, 14, 30, 90];

#[derive(Deserialize, Default)]
pub(crate) struct DashQuery {
    #[serde(default)]
    days: String,
}

pub(crate) async fn page(
    State(web): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<DashQuery>,
) -> Response {
    let Some(who) = web.analyst(&headers).await else {
        return to_login(&uri.to_string());
    };
    let auth = web.auth.enabled();
    let days = q
        .days
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|d| WINDOWS.contains(d))
        .unwrap_or(14);
    let sla = web.service.sla();
    let query = DashboardQuery {
        days,
        now: now(),
        sla: sla.clone(),
    };
    let d = match web.service.dashboard(query).await {
        Ok(d) => d,
        Err(e) => {
            let (status, message) = refusal(&e);
            return error_page(
                status,
                Some(&who),
                auth,
                "The dashboard could not be read",
                &message,
            );
        }
    };
    let body = render(&d, days, &super::page::sla_words(&sla));
    html(
        StatusCode::OK,
        layout("Dashboard", Nav::Dashboard, Some(&who), auth, body),
    )
}

fn opt_percent(p: Option<f64>) -> String {
    p.map(percent).unwrap_or_else(|| "—".into())
}

fn short_day(d: chrono::NaiveDate) -> String {
    d.format("%m-%d").to_string()
}

/// The currency with the most cash waiting, for the one cash chart.
fn main_currency(d: &Dashboard) -> Option<Currency> {
    let mut best: Option<(Currency, u64)> = None;
    for f in &d.days {
        for c in f.queue_cash.keys() {
            let n = d
                .days
                .iter()
                .filter(|g| g.queue_cash.contains_key(c))
                .count() as u64;
            if best.is_none_or(|(_, m)| n > m) {
                best = Some((*c, n));
            }
        }
    }
    best.map(|(c, _)| c)
}

fn render(d: &Dashboard, days: u32, sla: &str) -> Markup {
    let touchless: Vec<Bar> = d
        .days
        .iter()
        .map(|f| Bar {
            label: short_day(f.day),
            segments: vec![(
                f.touchless.unwrap_or(0.0),
                "s-auto",
                format!(
                    "{}: {} of {} payments applied without a person ({})",
                    f.day,
                    f.auto,
                    f.decided,
                    opt_percent(f.touchless)
                ),
            )],
        })
        .collect();
    let exceptions: Vec<Bar> = d
        .days
        .iter()
        .map(|f| Bar {
            label: short_day(f.day),
            segments: f
                .exceptions_by_reason
                .iter()
                .map(|(r, n)| {
                    let per = if f.decided > 0 {
                        *n as f64 * 1000.0 / f.decided as f64
                    } else {
                        0.0
                    };
                    (
                        per,
                        reason_class(*r),
                        format!("{}: {n} {} ({per:.1} per 1,000)", f.day, reason_label(*r)),
                    )
                })
                .collect(),
        })
        .collect();
    let max_exc = d
        .days
        .iter()
        .filter_map(|f| f.exceptions_per_1000)
        .fold(0.0, f64::max);
    let depth: Vec<Bar> = d
        .days
        .iter()
        .map(|f| Bar {
            label: short_day(f.day),
            segments: vec![(
                f.queue_depth as f64,
                "s-queue",
                format!(
                    "{}: {} items waiting at the end of the day",
                    f.day, f.queue_depth
                ),
            )],
        })
        .collect();
    let max_depth = d.days.iter().map(|f| f.queue_depth).max().unwrap_or(0) as f64;
    let currency = main_currency(d);
    let cash_bars: Vec<Bar> = d
        .days
        .iter()
        .map(|f| {
            let amount = currency.and_then(|c| f.queue_cash.get(&c).copied());
            Bar {
                label: short_day(f.day),
                segments: vec![(
                    amount.and_then(|a| a.to_f64()).unwrap_or(0.0),
                    "s-cash",
                    format!(
                        "{}: {} waiting in review",
                        f.day,
                        match (currency, amount) {
                            (Some(c), Some(a)) => super::page::cash(c, a),
                            _ => "nothing".into(),
                        }
                    ),
                )],
            }
        })
        .collect();
    let max_cash = cash_bars
        .iter()
        .filter_map(|b| b.segments.first().map(|s| s.0))
        .fold(0.0, f64::max);
    let acceptance: Vec<Bar> = d
        .days
        .iter()
        .map(|f| Bar {
            label: short_day(f.day),
            segments: vec![(
                f.top_acceptance.unwrap_or(0.0),
                "s-accept",
                format!(
                    "{}: first suggestion accepted for {} of {} items resolved ({})",
                    f.day,
                    f.accepted_top,
                    f.resolved_with_suggestion,
                    opt_percent(f.top_acceptance)
                ),
            )],
        })
        .collect();
    let pct = |v: f64| format!("{:.0}%", v * 100.0);
    let count = |v: f64| format!("{v:.0}");
    let per_k = |v: f64| format!("{v:.0}");
    let money_axis = |v: f64| compact(v);
    let reasons_seen: Vec<_> = REASONS
        .iter()
        .copied()
        .filter(|r| {
            d.days
                .iter()
                .any(|f| f.exceptions_by_reason.iter().any(|(x, _)| *x == Some(*r)))
        })
        .collect();
    let max_queue_bucket = d.ageing.iter().map(|b| b.queue_items).max().unwrap_or(0);
    m! {
        div.page-head {
            h1 { "Dashboard" }
            nav.tabs aria-label="Window" {
                @for w in WINDOWS {
                    a href={"/dashboard?days=" (w)} class=[(w == days).then_some("current")] { (w) " days" }
                }
            }
        }
        div.kpis {
            div.kpi {
                span.label { "Touchless rate" }
                span.value { (opt_percent(d.touchless())) }
                span.detail { (d.auto) " of " (d.decided) " payments applied without a person" }
            }
            div.kpi {
                span.label { "Exceptions per 1,000" }
                span.value { (d.exceptions_per_1000().map(|v| format!("{v:.1}")).unwrap_or_else(|| "—".into())) }
                span.detail { (d.exceptions) " payments sent to review" }
            }
            div.kpi class=[(d.past_sla > 0).then_some("overdue")] {
                span.label { "Queue depth" }
                span.value { (d.queue_depth) }
                span.detail { (d.past_sla) " past the SLA (" (sla) ")" }
            }
            div.kpi {
                span.label { "Top suggestion accepted" }
                span.value { (opt_percent(d.top_acceptance())) }
                span.detail { (d.accepted_top) " of " (d.resolved_with_suggestion) " items resolved that had a suggestion" }
            }
            div.kpi.wide {
                span.label { "Unapplied cash now" }
                table.mini {
                    tr { td { "waiting in review" } td.num { (cash_lines(&d.queue_cash)) } }
                    tr { td { "left unapplied" } td.num { (cash_lines(&d.unapplied_cash)) } }
                    tr { td { "on account" } td.num { (cash_lines(&d.on_account_cash)) } }
                }
            }
        }
        div.charts {
            section.card.chart-card {
                h2 { "Touchless rate per day" }
                (chart::bars("Touchless rate per day", &touchless, 1.0, &pct))
            }
            section.card.chart-card {
                h2 { "Exceptions per 1,000 payments, by reason" }
                (chart::bars("Exceptions per 1,000 payments per day", &exceptions, nice(max_exc), &per_k))
                div.legend {
                    @for r in &reasons_seen {
                        span { span class={"swatch " (reason_class(Some(*r)))} {} (reason_label(Some(*r))) }
                    }
                }
            }
            section.card.chart-card {
                h2 { "Queue depth at the end of the day" }
                (chart::bars("Queue depth per day", &depth, nice(max_depth), &count))
            }
            section.card.chart-card {
                h2 { "Cash waiting in review" @if let Some(c) = currency { " (" (c) ")" } }
                (chart::bars("Cash waiting in review per day", &cash_bars, nice(max_cash), &money_axis))
            }
            section.card.chart-card {
                h2 { "First suggestion accepted, per day resolved" }
                (chart::bars("Top-suggestion acceptance per day", &acceptance, 1.0, &pct))
            }
            section.card.chart-card {
                h2 { "Unapplied cash by age" }
                table.ageing {
                    thead { tr { th { "Age" } th.num { "In review" } th.num { "Left unapplied" } th.num { "On account" } } }
                    tbody {
                        @for b in &d.ageing {
                            tr {
                                td.nowrap { (b.label) }
                                td.num {
                                    (cash_lines(&b.queue_cash))
                                    @if b.queue_items > 0 {
                                        br;
                                        span.small.muted { (b.queue_items) " item" @if b.queue_items != 1 { "s" } " " }
                                        (chart::hbar(b.queue_items as f64 / max_queue_bucket.max(1) as f64))
                                    }
                                }
                                td.num { (cash_lines(&b.unapplied_cash)) }
                                td.num { (cash_lines(&b.on_account_cash)) }
                            }
                        }
                    }
                }
                p.hint { "Aged from when the payment was decided. Cash in review is the whole payment; left unapplied includes the rest of partial applications and overpayments." }
            }
        }
        details.card {
            summary { "Figures per day" }
            table.compact {
                thead { tr {
                    th { "Day (UTC)" } th.num { "Decided" } th.num { "Auto" } th.num { "Touchless" }
                    th.num { "Exceptions" } th.num { "per 1,000" } th.num { "Queue at end" } th.num { "Cash in review" }
                    th.num { "Resolved" } th.num { "Top accepted" }
                } }
                tbody {
                    @for f in d.days.iter().rev() {
                        tr {
                            td { (f.day) }
                            td.num { (f.decided) } td.num { (f.auto) } td.num { (opt_percent(f.touchless)) }
                            td.num { (f.exceptions) }
                            td.num { (f.exceptions_per_1000.map(|v| format!("{v:.1}")).unwrap_or_else(|| "—".into())) }
                            td.num { (f.queue_depth) } td.num { (cash_lines(&f.queue_cash)) }
                            td.num { (f.resolved) }
                            td.num { (f.accepted_top) " / " (f.resolved_with_suggestion) }
                        }
                    }
                }
            }
        }
        p.hint.definitions {
            "Days are UTC. Touchless rate: payments applied without a person / payments decided. "
            "Exceptions: payments sent to review, per 1,000 decided. Queue depth: items waiting at the "
            "end of the day (now, for today). Top suggestion accepted: items resolved by accepting the "
            "engine's first suggestion / items resolved for which the engine had one."
        }
    }
}

fn reason_class(r: Option<crate::domain::ReviewReason>) -> &'static str {
    match r.map(reason_key) {
        Some("no_customer") => "s-no_customer",
        Some("no_candidate") => "s-no_candidate",
        Some("ambiguous") => "s-ambiguous",
        Some("amount_mismatch") => "s-amount_mismatch",
        Some("deduction") => "s-deduction",
        Some("low_confidence") => "s-low_confidence",
        Some("not_matchable") => "s-not_matchable",
        Some("possible_duplicate") => "s-possible_duplicate",
        _ => "s-none",
    }
}

/// A round upper bound for an axis: 1, 2, 4 or 8 times a power of ten.
fn nice(max: f64) -> f64 {
    if !max.is_finite() || max <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    // Quarters of these are round too: the axis has five ticks.
    [1.0, 2.0, 4.0, 8.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * p)
}

/// An axis label for cash: `950`, `12k`, `3.4M` (axis ticks only; amounts are shown exactly
/// elsewhere).
fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(7.0), 8.0);
        assert_eq!(nice(13.0), 20.0);
        assert_eq!(nice(26.0), 40.0);
        assert_eq!(nice(420.0), 800.0);
        assert_eq!(compact(12_500.0), "12k");
    }
}
