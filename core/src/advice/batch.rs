//! One batch run of linking: bank payments and advices in, the payments the matcher decides
//! and a record of every link and every item left waiting or for review out.

use super::{Hold, LinkConfig, Linking, Unlinked, is_receipt, link, merge};
use crate::domain::Payment;
use crate::ledger::Ledger;
use rust_decimal::Decimal;
use serde::Serialize;

/// What a batch run of linking gives.
#[derive(Clone, Debug)]
pub struct Batch {
    /// What the matcher decides, in bank order: bank payments that carried their own detail,
    /// linked receipts with their advices' detail, and receipts whose hold is over (alone).
    pub payments: Vec<Payment>,
    /// The bank payments that were receipts, as [`Linking`]'s indices count them.
    pub receipts: Vec<Payment>,
    pub advices: Vec<Payment>,
    pub linking: Linking,
    /// Bank payments that carried their own remittance detail and were not linked.
    pub coupled: usize,
}

impl Batch {
    /// Links `bank` payments without detail with `advices`, and lays out what goes to the
    /// matcher (see [`Batch::payments`]). Receipts still within their hold are held back.
    pub fn run(
        ledger: &Ledger,
        bank: Vec<Payment>,
        advices: Vec<Payment>,
        config: &LinkConfig,
    ) -> Batch {
        // Which bank payment each receipt was, so the output keeps the bank's order.
        let mut order: Vec<Result<Payment, usize>> = Vec::with_capacity(bank.len());
        let mut receipts: Vec<Payment> = Vec::new();
        let mut coupled = 0;
        for p in bank {
            if is_receipt(&p) {
                order.push(Err(receipts.len()));
                receipts.push(p);
            } else {
                coupled += 1;
                order.push(Ok(p));
            }
        }
        let linking = link(ledger, &receipts, &advices, config);
        // The payments each receipt becomes; a split link's payments come at its first receipt.
        let mut of_receipt: Vec<Vec<Payment>> = vec![Vec::new(); receipts.len()];
        for l in &linking.links {
            of_receipt[l.receipts[0]] = merge(l, &receipts, &advices);
        }
        for pending in &linking.receipts {
            if pending.hold == Hold::Expired {
                let mut p = receipts[pending.index].clone();
                p.warnings.push(match (pending.reason, pending.candidates.is_empty()) {
                    (_, true) => "no remittance advice linked within the hold".to_string(),
                    (Unlinked::Ambiguous, false) => format!(
                        "no remittance advice linked within the hold: it fits advices {} equally well",
                        ids(&advices, &pending.candidates)
                    ),
                    (Unlinked::NoCandidate, false) => format!(
                        "no remittance advice linked within the hold; it could be advice {}",
                        ids(&advices, &pending.candidates)
                    ),
                });
                super::mark_alone(&mut p, config);
                of_receipt[pending.index] = vec![p];
            }
        }
        let payments = order
            .into_iter()
            .flat_map(|o| match o {
                Ok(p) => vec![p],
                Err(r) => std::mem::take(&mut of_receipt[r]),
            })
            .collect();
        Batch {
            payments,
            receipts,
            advices,
            linking,
            coupled,
        }
    }

    /// Counts for a one-line summary.
    pub fn counts(&self) -> Counts {
        let l = &self.linking;
        let count = |v: &[super::Pending], hold: Hold| v.iter().filter(|p| p.hold == hold).count();
        Counts {
            links: l.links.len(),
            groups: l
                .links
                .iter()
                .filter(|k| k.receipts.len() > 1 || k.advices.len() > 1)
                .count(),
            with_fee: l.links.iter().filter(|k| k.fee > Decimal::ZERO).count(),
            receipts: self.receipts.len(),
            advices: self.advices.len(),
            receipts_waiting: count(&l.receipts, Hold::Waiting),
            receipts_alone: count(&l.receipts, Hold::Expired),
            advices_waiting: count(&l.advices, Hold::Waiting),
            advices_to_review: count(&l.advices, Hold::Expired),
            ambiguous: l
                .receipts
                .iter()
                .chain(&l.advices)
                .filter(|p| p.reason == Unlinked::Ambiguous)
                .count(),
        }
    }

    /// One record per link and per item left unlinked, for the links file (JSON Lines).
    pub fn records(&self) -> Vec<Record> {
        let mut out = Vec::new();
        for l in &self.linking.links {
            out.push(Record {
                kind: "link",
                receipts: l
                    .receipts
                    .iter()
                    .map(|&r| self.receipts[r].payment_id.clone())
                    .collect(),
                advices: l
                    .advices
                    .iter()
                    .map(|&a| self.advices[a].payment_id.clone())
                    .collect(),
                amount: l.receipts.iter().map(|&r| self.receipts[r].amount).sum(),
                fee: Some(l.fee),
                evidence: l.evidence.clone(),
                reason: None,
                hold: None,
                candidates: vec![],
            });
        }
        for p in &self.linking.receipts {
            let r = &self.receipts[p.index];
            out.push(Record {
                kind: "receipt",
                receipts: vec![r.payment_id.clone()],
                advices: vec![],
                amount: r.amount,
                fee: None,
                evidence: vec![],
                reason: Some(p.reason),
                hold: Some(p.hold),
                candidates: p
                    .candidates
                    .iter()
                    .map(|&a| self.advices[a].payment_id.clone())
                    .collect(),
            });
        }
        for p in &self.linking.advices {
            let a = &self.advices[p.index];
            out.push(Record {
                kind: "advice",
                receipts: vec![],
                advices: vec![a.payment_id.clone()],
                amount: a.amount,
                fee: None,
                evidence: vec![],
                reason: Some(p.reason),
                hold: Some(p.hold),
                candidates: p
                    .candidates
                    .iter()
                    .map(|&r| self.receipts[r].payment_id.clone())
                    .collect(),
            });
        }
        out
    }
}

fn ids(items: &[Payment], idx: &[usize]) -> String {
    idx.iter()
        .map(|&i| items[i].payment_id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a batch run of linking went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub links: usize,
    /// Links of several advices or several receipts.
    pub groups: usize,
    /// Links where the receipt is short of the advice by a bank fee or the customer's credit
    /// memos.
    pub with_fee: usize,
    pub receipts: usize,
    pub advices: usize,
    /// Receipts still within the hold: not matched in this run.
    pub receipts_waiting: usize,
    /// Receipts whose hold is over: matched on their own.
    pub receipts_alone: usize,
    pub advices_waiting: usize,
    /// Advices whose hold is over with no money linked: for a person.
    pub advices_to_review: usize,
    /// Unlinked items with two or more equally good counterparts.
    pub ambiguous: usize,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} receipts, {} advices: {} links ({} of several items, {} less a bank fee); receipts {} waiting, {} matched alone; advices {} waiting, {} to review; {} ambiguous",
            self.receipts,
            self.advices,
            self.links,
            self.groups,
            self.with_fee,
            self.receipts_waiting,
            self.receipts_alone,
            self.advices_waiting,
            self.advices_to_review,
            self.ambiguous
        )
    }
}

/// One line of the links file: a link, or a receipt or advice left unlinked.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    /// `link`, `receipt` or `advice`.
    pub kind: &'static str,
    pub receipts: Vec<String>,
    pub advices: Vec<String>,
    /// The money: the receipts' total for a link, the item's amount otherwise.
    pub amount: Decimal,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee: Option<Decimal>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Unlinked>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
    /// For an unlinked item, the ids of what it could be linked to, best first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
}
