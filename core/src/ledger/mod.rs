//! The open-items ledger in memory, with the indexes the matcher looks things up in.
//!
//! Invoices and customers are held in vectors and addressed by dense `u32` indexes; every index
//! maps keys to those. Lookups never scan the ledger: references go through hash indexes on the
//! normalised number, its core and the core's single-deletion variants; payers through bank
//! accounts, exact normalised names and name tokens. The ledger follows every change (new
//! invoices, applied cash), so the indexes are append-only and closed items are filtered at
//! lookup.

pub(crate) mod index;
pub(crate) mod open;

use crate::domain::{Customer, Invoice};
use crate::text::names::{name_tokens, normalize_name};
use crate::text::references::RefKey;
use index::{MultiMap, deletion_variants, key_hash};
use open::OpenIndex;
use rayon::prelude::*;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

/// Dense index of an invoice in the ledger.
pub type InvoiceIdx = u32;
/// Dense index of a customer in the ledger.
pub type CustomerIdx = u32;

/// A fault in the ledger data itself (not in a payment).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LedgerError {
    #[error("invoice {invoice_id}: customer {customer_id} is not in the ledger")]
    UnknownCustomer {
        invoice_id: String,
        customer_id: String,
    },
    #[error("invoice {0} is not in the ledger")]
    UnknownInvoice(String),
    #[error("invoice {invoice_id}: {message}")]
    InvalidInvoice { invoice_id: String, message: String },
    #[error(
        "invoice {invoice_id}: relieving {relieved} would take its open amount {open} past zero"
    )]
    OverApplied {
        invoice_id: String,
        open: Decimal,
        relieved: Decimal,
    },
}

/// The payment that closed an item, as the engine or the service applied it: what a review of a
/// possible duplicate payment shows the analyst.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    pub payment_id: String,
    /// The payment's date, when it had one.
    pub paid_on: Option<chrono::NaiveDate>,
}

/// Which field of an invoice a reference matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefField {
    InvoiceNumber,
    PoNumber,
}

/// Precomputed comparable forms of an invoice's numbers, so the hot path does not renormalise.
#[derive(Clone, Debug, Default)]
pub(crate) struct InvoiceKeys {
    pub(crate) number: RefKey,
    pub(crate) po: RefKey,
    /// What the reference indexes are keyed on; taken once the invoice is indexed (nothing
    /// reads it afterwards, and it is a tenth of a big ledger's memory).
    hashes: KeyHashes,
}

/// The reference-index keys of one invoice.
#[derive(Clone, Debug, Default)]
struct KeyHashes {
    /// Hashes of the normalised number and PO.
    exact: Vec<u64>,
    /// Hashes of their cores and tails.
    cores: Vec<u64>,
    /// Hashes of the single-deletion variants of the invoice number's discriminating part (the
    /// tail where the scheme has one, else the core). PO numbers get none: payers copy them from
    /// their own systems, and a mangled one is still found in the payer's own open items.
    variants: Vec<u64>,
}

impl InvoiceKeys {
    fn of(inv: &Invoice) -> InvoiceKeys {
        let number = RefKey::new(&inv.number);
        let po = inv
            .po_number
            .as_deref()
            .map(RefKey::new)
            .unwrap_or_default();
        let mut exact = Vec::with_capacity(2);
        let mut cores = Vec::with_capacity(4);
        for k in [&number, &po] {
            if k.norm.is_empty() {
                continue;
            }
            exact.push(key_hash(&k.norm));
            cores.extend(
                [&k.core, &k.tail]
                    .into_iter()
                    .filter(|c| !c.is_empty())
                    .map(|c| key_hash(c)),
            );
        }
        let discriminating = if number.tail.is_empty() {
            &number.core
        } else {
            &number.tail
        };
        let variants = deletion_variants(discriminating).collect();
        InvoiceKeys {
            number,
            po,
            hashes: KeyHashes {
                exact,
                cores,
                variants,
            },
        }
    }

    fn take_hashes(&mut self) -> KeyHashes {
        std::mem::take(&mut self.hashes)
    }
}

