//! The figures of the analysts' dashboard: per UTC day over a window, and the unapplied cash
//! now with its ageing, computed from what the store records (decisions, review items and their
//! resolutions, the postings journal). The store counts and lists; the arithmetic is here, in
//! decimals for money.
//!
//! Definitions, as the dashboard states them:
//!
//! - touchless rate: payments applied without a person / payments decided, that day;
//! - exceptions per 1,000: payments sent to review per 1,000 decided, that day, by reason;
//! - queue depth: review items waiting at the end of the day (now, for today), with their cash;
//! - top-suggestion acceptance: items resolved that day by accepting the engine's first
//!   suggestion / items resolved that day for which the engine had made a suggestion;
//! - unapplied cash: the payments waiting in review (their whole amount), and the cash the
//!   journal holds unapplied or on account, read as a customer's waiting cash is
//!   (`super::balances`), so that cash applied later, unapplied again, returned or written off
//!   is counted where it is now; aged from when the payment's cash was first posted.

use super::balances::{Waiting, WaitingPayment};
use crate::domain::{Currency, ReviewReason};
use crate::store::{DayActivity, QueueSpan};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// Cash per currency: amounts in different currencies are never added together.
pub type Cash = BTreeMap<Currency, Decimal>;

/// Adds to a currency's total; a sum beyond the decimal range stays at the largest value rather
/// than failing a page.
fn add(cash: &mut Cash, currency: Currency, amount: Decimal) {
    let e = cash.entry(currency).or_insert(Decimal::ZERO);
    *e = e.checked_add(amount).unwrap_or(Decimal::MAX);
}

/// The window and the instant the figures are for.
#[derive(Clone, Debug)]
pub struct DashboardQuery {
    /// Days in the window, ending today (UTC); at least 1.
    pub days: u32,
    pub now: DateTime<Utc>,
    /// How long an item may wait before it is overdue.
    pub sla: crate::store::Sla,
}

impl DashboardQuery {
    /// The first day of the window.
    pub fn first_day(&self) -> NaiveDate {
        let back = i64::from(self.days.max(1)) - 1;
        self.now.date_naive() - Duration::days(back)
    }
}

/// The figures of one UTC day.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DayFigures {
    pub day: NaiveDate,
    pub decided: u64,
    pub auto: u64,
    /// `auto / decided`; `None` on a day without decisions. (A rate, not money.)
    pub touchless: Option<f64>,
    pub exceptions: u64,
    pub exceptions_per_1000: Option<f64>,
    pub exceptions_by_reason: Vec<(Option<ReviewReason>, u64)>,
    /// Items waiting at the end of the day (now, for today).
    pub queue_depth: u64,
    /// Their cash.
    pub queue_cash: Cash,
    pub resolved: u64,
    pub resolved_with_suggestion: u64,
    pub accepted_top: u64,
    /// `accepted_top / resolved_with_suggestion`.
    pub top_acceptance: Option<f64>,
}

/// Unapplied cash of one age range, by where it sits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgeBucket {
    pub label: &'static str,
    /// Ages in whole days, `from <= age < to` (`to` none: no upper bound).
    pub from_days: i64,
    pub to_days: Option<i64>,
    /// Items waiting in review, and their cash.
    pub queue_items: u64,
    pub queue_cash: Cash,
    /// Left unapplied by an analyst, or the rest of a partial application.
    pub unapplied_cash: Cash,
    /// Kept on a customer's account.
    pub on_account_cash: Cash,
}

/// Everything the dashboard shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dashboard {
    /// One entry per day of the window, oldest first, days without activity included.
    pub days: Vec<DayFigures>,
    pub ageing: Vec<AgeBucket>,
    /// Sums over the window.
    pub decided: u64,
    pub auto: u64,
    pub exceptions: u64,
    pub resolved_with_suggestion: u64,
    pub accepted_top: u64,
    /// Now: items waiting, those past the SLA, and all unapplied cash by where it sits.
    pub queue_depth: u64,
    pub past_sla: u64,
    pub queue_cash: Cash,
    pub unapplied_cash: Cash,
    pub on_account_cash: Cash,
}

