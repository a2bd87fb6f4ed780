//! Candidates from the set of invoices a payment's free text names, and the completion of a list
//! that explains only part of the cash (a memo field cut short) from the customer's other open
//! items.

use super::{
    Candidate, CandidateAllocation, CandidateLimits, PaymentCandidates, RefHit, Source, finish,
};
use crate::domain::Payment;
use crate::ledger::{InvoiceIdx, Ledger};
use crate::matching::amounts::{
    AmountFit, CONTINUATION_MAX_LEFT_OUT, RUN_POOL, continuation, due_runs, fit, subset_sums,
};
use crate::terms::terms_discount;
use rust_decimal::Decimal;

/// The invoices the free text names, as one set.
pub(super) fn from_text(
    ledger: &Ledger,
    payment: &Payment,
    pc: &PaymentCandidates,
    out: &mut Vec<Candidate>,
) {
    let mut chosen: Vec<(InvoiceIdx, usize, RefHit)> = Vec::new();
    for (qi, q) in pc.queries.iter().enumerate() {
        if q.line.is_some() {
            continue;
        }
        if let Some(h) = pc.hits[qi].first() {
            if !chosen.iter().any(|(i, _, _)| *i == h.invoice) {
                chosen.push((h.invoice, qi, *h));
            }
        }
    }
    if chosen.is_empty() {
        return;
    }
    let invoices: Vec<InvoiceIdx> = chosen.iter().map(|c| c.0).collect();
    let mut cand = allocate_set(ledger, payment, &invoices, Source::TextReferences);
    for a in &mut cand.allocations {
        if let Some((_, qi, h)) = chosen.iter().find(|c| c.0 == a.invoice) {
            a.reference = Some((*qi, h.sim, h.field));
        }
    }
    out.push(cand);
}

/// Spreads a payment over a set of invoices that carry no line amounts: in full when the
/// payment covers them (with their discounts when that is what it equals), the wire fee off the
/// last when the gap is a fee, and otherwise oldest first until the cash runs out.
pub(crate) fn allocate_set(
    ledger: &Ledger,
    payment: &Payment,
    invoices: &[InvoiceIdx],
    source: Source,
) -> Candidate {
    let mut invs: Vec<InvoiceIdx> = invoices.to_vec();
    // Credit memos first (they add cash to spread), then oldest due first.
    invs.sort_by_key(|&i| {
        let inv = ledger.invoice(i);
        (!inv.is_credit(), inv.due_date, i)
    });
    let open_total: Decimal = invs.iter().map(|&i| ledger.invoice(i).open_amount).sum();
    let discounts: Vec<Decimal> = invs
        .iter()
        .map(
            |&i| match terms_discount(ledger.invoice(i), payment.payment_date) {
                Some((d, true)) => d.min(ledger.invoice(i).open_amount),
                _ => Decimal::ZERO,
            },
        )
        .collect();
    let disc_total: Decimal = discounts.iter().sum();
    let p = payment.amount;
    let gap = open_total - p;
    let mut allocations = Vec::with_capacity(invs.len());
    let mut remaining = p;
    for (k, &i) in invs.iter().enumerate() {
        let inv = ledger.invoice(i);
        let last = k + 1 == invs.len();
        let cash = if !disc_total.is_zero() && gap == disc_total {
            inv.open_amount - discounts[k]
        } else if last {
            remaining
        } else {
            inv.open_amount
                .min(remaining.max(Decimal::ZERO))
                .max(inv.open_amount.min(Decimal::ZERO))
        };
        let f = fit(inv, cash, None, payment.payment_date);
        remaining -= f.amount;
        allocations.push(CandidateAllocation {
            invoice: i,
            fit: f,
            reference: None,
            line: None,
        });
    }
    finish(payment, source, allocations)
}

/// Where an AP system's listing puts an item: by invoice date, then number.
type ListOrder = (chrono::NaiveDate, Option<u64>);

/// An invoice's place in the listing, as the open-item facts hold it (`OpenFacts::number`).
fn list_order(ledger: &Ledger, i: InvoiceIdx) -> ListOrder {
    (
        ledger.invoice(i).invoice_date,
        ledger.invoice_keys(i).number.core.parse::<u64>().ok(),
    )
}

/// Listed candidates completed at most per payment.
const COMPLETED_LISTS: usize = 2;

/// Open items ranked by neighbourhood that a completion searches as subsets, at most.
const COMPLETION_POOL: usize = 22;

/// How far apart two invoice numbers may be and still be one billing run's neighbours.
const NEIGHBOUR_NUMBERS: u64 = 25;

