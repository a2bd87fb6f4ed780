//! Candidate generation: from a payment to the allocations that might be right.
//!
//! References (remittance lines first, then free text) are looked up through the ledger's
//! indexes and scored by similarity; the customers in play are the identified payers and the
//! owners of the referenced invoices. Candidates come from four sources: the remittance lines as
//! written, the set of invoices the free text names, a single open item whose amount explains
//! the payment, and a bounded subset-sum over a customer's open items for payments that carry no
//! detail. Each candidate is a complete allocation that balances (cash applied + unapplied =
//! payment) and never relieves an invoice of more than it has open; the model then judges them.

use crate::domain::{Payment, ReferenceKind};
use crate::ledger::{CustomerIdx, InvoiceIdx, Ledger, RefField};
use crate::matching::amounts::{AmountFit, BANK_FEE_MAX, BANK_FEE_MIN, Fit, fit, subset_sums};
use crate::matching::habits::{MIN_PREFIX_CHARS, ReferenceHabits};
use crate::matching::payer::{self, PayerMatch, PayerVia};
use crate::terms::{cents, terms_discount};
use crate::text::references::{RefKey, extract_from_text};
use rust_decimal::Decimal;
use std::ops::Bound;

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
}

impl Candidate {
    /// Cash applied to invoices.
    pub fn applied(&self) -> Decimal {
        self.allocations.iter().map(|a| a.fit.amount).sum()
    }

