//! Bank receipts and remittance advices that arrive apart, and the links between them.
//!
//! The bank reports a credit with an amount, a payer name or account, a date and little else (a
//! *receipt*); the payer's AP department sends the invoice detail on its own, by email, EDI or a
//! portal (an *advice*), hours or days before or after. Both are canonical [`Payment`]s here: a
//! receipt is a bank payment without remittance lines, an advice is what an advice file reads as
//! (its `amount` the total it says was paid). [`link`] pairs them when the evidence is clear, and
//! [`merge`] makes each link one payment with the receipt's money and the advice's detail, which
//! the matcher then decides like any other.
//!
//! What "clear" means (docs/advices.md):
//!
//! - **payer**: the two sides point at a common ledger customer (the receipt by bank account,
//!   name or parent; the advice by its payer or by the customers of the invoices it quotes), or,
//!   for a payer the ledger does not know, the two names agree; or the receipt's memo quotes a
//!   reference the advice carries;
//! - **amount**: equal, or the receipt short of the advice by no more than
//!   [`LinkConfig::fee_limit`] (a bank fee taken from a wire);
//! - **dates**: within [`LinkConfig::window_days`] of each other, either order;
//! - the same currency.
//!
//! A pair is linked only when each side is the other's single best candidate; two equally good
//! candidates are never resolved by guessing, and both go to a person. Several advices make up
//! one receipt, or one advice several receipts, only when the amounts add up exactly and only
//! one combination does (a bounded search). What stays unlinked waits for its counterpart until
//! the hold expires ([`LinkConfig::hold_business_days`] after its date), then goes on alone:
//! a receipt to the matcher (which may still find its invoices from the amount, or send it to
//! review), an advice to review, each with what it could have been linked to.

mod batch;
mod evidence;
mod groups;
mod merge;
#[cfg(test)]
mod tests;

pub use batch::{Batch, Counts, Record};
pub use merge::merge;

use crate::domain::Payment;
use crate::ledger::Ledger;
use chrono::{Datelike, NaiveDate, Weekday};
use evidence::{Facts, PairEvidence};
use rust_decimal::Decimal;
use serde::Serialize;

/// How linking decides; every limit is a rule the user can set.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// Largest amount a receipt may be short of its advice and still be linked 1:1, read as a
    /// bank fee deducted from the transfer. Groups must add up exactly.
    pub fee_limit: Decimal,
    /// Calendar days a receipt's and an advice's dates may lie apart, in either order.
    pub window_days: i64,
    /// Business days an unlinked receipt or advice waits for its counterpart.
    pub hold_business_days: u32,
    /// Most items a group link combines on its many side.
    pub max_group: usize,
    /// Most candidates a group search considers for one item; beyond it the item is not linked
    /// as a group (too many combinations to tell apart).
    pub max_group_candidates: usize,
    /// The day the run stands at, for the hold; the latest date among the inputs when absent.
    pub as_of: Option<NaiveDate>,
}

/// The default fee limit: a domestic or international wire fee is some tens of dollars.
pub const DEFAULT_FEE_LIMIT: Decimal = Decimal::from_parts(5000, 0, 0, false, 2);

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            fee_limit: DEFAULT_FEE_LIMIT,
            window_days: 7,
            hold_business_days: 2,
            max_group: 4,
            max_group_candidates: 12,
            as_of: None,
        }
    }
}

/// One link: receipts and advices that are the same money. One side has exactly one item.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Link {
    /// Indices into the receipts given to [`link`].
    pub receipts: Vec<usize>,
    /// Indices into the advices given to [`link`].
    pub advices: Vec<usize>,
    /// What the receipts are short of the advices: a bank fee (zero for an exact link).
    pub fee: Decimal,
    /// The evidence, for the decision's explanation and the audit.
    pub evidence: Vec<String>,
}

/// Why an item is not linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unlinked {
    /// Nothing on the other side fits it.
    NoCandidate,
    /// Two or more counterparts fit equally well: a person chooses.
    Ambiguous,
}