/// The age ranges of the ageing table, in days.
const BUCKETS: [(&str, i64, Option<i64>); 5] = [
    ("< 1 d", 0, Some(1)),
    ("1–2 d", 1, Some(3)),
    ("3–6 d", 3, Some(7)),
    ("7–29 d", 7, Some(30)),
    ("≥ 30 d", 30, None),
];

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// The figures from the store's records; pure, so that it is tested without a store.
pub fn compute(
    q: &DashboardQuery,
    activity: &[DayActivity],
    spans: &[QueueSpan],
    waiting: &[WaitingPayment],
) -> Dashboard {
    let first = q.first_day();
    let today = q.now.date_naive();
    let by_day: BTreeMap<NaiveDate, &DayActivity> = activity.iter().map(|a| (a.day, a)).collect();
    let mut out = Dashboard::default();
    let mut day = first;
    while day <= today {
        let a = by_day.get(&day);
        let end = day
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
            .map_or(q.now, |t| t.min(q.now));
        let mut f = DayFigures {
            day,
            ..Default::default()
        };
        if let Some(a) = a {
            f.decided = a.decided;
            f.auto = a.auto;
            f.exceptions_by_reason = a.review_by_reason.clone();
            f.exceptions = a.review_by_reason.iter().map(|(_, n)| n).sum();
            f.resolved = a.resolved;
            f.resolved_with_suggestion = a.resolved_with_suggestion;
            f.accepted_top = a.accepted_top;
        }
        f.touchless = ratio(f.auto, f.decided);
        f.exceptions_per_1000 = ratio(f.exceptions, f.decided).map(|r| r * 1000.0);
        f.top_acceptance = ratio(f.accepted_top, f.resolved_with_suggestion);
        for s in spans {
            let waiting = s.entered < end && s.left.is_none_or(|l| l >= end);
            if waiting {
                f.queue_depth += 1;
                add(&mut f.queue_cash, s.currency, s.amount);
            }
        }
        out.decided += f.decided;
        out.auto += f.auto;
        out.exceptions += f.exceptions;
        out.resolved_with_suggestion += f.resolved_with_suggestion;
        out.accepted_top += f.accepted_top;
        out.days.push(f);
        match day.succ_opt() {
            Some(d) => day = d,
            None => break,
        }
    }
    out.ageing = BUCKETS
        .iter()
        .map(|&(label, from_days, to_days)| AgeBucket {
            label,
            from_days,
            to_days,
            ..Default::default()
        })
        .collect();
    let bucket = |since: DateTime<Utc>| -> usize {
        let age = (q.now - since).num_days().max(0);
        BUCKETS
            .iter()
            .position(|&(_, from, to)| age >= from && to.is_none_or(|t| age < t))
            .unwrap_or(BUCKETS.len() - 1)
    };
    for s in spans.iter().filter(|s| s.left.is_none()) {
        out.queue_depth += 1;
        if q.sla.overdue(s.reason, s.entered, q.now) {
            out.past_sla += 1;
        }
        add(&mut out.queue_cash, s.currency, s.amount);
        if let Some(b) = out.ageing.get_mut(bucket(s.entered)) {
            b.queue_items += 1;
            add(&mut b.queue_cash, s.currency, s.amount);
        }
    }
    for w in waiting {
        let (total, b) = match w.kind {
            Waiting::OnAccount => (
                &mut out.on_account_cash,
                out.ageing
                    .get_mut(bucket(w.since))
                    .map(|b| &mut b.on_account_cash),
            ),
            Waiting::Unapplied => (
                &mut out.unapplied_cash,
                out.ageing
                    .get_mut(bucket(w.since))
                    .map(|b| &mut b.unapplied_cash),
            ),
        };
        add(total, w.currency, w.amount);
        if let Some(b) = b {
            add(b, w.currency, w.amount);
        }
    }
    out
}

impl Dashboard {
    /// Touchless rate over the window.
    pub fn touchless(&self) -> Option<f64> {
        ratio(self.auto, self.decided)
    }

    /// Exceptions per 1,000 payments over the window.
    pub fn exceptions_per_1000(&self) -> Option<f64> {
        ratio(self.exceptions, self.decided).map(|r| r * 1000.0)
    }

