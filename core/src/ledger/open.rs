//! One customer's open items, ordered the ways the matcher asks for them.
//!
//! The matcher asks three questions of a payer's open items: which of them can an amount pay
//! (exactly, with the terms discount, within a fee or a partial-payment window), which are the
//! oldest, and which numbers does a short reference start. Answering them by scanning costs as
//! much as the payer is large, and the largest customers of a real ledger hold tens of thousands
//! of open items, so each question has an ordered index here, kept in step with the ledger by
//! every upsert, relief and closure: a lookup costs the logarithm of the customer's size plus
//! what it returns.

use super::{InvoiceIdx, InvoiceKeys};
use crate::domain::Invoice;
use crate::terms::discount_gaps;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;
use std::ops::Bound;

/// The first bytes of a normalised reference, zero-padded: normalised references are ASCII
/// letters and digits, so the padded arrays sort as the strings do, and every number starting
/// with a prefix lies between the prefix padded with zeros and padded with `0xFF`.
type NumberHead = [u8; NUMBER_HEAD];
const NUMBER_HEAD: usize = 16;

fn head(norm: &str, pad: u8) -> NumberHead {
    let mut h = [pad; NUMBER_HEAD];
    for (d, s) in h.iter_mut().zip(norm.as_bytes()) {
        *d = *s;
    }
    h
}

/// The open items of one customer (every item whose open amount is not zero).
#[derive(Default, Debug)]
pub(crate) struct OpenIndex {
    /// By open amount, then ledger index.
    by_open: BTreeSet<(Decimal, InvoiceIdx)>,
    /// By what the item asks for once the terms discount is taken, computed on the invoice
    /// amount and on the open amount (payers do both); only items whose terms give one.
    by_net: BTreeSet<(Decimal, InvoiceIdx)>,
    /// By due date, then ledger index: the oldest first.
    by_due: BTreeSet<(NaiveDate, InvoiceIdx)>,
    /// By the head of the normalised invoice number and PO number.
    by_number: BTreeSet<(NumberHead, InvoiceIdx)>,
    /// How many open items have each open amount.
    amount_counts: FxHashMap<Decimal, u32>,
}

impl OpenIndex {
    /// Adds an open item, as it stands now.
    pub(crate) fn insert(&mut self, idx: InvoiceIdx, inv: &Invoice, keys: &InvoiceKeys) {
        self.by_open.insert((inv.open_amount, idx));
        *self.amount_counts.entry(inv.open_amount).or_insert(0) += 1;
        for net in nets(inv) {
            self.by_net.insert((net, idx));
        }
        self.by_due.insert((inv.due_date, idx));
        for k in [&keys.number, &keys.po] {
            if !k.norm.is_empty() {
                self.by_number.insert((head(&k.norm, 0), idx));
            }
        }
    }

    /// Removes an item that was inserted with exactly these values.
    pub(crate) fn remove(&mut self, idx: InvoiceIdx, inv: &Invoice, keys: &InvoiceKeys) {
        if self.by_open.remove(&(inv.open_amount, idx)) {
            if let Some(n) = self.amount_counts.get_mut(&inv.open_amount) {
                *n -= 1;
                if *n == 0 {
                    self.amount_counts.remove(&inv.open_amount);
                }
            }
        }
        for net in nets(inv) {
            self.by_net.remove(&(net, idx));
        }
        self.by_due.remove(&(inv.due_date, idx));
        for k in [&keys.number, &keys.po] {
            if !k.norm.is_empty() {
                self.by_number.remove(&(head(&k.norm, 0), idx));
            }
        }
    }

