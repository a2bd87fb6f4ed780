//! From what the payment quotes to the open invoices it may mean: the queries (remittance lines
//! first, then references found in free text) and their lookup through the ledger's indexes,
//! exact, fuzzy and by the prefix a customer's habits say it drops.

use super::{CandidateLimits, MAX_FUZZY_IDS, MAX_QUERIES, RefHit, RefQuery};
use crate::domain::{Payment, ReferenceKind};
use crate::ledger::{CustomerIdx, InvoiceIdx, Ledger, RefField};
use crate::text::references::{RefKey, extract_from_text};

pub(super) fn collect_queries(payment: &Payment, out: &mut Vec<RefQuery>) {
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
pub(super) fn lookup(
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
    let nothing_good = closed.get().is_none() && hits.iter().all(|h| h.sim < 0.95);
    // With numbers in one sequence across customers, a mis-keyed digit of the payer's number
    // usually lands on another customer's number, open or paid: no good find when the payer is
    // known, and the payer's own item one edit away may be what it meant (the amount then says
    // which). Only the payer's items are read then: another stranger one edit away is no better
    // than the first. A paid item of the payer's own stays a possible duplicate. Only for a
    // reference the payer presents as a document: a bare check or batch number that happens to
    // be someone's number is no slip, and the neighbourhood search is the costliest lookup.
    let theirs = |idx: InvoiceIdx| payer_customers.contains(&ledger.invoice_customer(idx));
    let slip_of_theirs = q.named
        && !nothing_good
        && !payer_customers.is_empty()
        && !closed.get().is_some_and(|c| theirs(c.invoice))
        && !hits.iter().any(|h| h.sim >= 0.95 && theirs(h.invoice));
    if nothing_good || slip_of_theirs {
        ids.clear();
        for core in [&q.key.core, &q.key.tail] {
            if !core.is_empty() {
                ledger.lookup_core_where(core, true, |i| nothing_good || theirs(i), &mut ids);
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
pub(super) fn prefix_hits(
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
