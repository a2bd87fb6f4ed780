use super::*;
use crate::domain::Payment;
use crate::domain::{Currency, Customer, Invoice, Payer, RemittanceLine, Terms};
use crate::ledger::{InvoiceIdx, Ledger};
use crate::matching::amounts::{AmountFit, fit};
use crate::matching::habits::ReferenceHabits;
use crate::matching::habits::Truncation;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn invoice(id: &str, cust: &str, number: &str, amount: Decimal) -> Invoice {
    let d = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default();
    Invoice {
        id: id.into(),
        customer_id: cust.into(),
        number: number.into(),
        po_number: None,
        invoice_date: d,
        due_date: d + chrono::Days::new(30),
        currency: Currency::USD,
        amount,
        open_amount: amount,
        terms: Terms::default(),
    }
}

/// Customers C1 and C2, each paying from an account of its own.
fn c1_and_c2() -> Vec<Customer> {
    let customer = |id: &str, acct: &str| Customer {
        id: id.into(),
        name: format!("{id} Trading Company"),
        parent_id: None,
        bank_accounts: vec![acct.into()],
    };
    vec![
        customer("C1", "111122223333"),
        customer("C2", "444455556666"),
    ]
}

/// C1 and C2 each hold open items numbered `INV-0067...`.
fn ledger(second_amount: Decimal) -> Ledger {
    let (l, errs) = Ledger::new(
        c1_and_c2(),
        vec![
            invoice("I1", "C1", "INV-0067505", dec!(100.00)),
            invoice("I2", "C1", "INV-0067512", second_amount),
            invoice("I3", "C1", "INV-0068001", dec!(250.00)),
            invoice("I4", "C2", "INV-0067520", dec!(250.00)),
        ],
    );
    assert!(errs.is_empty(), "{errs:?}");
    l
}

fn short_reference_payment(account: &str) -> Payment {
    Payment {
        payment_id: "P1".into(),
        format: "csv".into(),
        direction: Default::default(),
        payment_date: NaiveDate::from_ymd_opt(2026, 10, 20),
        amount: dec!(250.00),
        currency: Currency::USD,
        payer: Payer {
            name: None,
            account: Some(account.into()),
        },
        lines: vec![RemittanceLine {
            reference: Some("INV-0067".into()),
            amount_paid: Some(dec!(250.00)),
            ..Default::default()
        }],
        free_text: vec![],
        warnings: vec![],
        returned: None,
    }
}

fn habit_of_c1() -> ReferenceHabits {
    ReferenceHabits {
        truncates: [(
            "C1".to_string(),
            Truncation {
                seen: 9,
                shortest: 7,
            },
        )]
        .into(),
    }
}

fn referenced(pc: &PaymentCandidates) -> Vec<(InvoiceIdx, f32)> {
    pc.candidates
        .iter()
        .filter(|c| c.source == Source::Lines)
        .flat_map(|c| c.allocations.iter())
        .filter_map(|a| a.reference.map(|r| (a.invoice, r.1)))
        .collect()
}

