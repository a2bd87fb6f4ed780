//! Cash that waits for a customer: what the journal holds unapplied and on the customer's
//! account, payment by payment, aged from when the payment's cash was first posted.
//!
//! Read from the postings still in force (`live_postings`), so that cash applied later, unapplied
//! again or returned by the bank is counted where it is now, and cash the rules wrote off is not
//! counted at all.

use super::Service;
use super::api::ServiceError;
use crate::domain::Currency;
use crate::store::{Posting, PostingFilter, PostingKind, live_postings};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// The ageing buckets of waiting cash, as AR reports them: `(label, from, to)` in whole days,
/// `from <= age < to`, no upper bound for the last.
pub const AGE_BUCKETS: [(&str, i64, Option<i64>); 4] = [
    ("0-30", 0, Some(31)),
    ("31-60", 31, Some(61)),
    ("61-90", 61, Some(91)),
    ("90+", 91, None),
];

/// Where waiting cash sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Waiting {
    /// Unapplied: a remainder of a payment that waits for a person or an invoice.
    Unapplied,
    /// Kept on the customer's account.
    OnAccount,
}

/// One payment's waiting cash.
#[derive(Clone, Debug, PartialEq)]
pub struct WaitingPayment {
    pub payment_id: String,
    pub kind: Waiting,
    pub currency: Currency,
    pub amount: Decimal,
    /// When the payment's cash was first posted: what its age counts from.
    pub since: DateTime<Utc>,
    /// Index into [`AGE_BUCKETS`].
    pub bucket: usize,
}

/// A customer's waiting cash per currency: totals by bucket, unapplied and on account.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Balance {
    pub unapplied: [Decimal; 4],
    pub on_account: [Decimal; 4],
}

/// A customer's waiting cash.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WaitingCash {
    pub customer_id: String,
    /// Amounts in different currencies are never added together.
    pub balances: BTreeMap<Currency, Balance>,
    /// Oldest first.
    pub payments: Vec<WaitingPayment>,
}

/// The bucket of an age in whole days (negative ages, from clocks apart, count as new).
fn bucket(age_days: i64) -> usize {
    let age = age_days.max(0);
    AGE_BUCKETS
        .iter()
        .position(|&(_, from, to)| age >= from && to.is_none_or(|t| age < t))
        .unwrap_or(AGE_BUCKETS.len() - 1)
}

/// Every payment's waiting cash in `postings` (every posting of those payments, in sequence
/// order), aged at `now`, oldest first: one customer's, or the whole journal's for the dashboard.
pub(crate) fn waiting_payments(postings: &[Posting], now: DateTime<Utc>) -> Vec<WaitingPayment> {
    let mut first: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
    for p in postings {
        first
            .entry(p.record.payment_id.as_str())
            .or_insert(p.record.at);
    }
    let mut by_payment: BTreeMap<(&str, Waiting, Currency), Decimal> = BTreeMap::new();
    for p in live_postings(postings) {
        let kind = match p.record.kind {
            PostingKind::Unapplied => Waiting::Unapplied,
            PostingKind::OnAccount => Waiting::OnAccount,
            _ => continue,
        };
        *by_payment
            .entry((p.record.payment_id.as_str(), kind, p.record.currency))
            .or_default() += p.record.amount;
    }
    let mut out: Vec<WaitingPayment> = by_payment
        .into_iter()
        .filter(|(_, amount)| !amount.is_zero())
        .map(|((payment_id, kind, currency), amount)| {
            let since = first.get(payment_id).copied().unwrap_or(now);
            WaitingPayment {
                payment_id: payment_id.to_string(),
                kind,
                currency,
                amount,
                since,
                bucket: bucket((now - since).num_days()),
            }
        })
        .collect();
    out.sort_by(|a, b| (a.since, &a.payment_id).cmp(&(b.since, &b.payment_id)));
    out
}

/// The waiting cash of a customer from the customer's postings (every one, in sequence order).
pub(crate) fn waiting_cash_of(
    customer_id: &str,
    postings: &[Posting],
    now: DateTime<Utc>,
) -> WaitingCash {
    let payments = waiting_payments(postings, now);
    let mut balances: BTreeMap<Currency, Balance> = BTreeMap::new();
    for w in &payments {
        let balance = balances.entry(w.currency).or_default();
        let column = match w.kind {
            Waiting::Unapplied => &mut balance.unapplied,
            Waiting::OnAccount => &mut balance.on_account,
        };
        column[w.bucket] += w.amount;
    }
    WaitingCash {
        customer_id: customer_id.to_string(),
        balances,
        payments,
    }
}

impl Service {
    /// The unapplied and on-account cash of a customer, aged at `now`.
    pub async fn waiting_cash(
        &self,
        customer_id: String,
        now: DateTime<Utc>,
    ) -> Result<WaitingCash, ServiceError> {
        let customer_id = customer_id.trim().to_string();
        if customer_id.is_empty() {
            return Err(ServiceError::invalid("customer_id", "is required"));
        }
        let postings = self
            .postings_where(PostingFilter::Customer(customer_id.clone()))
            .await?;
        Ok(waiting_cash_of(&customer_id, &postings, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ActorKind, PostingRecord};
    use rust_decimal_macros::dec;

    fn posting(
        seq: u64,
        kind: PostingKind,
        payment: &str,
        amount: Decimal,
        days_ago: i64,
    ) -> Posting {
        let now = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        Posting {
            sequence: seq,
            record: PostingRecord {
                kind,
                payment_id: payment.into(),
                invoice_id: None,
                customer_id: Some("C1".into()),
                currency: Currency::USD,
                amount,
                reason_code: None,
                actor_kind: ActorKind::Engine,
                actor: "engine".into(),
                model_version: None,
                rules_version: None,
                reverses: None,
                at: now - chrono::Duration::days(days_ago),
            },
        }
    }

    #[test]
    fn waiting_cash_is_aged_from_its_payment_and_reversed_cash_no_longer_waits() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let mut reversal = posting(4, PostingKind::Reversal, "P2", dec!(-40.00), 1);
        reversal.record.reverses = Some(3);
        let postings = vec![
            posting(1, PostingKind::Applied, "P1", dec!(100.00), 45),
            posting(2, PostingKind::Unapplied, "P1", dec!(12.50), 45),
            posting(3, PostingKind::OnAccount, "P2", dec!(40.00), 100),
            reversal,
            posting(5, PostingKind::OnAccount, "P2", dec!(15.00), 1),
            posting(6, PostingKind::OnAccount, "P3", dec!(7.00), 3),
        ];
        let w = waiting_cash_of("C1", &postings, now);
        let usd = &w.balances[&Currency::USD];
        assert_eq!(usd.unapplied, [dec!(0), dec!(12.50), dec!(0), dec!(0)]);
        // P2's 15.00 left on account after part of it was applied: as old as P2.
        assert_eq!(usd.on_account, [dec!(7.00), dec!(0), dec!(0), dec!(15.00)]);
        let ids: Vec<&str> = w.payments.iter().map(|p| p.payment_id.as_str()).collect();
        assert_eq!(ids, ["P2", "P1", "P3"]);
        assert_eq!(bucket(30), 0);
        assert_eq!(bucket(31), 1);
        assert_eq!(bucket(90), 2);
        assert_eq!(bucket(91), 3);
    }
}
