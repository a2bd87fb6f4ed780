//! Candidates from the remittance lines as written: the best open invoice for each line, lines
//! that repeat one reference, and lines that carry an amount but no reference that resolves.

use super::by_amount::MAX_AMOUNT_WALK;
use super::{
    Candidate, CandidateAllocation, PaymentCandidates, RefHit, RefQuery, Source, finish, payable,
};
use crate::domain::Payment;
use crate::ledger::{InvoiceIdx, Ledger};
use crate::matching::amounts::{AmountFit, Fit, fit};
use crate::matching::payer::PayerVia;
use rust_decimal::Decimal;
use std::ops::Bound;

/// How well a hit fits the line that quoted it: similarity, then whether the amounts agree and
/// whether it belongs to the payer.
fn line_choice_score(
    ledger: &Ledger,
    payment: &Payment,
    pc: &PaymentCandidates,
    q: &RefQuery,
    h: &RefHit,
) -> f32 {
    let inv = ledger.invoice(h.invoice);
    let mut s = h.sim;
    if let Some(line) = q.line.and_then(|i| payment.lines.get(i)) {
        if let Some(paid) = line.amount_paid {
            let f = fit(inv, paid, Some(line), payment.payment_date);
            s += match f.kind {
                AmountFit::Exact | AmountFit::Discount | AmountFit::StatedDeduction => 0.3,
                AmountFit::BankFee | AmountFit::LateDiscount => 0.15,
                AmountFit::Partial | AmountFit::Overpaid => 0.0,
            };
        }
        if line.invoice_amount == Some(inv.amount) {
            s += 0.1;
        }
    }
    let c = ledger.invoice_customer(h.invoice);
    if pc
        .payers
        .iter()
        .any(|p| p.customer == c && p.via != PayerVia::Reference)
    {
        s += 0.1;
    }
    s
}

/// The remittance lines as written: each referenced line to its best invoice, and variants where
/// one line takes its runner-up.
pub(super) fn from_lines(
    ledger: &Ledger,
    payment: &Payment,
    pc: &PaymentCandidates,
    out: &mut Vec<Candidate>,
) {
    let line_queries: Vec<usize> = (0..pc.queries.len())
        .filter(|&i| pc.queries[i].line.is_some() && !pc.hits[i].is_empty())
        .collect();
    let amount_lines = payment
        .lines
        .iter()
        .filter(|l| l.amount_paid.is_some_and(|a| a > Decimal::ZERO))
        .count();
    if line_queries.is_empty() && amount_lines < 2 {
        return;
    }
    // Per line query: hits ordered by how well they fit the line.
    let ranked: Vec<Vec<RefHit>> = line_queries
        .iter()
        .map(|&qi| {
            let q = &pc.queries[qi];
            let mut hs = pc.hits[qi].clone();
            hs.sort_by(|a, b| {
                line_choice_score(ledger, payment, pc, q, b)
                    .total_cmp(&line_choice_score(ledger, payment, pc, q, a))
            });
            hs
        })
        .collect();
    let choice: Vec<usize> = vec![0; ranked.len()];
    out.push(build_from_lines(
        ledger,
        payment,
        pc,
        &line_queries,
        &ranked,
        &choice,
    ));
    let mut variants = 0;
    for (k, hs) in ranked.iter().enumerate() {
        if hs.len() > 1 && variants < 3 {
            let mut c = choice.clone();
            c[k] = 1;
            out.push(build_from_lines(
                ledger,
                payment,
                pc,
                &line_queries,
                &ranked,
                &c,
            ));
            variants += 1;
        }
    }
}

fn build_from_lines(
    ledger: &Ledger,
    payment: &Payment,
    pc: &PaymentCandidates,
    line_queries: &[usize],
    ranked: &[Vec<RefHit>],
    choice: &[usize],
) -> Candidate {
    let single_line = payment.lines.len() == 1;
    let mut allocations: Vec<CandidateAllocation> = Vec::new();
    for (k, &qi) in line_queries.iter().enumerate() {
        let Some(h) = ranked[k].get(choice[k]) else {
            continue;
        };
        let q = &pc.queries[qi];
        let line = q.line.and_then(|i| payment.lines.get(i));
        let inv = ledger.invoice(h.invoice);
        // The cash this line pays: as stated, else the whole payment for a single line, else
        // what the invoice has open.
        let wanted = match line.and_then(|l| l.amount_paid) {
            Some(a) => a,
            None if single_line => payment.amount,
            None => inv.open_amount,
        };
        let already: Decimal = allocations
            .iter()
            .filter(|a| a.invoice == h.invoice)
            .map(|a| a.fit.amount)
            .sum();
        if already != Decimal::ZERO {
            // Two lines naming one invoice: the second takes what the first left open.
            continue;
        }
        // Taken as stated: a credit memo on a later line gives back cash, and `finish` trims
        // from the end whatever the lines claim beyond the payment.
        let f = fit(inv, wanted, line, payment.payment_date);
        allocations.push(CandidateAllocation {
            invoice: h.invoice,
            fit: f,
            reference: Some((qi, h.sim, h.field)),
            line: q.line,
        });
    }
    repeated_reference_lines(ledger, payment, pc, line_queries, ranked, &mut allocations);
    amount_only_lines(ledger, payment, pc, &mut allocations);
    finish(payment, Source::Lines, allocations)
}