/// Remittances whose listed references explain only part of the cash: a bank's memo field (80
/// characters of ACH addenda, 140 of a wire) cut the list, and the rest of the cash pays more of
/// the same customer's open items. For the first listed candidates that pay each listed item in
/// full (or with its discount or stated deduction) and leave cash over, the rest is searched
/// among the customer's other open items that fit in it: first the items nearest the listed ones
/// (the same billing date, numbers a few apart), oldest due first; then sets of them adding up
/// to the rest exactly (the bounded subset-sum), the oldest-first run of them, a single item
/// with exactly that amount, and the items that follow the last listed one in the listing's own
/// order, fewest held back (`continues_list`: where the field cut the list). Each distinct set
/// becomes a candidate of the same source marked `completed`. Returns the most distinct sets
/// found for one listed candidate.
pub(super) fn complete_lists(
    ledger: &Ledger,
    payment: &Payment,
    limits: &CandidateLimits,
    cands: &mut Vec<Candidate>,
) -> usize {
    let mut most = 0;
    let mut out = Vec::new();
    let listed = cands
        .iter()
        .filter(|c| matches!(c.source, Source::Lines | Source::TextReferences))
        .filter(|c| c.unapplied > Decimal::ZERO && lists_in_full(payment, c))
        .take(COMPLETED_LISTS);
    for c in listed {
        let Some(first) = c.allocations.first() else {
            continue;
        };
        let cust = ledger.invoice_customer(first.invoice);
        if c.allocations
            .iter()
            .any(|a| ledger.invoice_customer(a.invoice) != cust)
        {
            continue;
        }
        let gap = c.unapplied;
        let number = |i: InvoiceIdx| ledger.invoice_keys(i).number.core.parse::<u64>().ok();
        let listed_numbers: Vec<u64> = c
            .allocations
            .iter()
            .filter_map(|a| number(a.invoice))
            .collect();
        let listed_dates: Vec<chrono::NaiveDate> = c
            .allocations
            .iter()
            .map(|a| ledger.invoice(a.invoice).invoice_date)
            .collect();
        // The customer's open items are read from their facts, one contiguous array, rather
        // than from the invoices themselves: this scan was the costliest step of a payment to
        // a key account. The filter is `payable`'s, on the same values.
        let mut pool: Vec<(bool, chrono::NaiveDate, InvoiceIdx, Decimal, ListOrder)> = ledger
            .customer_open_invoices(cust)
            .iter()
            .zip(ledger.customer_open_facts(cust))
            .take(limits.customer_scan_limit)
            .filter(|&(&i, f)| {
                f.open_amount > Decimal::ZERO
                    && f.open_amount <= gap
                    && f.currency == payment.currency
                    && payment.payment_date.is_none_or(|d| f.invoice_date <= d)
                    && !c.allocations.iter().any(|a| a.invoice == i)
            })
            .map(|(&i, f)| {
                let near = listed_dates.contains(&f.invoice_date)
                    || f.number.is_some_and(|n| {
                        listed_numbers
                            .iter()
                            .any(|&m| n.abs_diff(m) <= NEIGHBOUR_NUMBERS)
                    });
                (
                    !near,
                    f.due_date,
                    i,
                    f.open_amount,
                    (f.invoice_date, f.number),
                )
            })
            .collect();
        // The invoice index breaks every tie, so the amount carried last never orders.
        pool.sort_unstable();
        let mut sets: Vec<Vec<InvoiceIdx>> = Vec::new();
        let add = |mut s: Vec<InvoiceIdx>, sets: &mut Vec<Vec<InvoiceIdx>>| {
            s.sort_unstable();
            if !s.is_empty() && !sets.contains(&s) {
                sets.push(s);
            }
        };
        // The oldest-first run of the neighbours and then the rest: how AP runs pick what to pay.
        let mut sum = Decimal::ZERO;
        for (k, &(_, _, _, open, _)) in pool.iter().enumerate() {
            sum += open;
            if sum == gap {
                add(pool[..=k].iter().map(|p| p.2).collect(), &mut sets);
            }
            if sum >= gap {
                break;
            }
        }
        for &(_, _, i, open, _) in &pool {
            if open == gap {
                add(vec![i], &mut sets);
            }
        }
        let head: Vec<InvoiceIdx> = pool.iter().take(COMPLETION_POOL).map(|p| p.2).collect();
        let open: Vec<Decimal> = pool.iter().take(COMPLETION_POOL).map(|p| p.3).collect();
        let (sols, _) = subset_sums(
            &open,
            gap,
            limits.subset_max_size,
            limits.subset_max_solutions,
        );
        for s in sols {
            add(s.into_iter().map(|k| head[k]).collect(), &mut sets);
        }
        // The rest of the payment run the listed items begin: the items due from the oldest
        // listed one on, less the few the payer held back, which may be more than the
        // subset-sum reaches (a cut list leaves a dozen items unnamed).
        let from = c
            .allocations
            .iter()
            .map(|a| ledger.invoice(a.invoice).due_date)
            .min();
        let mut run: Vec<(chrono::NaiveDate, InvoiceIdx, Decimal)> = pool
            .iter()
            .filter(|p| from.is_some_and(|d| p.1 >= d))
            .map(|p| (p.1, p.2, p.3))
            .collect();
        run.sort_unstable();
        run.truncate(RUN_POOL);
        let run_open: Vec<Decimal> = run.iter().map(|r| r.2).collect();
        let (sols, _) = due_runs(&run_open, gap, 1, limits.subset_max_solutions);
        for s in sols {
            add(s.into_iter().map(|k| run[k].1).collect(), &mut sets);
        }
        // The rest of the list in the list's own order: the items after the last one named.
        let last_named = c
            .allocations
            .iter()
            .map(|a| list_order(ledger, a.invoice))
            .max();
        let mut after: Vec<(ListOrder, InvoiceIdx, Decimal)> = pool
            .iter()
            .filter(|p| last_named.is_some_and(|l| p.4 > l))
            .map(|p| (p.4, p.2, p.3))
            .collect();
        after.sort_unstable();
        after.truncate(RUN_POOL);
        let after_open: Vec<Decimal> = after.iter().map(|a| a.2).collect();
        let mut continues: Option<Vec<InvoiceIdx>> = None;
        let mut tied = 0;
        if let Some((s, ties)) = continuation(&after_open, gap, CONTINUATION_MAX_LEFT_OUT) {
            let mut s: Vec<InvoiceIdx> = s.into_iter().map(|k| after[k].1).collect();
            s.sort_unstable();
            add(s.clone(), &mut sets);
            continues = Some(s);
            // The other sets that leave out as few are completions as good as this one.
            tied = ties - 1;
        }
        most = most.max(sets.len() + tied);
        // The listed items in full: the cash over, which the last of them held as an
        // overpayment, now pays the completion.
        let listed: Vec<CandidateAllocation> = c
            .allocations
            .iter()
            .map(|a| match a.fit.kind {
                AmountFit::Overpaid => {
                    let inv = ledger.invoice(a.invoice);
                    CandidateAllocation {
                        fit: fit(inv, inv.open_amount, None, payment.payment_date),
                        ..a.clone()
                    }
                }
                _ => a.clone(),
            })
            .collect();
        for s in sets {
            let continues_list = continues.as_ref() == Some(&s);
            let mut allocations = listed.clone();
            for i in s {
                let inv = ledger.invoice(i);
                allocations.push(CandidateAllocation {
                    invoice: i,
                    fit: fit(inv, inv.open_amount, None, payment.payment_date),
                    reference: None,
                    line: None,
                });
            }
            let mut done = finish(payment, c.source, allocations);
            done.completed = true;
            done.continues_list = continues_list;
            out.push(done);
        }
    }
    cands.extend(out);
    most
}

