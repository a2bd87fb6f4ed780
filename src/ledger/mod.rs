//! The open-items ledger in memory, with the indexes the matcher looks things up in.
//!
//! Invoices and customers are held in vectors and addressed by dense `u32` indexes; every index
//! maps keys to those. Lookups never scan the ledger: references go through hash indexes on the
//! normalised number, its core and the core's single-deletion variants; payers through bank
//! accounts, exact normalised names and name tokens. The ledger follows every change (new
//! invoices, applied cash), so the indexes are append-only and closed items are filtered at
//! lookup.

pub(crate) mod index;

use crate::domain::{Customer, Invoice};
use crate::matching::names::{name_tokens, normalize_name};
use crate::matching::references::RefKey;
use index::{MultiMap, deletion_variants, key_hash};
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
            exact,
            cores,
            variants,
        }
    }
}

/// How a payer relates to a customer, for the customer's index.
#[derive(Clone, Debug, Default)]
pub(crate) struct CustomerKeys {
    pub(crate) name_norm: String,
    pub(crate) children: Vec<CustomerIdx>,
    pub(crate) parent: Option<CustomerIdx>,
}

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
    by_customer: Vec<Vec<InvoiceIdx>>,
    /// The open items of each customer: what the matcher scans. Kept in step by
    /// `upsert_invoice` and `relieve`.
    open_by_customer: Vec<Vec<InvoiceIdx>>,
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
        let mut ledger = Ledger {
            by_norm: MultiMap::with_capacity(invoices.len() * 2),
            by_core: MultiMap::with_capacity(invoices.len() * 3),
            by_core_variant: MultiMap::with_capacity(invoices.len() * 3),
            ..Ledger::default()
        };
        let mut errors = Vec::new();
        for c in customers {
            ledger.upsert_customer(c);
        }
        ledger.link_parents();
        ledger.invoices.reserve(invoices.len());
        // Normalising numbers and hashing their variants is most of the work of a load: done in
        // parallel, then inserted in order.
        let keys: Vec<InvoiceKeys> = invoices.par_iter().map(InvoiceKeys::of).collect();
        for (inv, k) in invoices.into_iter().zip(keys) {
            if let Err(e) = ledger.insert_invoice(inv, k) {
                errors.push(e);
            }
        }
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
                self.by_customer.push(Vec::new());
                self.open_by_customer.push(Vec::new());
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
        self.insert_invoice(inv, keys)
    }

    fn insert_invoice(
        &mut self,
        inv: Invoice,
        keys: InvoiceKeys,
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
                if oc != cust {
                    self.by_customer[oc as usize].retain(|&x| x != i);
                    self.open_by_customer[oc as usize].retain(|&x| x != i);
                    self.by_customer[cust as usize].push(i);
                }
                i
            }
            None => {
                let i = self.invoices.len() as InvoiceIdx;
                self.invoice_by_id.insert(inv.id.clone(), i);
                self.invoice_keys.push(InvoiceKeys::default());
                self.invoice_customer.push(cust);
                self.by_customer[cust as usize].push(i);
                i
            }
        };
        self.invoice_customer[idx as usize] = cust;
        self.set_open(cust, idx, !inv.open_amount.is_zero());
        for &h in &keys.exact {
            self.by_norm.insert(h, idx);
        }
        for &h in &keys.cores {
            self.by_core.insert(h, idx);
        }
        for &h in &keys.variants {
            self.by_core_variant.insert(h, idx);
        }
        if (idx as usize) < self.invoices.len() {
            self.invoices[idx as usize] = inv;
        } else {
            self.invoices.push(inv);
        }
        self.invoice_keys[idx as usize] = keys;
        Ok(idx)
    }

    /// Reduces an invoice's open amount by `relieved` (cash + discount + deduction). Refuses,
    /// changing nothing, when that would take the open amount past zero.
    pub fn relieve(&mut self, idx: InvoiceIdx, relieved: Decimal) -> Result<(), LedgerError> {
        let inv = &mut self.invoices[idx as usize];
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
        inv.open_amount = after;
        if after.is_zero() {
            let c = self.invoice_customer[idx as usize];
            self.set_open(c, idx, false);
        }
        Ok(())
    }

    /// Keeps `open_by_customer` in step with an item's open amount.
    fn set_open(&mut self, c: CustomerIdx, idx: InvoiceIdx, open: bool) {
        let list = &mut self.open_by_customer[c as usize];
        let at = list.iter().position(|&x| x == idx);
        match (open, at) {
            (true, None) => list.push(idx),
            (false, Some(p)) => {
                list.swap_remove(p);
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

    /// Every item of a customer, open or closed.
    pub fn customer_invoices(&self, c: CustomerIdx) -> &[InvoiceIdx] {
        &self.by_customer[c as usize]
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
        out.extend(self.by_core.get(key_hash(core)));
        if !fuzzy || core.len() < 4 {
            out.sort_unstable();
            out.dedup();
            return;
        }
        // The query with one more character than the key: its variants are keys.
        for h in deletion_variants(core) {
            out.extend(self.by_core.get(h));
            // Substitutions and transpositions: both sides lose one character.
            out.extend(self.by_core_variant.get(h));
        }
        // The query with one character fewer: it is a variant of the key.
        out.extend(self.by_core_variant.get(key_hash(core)));
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
        .sum()
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