/// Lines quoting a reference an earlier line already quoted: each takes the one reading of it,
/// as good as the best and not taken by another line, whose amount fits the line (paid in full,
/// with its discount, or with the deduction the line states). A payer that cuts references
/// short quotes one prefix for several invoices, and the amounts tell them apart; where two
/// readings fit, nothing does, and the line is left to the amount alone.
fn repeated_reference_lines(
    ledger: &Ledger,
    payment: &Payment,
    pc: &PaymentCandidates,
    line_queries: &[usize],
    ranked: &[Vec<RefHit>],
    allocations: &mut Vec<CandidateAllocation>,
) {
    for (k, &qi) in line_queries.iter().enumerate() {
        let hits = &ranked[k];
        let Some(top) = hits.iter().map(|h| h.sim).reduce(f32::max) else {
            continue;
        };
        // Readings of the customer whose invoice the first line took: one payer, one ledger.
        let Some(owner) = allocations
            .iter()
            .find(|a| a.line.is_some() && a.line == pc.queries[qi].line)
            .map(|a| ledger.invoice_customer(a.invoice))
        else {
            continue;
        };
        for &li in &pc.queries[qi].also_lines {
            let Some(line) = payment.lines.get(li) else {
                continue;
            };
            let Some(paid) = line.amount_paid.filter(|a| *a > Decimal::ZERO) else {
                continue;
            };
            let fitting: Vec<(&RefHit, Fit)> = hits
                .iter()
                .filter(|h| {
                    h.sim >= top
                        && ledger.invoice_customer(h.invoice) == owner
                        && !allocations.iter().any(|a| a.invoice == h.invoice)
                })
                .map(|h| {
                    (
                        h,
                        fit(
                            ledger.invoice(h.invoice),
                            paid,
                            Some(line),
                            payment.payment_date,
                        ),
                    )
                })
                .filter(|(_, f)| {
                    matches!(
                        f.kind,
                        AmountFit::Exact | AmountFit::Discount | AmountFit::StatedDeduction
                    )
                })
                .collect();
            if let [(h, f)] = fitting.as_slice() {
                allocations.push(CandidateAllocation {
                    invoice: h.invoice,
                    fit: f.clone(),
                    reference: Some((qi, h.sim, h.field)),
                    line: Some(li),
                });
            }
        }
    }
}

/// Lines that carry an amount but no usable reference: the customer's open item with exactly
/// that amount (or that amount with its discount), oldest first, if one is not taken yet.
fn amount_only_lines(
    ledger: &Ledger,
    payment: &Payment,
    pc: &PaymentCandidates,
    allocations: &mut Vec<CandidateAllocation>,
) {
    let customer = allocations
        .first()
        .map(|a| ledger.invoice_customer(a.invoice))
        .or_else(|| {
            pc.payers
                .iter()
                .find(|p| p.via != PayerVia::Reference)
                .map(|p| p.customer)
        });
    let Some(customer) = customer else { return };
    for (li, line) in payment.lines.iter().enumerate() {
        let Some(amount) = line.amount_paid.filter(|a| *a > Decimal::ZERO) else {
            continue;
        };
        if allocations.iter().any(|a| a.line == Some(li)) {
            continue;
        }
        let fits = |i: InvoiceIdx| {
            if !payable(ledger, payment, i) || allocations.iter().any(|a| a.invoice == i) {
                return None;
            }
            let f = fit(ledger.invoice(i), amount, Some(line), payment.payment_date);
            let rank = match f.kind {
                AmountFit::Exact => 0,
                AmountFit::Discount | AmountFit::StatedDeduction => 1,
                _ => return None,
            };
            Some(((rank, ledger.invoice(i).due_date, i), f))
        };
        // Only whether one item or several fit at the best rank matters, so each way an item
        // can fit is read from the amount index until two are found: the line's amount, that
        // amount plus the discount and adjustments it states, anything a stated deduction
        // leaves partly open, and the terms discount.
        let ix = ledger.open_items(customer);
        let stated_disc = line.discount.unwrap_or_default().max(Decimal::ZERO);
        let stated_adj: Decimal = line.adjustments.iter().map(|a| a.amount).sum();
        let at = |a: Decimal| ix.by_open_amount(Bound::Included(a), Bound::Included(a));
        let mut best: Vec<((u8, chrono::NaiveDate, InvoiceIdx), Fit)> = Vec::new();
        let mut read = |items: &mut dyn Iterator<Item = InvoiceIdx>| {
            let mut n = 0;
            for i in items.take(MAX_AMOUNT_WALK) {
                if best.iter().any(|b| b.0.2 == i) {
                    continue;
                }
                if let Some(b) = fits(i) {
                    best.push(b);
                    n += 1;
                    if n == 2 {
                        break;
                    }
                }
            }
        };
        read(&mut at(amount));
        if !(stated_disc + stated_adj).is_zero() {
            read(&mut at(amount + stated_disc + stated_adj));
        }
        if stated_adj > Decimal::ZERO {
            read(&mut ix.by_open_amount(Bound::Included(amount + stated_adj), Bound::Unbounded));
        }
        read(&mut ix.by_net_amount(amount));
        // Two items with the line's amount: nothing tells which, so the line stays unapplied.
        let top = best.iter().map(|b| b.0.0).min();
        if best.iter().filter(|b| Some(b.0.0) == top).count() != 1 {
            continue;
        }
        if let Some(((_, _, i), f)) = best.into_iter().min_by(|a, b| a.0.cmp(&b.0)) {
            allocations.push(CandidateAllocation {
                invoice: i,
                fit: f,
                reference: None,
                line: Some(li),
            });
        }
    }
}
