use super::*;
use crate::domain::{Currency, Customer, Direction, Invoice, Payer, RemittanceLine, Terms};
use rust_decimal_macros::dec;

fn day(d: u32) -> NaiveDate {
    // December 2026: the 7th is a Monday.
    NaiveDate::from_ymd_opt(2026, 12, d).unwrap_or_default()
}

fn invoice(id: &str, cust: &str, number: &str, amount: Decimal) -> Invoice {
    Invoice {
        id: id.into(),
        customer_id: cust.into(),
        number: number.into(),
        po_number: None,
        invoice_date: day(1),
        due_date: day(30),
        currency: Currency::USD,
        amount,
        open_amount: amount,
        terms: Terms::default(),
    }
}

/// Northwind (account 111:1111111) and its subsidiary Northwind West; Bluegrass (222:2222222).
fn ledger() -> Ledger {
    let c = |id: &str, name: &str, parent: Option<&str>, acct: &str| Customer {
        id: id.into(),
        name: name.into(),
        parent_id: parent.map(str::to_string),
        bank_accounts: vec![acct.into()],
    };
    Ledger::new(
        vec![
            c("NW", "Northwind Industrial Supply Inc", None, "111:1111111"),
            c("NWW", "Northwind West LLC", Some("NW"), "333:3333333"),
            c("BG", "Bluegrass Foods LLC", None, "222:2222222"),
        ],
        vec![
            invoice("I1", "NW", "INV-100201", dec!(1000.00)),
            invoice("I2", "NW", "INV-100202", dec!(500.00)),
            invoice("I3", "NW", "INV-100203", dec!(700.00)),
            invoice("I4", "BG", "INV-200301", dec!(1000.00)),
            invoice("I5", "NWW", "INV-300401", dec!(1000.00)),
        ],
    )
    .0
}

fn payment(id: &str, amount: Decimal, date: u32) -> Payment {
    Payment {
        payment_id: id.into(),
        format: "test".into(),
        direction: Direction::Credit,
        payment_date: Some(day(date)),
        amount,
        currency: Currency::USD,
        payer: Payer::default(),
        lines: vec![],
        free_text: vec![],
        warnings: vec![],
        returned: None,
    }
}

/// A bank credit from an account, with nothing else.
fn receipt(id: &str, amount: Decimal, date: u32, account: &str) -> Payment {
    let mut p = payment(id, amount, date);
    p.payer.account = Some(account.into());
    p
}

/// An advice naming its payer and its invoices with what each pays.
fn advice(id: &str, date: u32, name: &str, lines: &[(&str, Decimal)]) -> Payment {
    let mut p = payment(id, lines.iter().map(|l| l.1).sum(), date);
    p.payer.name = Some(name.into());
    p.lines = lines
        .iter()
        .map(|(r, a)| RemittanceLine {
            reference: Some((*r).into()),
            amount_paid: Some(*a),
            ..Default::default()
        })
        .collect();
    p
}

const NW: &str = "111:1111111";
const BG: &str = "222:2222222";

