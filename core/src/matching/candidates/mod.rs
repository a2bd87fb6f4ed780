//! Candidate generation: from a payment to the allocations that might be right.
//!
//! References (remittance lines first, then free text) are looked up through the ledger's
//! indexes and scored by similarity; the customers in play are the identified payers and the
//! owners of the referenced invoices. Candidates come from four sources: the remittance lines as
//! written, the set of invoices the free text names, a single open item whose amount explains
//! the payment, and a bounded subset-sum over a customer's open items for payments that carry no
//! detail. Each candidate is a complete allocation that balances (cash applied + unapplied =
//! payment) and never relieves an invoice of more than it has open; the model then judges them.
//!
//! The parts: `lookup` (from quoted references to open invoices), `lines` (candidates from the
//! remittance lines), `free_text` (from the set the free text names, and completing a list cut
//! short), `by_amount` (from the amount alone); the types, [`generate`] that runs them, and the
//! finishing, netting and ranking every candidate goes through are here.

use crate::domain::{Payment, ReferenceKind};
use crate::ledger::{CustomerIdx, InvoiceIdx, Ledger, RefField};
use crate::matching::amounts::{AmountFit, Fit, fit};
use crate::matching::habits::{MIN_PREFIX_CHARS, ReferenceHabits};
use crate::matching::payer::{self, PayerMatch, PayerVia};
use crate::text::references::RefKey;
use rust_decimal::Decimal;
use std::ops::Bound;

mod by_amount;
mod free_text;
mod lines;
mod lookup;

use by_amount::{MAX_AMOUNT_WALK, single_amounts, subsets};
use free_text::{complete_lists, from_text};
pub(crate) use free_text::{left_out_after_the_list, states_amount};
use lines::from_lines;
use lookup::{collect_queries, lookup, prefix_hits};

/// A reference the payment quotes, normalised once.
#[derive(Clone, Debug)]
pub struct RefQuery {
    /// As the payer wrote it.
    pub text: String,
    pub key: RefKey,
    pub kind: ReferenceKind,
    /// The remittance line it came from; `None` for free text.
    pub line: Option<usize>,
    /// Later remittance lines quoting the same reference (a payer that cuts references short
    /// writes one prefix for several invoices).
    pub also_lines: Vec<usize>,
    /// Whether the payer presents it as a document reference: always for a line's reference;
    /// in free text, when the text names it as one (`references::TextReference::named`). Only
    /// these count as quoted references that resolve to nothing (`PaymentCandidates::unresolved`).
    pub named: bool,
}

/// An invoice a reference may mean.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RefHit {
    pub invoice: InvoiceIdx,
    pub sim: f32,
    pub field: RefField,
}

/// Where a candidate came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    Lines,
    TextReferences,
    SingleAmount,
    SubsetSum,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::Lines,
        Source::TextReferences,
        Source::SingleAmount,
        Source::SubsetSum,
    ];
}

/// Cash against one invoice within a candidate, with the evidence for it.
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateAllocation {
    pub invoice: InvoiceIdx,
    pub fit: Fit,
    /// The query that named this invoice and how closely.
    pub reference: Option<(usize, f32, RefField)>,
    /// The remittance line the cash came from.
    pub line: Option<usize>,
}

/// A complete allocation of one payment.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub source: Source,
    pub allocations: Vec<CandidateAllocation>,
    /// Cash applied to no invoice.
    pub unapplied: Decimal,
    /// The heuristic score candidates are ranked by before the model sees them.
    pub prior: f32,
    /// Whether open items found by amount and neighbourhood complete the items the remittance
    /// lists (`complete_lists`): the listed references explain only part of the cash.
    pub completed: bool,
    /// Whether the completion is the items that follow the last listed one in an AP system's
    /// listing order, fewest left out (`amounts::continuation`): where the field cut the list.
    pub continues_list: bool,
}

impl Candidate {
    /// Cash applied to invoices.
    pub fn applied(&self) -> Decimal {
        self.allocations.iter().map(|a| a.fit.amount).sum()
    }

    /// Whether some allocation pays through the reference query `qi`.
    pub(crate) fn pays_through(&self, qi: usize) -> bool {
        self.allocations
            .iter()
            .any(|a| a.reference.is_some_and(|r| r.0 == qi))
    }

    /// The invoice and cash pairs, sorted: two candidates with the same key are the same answer.
    pub fn key(&self) -> Vec<(InvoiceIdx, Decimal)> {
        let mut k: Vec<_> = self
            .allocations
            .iter()
            .map(|a| (a.invoice, a.fit.amount))
            .collect();
        k.sort();
        k
    }
}

