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
//!   [`LinkConfig::fee_limit`] (a bank fee taken from a wire), or by exactly the open amount of
//!   one or two of the common customer's open credit memos that the advice does not list (its
//!   AP department took them and listed only the invoices), when only one combination does;
//!   or, weighed last and only between items nothing else fits, the receipt a little over the
//!   advice (an overpayment);
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
use crate::ledger::{CustomerIdx, Ledger};
use chrono::{Datelike, NaiveDate, Weekday};
use evidence::{Facts, PairEvidence};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::HashMap;

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
    /// Days by which one counterpart's dates must be closer than every equally good other's
    /// for the dates to choose between them; an equally good counterpart up to this many days
    /// beyond the window still counts (a late advice, a receipt whose advice never came).
    pub date_margin_days: i64,
    /// Whether a receipt whose hold is over without an advice goes to a person when it carries
    /// nothing but its amount and payer (no reference in its memo), rather than being applied
    /// by the matcher on the amount alone. Its lines were sent apart and lost, so the amount
    /// may fit invoices it does not pay (a duplicate payment beside an open twin, a part of
    /// several invoices that another combination also makes up).
    pub review_receipts_alone: bool,
    /// Days an advice and its money usually lie apart (an AP department emails the advice when
    /// it releases the payment, which clears in one to three business days). An exact link
    /// further apart is weighed against a nearer receipt of a near amount, and a receipt over
    /// its advice is read as an overpayment only within it.
    pub usual_delay_days: i64,
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
            date_margin_days: 7,
            review_receipts_alone: true,
            usual_delay_days: 3,
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
    /// What the receipts are short of the advices: a bank fee, or the customer's open credit
    /// memos that the evidence names (zero for an exact link; negative for a receipt over its
    /// advice).
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

/// The opening of the warning on a receipt matched alone that the engine never auto-applies
/// ([`LinkConfig::review_receipts_alone`]): its decision stays a suggestion for a person.
pub const REVIEW_ALONE: &str =
    "for review: no remittance advice came, and the receipt has nothing but its amount and payer";

/// Whether a bank payment is a receipt waiting for an advice: it carries no remittance lines.
/// (Its memo may still quote references; they are evidence for the link, and the matcher reads
/// them if no advice comes.)
pub fn is_receipt(p: &Payment) -> bool {
    p.lines.is_empty()
}