/// How a payer relates to a customer, for the customer's index.
#[derive(Clone, Debug, Default)]
pub(crate) struct CustomerKeys {
    pub(crate) name_norm: String,
    pub(crate) children: Vec<CustomerIdx>,
    pub(crate) parent: Option<CustomerIdx>,
}

/// What the matcher's scans of a payer's open items read of each one, held beside
/// `open_by_customer` in the same order: a scan of a key account's thousands of items then
/// reads one contiguous array instead of as many scattered invoices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct OpenFacts {
    pub(crate) open_amount: Decimal,
    pub(crate) invoice_date: chrono::NaiveDate,
    pub(crate) due_date: chrono::NaiveDate,
    pub(crate) currency: crate::domain::Currency,
    /// The invoice number's core read as a number, when it is one.
    pub(crate) number: Option<u64>,
}

impl OpenFacts {
    fn of(inv: &Invoice, keys: &InvoiceKeys) -> OpenFacts {
        OpenFacts {
            open_amount: inv.open_amount,
            invoice_date: inv.invoice_date,
            due_date: inv.due_date,
            currency: inv.currency,
            number: keys.number.core.parse::<u64>().ok(),
        }
    }
}

/// `open_pos` of an item that is not open.
const NOT_OPEN: u32 = u32::MAX;

/// Distinct keys a name token may index before it is too common to help (`SUPPLY`, `FOODS`).
const MAX_TOKEN_POSTINGS: usize = 2_000;

/// The ledger: customers, open items and their indexes.
#[derive(Default, Debug)]
pub struct Ledger {
    customers: Vec<Customer>,
    customer_keys: Vec<CustomerKeys>,
    customer_by_id: FxHashMap<String, CustomerIdx>,
    invoices: Vec<Invoice>,
    invoice_keys: Vec<InvoiceKeys>,
    invoice_by_id: FxHashMap<String, InvoiceIdx>,
    /// The customer of each invoice, so the hot path does not hash customer ids.
    invoice_customer: Vec<CustomerIdx>,
    /// The open items of each customer. Kept in step by `upsert_invoice` and `relieve`.
    open_by_customer: Vec<Vec<InvoiceIdx>>,
    /// The facts of each of those items, position for position.
    open_facts: Vec<Vec<OpenFacts>>,
    /// Where each invoice stands in its customer's `open_by_customer` ([`NOT_OPEN`] when
    /// closed), so that closing an item of a customer with tens of thousands costs no scan.
    open_pos: Vec<u32>,
    /// The open items of each customer by amount, due date and number, for the matcher.
    open_index: Vec<OpenIndex>,
    /// Exact normalised invoice and PO numbers.
    by_norm: MultiMap,
    /// Cores of invoice and PO numbers.
    by_core: MultiMap,
    /// Single-deletion variants of the cores.
    by_core_variant: MultiMap,
    by_account: MultiMap,
    by_name: MultiMap,
    by_name_token: MultiMap,
    token_counts: FxHashMap<u64, usize>,
    /// The payment that closed each item this ledger saw closed by an application (an item that
    /// arrived closed has none: the AR system closed it).
    settlements: FxHashMap<InvoiceIdx, Settlement>,
}

/// Digits of a bank account, and the account part of `routing:account`.
fn account_keys(account: &str) -> Vec<String> {
    let digits = |s: &str| -> String { s.chars().filter(|c| c.is_ascii_alphanumeric()).collect() };
    let mut keys = vec![digits(account)];
    if let Some((_, acct)) = account.split_once(':') {
        keys.push(digits(acct));
    }
    keys.retain(|k| k.len() >= 4);
    keys.dedup();
    keys
}