/// Everything the generator learned about a payment: its context and its candidates.
#[derive(Clone, Debug, Default)]
pub struct PaymentCandidates {
    pub payers: Vec<PayerMatch>,
    pub queries: Vec<RefQuery>,
    /// Per query, the best hits among open items, best first.
    pub hits: Vec<Vec<RefHit>>,
    /// Queries whose exact match is an invoice already paid: a duplicate payment.
    pub closed_hits: usize,
    /// Quoted references (`RefQuery::named`) whose reading is an item already paid, with no
    /// open item read as well: per query, the paid item. A bare number in a memo that happens
    /// to be a paid item's PO is not one.
    pub paid_refs: Vec<(usize, InvoiceIdx)>,
    /// Subset-sum solutions found (before deduplication).
    pub subset_solutions: usize,
    /// Distinct sets of open items found to complete a list that explains only part of the
    /// cash (`complete_lists`); more than one and none of them is applied without a person.
    pub completions: usize,
    /// Open items the subset-sum searched: the more, the likelier a chance solution.
    pub subset_pool: usize,
    pub candidates: Vec<Candidate>,
}

impl PaymentCandidates {
    /// The quoted references that resolve to nothing open, or to an item already paid: a payer
    /// that names a document and finds none open is not paying some other invoice that happens
    /// to have the amount.
    pub fn unresolved(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.queries.len()).filter(|&qi| {
            (self.queries[qi].named && self.hits.get(qi).is_none_or(|h| h.is_empty()))
                || self.paid_refs.iter().any(|p| p.0 == qi)
        })
    }
}

/// Bounds that keep one payment's work small whatever the ledger.
#[derive(Clone, Debug)]
pub struct CandidateLimits {
    pub hits_per_query: usize,
    pub min_similarity: f32,
    /// Customers whose open items are scanned for amounts and subsets.
    pub customers_scanned: usize,
    /// Open items per customer considered in a subset-sum.
    pub subset_pool: usize,
    pub subset_max_size: usize,
    pub subset_max_solutions: usize,
    pub single_amount_candidates: usize,
    pub max_candidates: usize,
    /// Open items per customer scanned for a fuzzy reference the indexes did not find.
    pub customer_scan_limit: usize,
}

impl Default for CandidateLimits {
    fn default() -> Self {
        CandidateLimits {
            hits_per_query: 4,
            min_similarity: 0.72,
            customers_scanned: 3,
            subset_pool: 22,
            subset_max_size: 6,
            subset_max_solutions: 6,
            single_amount_candidates: 6,
            max_candidates: 16,
            customer_scan_limit: 3_000,
        }
    }
}

/// Invoices from the one-edit neighbourhood of a reference compared at most.
const MAX_FUZZY_IDS: usize = 256;

/// Lines and references the generator reads at most; the rest is a warning in the explanation.
const MAX_QUERIES: usize = 200;

