//! Links of several advices to one receipt, or one advice to several receipts: taken only when
//! the amounts add up exactly and exactly one combination does, found by a bounded search.

use super::evidence::{Facts, Related, describe};
use super::{Link, LinkConfig};
use crate::domain::Payment;
use crate::ledger::Ledger;
use crate::matching::amounts::subset_sums;
use rust_decimal::Decimal;

/// What the group search found.
pub(crate) struct Groups {
    pub links: Vec<Link>,
    /// Receipts and advices for which more than one combination adds up.
    pub ambiguous_receipts: Vec<usize>,
    pub ambiguous_advices: Vec<usize>,
}

/// One side of the search: the items, their facts, which are taken and which are tied 1:1.
pub(crate) struct Side<'a> {
    pub items: &'a [Payment],
    pub facts: &'a [Facts],
    pub free: Vec<bool>,
}

/// A proposed group: the single item, the several on the other side, and the evidence.
struct Proposal {
    one: usize,
    many: Vec<usize>,
    evidence: Vec<String>,
}

pub(crate) fn find(
    ledger: &Ledger,
    receipts: &Side,
    advices: &Side,
    config: &LinkConfig,
) -> Groups {
    // Several advices for one receipt.
    let (for_receipts, ambiguous_receipts) = search(ledger, receipts, advices, config, true);
    // Several receipts for one advice.
    let (for_advices, ambiguous_advices) = search(ledger, advices, receipts, config, false);
    // An item claimed by two proposals is in neither: the two readings exclude each other.
    let mut r_uses = vec![0u32; receipts.items.len()];
    let mut a_uses = vec![0u32; advices.items.len()];
    for p in &for_receipts {
        r_uses[p.one] += 1;
        p.many.iter().for_each(|&a| a_uses[a] += 1);
    }
    for p in &for_advices {
        a_uses[p.one] += 1;
        p.many.iter().for_each(|&r| r_uses[r] += 1);
    }
    let mut links = Vec::new();
    for p in for_receipts {
        if r_uses[p.one] == 1 && p.many.iter().all(|&a| a_uses[a] == 1) {
            links.push(Link {
                receipts: vec![p.one],
                advices: p.many,
                fee: Decimal::ZERO,
                evidence: p.evidence,
            });
        }
    }
    for p in for_advices {
        if a_uses[p.one] == 1 && p.many.iter().all(|&r| r_uses[r] == 1) {
            links.push(Link {
                receipts: p.many,
                advices: vec![p.one],
                fee: Decimal::ZERO,
                evidence: p.evidence,
            });
        }
    }
    Groups {
        links,
        ambiguous_receipts,
        ambiguous_advices,
    }
}

/// For each free item of `ones`, the single combination of free items of `manys` whose amounts
/// add up to its amount exactly. `ones_are_receipts` says which side is the bank's.
fn search(
    ledger: &Ledger,
    ones: &Side,
    manys: &Side,
    config: &LinkConfig,
    ones_are_receipts: bool,
) -> (Vec<Proposal>, Vec<usize>) {
    let mut proposals = Vec::new();
    let mut ambiguous = Vec::new();
    for (i, one) in ones.items.iter().enumerate() {
        if !ones.free[i] || !one.amount.is_sign_positive() || one.amount.is_zero() {
            continue;
        }
        let mut cands: Vec<(usize, Related)> = Vec::new();
        for (j, m) in manys.items.iter().enumerate() {
            if !manys.free[j]
                || !m.amount.is_sign_positive()
                || m.amount.is_zero()
                || m.amount >= one.amount
            {
                continue;
            }
            let related = if ones_are_receipts {
                Related::of(
                    ledger,
                    one,
                    &ones.facts[i],
                    m,
                    &manys.facts[j],
                    config,
                    false,
                )
            } else {
                Related::of(
                    ledger,
                    m,
                    &manys.facts[j],
                    one,
                    &ones.facts[i],
                    config,
                    false,
                )
            };
            if let Some(r) = related {
                cands.push((j, r));
            }
        }
        if cands.len() < 2 || cands.len() > config.max_group_candidates {
            continue;
        }
        let amounts: Vec<Decimal> = cands.iter().map(|(j, _)| manys.items[*j].amount).collect();
        let (found, _) = subset_sums(&amounts, one.amount, config.max_group, 2);
        match found.as_slice() {
            [only] => {
                let many: Vec<usize> = only.iter().map(|&k| cands[k].0).collect();
                let mut evidence = vec![format!(
                    "{} {} add up to the {} exactly",
                    many.len(),
                    if ones_are_receipts {
                        "advices"
                    } else {
                        "receipts"
                    },
                    if ones_are_receipts {
                        "receipt"
                    } else {
                        "advice"
                    }
                )];
                // Every member's evidence, once each.
                for &k in only {
                    let r = &cands[k].1;
                    let id = r
                        .payer
                        .and_then(|(_, c)| c)
                        .map(|c| ledger.customer(c).id.as_str());
                    for e in describe(r, id, Decimal::ZERO) {
                        if e != "amount: equal" && !evidence.contains(&e) {
                            evidence.push(e);
                        }
                    }
                }
                proposals.push(Proposal {
                    one: i,
                    many,
                    evidence,
                });
            }
            [] => {}
            _ => ambiguous.push(i),
        }
    }
    (proposals, ambiguous)
}