    /// Items whose open amount is within the bounds, smallest first (reversible).
    pub(crate) fn by_open_amount(
        &self,
        low: Bound<Decimal>,
        high: Bound<Decimal>,
    ) -> impl DoubleEndedIterator<Item = InvoiceIdx> + '_ {
        let low = match low {
            Bound::Included(a) => Bound::Included((a, InvoiceIdx::MIN)),
            Bound::Excluded(a) => Bound::Excluded((a, InvoiceIdx::MAX)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let high = match high {
            Bound::Included(a) => Bound::Included((a, InvoiceIdx::MAX)),
            Bound::Excluded(a) => Bound::Excluded((a, InvoiceIdx::MIN)),
            Bound::Unbounded => Bound::Unbounded,
        };
        // An empty or inverted range is asked for when a window closes before it opens, and
        // `BTreeSet::range` refuses one.
        let empty = match (&low, &high) {
            (Bound::Included(l), Bound::Included(h)) => l > h,
            (Bound::Included(l) | Bound::Excluded(l), Bound::Included(h) | Bound::Excluded(h)) => {
                l >= h
            }
            _ => false,
        };
        let range = if empty {
            None
        } else {
            Some(self.by_open.range((low, high)))
        };
        range.into_iter().flatten().map(|&(_, i)| i)
    }

    /// Items that ask for exactly `amount` once their terms discount is taken, lowest index
    /// first.
    pub(crate) fn by_net_amount(&self, amount: Decimal) -> impl Iterator<Item = InvoiceIdx> + '_ {
        self.by_net
            .range((amount, InvoiceIdx::MIN)..=(amount, InvoiceIdx::MAX))
            .map(|&(_, i)| i)
    }

    /// How many open items have exactly this open amount.
    pub(crate) fn count_with_amount(&self, amount: Decimal) -> usize {
        self.amount_counts.get(&amount).copied().unwrap_or(0) as usize
    }

    /// Every open item, oldest due date first (ties by ledger index).
    pub(crate) fn by_due_date(&self) -> impl Iterator<Item = InvoiceIdx> + '_ {
        self.by_due.iter().map(|&(_, i)| i)
    }

    /// Items from `from` on in due-date order (ties by ledger index) with their due dates:
    /// counting what a payment run leaves open inside it reads only that stretch.
    pub(crate) fn due_from(
        &self,
        from: (NaiveDate, InvoiceIdx),
    ) -> impl Iterator<Item = (NaiveDate, InvoiceIdx)> + '_ {
        self.by_due.range(from..).copied()
    }

    /// Items whose normalised invoice or PO number may start with `prefix` (certainly, when the
    /// prefix is shorter than the indexed head); an item can come twice, once per number.
    pub(crate) fn by_number_prefix(&self, prefix: &str) -> impl Iterator<Item = InvoiceIdx> + '_ {
        let range = (!prefix.is_empty()).then(|| {
            self.by_number
                .range((head(prefix, 0), InvoiceIdx::MIN)..=(head(prefix, 0xFF), InvoiceIdx::MAX))
        });
        range.into_iter().flatten().map(|&(_, i)| i)
    }

    /// Every (open amount, item) and (net of discount, item) pair held, for tests that compare
    /// them with the ledger.
    #[cfg(test)]
    pub(crate) fn entries(&self) -> [Vec<(Decimal, InvoiceIdx)>; 2] {
        [
            self.by_open.iter().copied().collect(),
            self.by_net.iter().copied().collect(),
        ]
    }

    /// Approximate heap bytes, for the memory figures: B-tree nodes hold up to eleven keys, and
    /// are on average about two-thirds full.
    pub(crate) fn heap_bytes(&self) -> usize {
        let tree = |n: usize, key: usize| n * key * 3 / 2;
        tree(
            self.by_open.len(),
            std::mem::size_of::<(Decimal, InvoiceIdx)>(),
        ) + tree(
            self.by_net.len(),
            std::mem::size_of::<(Decimal, InvoiceIdx)>(),
        ) + tree(
            self.by_due.len(),
            std::mem::size_of::<(NaiveDate, InvoiceIdx)>(),
        ) + tree(
            self.by_number.len(),
            std::mem::size_of::<(NumberHead, InvoiceIdx)>(),
        ) + self.amount_counts.capacity() * (std::mem::size_of::<(Decimal, u32)>() + 1)
    }
}

/// What an open item asks for once its terms discount is taken: the open amount less the
/// discount computed on the invoice amount, and less the one computed on the open amount.
fn nets(inv: &Invoice) -> impl Iterator<Item = Decimal> {
    let gaps = if inv.open_amount > Decimal::ZERO {
        discount_gaps(inv)
    } else {
        None
    };
    let open = inv.open_amount;
    gaps.into_iter().flat_map(move |[a, b]| {
        let second = (b != a).then_some(open - b);
        std::iter::once(open - a).chain(second)
    })
}