impl Ledger {
    /// Builds a ledger from customers and invoices. Invoices naming an unknown customer, or
    /// repeating an id, are returned as errors and left out; the rest load.
    pub fn new(customers: Vec<Customer>, invoices: Vec<Invoice>) -> (Ledger, Vec<LedgerError>) {
        let mut ledger = Ledger::default();
        let mut errors = Vec::new();
        for c in customers {
            ledger.upsert_customer(c);
        }
        ledger.link_parents();
        let n = invoices.len();
        // Every per-invoice vector sized once: grown by doubling, a million-item load spent
        // much of its time copying them and faulting in fresh pages.
        ledger.invoices.reserve(n);
        ledger.invoice_keys.reserve(n);
        ledger.invoice_customer.reserve(n);
        ledger.open_pos.reserve(n);
        ledger.invoice_by_id.reserve(n);
        // Normalising numbers and hashing their variants is most of the work of a load: done in
        // parallel, then inserted in order.
        let keys: Vec<InvoiceKeys> = invoices.par_iter().map(InvoiceKeys::of).collect();
        // The reference hashes of each accepted invoice, in the order it was accepted; the three
        // reference indexes are then built from them side by side. Each index receives exactly
        // the insertions, in exactly the order, that inserting invoice by invoice gives it.
        let mut accepted: Vec<(InvoiceIdx, KeyHashes)> = Vec::with_capacity(n);
        for (inv, mut k) in invoices.into_iter().zip(keys) {
            let hashes = k.take_hashes();
            match ledger.insert_invoice(inv, k, false) {
                Ok(idx) => accepted.push((idx, hashes)),
                Err(e) => errors.push(e),
            }
        }
        let build = |part: fn(&KeyHashes) -> &[u64], heads: usize| {
            let postings = accepted.iter().map(|(_, h)| part(h).len()).sum();
            let mut m = MultiMap::with_capacities(heads, postings);
            for (idx, h) in &accepted {
                for &k in part(h) {
                    m.insert(k, *idx);
                }
            }
            m
        };
        let (by_core_variant, (by_norm, by_core)) = rayon::join(
            || build(|h| &h.variants, n * 3),
            || rayon::join(|| build(|h| &h.exact, n * 2), || build(|h| &h.cores, n * 3)),
        );
        ledger.by_core_variant = by_core_variant;
        ledger.by_norm = by_norm;
        ledger.by_core = by_core;
        drop(accepted);
        // The open-item indexes of a bulk load are built once it is in, a customer per task.
        let (invoices, keys) = (&ledger.invoices, &ledger.invoice_keys);
        let open_index: Vec<OpenIndex> = ledger
            .open_by_customer
            .par_iter()
            .map(|list| {
                let mut ix = OpenIndex::default();
                for &i in list {
                    ix.insert(i, &invoices[i as usize], &keys[i as usize]);
                }
                ix
            })
            .collect();
        ledger.open_index = open_index;
        (ledger, errors)
    }

    /// Adds a customer or replaces one with the same id. Call [`Ledger::link_parents`] after a
    /// batch of customers that may name each other as parents.
    pub fn upsert_customer(&mut self, c: Customer) -> CustomerIdx {
        let name_norm = normalize_name(&c.name);
        let idx = match self.customer_by_id.get(&c.id) {
            Some(&i) => i,
            None => {
                let i = self.customers.len() as CustomerIdx;
                self.customer_by_id.insert(c.id.clone(), i);
                self.customers.push(c.clone());
                self.customer_keys.push(CustomerKeys::default());
                self.open_by_customer.push(Vec::new());
                self.open_facts.push(Vec::new());
                self.open_index.push(OpenIndex::default());
                i
            }
        };
        for acct in &c.bank_accounts {
            for k in account_keys(acct) {
                self.by_account.insert(key_hash(&k), idx);
            }
        }
        self.by_name.insert(key_hash(&name_norm), idx);
        for t in name_tokens(&c.name) {
            if t.len() < 3 {
                continue;
            }
            let h = key_hash(&t);
            let n = self.token_counts.entry(h).or_insert(0);
            *n += 1;
            if *n <= MAX_TOKEN_POSTINGS {
                self.by_name_token.insert(h, idx);
            }
        }
        self.customer_keys[idx as usize].name_norm = name_norm;
        self.customers[idx as usize] = c;
        idx
    }

    /// Resolves every customer's `parent_id` into parent and children links.
    pub fn link_parents(&mut self) {
        for k in &mut self.customer_keys {
            k.children.clear();
            k.parent = None;
        }
        for (i, c) in self.customers.iter().enumerate() {
            if let Some(p) = c
                .parent_id
                .as_deref()
                .and_then(|p| self.customer_by_id.get(p))
            {
                self.customer_keys[i].parent = Some(*p);
                self.customer_keys[*p as usize]
                    .children
                    .push(i as CustomerIdx);
            }
        }
    }