/// A payer with 20,000 open items: amounts spread over $50-$5,000 (with repeats), a fifth
/// on 2/10 terms, due dates over a year, a few billed after the payment; and three items
/// due before all others, which a consolidated payment of $600.06 pays.
fn big_payer() -> Ledger {
    let customer = Customer {
        id: "C1".into(),
        name: "Key Account Stores Inc".into(),
        parent_id: None,
        bank_accounts: vec!["111122223333".into()],
    };
    let start = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap_or_default();
    let mut invoices: Vec<Invoice> = (0..20_000u32)
        .map(|k| {
            // A multiplicative hash spreads the amounts; every 97th repeats an earlier one.
            let h = (k as u64).wrapping_mul(2_654_435_761) % 495_001;
            let cents = if k % 97 == 0 {
                150_000
            } else {
                5_000 + h as i64
            };
            let mut inv = invoice(
                &format!("I{k}"),
                "C1",
                &format!("INV-{:07}", 100_000 + k),
                Decimal::new(cents, 2),
            );
            inv.invoice_date = start + chrono::Days::new((k % 360) as u64);
            inv.due_date = inv.invoice_date + chrono::Days::new(30);
            if k % 5 == 0 {
                inv.terms = Terms::parse("2/10 NET 30").unwrap_or_default();
            }
            inv
        })
        .collect();
    for (k, cents) in [(0, 10_001), (1, 20_002), (2, 30_003)] {
        let mut inv = invoice(
            &format!("OLD{k}"),
            "C1",
            &format!("INV-{k:07}"),
            Decimal::ZERO,
        );
        inv.amount = Decimal::new(cents, 2);
        inv.open_amount = inv.amount;
        inv.invoice_date = start - chrono::Days::new(60);
        inv.due_date = start - chrono::Days::new(30);
        invoices.push(inv);
    }
    let (l, errs) = Ledger::new(vec![customer], invoices);
    assert!(errs.is_empty(), "{errs:?}");
    l
}

fn no_detail_payment(amount: Decimal, date: NaiveDate) -> Payment {
    Payment {
        amount,
        payment_date: Some(date),
        lines: vec![],
        ..short_reference_payment("111122223333")
    }
}

/// The single-amount rule by a scan of every open item: the answer the indexes must give.
fn single_amounts_by_scan(l: &Ledger, p: &Payment) -> Vec<InvoiceIdx> {
    let mut found: Vec<(u8, Decimal, InvoiceIdx)> = Vec::new();
    for &i in l.customer_open_invoices(0) {
        let inv = l.invoice(i);
        if inv.open_amount <= Decimal::ZERO || !payable(l, p, i) {
            continue;
        }
        let f = fit(inv, p.amount, None, p.payment_date);
        let rank = match f.kind {
            AmountFit::Exact => 0,
            AmountFit::Discount => 1,
            AmountFit::BankFee | AmountFit::LateDiscount => 2,
            AmountFit::Overpaid if f.excess <= inv.open_amount / Decimal::TEN => 3,
            AmountFit::Partial if p.amount * Decimal::TWO >= inv.open_amount => 4,
            _ => continue,
        };
        found.push((rank, (inv.open_amount - p.amount).abs(), i));
    }
    found.sort();
    let exact = found.iter().filter(|f| f.0 == 0).count();
    let mut out: Vec<InvoiceIdx> = found
        .iter()
        .take(
            CandidateLimits::default()
                .single_amount_candidates
                .max(exact.min(10)),
        )
        .map(|f| f.2)
        .collect();
    out.sort_unstable();
    out
}

#[test]
fn a_payer_with_twenty_thousand_open_items_gets_the_single_amounts_a_scan_would_give() {
    let l = big_payer();
    let date = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default();
    let idx = |id: &str| l.invoice_idx(id).unwrap_or(InvoiceIdx::MAX);
    let mut amounts: Vec<Decimal> = Vec::new();
    for k in [7u32, 1_234, 9_999, 19_995, 15_000] {
        let inv = l.invoice(idx(&format!("I{k}")));
        amounts.push(inv.open_amount); // paid in full
        amounts.push(inv.open_amount - dec!(15.00)); // a wire fee, or a partial payment
        amounts.push(inv.open_amount + dec!(3.10)); // overpaid
        amounts.push(inv.open_amount * dec!(0.6)); // part paid
        if let Some([g, _]) = crate::terms::discount_gaps(inv) {
            amounts.push(inv.open_amount - g); // the terms discount
        }
    }
    amounts.push(dec!(1500.00)); // about 200 items have this amount
    amounts.push(dec!(1.00)); // nothing explains it
    for amount in amounts {
        let p = no_detail_payment(amount, date);
        let pc = generate(&l, &p, &ReferenceHabits::default(), &Default::default());
        let mut got: Vec<InvoiceIdx> = pc
            .candidates
            .iter()
            .filter(|c| c.source == Source::SingleAmount)
            .map(|c| c.allocations[0].invoice)
            .collect();
        got.sort_unstable();
        assert_eq!(got, single_amounts_by_scan(&l, &p), "payment of {amount}");
    }
    // An amount only one item has open is that item, paid in full, ranked first.
    let k = idx("I1234");
    let p = no_detail_payment(l.invoice(k).open_amount, date);
    let pc = generate(&l, &p, &ReferenceHabits::default(), &Default::default());
    let first = pc.candidates.first().expect("candidates");
    assert_eq!(first.allocations[0].invoice, k);
    assert_eq!(first.allocations[0].fit.kind, AmountFit::Exact);
}

