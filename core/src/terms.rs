//! What an invoice's payment terms allow: the early-payment discount, whether a payment date is
//! inside its window, and money rounded to cents as invoices round it.
//!
//! Below both the ledger, whose amount index holds what an item asks for less each discount a
//! payer may take, and the matcher, whose amount heuristics (`matching::amounts`) explain cash
//! with the same discount; neither reaches into the other for it. It uses only `domain`.

use crate::domain::Invoice;
use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};

/// Days after the discount window a discount is still taken as within terms when candidates
/// are generated; the engine regrades them by the rules' grace (`crate::rules`).
const DISCOUNT_GRACE_DAYS: i64 = crate::rules::DEFAULT_DISCOUNT_GRACE_DAYS as i64;

/// Rounds money to cents, half away from zero as invoices do.
pub fn cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// The discount the terms allow on this invoice, if any, and whether `paid_on` is inside the
/// window (with a few days' grace for mail and bank float).
pub(crate) fn terms_discount(inv: &Invoice, paid_on: Option<NaiveDate>) -> Option<(Decimal, bool)> {
    if inv.terms.discount_rate.is_zero() || inv.is_credit() {
        return None;
    }
    let disc = cents(inv.amount * inv.terms.discount_rate);
    let within = match paid_on {
        Some(d) => days_past_window(inv, d) <= DISCOUNT_GRACE_DAYS,
        None => true,
    };
    Some((disc, within))
}

/// How many days after the end of the terms' discount window `paid_on` is (zero or less:
/// inside it).
pub(crate) fn days_past_window(inv: &Invoice, paid_on: NaiveDate) -> i64 {
    (paid_on - inv.invoice_date).num_days() - inv.terms.discount_days as i64
}

/// Whether `discount` is the one the invoice's terms give (on its amount or on what is open).
pub(crate) fn is_terms_discount(inv: &Invoice, discount: Decimal) -> bool {
    discount_gaps(inv).is_some_and(|g| g.contains(&discount))
}

/// The discounts a payer may take under the invoice's terms, if they give one: computed on the
/// invoice amount and on what is open (payers do both). The ledger's amount index holds what
/// the item asks for less each, so both are read from here.
pub(crate) fn discount_gaps(inv: &Invoice) -> Option<[Decimal; 2]> {
    terms_discount(inv, None).map(|(disc, _)| gaps_of(inv, disc))
}

/// The terms discount `disc` (on the invoice amount) and the one on the open amount.
pub(crate) fn gaps_of(inv: &Invoice, disc: Decimal) -> [Decimal; 2] {
    [disc, cents(inv.open_amount * inv.terms.discount_rate)]
}
