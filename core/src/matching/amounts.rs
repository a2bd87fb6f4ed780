//! Amount heuristics: how cash relates to what an invoice has open.
//!
//! A payer pays the open amount; or takes the early-payment discount within terms; or short
//! pays with a reason code (a deduction); or short pays without one; or pays part; or a bank takes
//! its fee from a wire on the way; or pays too much, and the excess stays unapplied. These
//! functions say which explanation fits and split the cash into applied amount, discount and
//! deduction, never relieving an invoice of more than it has open.

use crate::domain::{Invoice, RemittanceLine};
use crate::terms::{cents, gaps_of, terms_discount};
use chrono::NaiveDate;
use rust_decimal::Decimal;

/// How an allocation's amount was explained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AmountFit {
    /// Cash equals the open amount (for a credit memo: the whole credit taken).
    Exact,
    /// Open amount less the early-payment discount of the terms.
    Discount,
    /// The discount is the terms' rate but the payment came after the window.
    LateDiscount,
    /// The remittance states a deduction (adjustment with or without reason code).
    StatedDeduction,
    /// A small difference consistent with a bank's wire fee.
    BankFee,
    /// Less than open and nothing explains it: the invoice stays partly open.
    Partial,
    /// More than open: the excess stays unapplied.
    Overpaid,
}

impl AmountFit {
    /// Every variant, for one-hot features in a fixed order.
    pub const ALL: [AmountFit; 7] = [
        AmountFit::Exact,
        AmountFit::Discount,
        AmountFit::LateDiscount,
        AmountFit::StatedDeduction,
        AmountFit::BankFee,
        AmountFit::Partial,
        AmountFit::Overpaid,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            AmountFit::Exact => "paid in full",
            AmountFit::Discount => "early-payment discount within terms",
            AmountFit::LateDiscount => "discount taken after the terms' window",
            AmountFit::StatedDeduction => "deduction stated on the remittance",
            AmountFit::BankFee => "bank fee deducted from the wire",
            AmountFit::Partial => "partial payment, the rest stays open",
            AmountFit::Overpaid => "overpaid, the excess stays unapplied",
        }
    }
}

/// Wire fees banks take on the way, in the payment's currency.
pub(crate) const BANK_FEE_MIN: Decimal = Decimal::from_parts(5, 0, 0, false, 0);
pub(crate) const BANK_FEE_MAX: Decimal = Decimal::from_parts(50, 0, 0, false, 0);
/// The reason code given to a bank-fee deduction.
pub(crate) const BANK_FEE_CODE: &str = "BANK_FEE";

/// The split of cash against one invoice.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// Cash applied.
    pub amount: Decimal,
    pub discount: Decimal,
    pub deduction: Decimal,
    pub reason_code: Option<String>,
    pub kind: AmountFit,
    /// Cash this invoice could not take (overpayment).
    pub excess: Decimal,
}

impl Fit {
    /// What the invoice is relieved of: the cash with the discount and deduction it grants.
    pub fn relieved(&self) -> Decimal {
        self.amount + self.discount + self.deduction
    }
}