#[test]
fn a_payer_with_twenty_thousand_open_items_gets_the_subset_of_its_oldest_items() {
    let l = big_payer();
    let date = NaiveDate::from_ymd_opt(2026, 2, 20).unwrap_or_default();
    let p = no_detail_payment(dec!(600.06), date);
    let pc = generate(&l, &p, &ReferenceHabits::default(), &Default::default());
    let idx = |id: &str| l.invoice_idx(id).unwrap_or(InvoiceIdx::MAX);
    let want = vec![
        (idx("OLD0"), dec!(100.01)),
        (idx("OLD1"), dec!(200.02)),
        (idx("OLD2"), dec!(300.03)),
    ];
    assert_eq!(pc.subset_pool, CandidateLimits::default().subset_pool);
    let subsets: Vec<Vec<(InvoiceIdx, Decimal)>> = pc
        .candidates
        .iter()
        .filter(|c| c.source == Source::SubsetSum)
        .map(|c| c.key())
        .collect();
    assert!(subsets.contains(&want), "{subsets:?}");
}

#[test]
fn a_payment_run_of_eleven_items_less_one_held_back_is_the_first_set_suggested() {
    let l = big_payer();
    let date = NaiveDate::from_ymd_opt(2026, 2, 20).unwrap_or_default();
    let oldest: Vec<InvoiceIdx> = l.open_items(0).by_due_date().take(12).collect();
    // The run pays the eleven oldest but the fifth, which the payer disputes.
    let paid: Vec<InvoiceIdx> = oldest[..11]
        .iter()
        .enumerate()
        .filter(|&(k, _)| k != 4)
        .map(|(_, &i)| i)
        .collect();
    let amount: Decimal = paid.iter().map(|&i| l.invoice(i).open_amount).sum();
    let p = no_detail_payment(amount, date);
    let pc = generate(&l, &p, &ReferenceHabits::default(), &Default::default());
    let first = pc
        .candidates
        .iter()
        .find(|c| c.source == Source::SubsetSum)
        .expect("a set that adds up");
    let mut want: Vec<(InvoiceIdx, Decimal)> = paid
        .iter()
        .map(|&i| (i, l.invoice(i).open_amount))
        .collect();
    want.sort_unstable();
    assert_eq!(first.key(), want);
    assert_eq!(due_gaps(&l, &p, &first.allocations), Some((0, 1)));
}

#[test]
fn a_short_reference_names_nothing_without_the_payers_habit() {
    let l = ledger(dec!(250.00));
    let p = short_reference_payment("111122223333");
    let pc = generate(&l, &p, &ReferenceHabits::default(), &Default::default());
    assert!(pc.hits[0].is_empty());
    assert!(referenced(&pc).is_empty());
}

