//! Payer identification: which customers may have sent a payment.
//!
//! Evidence, strongest first: a known bank account; the name, exactly or fuzzily (variants,
//! ACH truncation, department prefixes); the parent of the customer that pays for it. The
//! references themselves name customers too; the candidate generator adds those.

use crate::domain::Payment;
use crate::ledger::{CustomerIdx, Ledger};
use crate::text::names::{name_similarity, name_tokens, normalize_name};

/// How a customer was tied to a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PayerVia {
    Account,
    Name,
    /// A child of a customer identified by account or name: the parent pays for it.
    Parent,
    /// Only the referenced invoices point at it.
    Reference,
}

impl PayerVia {
    pub fn describe(self) -> &'static str {
        match self {
            PayerVia::Account => "bank account",
            PayerVia::Name => "payer name",
            PayerVia::Parent => "parent company",
            PayerVia::Reference => "the referenced invoices",
        }
    }
}

/// A customer that may have paid, with how strongly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PayerMatch {
    pub customer: CustomerIdx,
    /// In [0, 1]: 1 for a known account, the name similarity otherwise.
    pub score: f32,
    pub via: PayerVia,
}

/// Names below this similarity are not taken as the payer.
const MIN_NAME_SIMILARITY: f64 = 0.80;
/// Fuzzy name candidates compared at most (the shared-token postings are capped too).
const MAX_NAME_CANDIDATES: usize = 200;

/// The customers that may have sent `payment`, best first, without duplicates.
pub(crate) fn identify(ledger: &Ledger, payment: &Payment) -> Vec<PayerMatch> {
    let mut out: Vec<PayerMatch> = Vec::new();
    if let Some(acct) = payment.payer.account.as_deref() {
        for c in ledger.lookup_account(acct) {
            out.push(PayerMatch {
                customer: c,
                score: 1.0,
                via: PayerVia::Account,
            });
        }
    }
    if let Some(name) = payment.payer.name.as_deref() {
        let norm = normalize_name(name);
        if !norm.is_empty() {
            for c in ledger.lookup_name(&norm) {
                push_best(
                    &mut out,
                    PayerMatch {
                        customer: c,
                        score: 0.97,
                        via: PayerVia::Name,
                    },
                );
            }
            if out.is_empty() {
                fuzzy_name(ledger, &norm, &mut out);
            }
        }
    }
    // A parent pays for its subsidiaries: their invoices are in play too.
    let direct: Vec<PayerMatch> = out.clone();
    for m in direct {
        for &child in &ledger.customer_keys(m.customer).children {
            push_best(
                &mut out,
                PayerMatch {
                    customer: child,
                    score: m.score * 0.9,
                    via: PayerVia::Parent,
                },
            );
        }
    }
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.customer.cmp(&b.customer))
    });
    out
}

/// Customers sharing a distinctive token with the name, scored by name similarity.
fn fuzzy_name(ledger: &Ledger, norm: &str, out: &mut Vec<PayerMatch>) {
    let mut seen: Vec<CustomerIdx> = Vec::new();
    for t in name_tokens(norm).iter().filter(|t| t.len() >= 3) {
        seen.extend(ledger.lookup_name_token(t).take(MAX_NAME_CANDIDATES));
        if seen.len() >= MAX_NAME_CANDIDATES {
            break;
        }
    }
    seen.sort_unstable();
    seen.dedup();
    for c in seen {
        let s = name_similarity(norm, &ledger.customer_keys(c).name_norm);
        if s >= MIN_NAME_SIMILARITY {
            push_best(
                out,
                PayerMatch {
                    customer: c,
                    score: s as f32,
                    via: PayerVia::Name,
                },
            );
        }
    }
}

/// Adds a match, or raises the score of the same customer's existing one.
pub(crate) fn push_best(out: &mut Vec<PayerMatch>, m: PayerMatch) {
    match out.iter_mut().find(|x| x.customer == m.customer) {
        Some(x) if x.score < m.score => *x = m,
        Some(_) => {}
        None => out.push(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Customer, Direction, Payer};
    use rust_decimal::Decimal;

    fn ledger() -> Ledger {
        let c = |id: &str, name: &str, parent: Option<&str>, acct: &str| Customer {
            id: id.into(),
            name: name.into(),
            parent_id: parent.map(str::to_string),
            bank_accounts: vec![acct.into()],
        };
        Ledger::new(
            vec![
                c("P", "Bluegrass Holdings Inc", None, "111:1111111"),
                c("S", "Bluegrass Foods LLC", Some("P"), "222:2222222"),
                c("X", "Northwind Industrial Supply Inc", None, "333:3333333"),
            ],
            vec![],
        )
        .0
    }

    fn pay(name: Option<&str>, acct: Option<&str>) -> Payment {
        Payment {
            payment_id: "p".into(),
            format: "csv".into(),
            direction: Direction::Credit,
            payment_date: None,
            amount: Decimal::ONE,
            currency: Currency::USD,
            payer: Payer {
                name: name.map(str::to_string),
                account: acct.map(str::to_string),
            },
            lines: vec![],
            free_text: vec![],
            warnings: vec![],
            returned: None,
        }
    }

    #[test]
    fn account_beats_name_and_parent_brings_children() {
        let l = ledger();
        let m = identify(&l, &pay(Some("whoever"), Some("1111111")));
        assert_eq!(m[0].customer, 0);
        assert_eq!(m[0].via, PayerVia::Account);
        assert!(
            m.iter()
                .any(|x| x.customer == 1 && x.via == PayerVia::Parent)
        );
    }

    #[test]
    fn ach_truncated_and_prefixed_names_are_found() {
        let l = ledger();
        let m = identify(&l, &pay(Some("AP DEPT NORTHWIND INDUS"), None));
        assert_eq!(m.first().map(|x| x.customer), Some(2), "{m:?}");
        let m = identify(&l, &pay(Some("NORTHWIND INDUSTRIAL S"), None));
        assert_eq!(m.first().map(|x| x.customer), Some(2), "{m:?}");
        assert!(identify(&l, &pay(Some("BILL.COM"), Some("999:999999"))).is_empty());
    }
}
