//! Candidates from the amount alone, for payments without detail: single open items whose amount
//! explains the payment, and the bounded subset-sum over a customer's open items.

use super::{Candidate, CandidateAllocation, CandidateLimits, Source, due_gaps, finish, payable};
use crate::domain::Payment;
use crate::ledger::{CustomerIdx, InvoiceIdx, Ledger};
use crate::matching::amounts::{
    AmountFit, BANK_FEE_MAX, BANK_FEE_MIN, RUN_POOL, due_runs, fit, subset_sums,
};
use crate::terms::{cents, terms_discount};
use rust_decimal::Decimal;
use std::ops::Bound;

/// Single open items of the customers in play whose amount explains the payment: paid in full,
/// with the terms discount, less a wire fee, overpaid by at most a tenth, or at least half paid;
/// in that order of preference, and nearest the payment first within each. The customer's
/// amount index is read outwards from the payment's amount, so a payer with tens of thousands
/// of open items costs what one with ten does.
pub(super) fn single_amounts(
    ledger: &Ledger,
    payment: &Payment,
    customers: &[CustomerIdx],
    limits: &CandidateLimits,
    out: &mut Vec<Candidate>,
) {
    let p = payment.amount;
    if p <= Decimal::ZERO {
        return;
    }
    // Up to ten exact matches are kept when that many exist, so each rank needs its best ten.
    let keep = limits.single_amount_candidates.max(10);
    let rank_of = |i: InvoiceIdx| -> Option<(u8, Decimal, InvoiceIdx)> {
        let inv = ledger.invoice(i);
        let open = inv.open_amount;
        if open <= Decimal::ZERO || !payable(ledger, payment, i) {
            return None;
        }
        let f = fit(inv, p, None, payment.payment_date);
        let rank = match f.kind {
            AmountFit::Exact => 0,
            AmountFit::Discount => 1,
            AmountFit::BankFee | AmountFit::LateDiscount => 2,
            // Close misses only: a payment of half an invoice is not evidence for it.
            AmountFit::Overpaid if f.excess <= open / Decimal::TEN => 3,
            AmountFit::Partial if p * Decimal::TWO >= open => 4,
            _ => return None,
        };
        Some((rank, (open - p).abs(), i))
    };
    let fee_low = p + BANK_FEE_MIN;
    // A gap is a wire fee only under a tenth of the invoice: 10 (open - p) < open.
    let in_fee_band = |open: Decimal| {
        open >= fee_low && open <= p + BANK_FEE_MAX && (open - p) * Decimal::TEN < open
    };
    let mut found: Vec<(u8, Decimal, InvoiceIdx)> = Vec::new();
    for &c in customers {
        let ix = ledger.open_items(c);
        let mut mine: Vec<(u8, Decimal, InvoiceIdx)> = Vec::new();
        // Paid in full: every such item ties, and the index yields them lowest index first.
        let exact = ix.by_open_amount(Bound::Included(p), Bound::Included(p));
        mine.extend(exact.take(MAX_AMOUNT_WALK).filter_map(&rank_of).take(keep));
        // The terms discount taken: the index holds what each item asks for less it, and
        // exactly that is rare enough to read whole.
        mine.extend(
            ix.by_net_amount(p)
                .take(MAX_AMOUNT_WALK)
                .filter_map(&rank_of),
        );
        // A wire fee: nearest first; every item of the band is a fee or a discount.
        let fees = ix
            .by_open_amount(Bound::Included(fee_low), Bound::Included(p + BANK_FEE_MAX))
            .take_while(|&i| in_fee_band(ledger.invoice(i).open_amount));
        walk(fees, keep, |r| r <= 2, rank_of, &mut mine);
        // Overpaid by at most a tenth: open >= p / 1.1, nearest first, downwards.
        let floor = cents(p * Decimal::TEN / Decimal::from(11)) - Decimal::new(1, 2);
        let over = ix
            .by_open_amount(Bound::Included(floor), Bound::Excluded(p))
            .rev();
        walk(over, keep, |r| r == 3, rank_of, &mut mine);
        // At least half paid, nearest first, upwards, stepping over the wire-fee band.
        let band_end = (p * Decimal::TEN / Decimal::from(9))
            .min(p + BANK_FEE_MAX)
            .max(fee_low);
        let partial = ix
            .by_open_amount(Bound::Excluded(p), Bound::Excluded(fee_low))
            .chain(
                ix.by_open_amount(Bound::Included(band_end), Bound::Included(p * Decimal::TWO))
                    .filter(|&i| !in_fee_band(ledger.invoice(i).open_amount)),
            );
        walk(partial, keep, |r| r == 4, rank_of, &mut mine);
        mine.sort();
        mine.dedup();
        found.extend(mine);
    }
    found.sort();
    let exact = found.iter().filter(|f| f.0 == 0).count();
    for &(_, _, i) in found
        .iter()
        .take(limits.single_amount_candidates.max(exact.min(10)))
    {
        let f = fit(ledger.invoice(i), p, None, payment.payment_date);
        out.push(finish(
            payment,
            Source::SingleAmount,
            vec![CandidateAllocation {
                invoice: i,
                fit: f,
                reference: None,
                line: None,
            }],
        ));
    }
}

