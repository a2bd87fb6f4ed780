//! Features of a candidate allocation: the one implementation that serves training and scoring.
//!
//! Each candidate becomes a row of [`FEATURE_NAMES`]`.len()` floats: how well its references
//! match, how its amounts are explained, how sure the payer identification is, and how it
//! compares with the payment's other candidates (a candidate with an equally good rival must not
//! look certain). Floating point lives here only; money is converted at the last moment.

use crate::domain::{Invoice, Payment, RemittanceLine};
use crate::ledger::{Ledger, RefField};
use crate::matching::amounts::AmountFit;
use crate::matching::candidates::{Candidate, PaymentCandidates, Source, due_gaps};
use crate::matching::payer::PayerVia;
use ndarray::Array2;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// The feature schema, in column order. It travels inside the model artifact, and loading a
/// model whose schema differs is refused.
pub const FEATURE_NAMES: [&str; 52] = [
    "n_allocations",
    "n_lines",
    "n_line_references",
    "n_text_references",
    "frac_lines_with_amount",
    "source_lines",
    "source_text",
    "source_single_amount",
    "source_subset_sum",
    "ref_sim_mean",
    "ref_sim_min",
    "frac_allocations_referenced",
    "frac_queries_covered",
    "frac_exact_reference",
    "frac_po_reference",
    "ref_margin_min",
    "residual_rel",
    "unapplied_rel",
    "fit_exact",
    "fit_discount",
    "fit_late_discount",
    "fit_stated_deduction",
    "fit_bank_fee",
    "fit_partial",
    "fit_overpaid",
    "line_amount_agrees",
    "line_invoice_amount_agrees",
    "payer_score",
    "payer_via_account",
    "payer_via_name",
    "payer_via_parent",
    "payer_via_reference",
    "n_customers",
    "is_top_payer",
    "n_payers",
    "days_after_due",
    "days_since_invoice",
    "n_candidates",
    "prior_rank",
    "prior",
    "prior_margin",
    "n_rivals_same_fit",
    "same_amount_open_items",
    "closed_reference_hits",
    "frac_queries_unmatched",
    "log10_amount",
    "n_credit_memos",
    "subset_pool",
    "subset_solutions",
    "subset_chance_log10",
    "due_older_left",
    "due_gaps_within",
];

/// Number of features.
pub const N_FEATURES: usize = FEATURE_NAMES.len();

fn f(d: Decimal) -> f32 {
    d.to_f32().unwrap_or(0.0)
}

/// The feature matrix of a payment's candidates, one row each, in candidate order.
pub fn matrix(ledger: &Ledger, payment: &Payment, pc: &PaymentCandidates) -> Array2<f32> {
    let n = pc.candidates.len();
    let mut data = Vec::with_capacity(n * N_FEATURES);
    for (i, c) in pc.candidates.iter().enumerate() {
        row(ledger, payment, pc, i, c, &mut data);
    }
    // `row` pushes exactly N_FEATURES per candidate (a unit test holds it to that).
    Array2::from_shape_vec((n, N_FEATURES), data).unwrap_or_else(|_| Array2::zeros((n, N_FEATURES)))
}