/// Generates the candidates for a payment. `habits` are the reference habits the model learnt
/// (empty for a model that learnt none).
pub fn generate(
    ledger: &Ledger,
    payment: &Payment,
    habits: &ReferenceHabits,
    limits: &CandidateLimits,
) -> PaymentCandidates {
    let mut pc = PaymentCandidates {
        payers: payer::identify(ledger, payment),
        ..Default::default()
    };
    collect_queries(payment, &mut pc.queries);
    let payer_customers: Vec<CustomerIdx> = pc
        .payers
        .iter()
        .take(limits.customers_scanned)
        .map(|p| p.customer)
        .collect();
    // Customers whose short references are read as the start of their numbers: the identified
    // payers known to cut references short (a customer found through a reference is not
    // evidence for reading another reference loosely); when no identified payer has the habit
    // (a payment service, a parent or a sister company paying, an unknown payer), every
    // customer that has it, since the invoices are still theirs.
    let truncating: Vec<(CustomerIdx, usize)> = if habits.is_empty() {
        Vec::new()
    } else {
        let habit = |c: CustomerIdx| {
            habits
                .truncation(&ledger.customer(c).id)
                .map(|t| (c, (t.shortest as usize).max(MIN_PREFIX_CHARS)))
        };
        let direct: Vec<(CustomerIdx, usize)> = pc
            .payers
            .iter()
            .take(limits.customers_scanned)
            .filter(|p| p.via != PayerVia::Reference)
            .filter_map(|p| habit(p.customer))
            .collect();
        if direct.is_empty() {
            habits
                .truncates
                .keys()
                .filter_map(|id| ledger.customer_idx(id))
                .filter_map(habit)
                .collect()
        } else {
            direct
        }
    };
    for (qi, q) in pc.queries.iter().enumerate() {
        let (mut hits, closed) = lookup(ledger, q, &payer_customers, limits);
        if !truncating.is_empty() && closed.is_none() && hits.iter().all(|h| h.sim < 0.9) {
            prefix_hits(ledger, q, &truncating, limits, &mut hits);
        }
        if let Some(paid) = closed {
            pc.closed_hits += 1;
            if q.named && hits.iter().all(|h| h.sim < paid.sim) {
                pc.paid_refs.push((qi, paid.invoice));
            }
        }
        pc.hits.push(hits);
    }
    // The owners of well-matched references are in play even when the payer is unknown.
    for hits in &pc.hits {
        if let Some(h) = hits.first().filter(|h| h.sim >= 0.9) {
            let c = ledger.invoice_customer(h.invoice);
            payer::push_best(
                &mut pc.payers,
                PayerMatch {
                    customer: c,
                    score: 0.0,
                    via: PayerVia::Reference,
                },
            );
        }
    }
    let mut cands = Vec::new();
    from_lines(ledger, payment, &pc, &mut cands);
    from_text(ledger, payment, &pc, &mut cands);
    let customers: Vec<CustomerIdx> = pc
        .payers
        .iter()
        .take(limits.customers_scanned + 1)
        .map(|p| p.customer)
        .collect();
    net_silent_credits(ledger, payment, &mut cands);
    pc.completions = complete_lists(ledger, payment, limits, &mut cands);
    single_amounts(ledger, payment, &customers, limits, &mut cands);
    let explained = cands.iter().any(|c| {
        c.unapplied.is_zero()
            && c.allocations
                .iter()
                .all(|a| matches!(a.fit.kind, AmountFit::Exact | AmountFit::Discount))
    });
    if !explained {
        (pc.subset_solutions, pc.subset_pool) =
            subsets(ledger, payment, &customers, limits, &mut cands);
    }
    // One candidate per distinct answer; the first source to propose it keeps it.
    let mut seen = std::collections::HashSet::new();
    cands.retain(|c| !c.allocations.is_empty() && seen.insert(c.key()));
    for c in &mut cands {
        c.prior = prior(ledger, &pc, c);
    }
    cands.sort_by(|a, b| b.prior.total_cmp(&a.prior));
    cands.truncate(limits.max_candidates);
    pc.candidates = cands;
    pc
}

/// Whether an item can take cash from this payment: open, in its currency, and billed by the
/// payment date (the ledger also holds items billed later in the period).
fn payable(ledger: &Ledger, payment: &Payment, i: InvoiceIdx) -> bool {
    let inv = ledger.invoice(i);
    !inv.open_amount.is_zero()
        && inv.currency == payment.currency
        && payment.payment_date.is_none_or(|d| inv.invoice_date <= d)
}

/// How far a set of invoices found by amount stands from a payment run of its customer (the
/// first allocation's): how many of the customer's payable open invoices due before the set's
/// oldest it leaves open, and how many due within its span. An AP run pays what has fallen due
/// and holds back a few disputed items; a set the amounts add up to by chance skips many. Each
/// count stops at [`DUE_GAPS_CAP`], and at most a few times that many items are read, whatever
/// the customer's size. `None` when the set holds no open invoice.
pub(crate) fn due_gaps(
    ledger: &Ledger,
    payment: &Payment,
    allocations: &[CandidateAllocation],
) -> Option<(usize, usize)> {
    let first = allocations.first()?;
    let cust = ledger.invoice_customer(first.invoice);
    // The span in the due-date index's own order (due date, then ledger index): items billed
    // on one day are one after another, not all inside.
    type At = (chrono::NaiveDate, InvoiceIdx);
    let mut span: Option<(At, At)> = None;
    for a in allocations {
        let inv = ledger.invoice(a.invoice);
        if inv.open_amount > Decimal::ZERO && ledger.invoice_customer(a.invoice) == cust {
            let at = (inv.due_date, a.invoice);
            span = Some(span.map_or((at, at), |(lo, hi)| (lo.min(at), hi.max(at))));
        }
    }
    let (lo, hi) = span?;
    let ix = ledger.open_items(cust);
    let left_open = |i: InvoiceIdx| {
        ledger.invoice(i).open_amount > Decimal::ZERO
            && payable(ledger, payment, i)
            && !allocations.iter().any(|a| a.invoice == i)
    };
    let steps = 4 * DUE_GAPS_CAP + allocations.len();
    let mut before = 0;
    for (d, i) in ix
        .due_from((chrono::NaiveDate::MIN, InvoiceIdx::MIN))
        .take(steps)
    {
        if (d, i) >= lo || before >= DUE_GAPS_CAP {
            break;
        }
        before += left_open(i) as usize;
    }
    let mut within = 0;
    for (d, i) in ix.due_from(lo).take(steps) {
        if (d, i) > hi || within >= DUE_GAPS_CAP {
            break;
        }
        within += left_open(i) as usize;
    }
    Some((before, within))
}