/// Explains `cash` against an invoice's open amount. `line` is the remittance line that names
/// the invoice, when there is one: its stated discount and adjustments come first.
pub fn fit(
    inv: &Invoice,
    cash: Decimal,
    line: Option<&RemittanceLine>,
    paid_on: Option<NaiveDate>,
) -> Fit {
    let open = inv.open_amount;
    let plain = |amount, kind| Fit {
        amount,
        discount: Decimal::ZERO,
        deduction: Decimal::ZERO,
        reason_code: None,
        kind,
        excess: Decimal::ZERO,
    };
    if inv.is_credit() || open <= Decimal::ZERO {
        // A credit memo is netted whole; it cannot absorb more than its credit.
        let amount = if cash < open {
            open
        } else {
            cash.min(Decimal::ZERO)
        };
        let kind = if amount == open {
            AmountFit::Exact
        } else {
            AmountFit::Partial
        };
        return Fit {
            excess: cash - amount,
            ..plain(amount, kind)
        };
    }
    if cash == open {
        return plain(cash, AmountFit::Exact);
    }
    if cash > open {
        return Fit {
            excess: cash - open,
            ..plain(open, AmountFit::Overpaid)
        };
    }
    let gap = open - cash;
    // What the remittance says first.
    if let Some(l) = line {
        let stated_disc = l.discount.unwrap_or_default().max(Decimal::ZERO);
        let stated_adj: Decimal = l.adjustments.iter().map(|a| a.amount).sum();
        let code = l.adjustments.iter().find_map(|a| a.reason_code.clone());
        if !(stated_disc.is_zero() && stated_adj.is_zero()) && stated_disc + stated_adj == gap {
            let kind = if stated_adj.is_zero() {
                AmountFit::Discount
            } else {
                AmountFit::StatedDeduction
            };
            return Fit {
                discount: stated_disc,
                deduction: stated_adj,
                reason_code: if stated_adj.is_zero() { None } else { code },
                ..plain(cash, kind)
            };
        }
        if !stated_adj.is_zero() && stated_adj.abs() <= gap && stated_adj > Decimal::ZERO {
            // A stated deduction that covers part of the gap: the rest stays open.
            return Fit {
                deduction: stated_adj,
                reason_code: code,
                ..plain(cash, AmountFit::StatedDeduction)
            };
        }
    }
    if let Some((disc, within)) = terms_discount(inv, paid_on) {
        // Payers compute the discount on the invoice amount or on what is open.
        if gaps_of(inv, disc).contains(&gap) {
            let kind = if within {
                AmountFit::Discount
            } else {
                AmountFit::LateDiscount
            };
            return Fit {
                discount: gap,
                ..plain(cash, kind)
            };
        }
    }
    if (BANK_FEE_MIN..=BANK_FEE_MAX).contains(&gap) && gap < open / Decimal::TEN {
        return Fit {
            deduction: gap,
            reason_code: Some(BANK_FEE_CODE.to_string()),
            ..plain(cash, AmountFit::BankFee)
        };
    }
    plain(cash, AmountFit::Partial)
}

/// An amount in whole cents: the set searches add integers, exact and fast.
fn in_cents(d: Decimal) -> Option<i64> {
    (cents(d) * Decimal::ONE_HUNDRED).trunc().try_into().ok()
}

/// Amounts in cents, when every one is a positive amount: runs and continuations pay invoices,
/// never credit memos.
fn positive_cents(amounts: &[Decimal]) -> Option<Vec<i64>> {
    amounts
        .iter()
        .map(|&a| in_cents(a).filter(|&x| x > 0))
        .collect()
}

/// Budget of search nodes for one subset-sum: bounds the worst case of a customer with hundreds
/// of open items at a few milliseconds.
const SUBSET_NODE_BUDGET: usize = 200_000;

/// Subsets of `amounts` (indexes into it) whose sum is exactly `target`, of size 2 to
/// `max_size`, at most `max_solutions` of them. Amounts may be negative (credit memos).
/// Returns the solutions and whether the search finished within its budget.
pub(crate) fn subset_sums(
    amounts: &[Decimal],
    target: Decimal,
    max_size: usize,
    max_solutions: usize,
) -> (Vec<Vec<usize>>, bool) {
    let Some(target) = in_cents(target) else {
        return (Vec::new(), true);
    };
    let mut items: Vec<(i64, usize)> = amounts
        .iter()
        .enumerate()
        .filter_map(|(i, a)| in_cents(*a).map(|c| (c, i)))
        .collect();
    // Largest first so the bound prunes early.
    items.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let n = items.len();
    // suffix_pos[i] / suffix_neg[i]: the most the items from i on can add or take away.
    let mut suffix_pos = vec![0i64; n + 1];
    let mut suffix_neg = vec![0i64; n + 1];
    for i in (0..n).rev() {
        suffix_pos[i] = suffix_pos[i + 1] + items[i].0.max(0);
        suffix_neg[i] = suffix_neg[i + 1] + items[i].0.min(0);
    }
    struct Search<'a> {
        items: &'a [(i64, usize)],
        suffix_pos: &'a [i64],
        suffix_neg: &'a [i64],
        max_size: usize,
        max_solutions: usize,
        nodes: usize,
        chosen: Vec<usize>,
        out: Vec<Vec<usize>>,
    }
    impl Search<'_> {
        fn go(&mut self, i: usize, remaining: i64) {
            self.nodes += 1;
            if self.nodes > SUBSET_NODE_BUDGET || self.out.len() >= self.max_solutions {
                return;
            }
            if remaining == 0 && self.chosen.len() >= 2 {
                let mut s: Vec<usize> = self.chosen.iter().map(|&k| self.items[k].1).collect();
                s.sort_unstable();
                self.out.push(s);
            }
            if self.chosen.len() == self.max_size || i == self.items.len() {
                return;
            }
            if remaining > self.suffix_pos[i] || remaining < self.suffix_neg[i] {
                return;
            }
            for k in i..self.items.len() {
                let a = self.items[k].0;
                // Positive items sorted descending: skip those that overshoot when no credit
                // memo remains to bring the sum back.
                if a > remaining && self.suffix_neg[k] == 0 {
                    continue;
                }
                self.chosen.push(k);
                self.go(k + 1, remaining - a);
                self.chosen.pop();
                if self.nodes > SUBSET_NODE_BUDGET || self.out.len() >= self.max_solutions {
                    return;
                }
            }
        }
    }
    let mut s = Search {
        items: &items,
        suffix_pos: &suffix_pos,
        suffix_neg: &suffix_neg,
        max_size,
        max_solutions,
        nodes: 0,
        chosen: Vec::new(),
        out: Vec::new(),
    };
    s.go(0, target);
    let finished = s.nodes <= SUBSET_NODE_BUDGET;
    (s.out, finished)
}