/// Where an unlinked item stands against the hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hold {
    /// Still within the hold: its counterpart may yet arrive.
    Waiting,
    /// The hold is over: a receipt is matched on its own, an advice goes to review.
    Expired,
}

/// An item left unlinked, with what it could be linked to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pending {
    /// Index into the receipts or the advices given to [`link`].
    pub index: usize,
    pub reason: Unlinked,
    pub hold: Hold,
    /// Indices of counterparts that fit it (on the other side), best first.
    pub candidates: Vec<usize>,
}

/// What [`link`] found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Linking {
    pub links: Vec<Link>,
    pub receipts: Vec<Pending>,
    pub advices: Vec<Pending>,
    /// The day the hold was reckoned from.
    pub as_of: Option<NaiveDate>,
}

/// Whether a bank payment is a receipt waiting for an advice: it carries no remittance lines.
/// (Its memo may still quote references; they are evidence for the link, and the matcher reads
/// them if no advice comes.)
pub fn is_receipt(p: &Payment) -> bool {
    p.lines.is_empty()
}

/// Links receipts with advices (see the module doc). Deterministic: the result depends only on
/// the inputs and their order.
pub fn link(
    ledger: &Ledger,
    receipts: &[Payment],
    advices: &[Payment],
    config: &LinkConfig,
) -> Linking {
    let rf: Vec<Facts> = receipts.iter().map(|p| Facts::of(ledger, p)).collect();
    let af: Vec<Facts> = advices.iter().map(|p| Facts::of(ledger, p)).collect();
    // Every admissible 1:1 pair with its strength.
    let mut pairs: Vec<(usize, usize, PairEvidence)> = Vec::new();
    for (r, rp) in receipts.iter().enumerate() {
        for (a, ap) in advices.iter().enumerate() {
            if let Some(e) = PairEvidence::of(ledger, rp, &rf[r], ap, &af[a], config) {
                pairs.push((r, a, e));
            }
        }
    }
    let mut r_done = vec![false; receipts.len()];
    let mut a_done = vec![false; advices.len()];
    let mut links: Vec<Link> = Vec::new();
    // Mutual single best, repeated: once a pair is linked, a counterpart that tied with it may
    // have one candidate left. Each round links at least one pair or stops.
    loop {
        let open: Vec<&(usize, usize, PairEvidence)> = pairs
            .iter()
            .filter(|(r, a, _)| !r_done[*r] && !a_done[*a])
            .collect();
        let best_r = single_best(&open, receipts.len(), |p| p.0, |p| p.1);
        let best_a = single_best(&open, advices.len(), |p| p.1, |p| p.0);
        let mut linked_any = false;
        for (r, best) in best_r.iter().enumerate() {
            let Some(a) = *best else { continue };
            if best_a[a] != Some(r) {
                continue;
            }
            let Some((_, _, e)) = open.iter().find(|p| p.0 == r && p.1 == a) else {
                continue;
            };
            links.push(Link {
                receipts: vec![r],
                advices: vec![a],
                fee: advices[a].amount - receipts[r].amount,
                evidence: e.describe(),
            });
            r_done[r] = true;
            a_done[a] = true;
            linked_any = true;
        }
        if !linked_any {
            break;
        }
    }
    // Items still holding a 1:1 candidate are ambiguous, not parts of a group.
    let mut r_tied = vec![false; receipts.len()];
    let mut a_tied = vec![false; advices.len()];
    for (r, a, _) in &pairs {
        if !r_done[*r] && !a_done[*a] {
            r_tied[*r] = true;
            a_tied[*a] = true;
        }
    }
    let free = |done: &[bool], tied: &[bool]| {
        done.iter()
            .zip(tied)
            .map(|(d, t)| !d && !t)
            .collect::<Vec<bool>>()
    };
    let found = groups::find(
        ledger,
        &groups::Side {
            items: receipts,
            facts: &rf,
            free: free(&r_done, &r_tied),
        },
        &groups::Side {
            items: advices,
            facts: &af,
            free: free(&a_done, &a_tied),
        },
        config,
    );
    found
        .ambiguous_receipts
        .iter()
        .for_each(|&r| r_tied[r] = true);
    found
        .ambiguous_advices
        .iter()
        .for_each(|&a| a_tied[a] = true);
    for g in found.links {
        g.receipts.iter().for_each(|&r| r_done[r] = true);
        g.advices.iter().for_each(|&a| a_done[a] = true);
        links.push(g);
    }
    links.sort_by_key(|l| (l.receipts[0], l.advices[0]));

    let as_of = config.as_of.or_else(|| {
        receipts
            .iter()
            .chain(advices)
            .filter_map(|p| p.payment_date)
            .max()
    });
    let pending = |done: &[bool],
                   tied: &[bool],
                   items: &[Payment],
                   candidates: &dyn Fn(usize) -> Vec<usize>| {
        (0..items.len())
            .filter(|&i| !done[i])
            .map(|i| Pending {
                index: i,
                reason: if tied[i] {
                    Unlinked::Ambiguous
                } else {
                    Unlinked::NoCandidate
                },
                hold: hold_state(items[i].payment_date, as_of, config.hold_business_days),
                candidates: candidates(i),
            })
            .collect::<Vec<_>>()
    };
    // Candidates shown to a person: the admissible pairs, strongest first, still unlinked.
    let ranked = |mine: &dyn Fn(&(usize, usize, PairEvidence)) -> usize,
                  other: &dyn Fn(&(usize, usize, PairEvidence)) -> usize,
                  other_done: &[bool],
                  i: usize| {
        let mut c: Vec<&(usize, usize, PairEvidence)> = pairs
            .iter()
            .filter(|p| mine(p) == i && !other_done[other(p)])
            .collect();
        c.sort_by(|x, y| y.2.key().cmp(&x.2.key()).then(other(x).cmp(&other(y))));
        c.into_iter().map(other).collect::<Vec<_>>()
    };
    let receipts_pending = pending(&r_done, &r_tied, receipts, &|i| {
        ranked(&|p| p.0, &|p| p.1, &a_done, i)
    });
    let advices_pending = pending(&a_done, &a_tied, advices, &|i| {
        ranked(&|p| p.1, &|p| p.0, &r_done, i)
    });
    Linking {
        links,
        receipts: receipts_pending,
        advices: advices_pending,
        as_of,
    }
}