#[test]
fn exact_amount_and_common_payer_link_and_merge_into_one_payment() {
    let l = ledger();
    let receipts = [receipt("R1", dec!(1500.00), 8, NW)];
    let advices = [advice(
        "A1",
        7,
        "NORTHWIND IND SUPPLY",
        &[("INV-100201", dec!(1000.00)), ("INV-100202", dec!(500.00))],
    )];
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert_eq!(k.links.len(), 1, "{k:?}");
    assert_eq!(
        (
            k.links[0].receipts.as_slice(),
            k.links[0].advices.as_slice()
        ),
        (&[0][..], &[0][..])
    );
    assert_eq!(k.links[0].fee, Decimal::ZERO);
    assert!(k.receipts.is_empty() && k.advices.is_empty());
    let merged = merge(&k.links[0], &receipts, &advices);
    assert_eq!(merged.len(), 1);
    let p = &merged[0];
    // The receipt's money and identity, the advice's detail.
    assert_eq!((p.payment_id.as_str(), p.amount), ("R1", dec!(1500.00)));
    assert_eq!(p.payer.account.as_deref(), Some(NW));
    assert_eq!(p.payer.name.as_deref(), Some("NORTHWIND IND SUPPLY"));
    assert_eq!(p.lines.len(), 2);
    assert!(
        p.warnings.iter().any(|w| w.contains("linked to advice A1")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn a_bank_fee_within_the_limit_links_and_beyond_it_does_not() {
    let l = ledger();
    let advices = [advice(
        "A1",
        8,
        "Bluegrass Foods",
        &[("INV-200301", dec!(1000.00))],
    )];
    let k = link(
        &l,
        &[receipt("R1", dec!(985.00), 8, BG)],
        &advices,
        &LinkConfig::default(),
    );
    assert_eq!(k.links.len(), 1);
    assert_eq!(k.links[0].fee, dec!(15.00));
    assert!(k.links[0].evidence.iter().any(|e| e.contains("bank fee")));
    let k = link(
        &l,
        &[receipt("R1", dec!(900.00), 8, BG)],
        &advices,
        &LinkConfig::default(),
    );
    assert!(k.links.is_empty());
    assert_eq!(k.receipts[0].reason, Unlinked::NoCandidate);
    // A receipt larger than its advice is not a fee: it is read as an overpayment, when
    // nothing else fits.
    let k = link(
        &l,
        &[receipt("R1", dec!(1010.00), 8, BG)],
        &advices,
        &LinkConfig::default(),
    );
    assert_eq!(k.links.len(), 1, "{k:?}");
    assert_eq!(k.links[0].fee, dec!(-10.00));
    assert!(!k.links[0].evidence.iter().any(|e| e.contains("bank fee")));
}

#[test]
fn several_advices_make_up_one_receipt_when_they_add_up_exactly() {
    let l = ledger();
    let receipts = [receipt("R1", dec!(1500.00), 9, NW)];
    let advices = [
        advice(
            "A1",
            8,
            "Northwind Industrial",
            &[("INV-100201", dec!(1000.00))],
        ),
        advice(
            "A2",
            8,
            "Northwind Industrial",
            &[("INV-100202", dec!(500.00))],
        ),
        // Same payer, but not part of the sum.
        advice(
            "A3",
            8,
            "Northwind Industrial",
            &[("INV-100203", dec!(700.00))],
        ),
    ];
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert_eq!(k.links.len(), 1, "{k:?}");
    assert_eq!(k.links[0].advices, [0, 1]);
    let p = &merge(&k.links[0], &receipts, &advices)[0];
    assert_eq!(p.lines.len(), 2);
    assert_eq!(p.amount, dec!(1500.00));
    assert_eq!(k.advices.len(), 1);
    assert_eq!(k.advices[0].index, 2);
    // One cent off: no group.
    let receipts = [receipt("R1", dec!(1499.99), 9, NW)];
    assert!(
        link(&l, &receipts, &advices, &LinkConfig::default())
            .links
            .is_empty()
    );
}

#[test]
fn one_advice_describing_a_split_payment_links_every_receipt_and_divides_its_lines() {
    let l = ledger();
    let receipts = [
        receipt("R1", dec!(1000.00), 8, NW),
        receipt("R2", dec!(500.00), 9, NW),
    ];
    let advices = [advice(
        "A1",
        8,
        "Northwind",
        &[("INV-100201", dec!(1000.00)), ("INV-100202", dec!(500.00))],
    )];
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert_eq!(k.links.len(), 1, "{k:?}");
    assert_eq!(k.links[0].receipts, [0, 1]);
    let merged = merge(&k.links[0], &receipts, &advices);
    assert_eq!(merged.len(), 2);
    assert_eq!(merged[0].lines.len(), 1);
    assert_eq!(merged[0].lines[0].reference.as_deref(), Some("INV-100201"));
    assert_eq!(merged[1].lines[0].reference.as_deref(), Some("INV-100202"));
}

#[test]
fn two_equally_good_advices_are_never_linked_automatically() {
    let l = ledger();
    let receipts = [receipt("R1", dec!(1000.00), 8, NW)];
    let advices = [
        advice("A1", 8, "Northwind", &[("INV-100201", dec!(1000.00))]),
        advice("A2", 7, "Northwind", &[("INV-100203", dec!(1000.00))]),
    ];
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
    assert_eq!(k.receipts[0].reason, Unlinked::Ambiguous);
    assert_eq!(k.receipts[0].candidates, [0, 1]);
    assert!(k.advices.iter().all(|a| a.reason == Unlinked::Ambiguous));
    // A reference in the bank memo tells them apart.
    let mut r = receipts[0].clone();
    r.free_text = vec!["PMT INV 100203".into()];
    let k = link(&l, &[r], &advices, &LinkConfig::default());
    assert_eq!(k.links.len(), 1);
    assert_eq!(k.links[0].advices, [1]);
    assert!(k.links[0].evidence.iter().any(|e| e.contains("100203")));
}

#[test]
fn two_combinations_that_add_up_are_ambiguous() {
    let l = ledger();
    let receipts = [receipt("R1", dec!(1500.00), 9, NW)];
    let advices = [
        advice("A1", 8, "Northwind", &[("INV-100201", dec!(1000.00))]),
        advice("A2", 8, "Northwind", &[("INV-100202", dec!(500.00))]),
        advice("A3", 8, "Northwind", &[("INV-100203", dec!(500.00))]),
    ];
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
    assert_eq!(k.receipts[0].reason, Unlinked::Ambiguous);
}

#[test]
fn another_payer_or_dates_outside_the_window_do_not_link() {
    let l = ledger();
    let advices = [advice(
        "A1",
        8,
        "Bluegrass Foods",
        &[("INV-200301", dec!(1000.00))],
    )];
    let k = link(
        &l,
        &[receipt("R1", dec!(1000.00), 8, NW)],
        &advices,
        &LinkConfig::default(),
    );
    assert!(k.links.is_empty(), "{k:?}");
    let k = link(
        &l,
        &[receipt("R1", dec!(1000.00), 28, BG)],
        &advices,
        &LinkConfig::default(),
    );
    assert!(k.links.is_empty(), "{k:?}");
    // The parent's account pays the subsidiary's invoice: linked through the parent.
    let advices = [advice(
        "A1",
        8,
        "Northwind West",
        &[("INV-300401", dec!(1000.00))],
    )];
    let k = link(
        &l,
        &[receipt("R1", dec!(1000.00), 8, NW)],
        &advices,
        &LinkConfig::default(),
    );
    assert_eq!(k.links.len(), 1, "{k:?}");
}

#[test]
fn the_direct_payer_beats_a_subsidiary_for_the_same_amount() {
    let l = ledger();
    let advices = [
        advice("A1", 8, "Northwind West", &[("INV-300401", dec!(1000.00))]),
        advice(
            "A2",
            8,
            "Northwind Industrial",
            &[("INV-100201", dec!(1000.00))],
        ),
    ];
    let k = link(
        &l,
        &[receipt("R1", dec!(1000.00), 8, NW)],
        &advices,
        &LinkConfig::default(),
    );
    assert_eq!(k.links.len(), 1, "{k:?}");
    assert_eq!(k.links[0].advices, [1]);
}

#[test]
fn unlinked_items_wait_out_the_hold_in_business_days() {
    let l = ledger();
    // Friday the 11th; two business days later is Tuesday the 15th.
    let receipts = [receipt("R1", dec!(42.00), 11, NW)];
    let config = |d| LinkConfig {
        as_of: Some(day(d)),
        ..Default::default()
    };
    assert_eq!(
        link(&l, &receipts, &[], &config(15)).receipts[0].hold,
        Hold::Waiting
    );
    assert_eq!(
        link(&l, &receipts, &[], &config(16)).receipts[0].hold,
        Hold::Expired
    );
    assert_eq!(add_business_days(day(11), 2), day(15));
    // Without a date there is nothing to wait from.
    let mut r = receipts[0].clone();
    r.payment_date = None;
    assert_eq!(
        link(&l, &[r], &[], &config(11)).receipts[0].hold,
        Hold::Expired
    );
}

#[test]
fn a_payer_unknown_to_the_ledger_links_on_the_same_name() {
    let l = ledger();
    let mut r = payment("R1", dec!(250.00), 8);
    r.payer.name = Some("ACME WIDGETS CORP".into());
    let a = advice(
        "A1",
        8,
        "Acme Widgets Corporation",
        &[("X-99001", dec!(250.00))],
    );
    let k = link(&l, &[r], &[a], &LinkConfig::default());
    assert_eq!(k.links.len(), 1, "{k:?}");
    assert!(k.links[0].evidence[0].contains("same name"));
}

#[test]
fn the_same_customers_same_amount_just_beyond_the_window_makes_a_link_doubtful() {
    let l = ledger();
    let advices = [advice(
        "A1",
        14,
        "Northwind",
        &[("INV-100201", dec!(1000.00))],
    )];
    // R1 is 4 days from the advice; R2, 10 days from it, is beyond the 7-day window but less
    // than the 7-day margin further than R1: its advice may be this one, late.
    let receipts = [
        receipt("R1", dec!(1000.00), 10, NW),
        receipt("R2", dec!(1000.00), 4, NW),
    ];
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
    assert_eq!(k.advices[0].reason, Unlinked::Ambiguous);
    assert_eq!(k.receipts[0].reason, Unlinked::Ambiguous);
    // Only the pair inside the window is offered to a person.
    assert_eq!(k.advices[0].candidates, [0]);
    // Thirteen days away, the margin further than R1, it casts no doubt.
    let receipts = [
        receipt("R1", dec!(1000.00), 10, NW),
        receipt("R2", dec!(1000.00), 1, NW),
    ];
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert_eq!(k.links.len(), 1, "{k:?}");
    assert_eq!(k.links[0].receipts, [0]);
    // Another customer's same amount beyond the window is no rival.
    let receipts = [
        receipt("R1", dec!(1000.00), 10, NW),
        receipt("R2", dec!(1000.00), 4, BG),
    ];
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert_eq!(k.links.len(), 1, "{k:?}");
}

#[test]
fn dates_choose_between_equal_counterparts_only_by_the_margin() {
    let l = ledger();
    let receipts = [receipt("R1", dec!(1000.00), 10, NW)];
    let advices = [
        advice("A1", 10, "Northwind", &[("INV-100201", dec!(1000.00))]),
        advice("A2", 17, "Northwind", &[("INV-100203", dec!(1000.00))]),
    ];
    // Same day against seven days apart: the margin of 7 is met.
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert_eq!(k.links.len(), 1, "{k:?}");
    assert_eq!(k.links[0].advices, [0]);
    // Six days apart is not clear.
    let mut near = advices.to_vec();
    near[1].payment_date = Some(day(16));
    let k = link(&l, &receipts, &near, &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
    // A smaller margin is the user's to set.
    let config = LinkConfig {
        date_margin_days: 3,
        ..Default::default()
    };
    assert_eq!(link(&l, &receipts, &near, &config).links.len(), 1);
}

#[test]
fn one_customers_receipts_found_by_account_and_by_name_are_rivals() {
    let l = ledger();
    let by_name = {
        let mut p = payment("R2", dec!(1000.00), 9);
        p.payer.name = Some("Northwind Industrial Supply Inc".into());
        p
    };
    let receipts = [receipt("R1", dec!(1000.00), 8, NW), by_name];
    let advices = [advice(
        "A1",
        8,
        "Northwind",
        &[("INV-100201", dec!(1000.00))],
    )];
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
    assert_eq!(k.advices[0].reason, Unlinked::Ambiguous);
    assert_eq!(k.advices[0].candidates.len(), 2);
}

/// The 1:1 links as (receipt, advice), sorted.
fn one_to_one(k: &Linking) -> Vec<(usize, usize)> {
    let mut got: Vec<(usize, usize)> = k
        .links
        .iter()
        .map(|x| (x.receipts[0], x.advices[0]))
        .collect();
    got.sort_unstable();
    got
}

#[test]
fn one_customers_equal_amounts_pair_off_when_only_one_way_fits() {
    let l = ledger();
    let receipts = [
        receipt("R1", dec!(1000.00), 8, NW),
        receipt("R2", dec!(1000.00), 12, NW),
    ];
    let advices = [
        advice("A1", 8, "Northwind", &[("INV-100201", dec!(1000.00))]),
        advice("A2", 14, "Northwind", &[("INV-100203", dec!(1000.00))]),
    ];
    // Each receipt has both advices within the window, and each advice both receipts; paired
    // R1-A1, R2-A2 the dates are 2 days apart in all, the other way 10.
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert_eq!(one_to_one(&k), [(0, 0), (1, 1)], "{k:?}");
    assert!(k.links[0].evidence.iter().any(|e| e.contains("pair off")));
    // A third receipt of that amount whose advice never came: who pays what cannot be told.
    let mut three = receipts.to_vec();
    three.push(receipt("R3", dec!(1000.00), 10, NW));
    let k = link(&l, &three, &advices, &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
    assert!(k.advices.iter().all(|a| a.reason == Unlinked::Ambiguous));
    // Dates 2 and 6 days apart in all: not clear by the margin.
    let mut close = advices.to_vec();
    close[1].payment_date = Some(day(10));
    let k = link(&l, &receipts, &close, &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
    // The only way inside the window (R1-A2 7 days, R2-A1 3) against one through an advice 10
    // days late (R1-A1 10, R2-A2 0): as close in total, so nothing is linked.
    let early = [
        receipt("R1", dec!(1000.00), 1, NW),
        receipt("R2", dec!(1000.00), 8, NW),
    ];
    let mut late = advices.to_vec();
    late[0].payment_date = Some(day(11));
    late[1].payment_date = Some(day(8));
    let k = link(&l, &early, &late, &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
}

#[test]
fn a_customers_receipt_beside_a_strangers_of_the_same_amount_pairs_off_when_both_advices_came() {
    let l = ledger();
    // Northwind pays 1,000.00 from its account; the same day an unknown remitter sends 1,000.00
    // for one of Bluegrass's invoices, with an advice from "Accounts Payable".
    let mut stranger = receipt("R2", dec!(1000.00), 8, "999:9999999");
    stranger.payer.name = Some("Cornerstone Uniforms Inc".into());
    let receipts = [receipt("R1", dec!(1000.00), 8, NW), stranger];
    let advices = [
        advice("A1", 8, "Northwind", &[("INV-100201", dec!(1000.00))]),
        advice(
            "A2",
            9,
            "Accounts Payable",
            &[("INV-200301", dec!(1000.00))],
        ),
    ];
    // The stranger's money could be Northwind's advice's, so A1 alone is in doubt; with A2 there
    // too, only one way leaves no advice without money.
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert_eq!(one_to_one(&k), [(0, 0), (1, 1)], "{k:?}");
    // Without the stranger's advice, its receipt may be the money of Northwind's: a person
    // decides.
    let k = link(&l, &receipts, &advices[..1], &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
    assert_eq!(k.advices[0].reason, Unlinked::Ambiguous);
}

#[test]
fn an_exact_amount_days_off_waits_beside_a_nearer_receipt_of_a_near_amount() {
    let l = ledger();
    // Northwind's advice of 1,000.00 on the 15th; its bank shows 1,000.00 on the 8th and
    // 1,040.00 (paid over) on the 15th. The exact amount a week off may be another payment
    // whose advice never came.
    let receipts = [
        receipt("R1", dec!(1000.00), 8, NW),
        receipt("R2", dec!(1040.00), 15, NW),
    ];
    let advices = [advice(
        "A1",
        15,
        "Northwind",
        &[("INV-100201", dec!(1000.00))],
    )];
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
    assert_eq!(k.advices[0].candidates, [0]);
    // Without the nearer receipt the exact amount is the evidence, and links.
    let k = link(&l, &receipts[..1], &advices, &LinkConfig::default());
    assert_eq!(k.links.len(), 1, "{k:?}");
    // Within the usual delay of an advice the exact amount links beside it.
    let mut near = receipts.to_vec();
    near[0].payment_date = Some(day(12));
    let k = link(&l, &near, &advices, &LinkConfig::default());
    assert_eq!(k.links.len(), 1, "{k:?}");
    assert_eq!(k.links[0].receipts, [0]);
}

#[test]
fn an_advice_that_with_another_makes_up_a_receipt_is_not_linked_to_one_of_its_own_amount() {
    let l = ledger();
    // Northwind's two advices of one payment (1,000.00 and 500.00) and its receipt of 1,500.00;
    // a receipt of 1,000.00 the next day is another payment whose advice never came.
    let receipts = [
        receipt("R1", dec!(1000.00), 9, NW),
        receipt("R2", dec!(1500.00), 8, NW),
    ];
    let advices = [
        advice("A1", 8, "Northwind", &[("INV-100201", dec!(1000.00))]),
        advice("A2", 8, "Northwind", &[("INV-100202", dec!(500.00))]),
    ];
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert!(
        !k.links
            .iter()
            .any(|x| x.receipts == [0] && x.advices == [0]),
        "{k:?}"
    );
    assert!(k.advices[0].candidates.contains(&0), "{k:?}");
    // Without the receipt the two make up, the exact amount links.
    let k = link(&l, &receipts[..1], &advices, &LinkConfig::default());
    assert_eq!(k.links.len(), 1, "{k:?}");
    assert_eq!((k.links[0].receipts[0], k.links[0].advices[0]), (0, 0));
}

#[test]
fn a_mistyped_number_that_is_another_customers_invoice_does_not_name_the_payer() {
    let l = ledger();
    // "Accounts Payable" pays 1,500.00 quoting INV-200301, Bluegrass's invoice of 1,000.00: the
    // line pays more than that invoice is worth, so the number was mistyped and says nothing
    // of the payer. Northwind's receipt of exactly 1,500.00 is the only one that fits.
    let receipts = [receipt("R1", dec!(1500.00), 8, NW)];
    let advices = [advice(
        "A1",
        8,
        "Accounts Payable",
        &[("INV-200301", dec!(1500.00))],
    )];
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert_eq!(k.links.len(), 1, "{k:?}");
    // Paying what the invoice is worth, the number names Bluegrass, and Northwind's money is
    // not its.
    let advices = [advice(
        "A1",
        8,
        "Accounts Payable",
        &[("INV-200301", dec!(1000.00))],
    )];
    let receipts = [receipt("R1", dec!(1000.00), 8, NW)];
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
}

#[test]
fn a_receipt_a_little_over_its_advice_links_as_an_overpayment_when_nothing_else_fits() {
    let l = ledger();
    let advices = [advice(
        "A1",
        9,
        "Northwind",
        &[("INV-100201", dec!(1000.00))],
    )];
    // Northwind rounded its payment up to 1,040.00.
    let receipts = [receipt("R1", dec!(1040.00), 8, NW)];
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert_eq!(k.links.len(), 1, "{k:?}");
    assert_eq!(k.links[0].fee, dec!(-40.00));
    assert!(
        k.links[0]
            .evidence
            .iter()
            .any(|e| e.contains("over the advice"))
    );
    // A receipt of exactly the advice's amount from a payer not told may be its money.
    let mut untold = receipt("R2", dec!(1000.00), 8, "999:9999999");
    untold.payer.name = Some("Cornerstone Uniforms Inc".into());
    let both = [receipts[0].clone(), untold];
    let k = link(&l, &both, &advices, &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
    // More than a tenth over, or dated beyond the usual delay of an advice: not read as one.
    let far = [receipt("R1", dec!(1040.00), 2, NW)];
    assert!(
        link(&l, &far, &advices, &LinkConfig::default())
            .links
            .is_empty()
    );
    let much = [receipt("R1", dec!(1200.00), 8, NW)];
    assert!(
        link(&l, &much, &advices, &LinkConfig::default())
            .links
            .is_empty()
    );
}

#[test]
fn a_receipt_alone_with_nothing_but_its_amount_is_held_for_review() {
    let l = ledger();
    let bare = receipt("R1", dec!(1000.00), 8, NW);
    let mut quoting = receipt("R2", dec!(500.00), 8, NW);
    quoting.free_text = vec!["PMT INV 100202".into()];
    let config = LinkConfig {
        as_of: Some(day(28)),
        ..Default::default()
    };
    let batch = Batch::run(&l, vec![bare.clone(), quoting], vec![], &config);
    let marked = |p: &Payment| p.warnings.iter().any(|w| w.starts_with(REVIEW_ALONE));
    assert_eq!(batch.payments.len(), 2);
    assert!(
        marked(&batch.payments[0]),
        "{:?}",
        batch.payments[0].warnings
    );
    // A memo reference is evidence beyond the amount: the matcher may apply it.
    assert!(
        !marked(&batch.payments[1]),
        "{:?}",
        batch.payments[1].warnings
    );
    // The rule is the user's to turn off.
    let off = LinkConfig {
        review_receipts_alone: false,
        ..config
    };
    let batch = Batch::run(&l, vec![bare], vec![], &off);
    assert!(!marked(&batch.payments[0]));
}

#[test]
fn an_exact_amount_links_alone_only_where_a_payer_cannot_be_told_and_nothing_else_fits() {
    let l = ledger();
    // A remitter the ledger does not know, and an advice without a name whose reference names
    // no open invoice: the exact amount is all there is.
    let mut stranger = payment("R1", dec!(1234.56), 8);
    stranger.payer.name = Some("ZX PAYMENT SERVICES".into());
    let mut nameless = advice("A1", 9, "", &[("X-77001", dec!(1234.56))]);
    nameless.payer.name = None;
    let k = link(
        &l,
        std::slice::from_ref(&stranger),
        std::slice::from_ref(&nameless),
        &LinkConfig::default(),
    );
    assert_eq!(k.links.len(), 1, "{k:?}");
    assert!(k.links[0].evidence[0].contains("only evidence"));
    // A fee is not taken on the amount alone.
    let mut short = stranger.clone();
    short.amount = dec!(1219.56);
    let k = link(
        &l,
        &[short],
        std::slice::from_ref(&nameless),
        &LinkConfig::default(),
    );
    assert!(k.links.is_empty(), "{k:?}");
    // A second receipt of the amount: nothing tells which.
    let mut other = stranger.clone();
    other.payment_id = "R2".into();
    let k = link(
        &l,
        &[stranger.clone(), other],
        std::slice::from_ref(&nameless),
        &LinkConfig::default(),
    );
    assert!(k.links.is_empty(), "{k:?}");
    // The stranger's exact amount is as likely the money of a known customer's advice.
    let receipts = [receipt("R3", dec!(1234.56), 8, NW), stranger];
    let advices = [advice(
        "A2",
        8,
        "Northwind",
        &[("INV-100201", dec!(1234.56))],
    )];
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
    assert_eq!(k.advices[0].reason, Unlinked::Ambiguous);
}

#[test]
fn a_fee_is_not_read_beside_a_receipt_of_the_exact_amount_from_anyone() {
    let l = ledger();
    let advices = [advice(
        "A1",
        8,
        "Northwind",
        &[("INV-100201", dec!(1000.00))],
    )];
    let short = receipt("R1", dec!(980.00), 8, NW);
    let k = link(
        &l,
        std::slice::from_ref(&short),
        &advices,
        &LinkConfig::default(),
    );
    assert_eq!(k.links.len(), 1, "{k:?}");
    // Another payer's receipt of the whole amount may be this advice's money.
    let whole = receipt("R2", dec!(1000.00), 9, BG);
    let k = link(&l, &[short, whole], &advices, &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
    assert_eq!(k.receipts[0].reason, Unlinked::Ambiguous);
}

/// [`ledger`] with open credit memos: Northwind's CM-100901 (150.00) and CM-100902 (40.00),
/// Bluegrass's CM-200901 (90.00) and CM-200902 (90.00).
fn ledger_with_credits() -> Ledger {
    let (customers, mut invoices) = (l_customers(), l_invoices());
    invoices.push(invoice("C1", "NW", "CM-100901", dec!(-150.00)));
    invoices.push(invoice("C2", "NW", "CM-100902", dec!(-40.00)));
    invoices.push(invoice("C3", "BG", "CM-200901", dec!(-90.00)));
    invoices.push(invoice("C4", "BG", "CM-200902", dec!(-90.00)));
    Ledger::new(customers, invoices).0
}

fn l_customers() -> Vec<Customer> {
    ledger().customers().to_vec()
}

fn l_invoices() -> Vec<Invoice> {
    ledger().invoices().to_vec()
}

#[test]
fn a_receipt_short_by_the_customers_open_credit_memos_links_with_them_named() {
    let l = ledger_with_credits();
    // The AP department took both credits (190.00) and listed only the invoices.
    let advices = [advice(
        "A1",
        8,
        "NORTHWIND IND SUPPLY",
        &[("INV-100201", dec!(1000.00)), ("INV-100202", dec!(500.00))],
    )];
    let k = link(
        &l,
        &[receipt("R1", dec!(1310.00), 9, NW)],
        &advices,
        &LinkConfig::default(),
    );
    assert_eq!(k.links.len(), 1, "{k:?}");
    assert_eq!(k.links[0].fee, dec!(190.00));
    assert!(
        k.links[0]
            .evidence
            .iter()
            .any(|e| e.contains("CM-100901") && e.contains("CM-100902")),
        "{:?}",
        k.links[0].evidence
    );
    // A difference no credit memo makes up is not explained.
    let k = link(
        &l,
        &[receipt("R1", dec!(1300.00), 9, NW)],
        &advices,
        &LinkConfig::default(),
    );
    assert!(k.links.is_empty(), "{k:?}");
}

#[test]
fn two_ways_of_making_up_the_shortfall_with_credits_explain_nothing() {
    let l = ledger_with_credits();
    // 90.00: either of Bluegrass's two credit memos.
    let k = link(
        &l,
        &[receipt("R1", dec!(910.00), 9, BG)],
        &[advice(
            "A1",
            8,
            "Bluegrass Foods",
            &[("INV-200301", dec!(1000.00))],
        )],
        &LinkConfig::default(),
    );
    assert!(k.links.is_empty(), "{k:?}");
}

#[test]
fn an_exact_receipt_and_one_short_by_the_customers_credit_memo_are_rivals() {
    let l = ledger_with_credits();
    let advices = [advice(
        "A1",
        8,
        "NORTHWIND IND SUPPLY",
        &[("INV-100201", dec!(1000.00))],
    )];
    let receipts = [
        receipt("R1", dec!(1000.00), 9, NW),
        receipt("R2", dec!(850.00), 9, NW),
    ];
    let k = link(&l, &receipts, &advices, &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
    assert_eq!(k.advices[0].reason, Unlinked::Ambiguous);
}

/// The ledger above with Northwind East (account 444:4444444), another subsidiary of Northwind.
fn ledger_with_sister() -> Ledger {
    let mut customers = l_customers();
    customers.push(Customer {
        id: "NWE".into(),
        name: "Northwind East Corp".into(),
        parent_id: Some("NW".into()),
        bank_accounts: vec!["444:4444444".into()],
    });
    Ledger::new(customers, l_invoices()).0
}

#[test]
fn an_exact_link_waits_beside_a_sister_companys_receipt_of_the_amount() {
    // Northwind East, another subsidiary of Northwind, may pay Northwind West's invoices.
    let l = ledger_with_sister();
    let advices = [advice(
        "A1",
        8,
        "Northwind West LLC",
        &[("INV-300401", dec!(1000.00))],
    )];
    let own = [receipt("R1", dec!(1000.00), 9, "333:3333333")];
    let k = link(&l, &own, &advices, &LinkConfig::default());
    assert_eq!(k.links.len(), 1, "alone, West's own receipt links: {k:?}");
    let both = [
        own[0].clone(),
        receipt("R2", dec!(1000.00), 8, "444:4444444"),
    ];
    let k = link(&l, &both, &advices, &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
    // An unrelated customer's receipt of the amount is its own money: no doubt.
    let other = [own[0].clone(), receipt("R2", dec!(1000.00), 8, BG)];
    let k = link(&l, &other, &advices, &LinkConfig::default());
    assert_eq!(k.links.len(), 1, "{k:?}");
}

#[test]
fn a_sister_companys_receipt_of_the_exact_amount_links_when_nothing_else_fits() {
    // Northwind East pays Northwind West's invoice from its own account; the advice names West.
    let l = ledger_with_sister();
    let advices = [advice(
        "A1",
        8,
        "Accounts Payable",
        &[("INV-300401", dec!(1000.00))],
    )];
    let sister = [receipt("R1", dec!(1000.00), 9, "444:4444444")];
    let k = link(&l, &sister, &advices, &LinkConfig::default());
    assert_eq!(k.links.len(), 1, "{k:?}");
    assert!(
        k.links[0]
            .evidence
            .iter()
            .any(|e| e.contains("another company of the customer's group")),
        "{k:?}"
    );
    // Short by a fee, a sister's money is not read as the advice's: the group also pays its own.
    let short = [receipt("R1", dec!(985.00), 9, "444:4444444")];
    let k = link(&l, &short, &advices, &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
    // An unrelated customer's receipt of the amount is not the group's.
    let other = [receipt("R1", dec!(1000.00), 9, BG)];
    let k = link(&l, &other, &advices, &LinkConfig::default());
    assert!(k.links.is_empty(), "{k:?}");
}