/// Marks a receipt decided without its advice for a person when
/// [`LinkConfig::review_receipts_alone`] asks and it carries nothing but its amount and payer (no
/// reference in its memo, which would be evidence beyond the amount for the matcher). The batch
/// run and the service's hold both call it, so that the two decide such a receipt alike.
pub fn mark_alone(p: &mut Payment, config: &LinkConfig) {
    let quotes_a_reference = p
        .free_text
        .iter()
        .any(|t| !crate::text::references::extract_from_text(t).is_empty());
    if config.review_receipts_alone && !quotes_a_reference {
        p.warnings.push(REVIEW_ALONE.to_string());
    }
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
    // Every 1:1 pair admissible over the window and the date margin beyond it. Those inside the
    // window are candidates; those beyond it can only be rivals (`single_best`).
    let wide = LinkConfig {
        window_days: config
            .window_days
            .saturating_add(config.date_margin_days.max(0)),
        ..config.clone()
    };
    let mut pairs: Vec<(usize, usize, PairEvidence)> = Vec::new();
    for (r, rp) in receipts.iter().enumerate() {
        for (a, ap) in advices.iter().enumerate() {
            if let Some(e) = PairEvidence::of(ledger, rp, &rf[r], ap, &af[a], &wide) {
                pairs.push((r, a, e));
            }
        }
    }
    // A receipt over its advice is the weakest reading of all: it is weighed last, only between
    // items that nothing else fits (below), so that it never ties with a better one.
    let (over, pairs): (Vec<_>, Vec<_>) = pairs
        .into_iter()
        .partition(|(_, _, e)| e.fee.is_sign_negative());
    let inside = |e: &PairEvidence| e.related.days_apart.is_none_or(|d| d <= config.window_days);
    // For each advice, the receipts of its exact amount near it, whoever paid them. A link that
    // reads the receipt short by a fee or a credit is doubtful beside any of those still
    // unlinked (a payment service or another entity may have sent the whole amount). An exact
    // link is doubtful beside one whose payer could be the advice's (`Facts::could_be_for`: not
    // told, or another company of the same group): a payment service, a sister company or an
    // unknown remitter may have sent this very amount, and the customer's own receipt of it is
    // then another payment (its advice never came). The customer's own other receipts of the
    // amount are weighed by `single_best` (rivals and the date margin), not here.
    let exact_near: Vec<Vec<usize>> = advices
        .iter()
        .map(|a| {
            receipts
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    r.amount == a.amount
                        && r.currency == a.currency
                        && days_apart(r, a).is_none_or(|d| d <= wide.window_days)
                })
                .map(|(i, _)| i)
                .collect()
        })
        .collect();
    // Whether the unlinked receipt `x` of advice `a`'s exact amount leaves the link of `r` and
    // `a` (on evidence `e`) in doubt: any such receipt does when `e` reads a fee or credits,
    // one whose payer could be the advice's does when the amounts are equal.
    let doubtful = |x: usize, r: usize, a: usize, e: &PairEvidence, r_done: &[bool]| {
        x != r
            && !r_done[x]
            && (!e.fee.is_zero()
                || rf[x].could_be_for(ledger, &af[a], e.related.payer.and_then(|t| t.1)))
    };
    // Receipts and advices by the customers they point at.
    let mut receipts_of: HashMap<CustomerIdx, Vec<usize>> = HashMap::new();
    for (r, f) in rf.iter().enumerate() {
        for c in f.customer_ids() {
            receipts_of.entry(c).or_default().push(r);
        }
    }
    let mut advices_of: HashMap<CustomerIdx, Vec<usize>> = HashMap::new();
    for (a, f) in af.iter().enumerate() {
        for c in f.customer_ids() {
            advices_of.entry(c).or_default().push(a);
        }
    }
    // For each advice, the receipts of a customer it points at whose amount is near its own but
    // not equal (short by a fee, over by an overpayment, short by a deduction nobody listed), or
    // whose pair with it reads a bank fee or the customer's open credit memos, with their days
    // apart: one of them much nearer in date is as likely the advice's money as an exact amount
    // further off, which is then often the customer's payment whose own advice never came.
    let mut near_amount: Vec<Vec<(usize, i64)>> = advices
        .iter()
        .enumerate()
        .map(|(a, ap)| {
            let mut near: Vec<(usize, i64)> = af[a]
                .customer_ids()
                .filter_map(|c| receipts_of.get(&c))
                .flatten()
                .filter_map(|&x| {
                    let rp = &receipts[x];
                    let d = days_apart(rp, ap)?;
                    (rp.amount != ap.amount
                        && rp.currency == ap.currency
                        && (rp.amount - ap.amount).abs() <= ap.amount.abs() * NEAR_AMOUNT
                        && d <= config.window_days)
                        .then_some((x, d))
                })
                .collect();
            near.sort_unstable();
            near.dedup();
            near
        })
        .collect();
    for (r, a, e) in &pairs {
        if let (false, Some(d)) = (e.fee.is_zero(), e.related.days_apart) {
            near_amount[*a].push((*r, d));
        }
    }
    let within =
        |x: &Payment, y: &Payment| days_apart(x, y).is_none_or(|d| d <= config.window_days);
    // Whether advice `a`, with another unlinked advice of a customer it points at, adds up
    // exactly to an unlinked receipt of that customer other than `r`: the payer split one
    // payment's detail into two advices, and the receipt of `a`'s own amount is then as likely
    // a payment whose advice never came. Two readings, so a person decides.
    let part_of_more = |r: usize, a: usize, r_done: &[bool], a_done: &[bool]| {
        af[a].customer_ids().any(|c| {
            let (Some(bs), Some(xs)) = (advices_of.get(&c), receipts_of.get(&c)) else {
                return false;
            };
            bs.iter()
                .filter(|&&b| b != a && !a_done[b] && advices[b].currency == advices[a].currency)
                .any(|&b| {
                    let sum = advices[a].amount + advices[b].amount;
                    xs.iter().any(|&x| {
                        x != r
                            && !r_done[x]
                            && receipts[x].amount == sum
                            && receipts[x].currency == advices[a].currency
                            && within(&receipts[x], &advices[a])
                            && within(&receipts[x], &advices[b])
                    })
                })
        })
    };
    // Whether an exact link without a reference in common, its dates further apart than an
    // advice usually travels, is in doubt beside such a receipt.
    let nearer = |a: usize, e: &PairEvidence, r_done: &[bool]| {
        let (Some(d), true, false) = (
            e.related.days_apart,
            e.fee.is_zero(),
            e.related.reference.is_some(),
        ) else {
            return false;
        };
        if d <= config.usual_delay_days {
            return false;
        }
        near_amount[a]
            .iter()
            .any(|&(x, dx)| !r_done[x] && dx.saturating_add(NEARER_BY_DAYS) <= d)
    };
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
        let margin = config.date_margin_days;
        let best_r = single_best(&open, receipts.len(), |p| p.0, |p| p.1, &inside, margin);
        let best_a = single_best(&open, advices.len(), |p| p.1, |p| p.0, &inside, margin);
        let mut linked_any = false;
        for (r, best) in best_r.iter().enumerate() {
            let Some(a) = *best else { continue };
            if best_a[a] != Some(r) || r_done[r] || a_done[a] {
                continue;
            }
            let Some((_, _, e)) = open.iter().find(|p| p.0 == r && p.1 == a) else {
                continue;
            };
            // An exact amount from a payer not told is linked only when nothing else fits
            // either side (a customer's receipt over or short of the advice does).
            let amount_only =
                e.related.payer.map(|t| t.0) == Some(evidence::PayerTie::AmountOnly)
                    && open.iter().copied().chain(&over).any(|p| {
                        (p.0 == r) != (p.1 == a) && (p.0 == r || p.1 == a) && inside(&p.2)
                    });
            if amount_only
                || exact_near[a].iter().any(|&x| doubtful(x, r, a, e, &r_done))
                || nearer(a, e, &r_done)
                || part_of_more(r, a, &r_done, &a_done)
            {
                continue;
            }
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
            // What is left tied may pair off one way only.
            let paired = pair_off(&pairs, &inside, &r_done, &a_done, config.date_margin_days);
            let pairing: Vec<usize> = paired.iter().map(|p| p.0).collect();
            for (r, a, k) in paired {
                // A receipt of the amount outside the pairing leaves it doubtful too.
                if exact_near[a]
                    .iter()
                    .any(|&x| !pairing.contains(&x) && doubtful(x, r, a, &pairs[k].2, &r_done))
                    || nearer(a, &pairs[k].2, &r_done)
                    || part_of_more(r, a, &r_done, &a_done)
                {
                    continue;
                }
                let mut evidence = pairs[k].2.describe();
                evidence.push(
                    "the customer's other receipts and advices of this amount pair off only this way"
                        .to_string(),
                );
                links.push(Link {
                    receipts: vec![r],
                    advices: vec![a],
                    fee: advices[a].amount - receipts[r].amount,
                    evidence,
                });
                r_done[r] = true;
                a_done[a] = true;
                linked_any = true;
            }
        }
        if !linked_any {
            break;
        }
    }
    // Items still holding a 1:1 candidate are ambiguous, not parts of a group.
    let mut r_tied = vec![false; receipts.len()];
    let mut a_tied = vec![false; advices.len()];
    for (r, a, e) in &pairs {
        if !r_done[*r] && !a_done[*a] && inside(e) {
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
    // Receipts over their advice, between items left with no other candidate, each the other's
    // only such pair, no receipt of the advice's exact amount unlinked, and nothing else of the
    // customer unlinked near them (an advice of a payment split in two, a receipt of another
    // payment: then the difference may be theirs, not an overpayment).
    let alone_near = |r: usize, a: usize, c: CustomerIdx, r_done: &[bool], a_done: &[bool]| {
        let rs = receipts_of.get(&c).map(Vec::as_slice).unwrap_or_default();
        let as_ = advices_of.get(&c).map(Vec::as_slice).unwrap_or_default();
        !rs.iter()
            .any(|&x| x != r && !r_done[x] && within(&receipts[x], &advices[a]))
            && !as_
                .iter()
                .any(|&b| b != a && !a_done[b] && within(&receipts[r], &advices[b]))
    };
    let free_over: Vec<&(usize, usize, PairEvidence)> = over
        .iter()
        .filter(|(r, a, e)| inside(e) && !r_done[*r] && !a_done[*a] && !r_tied[*r] && !a_tied[*a])
        .collect();
    for &(r, a, e) in &free_over {
        let only = |x: &&(usize, usize, PairEvidence)| (x.0 == *r) != (x.1 == *a);
        if free_over
            .iter()
            .any(|x| (x.0 == *r || x.1 == *a) && only(x))
            || exact_near[*a].iter().any(|&x| !r_done[x])
            || !e
                .related
                .payer
                .and_then(|t| t.1)
                .is_some_and(|c| alone_near(*r, *a, c, &r_done, &a_done))
        {
            continue;
        }
        links.push(Link {
            receipts: vec![*r],
            advices: vec![*a],
            fee: e.fee,
            evidence: e.describe(),
        });
        r_done[*r] = true;
        a_done[*a] = true;
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
            .filter(|p| mine(p) == i && !other_done[other(p)] && inside(&p.2))
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

/// Whether `other` is as good a counterpart as `best`, dates aside: its key is no weaker, or it
/// names the same customer with the same reference evidence (how each receipt's payer was
/// found, by account or by name, says nothing about which of one customer's payments an advice
/// describes, and neither does an exact amount beside one short by the customer's credit memos),
/// or it is an exact amount from a payer that cannot be told, against a pair of exact amount
/// without a reference in common.
fn rivals(other: &PairEvidence, best: &PairEvidence) -> bool {
    let (ko, kb) = (other.key(), best.key());
    if ko >= kb {
        return true;
    }
    // An exact amount from a payer that cannot be told could be anyone's, this customer's too.
    if ko.1 && !kb.0 && other.related.payer.map(|(t, _)| t) == Some(evidence::PayerTie::AmountOnly)
    {
        return true;
    }
    // One customer's receipt of the advice's exact amount and another short of it by exactly
    // the customer's open credit memos are both readings of the same evidence: the exact amount
    // does not make the first the one (a customer pays the same amounts again). A bank fee is
    // not as specific (any smaller receipt within the limit would do), so it does not rival.
    let customer = |e: &PairEvidence| e.related.payer.and_then(|(_, c)| c);
    (ko.0 == kb.0 && (ko.1 == kb.1 || !other.credits.is_empty()))
        && customer(other).is_some()
        && customer(other) == customer(best)
}

/// For each item on one side, its counterpart when one pair stands out: among the strongest
/// pair and its rivals (dates aside, including pairs beyond the window), the one whose dates
/// are closest, inside the window, and closer than every other by `margin` days. The date gate
/// is a line drawn through a spread of delays: the same customer's same amount just beyond it
/// (an advice late, a receipt whose own advice never came) is as likely the counterpart as the
/// one inside, so dates decide only by a clear margin.
fn single_best(
    open: &[&(usize, usize, PairEvidence)],
    n: usize,
    mine: impl Fn(&(usize, usize, PairEvidence)) -> usize,
    other: impl Fn(&(usize, usize, PairEvidence)) -> usize,
    inside: &dyn Fn(&PairEvidence) -> bool,
    margin: i64,
) -> Vec<Option<usize>> {
    let mut of: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, p) in open.iter().enumerate() {
        of[mine(p)].push(k);
    }
    of.iter()
        .map(|ks| {
            let top = ks.iter().map(|&k| open[k].2.key()).max()?;
            let strongest: Vec<&PairEvidence> = ks
                .iter()
                .map(|&k| &open[k].2)
                .filter(|e| e.key() == top)
                .collect();
            let contenders: Vec<usize> = ks
                .iter()
                .copied()
                .filter(|&k| strongest.iter().any(|s| rivals(&open[k].2, s)))
                .collect();
            let days = |k: usize| open[k].2.related.days_apart;
            let winner = match contenders.as_slice() {
                [only] => *only,
                _ => {
                    // Without both dates on every contender, dates cannot tell them apart.
                    let all: Option<Vec<i64>> = contenders.iter().map(|&k| days(k)).collect();
                    let all = all?;
                    let (w, d) = contenders
                        .iter()
                        .zip(&all)
                        .min_by_key(|(_, d)| **d)
                        .map(|(k, d)| (*k, *d))?;
                    let clear = contenders
                        .iter()
                        .zip(&all)
                        .all(|(k, o)| *k == w || *o >= d.saturating_add(margin));
                    if !clear {
                        return None;
                    }
                    w
                }
            };
            inside(&open[winner].2).then(|| other(open[winner]))
        })
        .collect()
}

/// How near an amount must be to the advice's, as a share of it, for a nearer receipt of the
/// customer to put an exact link further off in doubt: overpayments and unlisted deductions are
/// mostly a few per cent.
const NEAR_AMOUNT: Decimal = Decimal::from_parts(10, 0, 0, false, 2);

/// Days by which a receipt of a near amount must be nearer in date than the exact one.
const NEARER_BY_DAYS: i64 = 2;

/// Most items on each side of a tied component that [`pair_off`] pairs.
const MAX_PAIR_OFF: usize = 6;

/// Links left tied: receipts and advices joined by open pairs of equal amounts or amounts
/// apart by the customer's open credit memos (inside the window or within the margin beyond it)
/// into one component, whatever the payer evidence of each pair (one customer's
/// equal amounts; a customer's receipt beside a stranger's of the same amount, whose own
/// advice is there too). When there are as many receipts as advices and they pair off inside
/// the window or the margin beyond it in exactly one way, or one way's dates are closer in total
/// than every other's by the margin, and that way's pairs all lie inside the window, each pair
/// is linked: every item then has its counterpart, where any other
/// reading leaves an advice without money and a receipt without an advice. An advice that
/// never came or a receipt beyond the window leaves the counts unequal, and nothing is linked.
/// Returns `(receipt, advice, index into pairs)`.
fn pair_off(
    pairs: &[(usize, usize, PairEvidence)],
    inside: &dyn Fn(&PairEvidence) -> bool,
    r_done: &[bool],
    a_done: &[bool],
    margin: i64,
) -> Vec<(usize, usize, usize)> {
    let nr = r_done.len();
    let mut parent: Vec<usize> = (0..nr + a_done.len()).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let open: Vec<usize> = (0..pairs.len())
        .filter(|&k| !r_done[pairs[k].0] && !a_done[pairs[k].1])
        .collect();
    for &k in &open {
        let (x, y) = (
            root(&mut parent, pairs[k].0),
            root(&mut parent, nr + pairs[k].1),
        );
        if x != y {
            parent[x] = y;
        }
    }
    let mut components: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for &k in &open {
        let c = root(&mut parent, pairs[k].0);
        components.entry(c).or_default().push(k);
    }
    let mut out = Vec::new();
    for ks in components.values() {
        let mut rs: Vec<usize> = ks.iter().map(|&k| pairs[k].0).collect();
        let mut as_: Vec<usize> = ks.iter().map(|&k| pairs[k].1).collect();
        rs.sort_unstable();
        rs.dedup();
        as_.sort_unstable();
        as_.dedup();
        if rs.len() != as_.len() || rs.len() < 2 || rs.len() > MAX_PAIR_OFF {
            continue;
        }
        // Without both dates on every pair, the margin cannot weigh the ways against each other;
        // a pair short by a bank fee is no evidence of a pairing (any smaller receipt within the
        // limit would do), so a component holding one is left to a person. One short by exactly
        // the customer's open credit memos is as specific as an equal amount.
        if ks.iter().any(|&k| {
            let e = &pairs[k].2;
            e.related.days_apart.is_none() || (!e.fee.is_zero() && e.credits.is_empty())
        }) {
            continue;
        }
        // edge[i][j]: the pair of receipt rs[i] and advice as_[j], inside the window or within the
        // margin beyond it: a pairing through a late advice is as much a reading of the dates as
        // one inside, so it competes, and wins nothing (below).
        let mut edge = vec![vec![None; as_.len()]; rs.len()];
        for &k in ks {
            let (r, a, e) = &pairs[k];
            let i = rs.binary_search(r).unwrap_or(0);
            let j = as_.binary_search(a).unwrap_or(0);
            edge[i][j] = Some((k, e.related.days_apart.unwrap_or(0)));
        }
        // Every perfect pairing with its total days apart: the best two totals are enough.
        let mut best: Vec<(i64, Vec<usize>)> = Vec::new();
        fn walk(
            edge: &[Vec<Option<(usize, i64)>>],
            i: usize,
            used: &mut Vec<bool>,
            chosen: &mut Vec<usize>,
            total: i64,
            best: &mut Vec<(i64, Vec<usize>)>,
        ) {
            if i == edge.len() {
                best.push((total, chosen.clone()));
                best.sort_by_key(|b| b.0);
                best.truncate(2);
                return;
            }
            for j in 0..edge[i].len() {
                if let (false, Some((k, d))) = (used[j], edge[i][j]) {
                    used[j] = true;
                    chosen.push(k);
                    walk(edge, i + 1, used, chosen, total.saturating_add(d), best);
                    chosen.pop();
                    used[j] = false;
                }
            }
        }
        walk(
            &edge,
            0,
            &mut vec![false; as_.len()],
            &mut Vec::new(),
            0,
            &mut best,
        );
        let chosen = match best.as_slice() {
            [only] => &only.1,
            [b, second] if second.0 >= b.0.saturating_add(margin) => &b.1,
            _ => continue,
        };
        if chosen.iter().any(|&k| !inside(&pairs[k].2)) {
            continue;
        }
        out.extend(chosen.iter().map(|&k| (pairs[k].0, pairs[k].1, k)));
    }
    out
}

/// Days between two items' dates, either order, when both are dated.
pub(crate) fn days_apart(x: &Payment, y: &Payment) -> Option<i64> {
    Some((x.payment_date? - y.payment_date?).num_days().abs())
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