/// Items a due-date run may skip inside it: the invoices an AP run holds back (disputed, not
/// yet approved, short-shipped) are few.
pub(crate) const RUN_MAX_SKIPPED: usize = 2;

/// Open items, oldest due first, that a payment run is searched among, per customer.
pub(crate) const RUN_POOL: usize = 48;

/// Items one due-date run spans at most, skipped ones included.
pub(crate) const RUN_MAX_LEN: usize = 24;

/// Runs one due-date search keeps at most before ranking them.
const RUN_MAX_FOUND: usize = 64;

/// Sets of `amounts` (positive, in due-date order) that a payment run makes: every item due from
/// one item to a later one, less at most [`RUN_MAX_SKIPPED`] items between them, adding up to
/// exactly `target`. An AP department pays what has fallen due and holds back the few invoices it
/// disputes; the subset-sum treats every combination of the oldest items as equally likely and
/// cannot reach runs of more than a handful. Runs span at most [`RUN_MAX_LEN`] items and hold at
/// least `min_size`. Returns at most `max_solutions` sets (indexes into `amounts`, ascending),
/// fewest skipped first, then the oldest start, and how many sets were found in all (at most
/// [`RUN_MAX_FOUND`]): several runs adding up to one payment make each of them doubtful.
pub(crate) fn due_runs(
    amounts: &[Decimal],
    target: Decimal,
    min_size: usize,
    max_solutions: usize,
) -> (Vec<Vec<usize>>, usize) {
    let (Some(target), Some(c)) = (in_cents(target), positive_cents(amounts)) else {
        return (Vec::new(), 0);
    };
    if target <= 0 {
        return (Vec::new(), 0);
    }
    // The most any items held back can give back: once a run's excess is beyond it, longer runs
    // from the same start only add more.
    let mut largest = c.clone();
    largest.sort_unstable_by(|a, b| b.cmp(a));
    let give_back: i64 = largest.iter().take(RUN_MAX_SKIPPED).sum();
    // (skipped, start, end, skipped items)
    let mut found: Vec<(usize, usize, usize, [usize; RUN_MAX_SKIPPED])> = Vec::new();
    'starts: for s in 0..c.len() {
        let mut sum = 0i64;
        // The two largest items strictly inside the run so far: what it can give back.
        let mut inner_top = [0i64; 2];
        for e in s..c.len().min(s + RUN_MAX_LEN) {
            sum += c[e];
            if e >= s + 2 {
                let x = c[e - 1];
                if x > inner_top[0] {
                    inner_top = [x, inner_top[0]];
                } else if x > inner_top[1] {
                    inner_top[1] = x;
                }
            }
            let excess = sum - target;
            if excess < 0 {
                continue;
            }
            if excess > give_back {
                break;
            }
            if excess > inner_top[0] + inner_top[1] {
                continue;
            }
            let len = e - s + 1;
            let mut push = |skipped: usize, k: [usize; RUN_MAX_SKIPPED]| {
                if len - skipped >= min_size {
                    found.push((skipped, s, e, k));
                }
            };
            if excess == 0 {
                push(0, [usize::MAX; 2]);
            } else if e > s + 1 {
                // Only items strictly inside: a run starts and ends with an item it pays.
                let inner = s + 1..e;
                for k1 in inner.clone() {
                    if c[k1] == excess {
                        push(1, [k1, usize::MAX]);
                    }
                    if c[k1] < excess {
                        for k2 in k1 + 1..e {
                            if c[k1] + c[k2] == excess {
                                push(2, [k1, k2]);
                            }
                        }
                    }
                }
            }
            if found.len() >= RUN_MAX_FOUND {
                break 'starts;
            }
        }
    }
    let total = found.len();
    found.sort_unstable();
    let sets = found
        .into_iter()
        .take(max_solutions)
        .map(|(_, s, e, skip)| (s..=e).filter(|k| !skip.contains(k)).collect())
        .collect();
    (sets, total)
}