/// For each item on one side, its counterpart when exactly one admissible pair is strongest.
fn single_best(
    open: &[&(usize, usize, PairEvidence)],
    n: usize,
    mine: impl Fn(&(usize, usize, PairEvidence)) -> usize,
    other: impl Fn(&(usize, usize, PairEvidence)) -> usize,
) -> Vec<Option<usize>> {
    let mut best: Vec<Option<(evidence::Key, usize, bool)>> = vec![None; n];
    for p in open {
        let k = p.2.key();
        let slot = &mut best[mine(p)];
        match slot {
            None => *slot = Some((k, other(p), false)),
            Some((bk, _, tie)) if k == *bk => *tie = true,
            Some((bk, _, _)) if k > *bk => *slot = Some((k, other(p), false)),
            Some(_) => {}
        }
    }
    best.into_iter()
        .map(|b| b.and_then(|(_, o, tie)| (!tie).then_some(o)))
        .collect()
}

/// Whether an item dated `date` has waited out the hold by `as_of`. An item without a date has
/// nothing to wait from: it is treated as expired, so that it is never held for ever.
pub fn hold_state(date: Option<NaiveDate>, as_of: Option<NaiveDate>, hold: u32) -> Hold {
    match (date, as_of) {
        (Some(d), Some(now)) if add_business_days(d, hold) >= now => Hold::Waiting,
        _ => Hold::Expired,
    }
}

/// `days` business days (Monday to Friday) after `date`; bank holidays are not known here.
pub fn add_business_days(date: NaiveDate, days: u32) -> NaiveDate {
    let mut d = date;
    let mut left = days;
    while left > 0 {
        d = d.succ_opt().unwrap_or(d);
        if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
        if d == NaiveDate::MAX {
            break;
        }
    }
    d
}