/// Items an amount index yields, nearest the payment first, read until `keep` of them have a
/// rank `counts` accepts and the next one is further away than the last of those (items at
/// the same distance tie, and ties are broken by index afterwards). Every item read that
/// explains the payment at all goes to `out`. At most [`MAX_AMOUNT_WALK`] items are read:
/// beyond that many equal amounts, which of them are candidates is the index's order.
fn walk(
    items: impl Iterator<Item = InvoiceIdx>,
    keep: usize,
    counts: impl Fn(u8) -> bool,
    rank_of: impl Fn(InvoiceIdx) -> Option<(u8, Decimal, InvoiceIdx)>,
    out: &mut Vec<(u8, Decimal, InvoiceIdx)>,
) {
    let mut kept = 0;
    let mut last: Option<Decimal> = None;
    for i in items.take(MAX_AMOUNT_WALK) {
        let Some(r) = rank_of(i) else { continue };
        if kept >= keep && last.is_some_and(|d| r.1 != d) {
            break;
        }
        if counts(r.0) {
            kept += 1;
            last = Some(r.1);
        }
        out.push(r);
    }
}

/// Items one walk over an amount index reads at most.
pub(super) const MAX_AMOUNT_WALK: usize = 512;

/// Consolidated payments without detail: sets of a customer's open items (credit memos too)
/// whose open amounts, or discounted amounts, add up to the payment exactly.
pub(super) fn subsets(
    ledger: &Ledger,
    payment: &Payment,
    customers: &[CustomerIdx],
    limits: &CandidateLimits,
    out: &mut Vec<Candidate>,
) -> (usize, usize) {
    let mut n = 0;
    let mut pc_pool = 0;
    for &c in customers.iter().take(2) {
        // Customers pay their oldest items first: the pool is the oldest by due date, read
        // from the customer's due-date index rather than sorted from all its items.
        let pool: Vec<InvoiceIdx> = ledger
            .open_items(c)
            .by_due_date()
            .filter(|&i| payable(ledger, payment, i))
            .take(limits.subset_pool)
            .collect();
        if pool.len() < 2 {
            continue;
        }
        pc_pool = pc_pool.max(pool.len());
        let targets = amounts_to_pay(ledger, payment, &pool);
        // Each distinct set once, however many searches find it: the count is how doubtful
        // each of them is.
        let mut sets: Vec<Vec<(InvoiceIdx, Decimal)>> = Vec::new();
        let mut add = |mut s: Vec<(InvoiceIdx, Decimal)>| {
            s.sort_unstable();
            if !sets.contains(&s) {
                sets.push(s);
            }
        };
        for amounts in &targets {
            let (sols, _) = subset_sums(
                amounts,
                payment.amount,
                limits.subset_max_size,
                limits.subset_max_solutions,
            );
            for s in sols {
                add(s.iter().map(|&k| (pool[k], amounts[k])).collect());
            }
        }
        // Payment runs: every invoice due over a stretch, less the few held back, which may be
        // many more items than the subset-sum reaches.
        let run_pool: Vec<InvoiceIdx> = ledger
            .open_items(c)
            .by_due_date()
            .filter(|&i| {
                ledger.invoice(i).open_amount > Decimal::ZERO && payable(ledger, payment, i)
            })
            .take(RUN_POOL)
            .collect();
        for amounts in &amounts_to_pay(ledger, payment, &run_pool) {
            let (sols, found) = due_runs(amounts, payment.amount, 2, limits.subset_max_solutions);
            n += found.saturating_sub(sols.len());
            for s in sols {
                add(s.iter().map(|&k| (run_pool[k], amounts[k])).collect());
            }
        }
        n += sets.len();
        let mut found: Vec<((usize, usize), Candidate)> = sets
            .into_iter()
            .map(|s| {
                let allocations: Vec<CandidateAllocation> = s
                    .into_iter()
                    .map(|(i, cash)| CandidateAllocation {
                        invoice: i,
                        fit: fit(ledger.invoice(i), cash, None, payment.payment_date),
                        reference: None,
                        line: None,
                    })
                    .collect();
                let gaps = due_gaps(ledger, payment, &allocations).unwrap_or((usize::MAX, 0));
                (
                    (gaps.1, gaps.0),
                    finish(payment, Source::SubsetSum, allocations),
                )
            })
            .collect();
        // The set most like a payment run first: candidates of equal evidence keep this order.
        found.sort_by_key(|f| f.0);
        out.extend(found.into_iter().map(|f| f.1));
    }
    (n, pc_pool)
}

/// What a payer may pay for each item: its open amount, and, when the terms give any item a
/// discount on the payment date, the open amount less it as a second reading.
fn amounts_to_pay(ledger: &Ledger, payment: &Payment, items: &[InvoiceIdx]) -> Vec<Vec<Decimal>> {
    let open: Vec<Decimal> = items
        .iter()
        .map(|&i| ledger.invoice(i).open_amount)
        .collect();
    let net: Vec<Decimal> = items
        .iter()
        .map(|&i| {
            let inv = ledger.invoice(i);
            match terms_discount(inv, payment.payment_date) {
                Some((d, true)) => inv.open_amount - d,
                _ => inv.open_amount,
            }
        })
        .collect();
    if net == open {
        vec![open]
    } else {
        vec![open, net]
    }
}