    /// Top-suggestion acceptance over the window.
    pub fn top_acceptance(&self) -> Option<f64> {
        ratio(self.accepted_top, self.resolved_with_suggestion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn days_rates_queue_depth_and_ageing_follow_the_records() {
        let q = DashboardQuery {
            days: 3,
            now: at("2026-11-27T12:00:00Z"),
            // Possible duplicates are due within half an hour, everything else within 48 hours.
            sla: crate::store::Sla {
                default: Duration::hours(48),
                by_reason: vec![(ReviewReason::PossibleDuplicate, Duration::minutes(30))],
            },
        };
        let activity = vec![
            DayActivity {
                day: day("2026-11-25"),
                decided: 200,
                auto: 190,
                review_by_reason: vec![
                    (Some(ReviewReason::Ambiguous), 6),
                    (Some(ReviewReason::NoCustomer), 4),
                ],
                resolved: 4,
                resolved_with_suggestion: 4,
                accepted_top: 3,
            },
            DayActivity {
                day: day("2026-11-27"),
                decided: 10,
                auto: 9,
                review_by_reason: vec![(None, 1)],
                ..Default::default()
            },
            // Before the window: ignored.
            DayActivity {
                day: day("2026-11-20"),
                decided: 99,
                ..Default::default()
            },
        ];
        let spans = vec![
            // Entered on the 25th, still waiting: past the 48 h SLA, 2 days old.
            QueueSpan {
                amount: dec!(100.10),
                currency: Currency::USD,
                entered: at("2026-11-25T08:00:00Z"),
                left: None,
                reason: Some(ReviewReason::Ambiguous),
            },
            // Entered on the 25th, resolved on the 26th at noon.
            QueueSpan {
                amount: dec!(0.20),
                currency: Currency::USD,
                entered: at("2026-11-25T09:00:00Z"),
                left: Some(at("2026-11-26T12:00:00Z")),
                reason: Some(ReviewReason::Ambiguous),
            },
            // A possible duplicate waiting an hour: past its own half-hour SLA.
            QueueSpan {
                amount: dec!(5.00),
                currency: "EUR".parse().unwrap_or(Currency::USD),
                entered: at("2026-11-27T11:00:00Z"),
                left: None,
                reason: Some(ReviewReason::PossibleDuplicate),
            },
        ];
        let waiting = vec![
            WaitingPayment {
                payment_id: "P1".into(),
                kind: Waiting::OnAccount,
                amount: dec!(40.00),
                currency: Currency::USD,
                since: at("2026-10-01T00:00:00Z"),
                bucket: 1,
            },
            WaitingPayment {
                payment_id: "P2".into(),
                kind: Waiting::Unapplied,
                amount: dec!(0.10),
                currency: Currency::USD,
                since: at("2026-11-27T00:00:00Z"),
                bucket: 0,
            },
        ];
        let d = compute(&q, &activity, &spans, &waiting);
        let days: Vec<NaiveDate> = d.days.iter().map(|f| f.day).collect();
        assert_eq!(
            days,
            vec![day("2026-11-25"), day("2026-11-26"), day("2026-11-27")]
        );
        let first = &d.days[0];
        assert_eq!(first.touchless, Some(0.95));
        assert_eq!(first.exceptions, 10);
        assert_eq!(first.exceptions_per_1000, Some(50.0));
        assert_eq!(first.top_acceptance, Some(0.75));
        // End of the 25th: both waiting; end of the 26th: one; now: two (USD and EUR).
        assert_eq!(first.queue_depth, 2);
        assert_eq!(first.queue_cash.get(&Currency::USD), Some(&dec!(100.30)));
        assert_eq!(d.days[1].queue_depth, 1);
        assert_eq!(d.days[1].touchless, None);
        assert_eq!(d.days[2].queue_depth, 2);
        assert_eq!((d.decided, d.auto, d.exceptions), (210, 199, 11));
        assert_eq!((d.queue_depth, d.past_sla), (2, 2));
        assert_eq!(d.on_account_cash.get(&Currency::USD), Some(&dec!(40.00)));
        assert_eq!(d.unapplied_cash.get(&Currency::USD), Some(&dec!(0.10)));
        assert_eq!(d.ageing[0].queue_items, 1, "the EUR item is an hour old");
        assert_eq!(
            d.ageing[1].queue_cash.get(&Currency::USD),
            Some(&dec!(100.10))
        );
        assert_eq!(
            d.ageing[4].on_account_cash.get(&Currency::USD),
            Some(&dec!(40.00))
        );
    }
}