/// Items the rest of a cut list may leave out: the few invoices the payer held back (disputed,
/// not yet approved) among those it paid.
pub(crate) const CONTINUATION_MAX_LEFT_OUT: usize = 4;

/// Search nodes one continuation search visits at most: a payer with dozens of open items after
/// the list still costs well under a millisecond.
const CONTINUATION_NODE_BUDGET: usize = 50_000;

/// The rest of a list the bank's field cut: an AP system lists what it pays in its own order
/// (invoice date, then number), so the items the memo lost are those that follow the last one
/// it names, less the few the payer held back. `amounts` are the payer's open items after the
/// last named one, in that order. Returns the set (indexes, ascending) that leaves out the
/// fewest of them, at most `max_left_out`, and of those the one that ends soonest, adding up to
/// exactly `target`; and how many sets leave out that few (each item of the set paid, the last
/// one always: a set ends with an item it pays). More than one and the amounts do not say which.
pub(crate) fn continuation(
    amounts: &[Decimal],
    target: Decimal,
    max_left_out: usize,
) -> Option<(Vec<usize>, usize)> {
    let target = in_cents(target).filter(|&t| t > 0)?;
    let c = positive_cents(amounts)?;
    let mut budget = CONTINUATION_NODE_BUDGET;
    for left_out in 0..=max_left_out {
        let mut found: Vec<Vec<usize>> = Vec::new();
        let mut prefix = 0i64;
        for e in 0..c.len() {
            prefix += c[e];
            let excess = prefix - target;
            if excess < 0 {
                continue;
            }
            // The items before the last, largest first: which of them add up to the excess.
            let mut before: Vec<(i64, usize)> = (0..e).map(|k| (c[k], k)).collect();
            before.sort_unstable_by(|a, b| b.cmp(a));
            let mut out = Vec::new();
            exactly(
                &before,
                excess,
                left_out,
                &mut Vec::new(),
                &mut out,
                &mut budget,
            );
            for skip in out {
                found.push((0..=e).filter(|k| !skip.contains(k)).collect());
            }
            if budget == 0 {
                break;
            }
        }
        if !found.is_empty() {
            let n = found.len();
            return found.into_iter().next().map(|s| (s, n));
        }
        if budget == 0 {
            return None;
        }
    }
    None
}