    /// Whether some allocation pays through the reference query `qi`.
    pub fn pays_through(&self, qi: usize) -> bool {
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

fn collect_queries(payment: &Payment, out: &mut Vec<RefQuery>) {
    let mut push = |text: &str, kind, line, named| {
        let key = RefKey::new(text);
        if key.is_empty() || out.len() >= MAX_QUERIES {
            return;
        }
        // The same reference twice (a line and the memo, two lines) is one query; the first
        // line keeps it and remembers the others.
        if let Some(q) = out.iter_mut().find(|q| q.key.norm == key.norm) {
            if let (Some(_), Some(l)) = (q.line, line) {
                q.also_lines.push(l);
            }
            return;
        }
        out.push(RefQuery {
            text: text.to_string(),
            key,
            kind,
            line,
            also_lines: Vec::new(),
            named,
        });
    };
    for (i, l) in payment.lines.iter().enumerate() {
        if let Some(r) = l.reference.as_deref() {
            push(r, l.reference_kind, Some(i), true);
        }
    }
    for t in &payment.free_text {
        for r in extract_from_text(t) {
            let kind = if r.purchase_order {
                ReferenceKind::PurchaseOrder
            } else {
                ReferenceKind::Unknown
            };
            push(&r.reference, kind, None, r.named);
        }
    }
}

/// Open invoices the query may mean, best first, and the paid item it names exactly (at
/// similarity 0.98 or better), if any.
fn lookup(
    ledger: &Ledger,
    q: &RefQuery,
    payer_customers: &[CustomerIdx],
    limits: &CandidateLimits,
) -> (Vec<RefHit>, Option<RefHit>) {
    // Exact forms first; the one-edit neighbourhood only when they find nothing good, since with
    // sequential numbering it holds dozens of invoices.
    let mut ids: Vec<InvoiceIdx> = ledger.lookup_norm(&q.key.norm).collect();
    for core in [&q.key.core, &q.key.tail] {
        if !core.is_empty() {
            ledger.lookup_core(core, false, &mut ids);
        }
    }
    let mut hits: Vec<RefHit> = Vec::new();
    let closed: std::cell::Cell<Option<RefHit>> = std::cell::Cell::new(None);
    let consider = |idx: InvoiceIdx, hits: &mut Vec<RefHit>| {
        let k = ledger.invoice_keys(idx);
        let by_number = q.key.similarity(&k.number);
        let by_po = q.key.similarity(&k.po);
        let (sim, field) = if by_po > by_number {
            (by_po as f32, RefField::PoNumber)
        } else {
            (by_number as f32, RefField::InvoiceNumber)
        };
        if sim < limits.min_similarity {
            return;
        }
        if ledger.invoice(idx).open_amount.is_zero() {
            let better = closed.get().is_none_or(|c| sim > c.sim);
            if sim >= 0.98 && better {
                closed.set(Some(RefHit {
                    invoice: idx,
                    sim,
                    field,
                }));
            }
            return;
        }
        if !hits.iter().any(|h| h.invoice == idx) {
            hits.push(RefHit {
                invoice: idx,
                sim,
                field,
            });
        }
    };
    for &idx in &ids {
        consider(idx, &mut hits);
    }
    if closed.get().is_none() && hits.iter().all(|h| h.sim < 0.95) {
        ids.clear();
        for core in [&q.key.core, &q.key.tail] {
            if !core.is_empty() {
                ledger.lookup_core(core, true, &mut ids);
            }
        }
        for &idx in ids.iter().take(MAX_FUZZY_IDS) {
            consider(idx, &mut hits);
        }
    }
    // Nothing close in the index: compare against the payer's own open items, which catches
    // references mangled beyond one edit of their core (other prefixes, two typos).
    // Only references that look like document numbers, and only items whose numbers are about
    // as long: Damerau-Levenshtein is the costliest step of a payment.
    let scannable = q.key.core.len() >= 4;
    if scannable && closed.get().is_none() && hits.iter().all(|h| h.sim < 0.9) {
        let min_similarity = f64::from(limits.min_similarity);
        let near = |k: &RefKey| {
            k.core.len().abs_diff(q.key.core.len()) <= 2
                || (!k.tail.is_empty() && k.tail.len().abs_diff(q.key.core.len()) <= 2)
        };
        for &c in payer_customers.iter().take(2) {
            for &idx in ledger
                .customer_open_invoices(c)
                .iter()
                .take(limits.customer_scan_limit)
            {
                let k = ledger.invoice_keys(idx);
                // The bound skips, without the edit distance, the items that cannot reach the
                // threshold (most of a large payer's): what `consider` keeps is unchanged. The
                // margin covers the rounding of the similarity to `f32`.
                let reachable = |f: &RefKey| q.key.similarity_at_most(f) >= min_similarity - 1e-4;
                if (near(&k.number) || near(&k.po)) && (reachable(&k.number) || reachable(&k.po)) {
                    consider(idx, &mut hits);
                }
            }
        }
    }
    // Best first; between equals, the payer's own invoices first, then the older one.
    hits.sort_by(|a, b| {
        let own = |h: &RefHit| payer_customers.contains(&ledger.invoice_customer(h.invoice));
        b.sim
            .total_cmp(&a.sim)
            .then(own(b).cmp(&own(a)))
            .then(a.invoice.cmp(&b.invoice))
    });
    hits.truncate(limits.hits_per_query);
    (hits, closed.get())
}

/// Open items a payer's short reference may be the start of, when the payer is known to cut
/// references short (see `matching::habits`): each of its open items whose normalised invoice
/// (or PO) number starts with the reference, scored by the share of the number the reference
/// gives. They join the reference's other hits; the line's amount then chooses among them.
fn prefix_hits(
    ledger: &Ledger,
    q: &RefQuery,
    truncating: &[(CustomerIdx, usize)],
    limits: &CandidateLimits,
    hits: &mut Vec<RefHit>,
) {
    let n = q.key.norm.len();
    for &(c, shortest) in truncating {
        if n < shortest {
            continue;
        }
        // The customer's number index yields the items whose numbers start with the
        // reference (and a few more when it is longer than the index's head).
        for idx in ledger
            .open_items(c)
            .by_number_prefix(&q.key.norm)
            .take(limits.customer_scan_limit)
        {
            let k = ledger.invoice_keys(idx);
            let read = [
                (&k.number, RefField::InvoiceNumber),
                (&k.po, RefField::PoNumber),
            ]
            .into_iter()
            .find(|(key, _)| key.norm.len() > n && key.norm.starts_with(&q.key.norm));
            let Some((key, field)) = read else {
                continue;
            };
            let sim = n as f32 / key.norm.len() as f32;
            match hits.iter_mut().find(|h| h.invoice == idx) {
                Some(h) if h.sim >= sim => {}
                Some(h) => {
                    *h = RefHit {
                        invoice: idx,
                        sim,
                        field,
                    }
                }
                None => hits.push(RefHit {
                    invoice: idx,
                    sim,
                    field,
                }),
            }
        }
    }
    hits.sort_by(|a, b| b.sim.total_cmp(&a.sim).then(a.invoice.cmp(&b.invoice)));
    // Several open items may share the start of their numbers; the amount decides among them,
    // so more of them are kept than a fuzzy reading keeps.
    hits.truncate(limits.hits_per_query.max(MAX_PREFIX_HITS));
}

/// Open items one short reference may stand for, at most.
const MAX_PREFIX_HITS: usize = 8;

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
fn from_lines(
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

/// Whether an item can take cash from this payment: open, in its currency, and billed by the
/// payment date (the ledger also holds items billed later in the period).
fn payable(ledger: &Ledger, payment: &Payment, i: InvoiceIdx) -> bool {
    let inv = ledger.invoice(i);
    !inv.open_amount.is_zero()
        && inv.currency == payment.currency
        && payment.payment_date.is_none_or(|d| inv.invoice_date <= d)
}

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

/// The invoices the free text names, as one set.
fn from_text(ledger: &Ledger, payment: &Payment, pc: &PaymentCandidates, out: &mut Vec<Candidate>) {
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
/// to the rest exactly (the bounded subset-sum), the oldest-first run of them, and a single item
/// with exactly that amount. Each distinct set becomes a candidate of the same source marked
/// `completed`. Returns the most distinct sets found for one listed candidate.
fn complete_lists(
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
        let mut pool: Vec<(bool, chrono::NaiveDate, InvoiceIdx, Decimal)> = ledger
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
                (!near, f.due_date, i, f.open_amount)
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
        for (k, &(_, _, _, open)) in pool.iter().enumerate() {
            sum += open;
            if sum == gap {
                add(pool[..=k].iter().map(|p| p.2).collect(), &mut sets);
            }
            if sum >= gap {
                break;
            }
        }
        for &(_, _, i, open) in &pool {
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
        most = most.max(sets.len());
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
            out.push(done);
        }
    }
    cands.extend(out);
    most
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

/// Single open items of the customers in play whose amount explains the payment: paid in full,
/// with the terms discount, less a wire fee, overpaid by at most a tenth, or at least half paid;
/// in that order of preference, and nearest the payment first within each. The customer's
/// amount index is read outwards from the payment's amount, so a payer with tens of thousands
/// of open items costs what one with ten does.
fn single_amounts(
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
const MAX_AMOUNT_WALK: usize = 512;

/// Consolidated payments without detail: sets of a customer's open items (credit memos too)
/// whose open amounts, or discounted amounts, add up to the payment exactly.
fn subsets(
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
        let open: Vec<Decimal> = pool
            .iter()
            .map(|&i| ledger.invoice(i).open_amount)
            .collect();
        let discounted: Vec<Decimal> = pool
            .iter()
            .map(|&i| {
                let inv = ledger.invoice(i);
                match terms_discount(inv, payment.payment_date) {
                    Some((d, true)) => inv.open_amount - d,
                    _ => inv.open_amount,
                }
            })
            .collect();
        let mut targets = vec![open];
        if targets[0] != discounted {
            targets.push(discounted);
        }
        for amounts in &targets {
            let (sols, _) = subset_sums(
                amounts,
                payment.amount,
                limits.subset_max_size,
                limits.subset_max_solutions,
            );
            n += sols.len();
            for s in sols {
                let allocations = s
                    .iter()
                    .map(|&k| CandidateAllocation {
                        invoice: pool[k],
                        fit: fit(
                            ledger.invoice(pool[k]),
                            amounts[k],
                            None,
                            payment.payment_date,
                        ),
                        reference: None,
                        line: None,
                    })
                    .collect();
                out.push(finish(payment, Source::SubsetSum, allocations));
            }
        }
    }
    (n, pc_pool)
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