    /// Adds an invoice or replaces the one with the same id (its amounts and fields).
    pub fn upsert_invoice(&mut self, inv: Invoice) -> Result<InvoiceIdx, LedgerError> {
        let keys = InvoiceKeys::of(&inv);
        self.insert_invoice(inv, keys, true)
    }

    /// `index`: keep the open-item indexes in step (a bulk load builds them afterwards).
    fn insert_invoice(
        &mut self,
        inv: Invoice,
        mut keys: InvoiceKeys,
        index: bool,
    ) -> Result<InvoiceIdx, LedgerError> {
        let Some(&cust) = self.customer_by_id.get(&inv.customer_id) else {
            return Err(LedgerError::UnknownCustomer {
                invoice_id: inv.id,
                customer_id: inv.customer_id,
            });
        };
        if inv.open_amount.is_sign_negative() != inv.amount.is_sign_negative()
            && !inv.open_amount.is_zero()
            || inv.open_amount.abs() > inv.amount.abs()
        {
            return Err(LedgerError::InvalidInvoice {
                invoice_id: inv.id,
                message: format!(
                    "open amount {} must have the sign of amount {} and not exceed it",
                    inv.open_amount, inv.amount
                ),
            });
        }
        let idx = match self.invoice_by_id.get(&inv.id) {
            Some(&i) => {
                let oc = self.invoice_customer[i as usize];
                if index && self.open_pos[i as usize] != NOT_OPEN {
                    self.open_index[oc as usize].remove(
                        i,
                        &self.invoices[i as usize],
                        &self.invoice_keys[i as usize],
                    );
                }
                if oc != cust {
                    self.set_open(oc, i, false);
                }
                i
            }
            None => {
                let i = self.invoices.len() as InvoiceIdx;
                self.invoice_by_id.insert(inv.id.clone(), i);
                self.invoice_keys.push(InvoiceKeys::default());
                self.invoice_customer.push(cust);
                self.open_pos.push(NOT_OPEN);
                i
            }
        };
        self.invoice_customer[idx as usize] = cust;
        let open = !inv.open_amount.is_zero();
        self.set_open(cust, idx, open);
        if open {
            // Reopened (a reversal, a corrected amount): whoever closed it did not settle it.
            self.settlements.remove(&idx);
        }
        // A bulk load has taken the hashes already and indexes them afterwards (`Ledger::new`).
        let hashes = keys.take_hashes();
        for &h in &hashes.exact {
            self.by_norm.insert(h, idx);
        }
        for &h in &hashes.cores {
            self.by_core.insert(h, idx);
        }
        for &h in &hashes.variants {
            self.by_core_variant.insert(h, idx);
        }
        if (idx as usize) < self.invoices.len() {
            self.invoices[idx as usize] = inv;
        } else {
            self.invoices.push(inv);
        }
        self.invoice_keys[idx as usize] = keys;
        self.refresh_facts(idx);
        if index && open {
            self.open_index[cust as usize].insert(
                idx,
                &self.invoices[idx as usize],
                &self.invoice_keys[idx as usize],
            );
        }
        Ok(idx)
    }

    /// Reduces an invoice's open amount by `relieved` (cash + discount + deduction). Refuses,
    /// changing nothing, when that would take the open amount past zero.
    pub fn relieve(&mut self, idx: InvoiceIdx, relieved: Decimal) -> Result<(), LedgerError> {
        let inv = &self.invoices[idx as usize];
        let after = inv.open_amount - relieved;
        let crosses = if inv.amount.is_sign_negative() {
            after.is_sign_positive() && !after.is_zero()
        } else {
            after.is_sign_negative() && !after.is_zero()
        };
        if crosses {
            return Err(LedgerError::OverApplied {
                invoice_id: inv.id.clone(),
                open: inv.open_amount,
                relieved,
            });
        }
        let c = self.invoice_customer[idx as usize] as usize;
        let (i, keys) = (idx as usize, &self.invoice_keys[idx as usize]);
        let was_open = self.open_pos[i] != NOT_OPEN;
        if was_open {
            self.open_index[c].remove(idx, &self.invoices[i], keys);
        }
        self.invoices[i].open_amount = after;
        if after.is_zero() {
            self.set_open(c as CustomerIdx, idx, false);
        } else if was_open {
            self.open_index[c].insert(idx, &self.invoices[i], keys);
        }
        self.refresh_facts(idx);
        Ok(())
    }