/// Sets of exactly `k` of `items` (amount, index; largest first) adding up to `target`, each as
/// its indexes; at most two, since a second already makes the first doubtful.
fn exactly(
    items: &[(i64, usize)],
    target: i64,
    k: usize,
    chosen: &mut Vec<usize>,
    out: &mut Vec<Vec<usize>>,
    budget: &mut usize,
) {
    if *budget == 0 || out.len() >= 2 {
        return;
    }
    *budget -= 1;
    if k == 0 {
        if target == 0 {
            out.push(chosen.clone());
        }
        return;
    }
    if items.len() < k {
        return;
    }
    // Largest first: the next k are the most the rest can give, the last k the least.
    let most: i64 = items[..k].iter().map(|x| x.0).sum();
    let least: i64 = items[items.len() - k..].iter().map(|x| x.0).sum();
    if target > most || target < least {
        return;
    }
    for j in 0..=items.len() - k {
        if items[j].0 > target {
            continue;
        }
        chosen.push(items[j].1);
        exactly(
            &items[j + 1..],
            target - items[j].0,
            k - 1,
            chosen,
            out,
            budget,
        );
        chosen.pop();
        if *budget == 0 || out.len() >= 2 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Adjustment, Currency, Terms};
    use rust_decimal_macros::dec;

    fn inv(amount: Decimal, terms: &str) -> Invoice {
        let d = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default();
        Invoice {
            id: "I".into(),
            customer_id: "C".into(),
            number: "1".into(),
            po_number: None,
            invoice_date: d,
            due_date: d + chrono::Days::new(30),
            currency: Currency::USD,
            amount,
            open_amount: amount,
            terms: Terms::parse(terms).unwrap_or_default(),
        }
    }

    fn day(d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(2026, 10, d)
    }

    #[test]
    fn discount_within_and_after_terms() {
        let i = inv(dec!(1000.00), "2/10 NET 30");
        let f = fit(&i, dec!(980.00), None, day(8));
        assert_eq!(
            (f.kind, f.amount, f.discount),
            (AmountFit::Discount, dec!(980.00), dec!(20.00))
        );
        assert_eq!(
            fit(&i, dec!(980.00), None, day(28)).kind,
            AmountFit::LateDiscount
        );
        // No discount in NET 30 terms: 20.00 short is a bank fee.
        let f = fit(&inv(dec!(1000.00), "NET 30"), dec!(980.00), None, day(8));
        assert_eq!((f.kind, f.deduction), (AmountFit::BankFee, dec!(20.00)));
    }

    #[test]
    fn stated_deduction_partial_and_overpayment() {
        let i = inv(dec!(500.00), "NET 30");
        let line = RemittanceLine {
            adjustments: vec![Adjustment {
                amount: dec!(75.00),
                reason_code: Some("DAMAGED".into()),
                text: None,
            }],
            ..Default::default()
        };
        let f = fit(&i, dec!(425.00), Some(&line), day(8));
        assert_eq!(
            (f.kind, f.deduction, f.reason_code.as_deref()),
            (AmountFit::StatedDeduction, dec!(75.00), Some("DAMAGED"))
        );
        let f = fit(&i, dec!(200.00), None, day(8));
        assert_eq!(
            (f.kind, f.amount, f.deduction),
            (AmountFit::Partial, dec!(200.00), Decimal::ZERO)
        );
        let f = fit(&i, dec!(510.00), None, day(8));
        assert_eq!(
            (f.kind, f.amount, f.excess),
            (AmountFit::Overpaid, dec!(500.00), dec!(10.00))
        );
    }

    #[test]
    fn every_fit_stays_within_the_open_amount() {
        let i = inv(dec!(300.00), "2/10 NET 30");
        for cash in [
            dec!(0.01),
            dec!(150),
            dec!(294),
            dec!(299.99),
            dec!(300),
            dec!(301),
        ] {
            let f = fit(&i, cash, None, day(5));
            assert!(
                f.amount + f.discount + f.deduction <= i.open_amount,
                "{cash}: {f:?}"
            );
            assert_eq!(f.amount + f.excess, cash);
        }
    }

    #[test]
    fn subset_sum_finds_consolidated_payments_with_credits() {
        let a = [
            dec!(100.00),
            dec!(250.50),
            dec!(75.25),
            dec!(-50.00),
            dec!(999.99),
        ];
        let (sols, done) = subset_sums(&a, dec!(325.75), 4, 10);
        assert!(done);
        assert!(sols.contains(&vec![1, 2]));
        let (sols, _) = subset_sums(&a, dec!(275.75), 4, 10);
        assert!(sols.contains(&vec![1, 2, 3]), "{sols:?}");
        let (sols, _) = subset_sums(&a, dec!(1.23), 4, 10);
        assert!(sols.is_empty());
    }

    #[test]
    fn due_runs_find_long_runs_less_the_items_held_back() {
        // Twelve invoices due in order; the run pays the first eleven except the 4th (disputed).
        let a: Vec<Decimal> = (1..=12)
            .map(|k| Decimal::new(10_000 + k * 137, 2))
            .collect();
        let target: Decimal = a[..11].iter().sum::<Decimal>() - a[3];
        let (sols, total) = due_runs(&a, target, 2, 6);
        let want: Vec<usize> = (0..11).filter(|&k| k != 3).collect();
        assert_eq!(sols.first(), Some(&want), "{sols:?}");
        assert!(total >= 1);
        // Too long for the subset-sum, which stops at six items.
        assert!(subset_sums(&a, target, 6, 6).0.is_empty());
        // A run that needs three items held back is not one.
        let t3 = a[..11].iter().sum::<Decimal>() - a[2] - a[4] - a[6];
        let three_held: Vec<usize> = (0..11).filter(|k| ![2, 4, 6].contains(k)).collect();
        assert!(!due_runs(&a, t3, 2, 6).0.contains(&three_held));
        // A whole run ranks before one with an item held back.
        let (sols, _) = due_runs(&a, a[5] + a[6] + a[7], 2, 6);
        assert_eq!(sols.first(), Some(&vec![5, 6, 7]));
        assert!(due_runs(&a, dec!(0.01), 1, 6).0.is_empty());
    }

    #[test]
    fn the_rest_of_a_cut_list_is_what_follows_it_less_the_few_held_back() {
        // Ten items after the last one the memo names; the payer paid the first seven but the
        // third (disputed).
        let a: Vec<Decimal> = [
            120417, 38800, 231045, 9712, 512000, 64033, 177590, 21908, 300461, 81277,
        ]
        .iter()
        .map(|&c| Decimal::new(c, 2))
        .collect();
        let target: Decimal = a[..7].iter().sum::<Decimal>() - a[2];
        let (set, ties) = continuation(&a, target, CONTINUATION_MAX_LEFT_OUT).unwrap_or_default();
        assert_eq!(set, [0, 1, 3, 4, 5, 6]);
        assert_eq!(ties, 1);
        // Everything up to an item, nothing held back, before any set that leaves one out.
        let whole: Decimal = a[..4].iter().sum();
        assert_eq!(
            continuation(&a, whole, CONTINUATION_MAX_LEFT_OUT).map(|c| c.0),
            Some(vec![0, 1, 2, 3])
        );
        // Recurring amounts: several sets leave out one item, and the count says so.
        let same = [dec!(50.00), dec!(50.00), dec!(100.00), dec!(100.00)];
        let (set, ties) = continuation(&same, dec!(250.00), 1).unwrap_or_default();
        assert!(set == [0, 2, 3] || set == [1, 2, 3], "{set:?}");
        assert_eq!(ties, 2);
        // More held back than allowed, or a sum nothing makes: no continuation.
        let t5: Decimal = a.iter().sum::<Decimal>() - a[1] - a[2] - a[3] - a[4] - a[5];
        assert_eq!(continuation(&a, t5, 4), None);
        assert_eq!(continuation(&a, dec!(0.01), 4), None);
    }

    proptest::proptest! {
        #[test]
        fn a_continuation_sums_and_leaves_out_at_most_the_limit(xs in proptest::collection::vec(1i64..500_000, 1..30), len in 1usize..30, gaps in proptest::collection::vec(0usize..30, 0..3)) {
            let a: Vec<Decimal> = xs.iter().map(|c| Decimal::new(*c, 2)).collect();
            let len = len.min(a.len());
            let target: Decimal = (0..len).filter(|k| !gaps.contains(k) || *k == len - 1).map(|k| a[k]).sum();
            if let Some((set, ties)) = continuation(&a, target, CONTINUATION_MAX_LEFT_OUT) {
                let sum: Decimal = set.iter().map(|&i| a[i]).sum();
                proptest::prop_assert_eq!(sum, target);
                let last = set[set.len() - 1];
                proptest::prop_assert!(last + 1 - set.len() <= CONTINUATION_MAX_LEFT_OUT);
                proptest::prop_assert!(ties >= 1);
            } else {
                // The set the target was made from leaves out at most two items.
                proptest::prop_assert!(false, "no continuation for {target} in {a:?}");
            }
        }

        #[test]
        fn due_runs_are_runs_that_sum(xs in proptest::collection::vec(1i64..500_000, 0..30), from in 0usize..30, len in 1usize..14) {
            let a: Vec<Decimal> = xs.iter().map(|c| Decimal::new(*c, 2)).collect();
            let target: Decimal = a.iter().skip(from).take(len).sum();
            let (sols, total) = due_runs(&a, target, 1, 6);
            proptest::prop_assert!(sols.len() <= total);
            for s in sols {
                let sum: Decimal = s.iter().map(|&i| a[i]).sum();
                proptest::prop_assert_eq!(sum, target);
                let span = s[s.len() - 1] - s[0] + 1;
                proptest::prop_assert!(span - s.len() <= RUN_MAX_SKIPPED && span <= RUN_MAX_LEN);
            }
        }

        #[test]
        fn subset_sum_solutions_really_sum(xs in proptest::collection::vec(-50_000i64..500_000, 0..18), pick in 0usize..5) {
            let a: Vec<Decimal> = xs.iter().map(|c| Decimal::new(*c, 2)).collect();
            let target: Decimal = a.iter().take(pick).sum();
            let (sols, _) = subset_sums(&a, target, 6, 5);
            for s in sols {
                let sum: Decimal = s.iter().map(|&i| a[i]).sum();
                proptest::prop_assert_eq!(sum, target);
            }
        }
    }
}