/// Pushes the features of candidate `i` onto `out`.
pub fn row(
    ledger: &Ledger,
    payment: &Payment,
    pc: &PaymentCandidates,
    i: usize,
    c: &Candidate,
    out: &mut Vec<f32>,
) {
    let start = out.len();
    let n_alloc = c.allocations.len().max(1) as f32;
    let p = payment.amount;
    let pf = f(p).abs().max(0.01);
    let n_line_q = pc.queries.iter().filter(|q| q.line.is_some()).count();
    let n_text_q = pc.queries.len() - n_line_q;
    out.push(c.allocations.len() as f32);
    out.push(payment.lines.len() as f32);
    out.push(n_line_q as f32);
    out.push(n_text_q as f32);
    let with_amount = payment
        .lines
        .iter()
        .filter(|l| l.amount_paid.is_some())
        .count();
    out.push(if payment.lines.is_empty() {
        0.0
    } else {
        with_amount as f32 / payment.lines.len() as f32
    });
    for s in Source::ALL {
        out.push((c.source == s) as u8 as f32);
    }
    // References.
    let sims: Vec<f32> = c
        .allocations
        .iter()
        .map(|a| a.reference.map_or(0.0, |r| r.1))
        .collect();
    out.push(sims.iter().sum::<f32>() / n_alloc);
    out.push(
        sims.iter()
            .copied()
            .fold(f32::INFINITY, f32::min)
            .clamp(0.0, 1.0),
    );
    let referenced = c
        .allocations
        .iter()
        .filter(|a| a.reference.is_some())
        .count();
    out.push(referenced as f32 / n_alloc);
    let covered = pc
        .hits
        .iter()
        .filter(|hs| {
            hs.iter()
                .any(|h| c.allocations.iter().any(|a| a.invoice == h.invoice))
        })
        .count();
    out.push(if pc.queries.is_empty() {
        0.0
    } else {
        covered as f32 / pc.queries.len() as f32
    });
    let exact = c
        .allocations
        .iter()
        .filter(|a| a.reference.is_some_and(|r| r.1 >= 0.999))
        .count();
    out.push(exact as f32 / n_alloc);
    let po = c
        .allocations
        .iter()
        .filter(|a| a.reference.is_some_and(|r| r.2 == RefField::PoNumber))
        .count();
    out.push(po as f32 / n_alloc);
    // How far each referenced invoice stands above the next best reading of its reference.
    let margin = c
        .allocations
        .iter()
        .filter_map(|a| a.reference)
        .map(|(qi, sim, _)| {
            let next = pc.hits[qi]
                .iter()
                .filter(|h| h.sim <= sim)
                .map(|h| h.sim)
                .nth(1)
                .unwrap_or(0.0);
            sim - next
        })
        .fold(1.0f32, f32::min);
    out.push(if referenced == 0 { 0.0 } else { margin });
    // Amounts.
    let open_sum: Decimal = c
        .allocations
        .iter()
        .map(|a| ledger.invoice(a.invoice).open_amount)
        .sum();
    out.push((f(p - open_sum) / pf).clamp(-10.0, 10.0));
    out.push((f(c.unapplied) / pf).clamp(-10.0, 10.0));
    for kind in AmountFit::ALL {
        out.push(c.allocations.iter().filter(|a| a.fit.kind == kind).count() as f32 / n_alloc);
    }
    let mut with_line = 0.0f32;
    let (mut agree, mut inv_agree) = (0.0f32, 0.0f32);
    for a in &c.allocations {
        let Some(line) = a.line.and_then(|l| payment.lines.get(l)) else {
            continue;
        };
        with_line += 1.0;
        let inv = ledger.invoice(a.invoice);
        agree += line_states_open_amount(line, inv) as u8 as f32;
        inv_agree += (line.invoice_amount == Some(inv.amount)) as u8 as f32;
    }
    out.push(if with_line > 0.0 {
        agree / with_line
    } else {
        -1.0
    });
    out.push(if with_line > 0.0 {
        inv_agree / with_line
    } else {
        -1.0
    });
    // Payer.
    let mut customers: Vec<u32> = c
        .allocations
        .iter()
        .map(|a| ledger.invoice_customer(a.invoice))
        .collect();
    customers.sort_unstable();
    customers.dedup();
    let best = pc
        .payers
        .iter()
        .filter(|m| customers.contains(&m.customer))
        .max_by(|a, b| a.score.total_cmp(&b.score).then(b.via.cmp(&a.via)));
    out.push(best.map_or(0.0, |m| m.score));
    for via in [
        PayerVia::Account,
        PayerVia::Name,
        PayerVia::Parent,
        PayerVia::Reference,
    ] {
        out.push(best.is_some_and(|m| m.via == via) as u8 as f32);
    }
    out.push(customers.len() as f32);
    out.push(
        pc.payers
            .first()
            .is_some_and(|m| customers.contains(&m.customer)) as u8 as f32,
    );
    out.push(
        pc.payers
            .iter()
            .filter(|m| m.via != PayerVia::Reference)
            .count() as f32,
    );
    // Dates.
    let (mut after_due, mut since_inv) = (0.0f32, 0.0f32);
    if let Some(d) = payment.payment_date {
        for a in &c.allocations {
            let inv = ledger.invoice(a.invoice);
            after_due += (d - inv.due_date).num_days() as f32;
            since_inv += (d - inv.invoice_date).num_days() as f32;
        }
    }
    out.push((after_due / n_alloc / 30.0).clamp(-6.0, 12.0));
    out.push((since_inv / n_alloc / 30.0).clamp(-6.0, 24.0));
    // Against the other candidates.
    out.push(pc.candidates.len() as f32);
    out.push(i as f32);
    out.push(c.prior);
    let best_other = pc
        .candidates
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, o)| o.prior)
        .fold(f32::NEG_INFINITY, f32::max);
    out.push(if best_other.is_finite() {
        (c.prior - best_other).clamp(-5.0, 5.0)
    } else {
        5.0
    });
    let my_fit = fit_signature(c);
    let rivals = pc
        .candidates
        .iter()
        .enumerate()
        .filter(|(j, o)| *j != i && (o.prior - c.prior).abs() < 1e-4 && fit_signature(o) == my_fit)
        .count();
    out.push(rivals as f32);
    out.push(same_amount_open_items(ledger, c) as f32);
    out.push(pc.closed_hits as f32);
    let unmatched = pc.hits.iter().filter(|h| h.is_empty()).count();
    out.push(if pc.queries.is_empty() {
        0.0
    } else {
        unmatched as f32 / pc.queries.len() as f32
    });
    out.push(pf.log10());
    out.push(
        c.allocations
            .iter()
            .filter(|a| ledger.invoice(a.invoice).is_credit())
            .count() as f32,
    );
    out.push(pc.subset_pool as f32);
    out.push(pc.subset_solutions as f32);
    out.push(if c.source == Source::SubsetSum {
        subset_chance_log10(pc.subset_pool, c.allocations.len(), pf)
    } else {
        -10.0
    });
    // How like a payment run the items found by amount are; -1 when references found them
    // all (the counts read the customer's due-date index, so only where they tell something).
    let gaps = c
        .allocations
        .iter()
        .any(|a| a.reference.is_none())
        .then(|| due_gaps(ledger, payment, &c.allocations))
        .flatten();
    out.push(gaps.map_or(-1.0, |g| g.0 as f32));
    out.push(gaps.map_or(-1.0, |g| g.1 as f32));
    debug_assert_eq!(out.len() - start, N_FEATURES);
}