    /// Brings an open item's [`OpenFacts`] in step with the invoice as it now stands.
    fn refresh_facts(&mut self, idx: InvoiceIdx) {
        let at = self.open_pos[idx as usize];
        if at == NOT_OPEN {
            return;
        }
        let c = self.invoice_customer[idx as usize] as usize;
        let facts = OpenFacts::of(
            &self.invoices[idx as usize],
            &self.invoice_keys[idx as usize],
        );
        if let Some(f) = self.open_facts[c].get_mut(at as usize) {
            *f = facts;
        }
    }

    /// Records the payment that closed an item. Ignored while the item is still open.
    pub fn record_settlement(&mut self, idx: InvoiceIdx, settlement: Settlement) {
        if self
            .invoices
            .get(idx as usize)
            .is_some_and(|inv| inv.open_amount.is_zero())
        {
            self.settlements.insert(idx, settlement);
        }
    }

    /// The payment that closed an item, when an application in this ledger (or one restored
    /// into it) closed it.
    pub(crate) fn settlement(&self, idx: InvoiceIdx) -> Option<&Settlement> {
        self.settlements.get(&idx)
    }

    /// Keeps `open_by_customer` in step with an item's open amount. Removal swaps the last item
    /// into the gap, so the list's order is the order of opening and closing, as it always was.
    fn set_open(&mut self, c: CustomerIdx, idx: InvoiceIdx, open: bool) {
        let list = &mut self.open_by_customer[c as usize];
        let facts = &mut self.open_facts[c as usize];
        let at = self.open_pos[idx as usize];
        match (open, at == NOT_OPEN) {
            (true, true) => {
                self.open_pos[idx as usize] = list.len() as u32;
                list.push(idx);
                // Filled in by `refresh_facts` once the invoice is stored.
                facts.push(OpenFacts {
                    open_amount: Decimal::ZERO,
                    invoice_date: chrono::NaiveDate::MIN,
                    due_date: chrono::NaiveDate::MIN,
                    currency: crate::domain::Currency::USD,
                    number: None,
                });
            }
            (false, false) => {
                list.swap_remove(at as usize);
                facts.swap_remove(at as usize);
                if let Some(&moved) = list.get(at as usize) {
                    self.open_pos[moved as usize] = at;
                }
                self.open_pos[idx as usize] = NOT_OPEN;
            }
            _ => {}
        }
    }

    pub fn customers(&self) -> &[Customer] {
        &self.customers
    }

    pub fn invoices(&self) -> &[Invoice] {
        &self.invoices
    }

    pub fn customer(&self, idx: CustomerIdx) -> &Customer {
        &self.customers[idx as usize]
    }

    pub fn invoice(&self, idx: InvoiceIdx) -> &Invoice {
        &self.invoices[idx as usize]
    }

    pub fn invoice_idx(&self, id: &str) -> Option<InvoiceIdx> {
        self.invoice_by_id.get(id).copied()
    }

    pub fn customer_idx(&self, id: &str) -> Option<CustomerIdx> {
        self.customer_by_id.get(id).copied()
    }

    /// The customer an invoice belongs to.
    pub fn invoice_customer(&self, idx: InvoiceIdx) -> CustomerIdx {
        self.invoice_customer[idx as usize]
    }

    /// The items of a customer with something still open, in no particular order.
    pub fn customer_open_invoices(&self, c: CustomerIdx) -> &[InvoiceIdx] {
        &self.open_by_customer[c as usize]
    }

    /// The [`OpenFacts`] of [`Ledger::customer_open_invoices`], position for position.
    pub(crate) fn customer_open_facts(&self, c: CustomerIdx) -> &[OpenFacts] {
        &self.open_facts[c as usize]
    }

    /// A customer's open items by amount, due date and number.
    pub(crate) fn open_items(&self, c: CustomerIdx) -> &OpenIndex {
        &self.open_index[c as usize]
    }

    pub(crate) fn invoice_keys(&self, idx: InvoiceIdx) -> &InvoiceKeys {
        &self.invoice_keys[idx as usize]
    }