/// Where [`due_gaps`] stops counting: beyond it, a set is no payment run.
pub(crate) const DUE_GAPS_CAP: usize = 16;

/// Closes a candidate: anything the allocations would take beyond the payment is given back
/// from the last ones, and the rest is unapplied.
fn finish(
    payment: &Payment,
    source: Source,
    mut allocations: Vec<CandidateAllocation>,
) -> Candidate {
    let mut over = allocations.iter().map(|a| a.fit.amount).sum::<Decimal>() - payment.amount;
    for a in allocations.iter_mut().rev() {
        if over <= Decimal::ZERO {
            break;
        }
        if a.fit.amount > Decimal::ZERO {
            let cut = over.min(a.fit.amount);
            a.fit.amount -= cut;
            a.fit.kind = AmountFit::Partial;
            a.fit.discount = Decimal::ZERO;
            a.fit.deduction = Decimal::ZERO;
            a.fit.reason_code = None;
            over -= cut;
        }
    }
    allocations.retain(|a| !a.fit.amount.is_zero());
    let unapplied = payment.amount - allocations.iter().map(|a| a.fit.amount).sum::<Decimal>();
    Candidate {
        source,
        allocations,
        unapplied,
        prior: 0.0,
        completed: false,
        continues_list: false,
    }
}

/// Payers often net an open credit memo without saying so: where the referenced invoices'
/// open total exceeds the payment by exactly one of the customer's open credits, that credit is
/// a variant of the candidate.
fn net_silent_credits(ledger: &Ledger, payment: &Payment, cands: &mut Vec<Candidate>) {
    let mut variants = Vec::new();
    for c in cands.iter() {
        let Some(first) = c.allocations.first() else {
            continue;
        };
        let open: Decimal = c
            .allocations
            .iter()
            .map(|a| ledger.invoice(a.invoice).open_amount)
            .sum();
        let gap = open - payment.amount;
        if gap <= Decimal::ZERO {
            continue;
        }
        let cust = ledger.invoice_customer(first.invoice);
        // The amount index yields the credits of exactly that amount lowest index first.
        let credit = ledger
            .open_items(cust)
            .by_open_amount(Bound::Included(-gap), Bound::Included(-gap))
            .take(MAX_AMOUNT_WALK)
            .find(|&i| {
                ledger.invoice(i).is_credit()
                    && payable(ledger, payment, i)
                    && !c.allocations.iter().any(|a| a.invoice == i)
            });
        if let Some(cm) = credit {
            let mut allocations: Vec<CandidateAllocation> = c
                .allocations
                .iter()
                .map(|a| {
                    let inv = ledger.invoice(a.invoice);
                    CandidateAllocation {
                        fit: fit(inv, inv.open_amount, None, payment.payment_date),
                        ..a.clone()
                    }
                })
                .collect();
            allocations.insert(
                0,
                CandidateAllocation {
                    invoice: cm,
                    fit: fit(ledger.invoice(cm), -gap, None, payment.payment_date),
                    reference: None,
                    line: None,
                },
            );
            variants.push(finish(payment, c.source, allocations));
        }
    }
    cands.extend(variants);
}

/// The heuristic ranking score: how well references, amounts and payer agree.
fn prior(ledger: &Ledger, pc: &PaymentCandidates, c: &Candidate) -> f32 {
    let n = c.allocations.len().max(1) as f32;
    let ref_score: f32 = c
        .allocations
        .iter()
        .map(|a| a.reference.map_or(0.0, |r| r.1))
        .sum::<f32>()
        / n;
    let amount_score: f32 = c
        .allocations
        .iter()
        .map(|a| match a.fit.kind {
            AmountFit::Exact | AmountFit::Discount | AmountFit::StatedDeduction => 1.0,
            AmountFit::BankFee | AmountFit::LateDiscount => 0.7,
            AmountFit::Overpaid | AmountFit::Partial => 0.3,
        })
        .sum::<f32>()
        / n;
    let unapplied_pen = if c.unapplied.is_zero() { 0.0 } else { 0.3 };
    let cust = c
        .allocations
        .first()
        .map(|a| ledger.invoice_customer(a.invoice));
    let payer_score = pc
        .payers
        .iter()
        .find(|p| Some(p.customer) == cust && p.via != PayerVia::Reference)
        .map_or(0.0, |p| p.score);
    2.0 * ref_score + amount_score + 0.5 * payer_score - unapplied_pen
}

#[cfg(test)]
mod tests;