/// Whether a remittance line states exactly what the invoice has open: the cash it pays plus
/// the discount and adjustments it gives.
pub(crate) fn line_states_open_amount(line: &RemittanceLine, inv: &Invoice) -> bool {
    let stated: Decimal = line.amount_paid.unwrap_or_default()
        + line.discount.unwrap_or_default()
        + line.adjustments.iter().map(|x| x.amount).sum::<Decimal>();
    line.amount_paid.is_some() && stated == inv.open_amount
}

/// How many subsets of this size the pool holds, against how many cent values their sums
/// spread over: the log of the expected number of solutions found by chance alone.
fn subset_chance_log10(pool: usize, size: usize, amount: f32) -> f32 {
    let k = size.min(pool);
    let mut log_comb = 0.0f32;
    for i in 0..k {
        log_comb += ((pool - i) as f32).log10() - ((i + 1) as f32).log10();
    }
    let spread_cents = (amount * 100.0).max(1.0) * (k as f32).sqrt().max(1.0);
    (log_comb - spread_cents.log10()).clamp(-10.0, 10.0)
}

/// What a candidate claims, stripped of which invoices: equal signatures explain the payment
/// equally well.
fn fit_signature(c: &Candidate) -> (usize, Decimal, Vec<AmountFit>) {
    let mut kinds: Vec<AmountFit> = c.allocations.iter().map(|a| a.fit.kind).collect();
    kinds.sort();
    (c.allocations.len(), c.unapplied, kinds)
}

/// Other open items of the same customer with exactly an allocated invoice's open amount: the
/// recurring-amount trap for a payment identified by amount alone.
fn same_amount_open_items(ledger: &Ledger, c: &Candidate) -> usize {
    let mut most = 0;
    for a in c
        .allocations
        .iter()
        .filter(|a| a.reference.is_none())
        .take(4)
    {
        let open = ledger.invoice(a.invoice).open_amount;
        // Counted by the customer's amount index: a payer with thousands of items of one
        // subscription price costs no scan. The allocated item is among them when open.
        let n = ledger
            .open_items(ledger.invoice_customer(a.invoice))
            .count_with_amount(open)
            .saturating_sub(!open.is_zero() as usize);
        most = most.max(n);
    }
    most
}