    pub(crate) fn customer_keys(&self, idx: CustomerIdx) -> &CustomerKeys {
        &self.customer_keys[idx as usize]
    }

    /// Invoices whose number or PO has this normalised form exactly.
    pub(crate) fn lookup_norm(&self, norm: &str) -> impl Iterator<Item = InvoiceIdx> + '_ {
        self.by_norm.get(key_hash(norm))
    }

    /// Invoices whose number or PO core is this core, or within one edit of it.
    pub(crate) fn lookup_core(&self, core: &str, fuzzy: bool, out: &mut Vec<InvoiceIdx>) {
        self.lookup_core_where(core, fuzzy, |_| true, out);
    }

    /// [`Ledger::lookup_core`] keeping only the invoices `keep` accepts: with numbers in one
    /// sequence the one-edit neighbourhood of a core holds hundreds of invoices, and a search
    /// for one customer's need not gather and sort them all.
    pub(crate) fn lookup_core_where(
        &self,
        core: &str,
        fuzzy: bool,
        keep: impl Fn(InvoiceIdx) -> bool,
        out: &mut Vec<InvoiceIdx>,
    ) {
        out.extend(self.by_core.get(key_hash(core)).filter(|&i| keep(i)));
        if fuzzy && core.len() >= 4 {
            // The query with one more character than the key: its variants are keys.
            for h in deletion_variants(core) {
                out.extend(self.by_core.get(h).filter(|&i| keep(i)));
                // Substitutions and transpositions: both sides lose one character.
                out.extend(self.by_core_variant.get(h).filter(|&i| keep(i)));
            }
            // The query with one character fewer: it is a variant of the key.
            out.extend(
                self.by_core_variant
                    .get(key_hash(core))
                    .filter(|&i| keep(i)),
            );
        }
        out.sort_unstable();
        out.dedup();
    }

    /// Customers with this bank account.
    pub(crate) fn lookup_account(&self, account: &str) -> Vec<CustomerIdx> {
        let mut out: Vec<CustomerIdx> = account_keys(account)
            .iter()
            .flat_map(|k| self.by_account.get(key_hash(k)))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Customers whose normalised name is exactly this.
    pub(crate) fn lookup_name(&self, name_norm: &str) -> impl Iterator<Item = CustomerIdx> + '_ {
        self.by_name.get(key_hash(name_norm))
    }

    /// Customers sharing a distinctive name token.
    pub(crate) fn lookup_name_token(&self, token: &str) -> impl Iterator<Item = CustomerIdx> + '_ {
        let h = key_hash(token);
        let common = self.token_counts.get(&h).copied().unwrap_or(0) > MAX_TOKEN_POSTINGS;
        self.by_name_token.get(h).filter(move |_| !common)
    }

    /// Approximate heap bytes held by the indexes, for the memory figures.
    pub fn index_bytes(&self) -> usize {
        [
            &self.by_norm,
            &self.by_core,
            &self.by_core_variant,
            &self.by_account,
            &self.by_name,
            &self.by_name_token,
        ]
        .iter()
        .map(|m| m.heap_bytes())
        .sum::<usize>()
            + self
                .open_index
                .iter()
                .map(OpenIndex::heap_bytes)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Terms};
    use chrono::NaiveDate;
    use rust_decimal_macros::dec;

    pub(crate) fn customer(id: &str, name: &str, parent: Option<&str>, acct: &str) -> Customer {
        Customer {
            id: id.into(),
            name: name.into(),
            parent_id: parent.map(str::to_string),
            bank_accounts: vec![acct.into()],
        }
    }

    pub(crate) fn invoice(
        id: &str,
        cust: &str,
        number: &str,
        po: Option<&str>,
        amount: Decimal,
    ) -> Invoice {
        let d = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default();
        Invoice {
            id: id.into(),
            customer_id: cust.into(),
            number: number.into(),
            po_number: po.map(str::to_string),
            invoice_date: d,
            due_date: d + chrono::Days::new(30),
            currency: Currency::USD,
            amount,
            open_amount: amount,
            terms: Terms::default(),
        }
    }

    fn sample() -> Ledger {
        let (l, errs) = Ledger::new(
            vec![
                customer(
                    "C1",
                    "Northwind Industrial Supply Inc",
                    None,
                    "021000021:123456789",
                ),
                customer("C2", "Northwind West LLC", Some("C1"), "99887766"),
            ],
            vec![
                invoice("I1", "C1", "INV-0012345", Some("PO-4500001"), dec!(100.00)),
                invoice("I2", "C2", "INV-0012346", None, dec!(250.00)),
                invoice("I3", "C9", "INV-0012347", None, dec!(1.00)),
            ],
        );
        assert_eq!(errs.len(), 1, "unknown customer is reported");
        l
    }

    #[test]
    fn references_found_exact_core_and_fuzzy() {
        let l = sample();
        assert_eq!(l.lookup_norm("INV0012345").collect::<Vec<_>>(), [0]);
        let mut out = Vec::new();
        l.lookup_core("12345", false, &mut out);
        assert_eq!(out, [0]);
        out.clear();
        l.lookup_core("12354", true, &mut out); // transposed
        assert!(out.contains(&0));
        out.clear();
        l.lookup_core("4500001", false, &mut out); // PO number
        assert_eq!(out, [0]);
    }

    #[test]
    fn payers_found_by_account_name_and_parent() {
        let l = sample();
        assert_eq!(l.lookup_account("123456789"), [0]);
        assert_eq!(l.lookup_account("021000021:123456789"), [0]);
        assert_eq!(
            l.lookup_name(&normalize_name("NORTHWIND IND SUPPLY"))
                .collect::<Vec<_>>(),
            [0]
        );
        assert_eq!(l.customer_keys(0).children, [1]);
        assert!(l.lookup_name_token("NORTHWIND").count() == 2);
    }

    /// What a customer's open-item index must hold, worked out from the ledger by brute force:
    /// (open amount, index) sorted, (due date, index) sorted, and (net of discount, index).
    fn expected_open(l: &Ledger, c: CustomerIdx) -> OpenState {
        let open: Vec<InvoiceIdx> = (0..l.invoices().len() as InvoiceIdx)
            .filter(|&i| l.invoice_customer(i) == c && !l.invoice(i).open_amount.is_zero())
            .collect();
        let mut by_open: Vec<(Decimal, InvoiceIdx)> = open
            .iter()
            .map(|&i| (l.invoice(i).open_amount, i))
            .collect();
        by_open.sort();
        let mut by_due: Vec<InvoiceIdx> = open.clone();
        by_due.sort_by_key(|&i| (l.invoice(i).due_date, i));
        let mut by_net: Vec<(Decimal, InvoiceIdx)> = Vec::new();
        for &i in &open {
            let inv = l.invoice(i);
            if inv.open_amount > Decimal::ZERO {
                if let Some(gaps) = crate::terms::discount_gaps(inv) {
                    for g in gaps {
                        by_net.push((inv.open_amount - g, i));
                    }
                }
            }
        }
        by_net.sort();
        by_net.dedup();
        OpenState {
            by_open,
            by_due,
            by_net,
        }
    }

    #[derive(Debug, PartialEq)]
    struct OpenState {
        by_open: Vec<(Decimal, InvoiceIdx)>,
        by_due: Vec<InvoiceIdx>,
        by_net: Vec<(Decimal, InvoiceIdx)>,
    }

    /// The same, read through the index.
    fn indexed_open(l: &Ledger, c: CustomerIdx) -> OpenState {
        let ix = l.open_items(c);
        let [by_open, by_net] = ix.entries();
        OpenState {
            by_open,
            by_due: ix.by_due_date().collect(),
            by_net,
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Invoice `id`, customer, amount in cents, open share in percent, due-day offset,
        /// number, 2/10 terms.
        Upsert(u8, u8, i64, u8, u8, u16, bool),
        /// Invoice `id`, share of its open amount in percent.
        Relieve(u8, u8),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (
                0u8..24,
                0u8..3,
                prop_oneof![1i64..5_000, -2_000i64..-1, Just(10_000i64)],
                prop_oneof![Just(100u8), Just(0u8), 1u8..100],
                0u8..40,
                0u16..400,
                any::<bool>()
            )
                .prop_map(|(i, c, a, o, d, n, t)| Op::Upsert(i, c, a, o, d, n, t)),
            (0u8..24, prop_oneof![Just(100u8), 1u8..100]).prop_map(|(i, s)| Op::Relieve(i, s)),
        ]
    }

    proptest::proptest! {
        /// The amount, due-date and number indexes answer exactly what a scan of the ledger
        /// would, through new invoices, replaced ones (other amounts, customers, dates, terms),
        /// partial reliefs and closures.
        #[test]
        fn open_item_indexes_stay_consistent_with_the_ledger(
            ops in proptest::collection::vec(op(), 1..80),
        ) {
            let (mut l, errs) = Ledger::new(
                (0..3)
                    .map(|c| customer(&format!("C{c}"), &format!("Customer {c} Inc"), None, &format!("1000{c}0000")))
                    .collect(),
                vec![],
            );
            proptest::prop_assert!(errs.is_empty());
            for op in ops {
                match op {
                    Op::Upsert(i, c, cents, open_pct, due, number, discount) => {
                        let amount = Decimal::new(cents, 2);
                        let mut inv = invoice(
                            &format!("I{i}"),
                            &format!("C{c}"),
                            &format!("INV-{number:05}"),
                            (number % 3 == 0).then_some("PO-77"),
                            amount,
                        );
                        inv.open_amount = crate::terms::cents(
                            amount * Decimal::from(open_pct) / Decimal::ONE_HUNDRED,
                        );
                        inv.due_date = inv.invoice_date + chrono::Days::new(due as u64);
                        if discount {
                            inv.terms = Terms::parse("2/10 NET 30").unwrap_or_default();
                        }
                        proptest::prop_assert!(l.upsert_invoice(inv).is_ok());
                    }
                    Op::Relieve(i, share) => {
                        if let Some(idx) = l.invoice_idx(&format!("I{i}")) {
                            let open = l.invoice(idx).open_amount;
                            let part = crate::terms::cents(
                                open * Decimal::from(share) / Decimal::ONE_HUNDRED,
                            );
                            proptest::prop_assert!(l.relieve(idx, part).is_ok());
                        }
                    }
                }
                for c in 0..3 {
                    proptest::prop_assert_eq!(indexed_open(&l, c), expected_open(&l, c));
                    let facts: Vec<OpenFacts> = l
                        .customer_open_invoices(c)
                        .iter()
                        .map(|&i| OpenFacts::of(l.invoice(i), l.invoice_keys(i)))
                        .collect();
                    proptest::prop_assert_eq!(l.customer_open_facts(c), facts.as_slice());
                    let ix = l.open_items(c);
                    let mut listed = l.customer_open_invoices(c).to_vec();
                    listed.sort_unstable();
                    let mut indexed: Vec<InvoiceIdx> = ix
                        .by_open_amount(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
                        .collect();
                    indexed.sort_unstable();
                    proptest::prop_assert_eq!(&listed, &indexed);
                    for &(open, _) in &expected_open(&l, c).by_open {
                        let n = listed.iter().filter(|&&i| l.invoice(i).open_amount == open).count();
                        proptest::prop_assert_eq!(ix.count_with_amount(open), n);
                    }
                    let [_, nets] = ix.entries();
                    for (net, i) in nets {
                        proptest::prop_assert!(ix.by_net_amount(net).any(|j| j == i));
                    }
                    // Every open item is found by its number's and its PO's prefixes.
                    for &i in &listed {
                        for norm in [&l.invoice_keys(i).number.norm, &l.invoice_keys(i).po.norm] {
                            if norm.len() > 4 {
                                proptest::prop_assert!(ix.by_number_prefix(&norm[..norm.len() - 2]).any(|j| j == i));
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn relieve_never_crosses_zero() {
        let mut l = sample();
        assert!(l.relieve(0, dec!(60)).is_ok());
        let err = l.relieve(0, dec!(40.01)).unwrap_err();
        assert!(matches!(err, LedgerError::OverApplied { .. }));
        assert_eq!(l.invoice(0).open_amount, dec!(40.00));
        assert!(l.relieve(0, dec!(40)).is_ok());
        assert!(l.invoice(0).open_amount.is_zero());
    }
}