#[test]
fn with_the_habit_a_short_reference_reads_as_the_start_of_the_payers_own_numbers() {
    let l = ledger(dec!(250.00));
    let p = short_reference_payment("111122223333");
    let pc = generate(&l, &p, &habit_of_c1(), &Default::default());
    // Both of C1's INV-0067... items, not C1's INV-0068001 nor C2's INV-0067520.
    let mut hit: Vec<InvoiceIdx> = pc.hits[0].iter().map(|h| h.invoice).collect();
    hit.sort_unstable();
    let idx = |id: &str| l.invoice_idx(id).unwrap_or(InvoiceIdx::MAX);
    assert_eq!(hit, vec![idx("I1"), idx("I2")]);
    // The line's amount chooses: the first candidate of the lines pays I2, which the
    // reference gives 7 of 10 characters of.
    let first = pc
        .candidates
        .iter()
        .find(|c| c.source == Source::Lines)
        .expect("a candidate from the line");
    assert_eq!(first.allocations[0].invoice, idx("I2"));
    assert_eq!(first.allocations[0].fit.kind, AmountFit::Exact);
    assert!((first.allocations[0].reference.map_or(0.0, |r| r.1) - 0.7).abs() < 1e-6);
}

#[test]
fn the_habit_belongs_to_the_customer_not_to_whoever_pays() {
    // C2, without the habit, pays with the same short reference: it is read as the start
    // of the numbers of C1, who has the habit (a sister company paying C1's invoice), and
    // never of C2's own INV-0067520.
    let l = ledger(dec!(250.00));
    let p = short_reference_payment("444455556666");
    let pc = generate(&l, &p, &habit_of_c1(), &Default::default());
    let mut hit: Vec<InvoiceIdx> = pc.hits[0].iter().map(|h| h.invoice).collect();
    hit.sort_unstable();
    let idx = |id: &str| l.invoice_idx(id).unwrap_or(InvoiceIdx::MAX);
    assert_eq!(hit, vec![idx("I1"), idx("I2")]);
}

/// C1 owes `2026-0081221`; the transposed `2026-0082121` is C2's number (`paid`: C2 paid it).
fn transposed_digits(paid: bool) -> (Ledger, Payment) {
    let mut theirs = invoice("I2", "C2", "2026-0082121", dec!(900.00));
    if paid {
        theirs.open_amount = Decimal::ZERO;
    }
    let (l, errs) = Ledger::new(
        c1_and_c2(),
        vec![invoice("I1", "C1", "2026-0081221", dec!(181.68)), theirs],
    );
    assert!(errs.is_empty(), "{errs:?}");
    let mut p = short_reference_payment("111122223333");
    p.amount = dec!(181.68);
    p.lines = vec![RemittanceLine {
        reference: Some("2026-0082121".into()),
        amount_paid: Some(dec!(181.68)),
        ..Default::default()
    }];
    (l, p)
}

#[test]
fn a_slip_that_lands_on_another_customers_number_still_finds_the_payers_own() {
    for paid in [false, true] {
        let (l, p) = transposed_digits(paid);
        let pc = generate(&l, &p, &ReferenceHabits::default(), &Default::default());
        let own = l.invoice_idx("I1").unwrap_or(InvoiceIdx::MAX);
        let read = referenced(&pc);
        assert!(
            read.iter().any(|&(i, sim)| i == own && sim < 1.0),
            "paid={paid}: {read:?}"
        );
        // The line's amount is the payer's item's: the first candidate of the lines pays it.
        let first = pc
            .candidates
            .iter()
            .find(|c| c.source == Source::Lines)
            .expect("a candidate from the line");
        assert_eq!(first.allocations[0].invoice, own, "paid={paid}");
    }
}

#[test]
fn without_a_known_payer_an_exact_number_is_not_read_as_a_slip() {
    let (l, mut p) = transposed_digits(false);
    p.payer.account = None;
    let pc = generate(&l, &p, &ReferenceHabits::default(), &Default::default());
    let own = l.invoice_idx("I1").unwrap_or(InvoiceIdx::MAX);
    assert!(
        !pc.hits[0].iter().any(|h| h.invoice == own),
        "{:?}",
        pc.hits[0]
    );
}