/// How many of the payer's open items that follow the last listed one, in the listing's order,
/// a completion of a cut list leaves open before its own last item. The rest of a list is what
/// follows it, less the few the payer held back; a set that skips more is a coincidence of
/// amounts, whichever search found it. Reads at most `customer_scan_limit` of the payer's items.
pub(crate) fn left_out_after_the_list(
    ledger: &Ledger,
    payment: &Payment,
    c: &Candidate,
    limits: &CandidateLimits,
) -> usize {
    let named = c.allocations.iter().filter(|a| a.reference.is_some());
    let rest = c.allocations.iter().filter(|a| a.reference.is_none());
    let (Some(from), Some(to), Some(first)) = (
        named.map(|a| list_order(ledger, a.invoice)).max(),
        rest.map(|a| list_order(ledger, a.invoice)).max(),
        c.allocations.first(),
    ) else {
        return 0;
    };
    let cust = ledger.invoice_customer(first.invoice);
    ledger
        .customer_open_invoices(cust)
        .iter()
        .zip(ledger.customer_open_facts(cust))
        .take(limits.customer_scan_limit)
        .filter(|&(&i, f)| {
            let at = (f.invoice_date, f.number);
            at > from
                && at < to
                && f.open_amount > Decimal::ZERO
                && f.currency == payment.currency
                && payment.payment_date.is_none_or(|d| f.invoice_date <= d)
                && !c.allocations.iter().any(|a| a.invoice == i)
        })
        .count()
}

/// Whether a candidate pays each item it lists in full (or with its discount or the deduction
/// its line states) and its cash over is not an overpayment a line states: the list, not the
/// amounts, is what falls short.
pub(crate) fn lists_in_full(payment: &Payment, c: &Candidate) -> bool {
    c.allocations.iter().all(|a| match a.fit.kind {
        AmountFit::Exact | AmountFit::Discount | AmountFit::StatedDeduction => true,
        AmountFit::Overpaid => !states_amount(payment, a),
        _ => false,
    })
}

/// Whether the remittance line behind an allocation states the cash it pays.
pub(crate) fn states_amount(payment: &Payment, a: &CandidateAllocation) -> bool {
    a.line
        .and_then(|l| payment.lines.get(l))
        .is_some_and(|l| l.amount_paid.is_some())
}
