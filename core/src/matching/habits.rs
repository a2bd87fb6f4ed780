//! How each customer quotes invoice numbers, learnt from labelled history and carried in the
//! model.
//!
//! Some accounts-payable systems cut references short: `INV-0067505` arrives as `INV-0067`. No
//! similarity measure can say which invoice that meant (it is three edits from every number of
//! its thousand), and reading every reference as a possible prefix of every number would fill
//! the candidates with chance readings. So the habit is learnt per customer: when a customer's
//! labelled remittance lines show, again and again, a reference that is the start of the number
//! of the invoice the line paid, training records it in the model ([`ReferenceHabits::learn`]),
//! and the candidate generator then also reads that customer's short references as the start of
//! its *own open items'* numbers. How far to trust such a reading is the model's to learn from the
//! same history, and the engine's guards still hold: two open items the reading fits equally well
//! go to an analyst. A model trained before the habit appeared knows nothing of it, which is why
//! retraining wins back what the change of habit cost.

use crate::domain::{Invoice, Label, Payment};
use crate::text::references::normalize;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Labelled lines that must show a truncation before a customer's habit is believed.
pub(crate) const MIN_TRUNCATIONS: u32 = 5;

/// Shortest normalised reference ever read as a prefix: shorter ones fit too many numbers.
pub(crate) const MIN_PREFIX_CHARS: usize = 5;

/// A customer's habit of quoting the start of a document number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncation {
    /// Labelled remittance lines whose reference was the start of the invoice (or PO) number
    /// of the invoice the payment paid.
    pub seen: u32,
    /// The shortest of those references, normalised, in characters: shorter references of
    /// this customer are not read as prefixes.
    pub shortest: u32,
}

/// The reference habits of the customers of a history. Ordered by customer id, so a model
/// trained twice on the same history serialises byte for byte the same.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceHabits {
    /// Customers (by id) who cut references short.
    pub truncates: BTreeMap<String, Truncation>,
}

impl ReferenceHabits {
    /// No habit learnt: the candidate generator reads references as it always has.
    pub fn is_empty(&self) -> bool {
        self.truncates.is_empty()
    }

    /// The truncation habit of a customer, if it has one.
    pub fn truncation(&self, customer_id: &str) -> Option<&Truncation> {
        self.truncates.get(customer_id)
    }

    /// Learns the habits shown by `payments` and their `labels`, reading invoice numbers from
    /// `invoices` (the history's ledger). A line counts when its reference, normalised, is at
    /// least [`MIN_PREFIX_CHARS`] long, names none of the payment's true invoices in full, and
    /// is the start of one of their numbers (or PO numbers); a customer with at least
    /// [`MIN_TRUNCATIONS`] such lines has the habit.
    pub fn learn(invoices: &[Invoice], payments: &[Payment], labels: &[Label]) -> ReferenceHabits {
        let by_id: HashMap<&str, &Invoice> = invoices.iter().map(|i| (i.id.as_str(), i)).collect();
        let mut truth: HashMap<&str, Vec<&Invoice>> = HashMap::new();
        for l in labels {
            if let Some(inv) = by_id.get(l.invoice_id.as_str()) {
                truth.entry(l.payment_id.as_str()).or_default().push(inv);
            }
        }
        let mut seen: BTreeMap<String, Truncation> = BTreeMap::new();
        for p in payments {
            let Some(paid) = truth.get(p.payment_id.as_str()) else {
                continue;
            };
            // (customer, normalised number, normalised PO) of each invoice the payment paid.
            let numbers: Vec<(&str, String, String)> = paid
                .iter()
                .map(|i| {
                    (
                        i.customer_id.as_str(),
                        normalize(&i.number),
                        i.po_number.as_deref().map(normalize).unwrap_or_default(),
                    )
                })
                .collect();
            for r in p.lines.iter().filter_map(|l| l.reference.as_deref()) {
                let r = normalize(r);
                if r.len() < MIN_PREFIX_CHARS || numbers.iter().any(|n| n.1 == r || n.2 == r) {
                    continue;
                }
                let cut = |n: &str| n.len() > r.len() && n.starts_with(&r);
                if let Some((customer, _, _)) = numbers.iter().find(|n| cut(&n.1) || cut(&n.2)) {
                    let t = seen.entry(customer.to_string()).or_insert(Truncation {
                        seen: 0,
                        shortest: u32::MAX,
                    });
                    t.seen += 1;
                    t.shortest = t.shortest.min(r.len() as u32);
                }
            }
        }
        seen.retain(|_, t| t.seen >= MIN_TRUNCATIONS);
        ReferenceHabits { truncates: seen }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, RemittanceLine, Terms};
    use chrono::NaiveDate;
    use rust_decimal::Decimal;

    fn invoice(id: &str, customer: &str, number: &str) -> Invoice {
        let d = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        Invoice {
            id: id.into(),
            customer_id: customer.into(),
            number: number.into(),
            po_number: None,
            invoice_date: d,
            due_date: d,
            currency: Currency::USD,
            amount: Decimal::ONE_HUNDRED,
            open_amount: Decimal::ONE_HUNDRED,
            terms: Terms::default(),
        }
    }

    fn payment(id: &str, reference: &str) -> (Payment, Label) {
        let p = Payment {
            payment_id: id.into(),
            format: "csv".into(),
            direction: Default::default(),
            payment_date: None,
            amount: Decimal::ONE_HUNDRED,
            currency: Currency::USD,
            payer: Default::default(),
            lines: vec![RemittanceLine {
                reference: Some(reference.into()),
                amount_paid: Some(Decimal::ONE_HUNDRED),
                ..Default::default()
            }],
            free_text: vec![],
            warnings: vec![],
            returned: None,
        };
        let inv = format!("I{}", &id[1..]);
        let l = Label {
            payment_id: id.into(),
            invoice_id: inv,
            applied_amount: Decimal::ONE_HUNDRED,
        };
        (p, l)
    }

    #[test]
    fn a_customer_quoting_the_start_of_its_numbers_has_the_habit_and_others_do_not() {
        let mut invoices = Vec::new();
        let (mut payments, mut labels) = (Vec::new(), Vec::new());
        for k in 0..6 {
            // C1 cuts `INV-00675k5` to `INV-0067`; C2 quotes its numbers in full; C3 cuts to
            // four characters, too short to read as a prefix.
            invoices.push(invoice(&format!("I1{k}"), "C1", &format!("INV-00675{k}5")));
            let (p, l) = payment(&format!("P1{k}"), "INV-0067");
            payments.push(p);
            labels.push(l);
            invoices.push(invoice(&format!("I2{k}"), "C2", &format!("INV-00680{k}5")));
            let (p, l) = payment(&format!("P2{k}"), &format!("inv 00680{k}5"));
            payments.push(p);
            labels.push(l);
            invoices.push(invoice(&format!("I3{k}"), "C3", &format!("INV-00690{k}5")));
            let (p, l) = payment(&format!("P3{k}"), "INV-");
            payments.push(p);
            labels.push(l);
        }
        let h = ReferenceHabits::learn(&invoices, &payments, &labels);
        assert_eq!(
            h.truncation("C1"),
            Some(&Truncation {
                seen: 6,
                shortest: 7
            })
        );
        assert_eq!(h.truncation("C2"), None);
        assert_eq!(h.truncation("C3"), None);
        // Four lines are not yet a habit.
        let few = ReferenceHabits::learn(&invoices, &payments[..12], &labels[..12]);
        assert_eq!(few.truncation("C1"), None);
    }
}
