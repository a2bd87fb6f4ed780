//! ISO 20022 remt.001 remittance advice: the remittance that arrives separately from the
//! payment. Each `RmtInf` of the advice becomes a [`Payment`] whose `payment_id` is the original
//! payment's `EndToEndId`, so the engine can join it to the bank's record of the same payment
//! (a camt.054 transaction carries that `EndToEndId` too). The mapping is documented in
//! `docs/formats/remt.md`.

use crate::domain::{Currency, Direction, Payment};
use crate::formats::iso20022::{
    self, NOT_PROVIDED, Node, PaymentIds, XmlStream, check_lines_total, money, party_name, payer,
};
use crate::formats::{Format, FormatError, Parsed, Position};
use rust_decimal::Decimal;

/// Whether the head of a file (its first 4 KiB are read) is a remt.001 remittance advice.
pub fn looks_like(head: &[u8]) -> bool {
    iso20022::names_message(iso20022::head(head), "remt.001", "RmtAdvc")
}

/// Reads a remt.001 file (any version). A file that is not XML, not a remittance advice, or
/// malformed XML is an `Err`; a remittance that cannot be read is kept in [`Parsed::errors`]
/// with its XML path.
pub fn parse(bytes: &[u8], file: &str) -> Result<Parsed, FormatError> {
    let text = iso20022::decode_input(bytes, file)?;
    let mut xs = XmlStream::new(&text, file);
    let msg = xs.message_element()?;
    if msg.name != "RmtAdvc" {
        return Err(FormatError::new(
            file,
            Position::XmlPath(msg.path.clone()),
            format!(
                "not a remt.001 remittance advice: the message element is {}, expected RmtAdvc",
                msg.name
            ),
        ));
    }
    let mut out = Parsed::default();
    let mut ids = PaymentIds::default();
    let mut msg_id: Option<String> = None;
    let mut count = 0usize;
    while let Some(child) = xs.next_child()? {
        match child.name.as_str() {
            "GrpHdr" => msg_id = xs.subtree(&child)?.text_at(&["MsgId"]),
            "RmtInf" => {
                count += 1;
                let node = xs.subtree(&child)?;
                let fallback = msg_id.as_deref().unwrap_or(Format::Remt001.name());
                match advice(&node, file, &format!("{fallback}/{count}")) {
                    Ok(mut p) => {
                        p.payment_id = ids.unique(p.payment_id, &mut p.warnings);
                        out.payments.push(p);
                    }
                    Err(e) => out.errors.push(e),
                }
            }
            _ => xs.skip(&child)?,
        }
    }
    xs.finish()?;
    Ok(out)
}

/// Maps one `RmtInf` of an advice.
fn advice(rmt: &Node, file: &str, fallback_id: &str) -> Result<Payment, FormatError> {
    let original = rmt.child("OrgnlPmtInf");
    let refs = original.and_then(|o| o.child("Refs"));
    let reference = |name: &str| refs.and_then(|r| r.text_at(&[name]));
    let payment_id = reference("EndToEndId")
        .filter(|id| !id.eq_ignore_ascii_case(NOT_PROVIDED))
        .or_else(|| reference("UETR"))
        .or_else(|| reference("TxId"))
        .or_else(|| reference("InstrId"))
        .or_else(|| rmt.text_at(&["RmtId"]))
        .unwrap_or_else(|| fallback_id.to_string());

    let remit = iso20022::remittance(rmt, file)?;
    let mut warnings = remit.warnings;
    let mut free_text = remit.free_text;

    let stated = original.and_then(|o| {
        [
            &["Amt", "InstdAmt"][..],
            &["Amt", "EqvtAmt", "Amt"],
            &["IntrBkSttlmAmt"],
            &["Amt"],
        ]
        .iter()
        .find_map(|p| o.at(p).filter(|n| n.children.is_empty()))
    });
    let (amount, currency) = match stated {
        Some(node) => {
            let m = money(node, file)?;
            let c = m
                .ccy
                .or(remit.paid_currencies.first().copied())
                .unwrap_or_else(|| {
                    warnings.push("the advice states no currency; USD is assumed".into());
                    Currency::USD
                });
            check_lines_total(
                &remit.lines,
                &remit.paid_currencies,
                m.value,
                c,
                &mut warnings,
            );
            (m.value, c)
        }
        None => {
            let c = remit.paid_currencies.first().copied().unwrap_or_else(|| {
                warnings.push("the advice states no currency; USD is assumed".into());
                Currency::USD
            });
            let total = remit
                .lines
                .iter()
                .filter_map(|l| l.amount_paid)
                .try_fold(Decimal::ZERO, |s, v| s.checked_add(v))
                .ok_or_else(|| rmt.error(file, "line amounts overflow when added"))?;
            warnings.push(format!(
                "the advice states no payment amount; {total} is the sum of its lines"
            ));
            if remit.paid_currencies.len() > 1 {
                warnings.push("the lines' amounts are in several currencies".into());
            }
            (total, c)
        }
    };

    let mut payment_date = None;
    if let Some(o) = original {
        for name in ["ReqdExctnDt", "IntrBkSttlmDt", "ReqdColltnDt"] {
            if let (None, Some(n)) = (payment_date, o.child(name)) {
                match iso20022::date(n) {
                    Ok(d) => payment_date = d,
                    Err(w) => warnings.push(w),
                }
            }
        }
    }

    let (mut payer, ultimate) = original.map(payer).unwrap_or_default();
    free_text.extend(ultimate);
    if payer.name.is_none() {
        payer.name = rmt
            .all("Strd")
            .find_map(|s| s.child("Invcee").and_then(party_name));
    }

    Ok(Payment {
        payment_id,
        format: Format::Remt001.name().to_string(),
        direction: Direction::Credit,
        payment_date,
        amount,
        currency,
        payer,
        lines: remit.lines,
        free_text,
        warnings,
        returned: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Adjustment, ReferenceKind, RemittanceLine};
    use rust_decimal_macros::dec;

    fn fixture(name: &str) -> Payment {
        let path = format!("{}/../fixtures/remt/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap();
        assert!(looks_like(&bytes), "{name}");
        let mut p = parse(&bytes, name).unwrap();
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.payments.len(), 1, "{name}");
        p.payments.remove(0)
    }

    fn line(reference: &str, kind: ReferenceKind) -> RemittanceLine {
        RemittanceLine {
            reference: Some(reference.into()),
            reference_kind: kind,
            ..RemittanceLine::default()
        }
    }

    fn invoice(reference: &str, paid: Decimal, due: Decimal) -> RemittanceLine {
        RemittanceLine {
            amount_paid: Some(paid),
            invoice_amount: Some(due),
            ..line(reference, ReferenceKind::Invoice)
        }
    }

    fn paid_total(p: &Payment) -> Decimal {
        p.lines.iter().filter_map(|l| l.amount_paid).sum()
    }

    #[test]
    fn two_invoices() {
        let p = fixture("remt001_bpc_tc1_two_invoices.xml");
        assert_eq!(p.payment_id, "Linking ID Example 1");
        assert_eq!((p.amount, p.currency.as_str()), (dec!(7845.61), "USD"));
        assert_eq!(
            (p.direction, p.format.as_str()),
            (Direction::Credit, "remt001")
        );
        assert_eq!(p.payment_date, chrono::NaiveDate::from_ymd_opt(2021, 5, 10));
        assert_eq!(p.payer.name.as_deref(), Some("Payer Test1"));
        assert_eq!(
            p.lines,
            [
                invoice("683528", dec!(4129.27), dec!(4129.27)),
                invoice("683529", dec!(3716.34), dec!(3716.34))
            ]
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn credit_notes_discounts_and_deductions() {
        let p = fixture("remt001_bpc_tc2_credit_notes_discounts.xml");
        assert_eq!(
            (p.payment_id.as_str(), p.amount),
            ("Linking ID Example 2", dec!(13471.00))
        );
        assert_eq!(p.lines.len(), 6);
        // 3000.00 due, 60.00 term discount, a 100.00 credit note: 2840.00 remitted, split into
        // the invoice relieved by 2940.00 cash and the credit note's -100.00.
        assert_eq!(
            p.lines[0],
            RemittanceLine {
                discount: Some(dec!(60.00)),
                ..invoice("2700017401", dec!(2940.00), dec!(3000.00))
            }
        );
        assert_eq!(
            p.lines[1],
            RemittanceLine {
                amount_paid: Some(dec!(-100.00)),
                ..line("2700017401", ReferenceKind::CreditNote)
            }
        );
        let deduction = Adjustment {
            amount: dec!(59.00),
            reason_code: None,
            text: Some("This is a deduction for a pricing discrepancy".into()),
        };
        assert_eq!(
            p.lines[2],
            RemittanceLine {
                adjustments: vec![deduction],
                ..invoice("3300008123", dec!(2891.00), dec!(2950.00))
            }
        );
        assert_eq!(p.lines[3].amount_paid, Some(dec!(5684.00)));
        assert_eq!(p.lines[3].adjustments[0].amount, dec!(116.00));
        assert_eq!(p.lines[4].amount_paid, Some(dec!(-100.00)));
        assert_eq!(
            p.lines[5],
            RemittanceLine {
                discount: Some(dec!(44.00)),
                ..invoice("43000134", dec!(2156.00), dec!(2200.00))
            }
        );
        assert_eq!(paid_total(&p), p.amount);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn euro_payment_of_dollar_invoices() {
        let p = fixture("remt001_bpc_tc3_eur_adjustments.xml");
        assert_eq!((p.amount, p.currency.as_str()), (dec!(47256.73), "EUR"));
        let kinds: Vec<ReferenceKind> = p.lines.iter().map(|l| l.reference_kind).collect();
        assert_eq!(
            kinds,
            [ReferenceKind::Invoice, ReferenceKind::PurchaseOrder].repeat(3)
        );
        assert_eq!(p.lines[1], line("PO 365428", ReferenceKind::PurchaseOrder));
        assert_eq!(p.lines[4].reference.as_deref(), Some("3045087056"));
        assert_eq!(p.lines[4].amount_paid, Some(dec!(41557.48)));
        assert_eq!(p.lines[4].invoice_amount, Some(dec!(48891.15)));
        assert_eq!(
            p.lines[4].adjustments,
            [Adjustment {
                amount: dec!(1401.00),
                reason_code: Some("D7".into()),
                text: Some("Additional information supporting reason D7".into())
            }]
        );
        assert_eq!(p.free_text, ["Conversion rate .85"; 3]);
        // The remitted EUR amounts add up to 47256.74, a cent more than the payment.
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("add up to 47256.74 EUR")),
            "{:?}",
            p.warnings
        );
        assert_eq!(
            p.warnings
                .iter()
                .filter(|w| w.contains("several currencies"))
                .count(),
            3
        );
    }

    #[test]
    fn adjustment_and_credit_note_with_po_references() {
        let p = fixture("remt001_bpc_tc4_adjustment_i3_cren.xml");
        assert_eq!(
            (p.amount, p.payer.name.as_deref()),
            (dec!(18153.29), Some("Invoicee company"))
        );
        assert_eq!(p.lines.len(), 8);
        assert_eq!(p.lines[0].adjustments[0].reason_code.as_deref(), Some("I3"));
        assert_eq!(p.lines[0].adjustments[0].amount, dec!(1031.40));
        assert_eq!(p.lines[1], line("40041782", ReferenceKind::PurchaseOrder));
        // A credit note stated with a positive RmtdAmt is still money taken off.
        assert_eq!(
            p.lines[6],
            RemittanceLine {
                amount_paid: Some(dec!(-10040.00)),
                ..line("80723999", ReferenceKind::CreditNote)
            }
        );
        assert_eq!(p.lines[7], line("2224377", ReferenceKind::PurchaseOrder));
        assert_eq!(paid_total(&p), p.amount);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn line_detail_adjustments_and_tax() {
        let p = fixture("remt001_bpc_tc6_line_adjustments.xml");
        assert_eq!(p.amount, dec!(14122.50));
        assert_eq!(p.lines.len(), 1);
        let l = &p.lines[0];
        assert_eq!(
            (l.amount_paid, l.invoice_amount),
            (Some(dec!(14122.50)), Some(dec!(13950.00)))
        );
        let codes: Vec<(&str, Decimal)> = l
            .adjustments
            .iter()
            .map(|a| (a.reason_code.as_deref().unwrap_or(""), a.amount))
            .collect();
        // The four line adjustments (net 500.00, the document's own adjustment) and the tax
        // paid on top of the due amount.
        assert_eq!(
            codes,
            [
                ("ADJ1", dec!(100)),
                ("ADJ2", dec!(150)),
                ("ADJ3", dec!(300)),
                ("ADJ4", dec!(-50)),
                ("TAX", dec!(-672.50))
            ]
        );
        assert_eq!(
            l.adjustments[0].text.as_deref(),
            Some("line 2700017401 (Part description 1)")
        );
        let relieved =
            l.amount_paid.unwrap() + l.adjustments.iter().map(|a| a.amount).sum::<Decimal>();
        assert_eq!(relieved, dec!(13950.00));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    const HEAD: &str = "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:remt.001.001.04\"><RmtAdvc><GrpHdr><MsgId>ADV</MsgId></GrpHdr>";

    #[test]
    fn a_bad_remittance_is_reported_with_its_path() {
        let good = "<RmtInf><RmtId>R1</RmtId><Strd><RfrdDocInf><Nb>A</Nb></RfrdDocInf>\
            <RfrdDocAmt><RmtdAmt Ccy=\"USD\">5.00</RmtdAmt></RfrdDocAmt></Strd></RmtInf>";
        let bad = "<RmtInf><Strd><RfrdDocAmt><RmtdAmt Ccy=\"USD\">5,00</RmtdAmt></RfrdDocAmt></Strd></RmtInf>";
        let xml = format!("{HEAD}{good}{bad}<RmtInf/></RmtAdvc></Document>");
        let p = parse(xml.as_bytes(), "a.xml").unwrap();
        assert_eq!(p.errors.len(), 1);
        assert_eq!(
            p.errors[0].position,
            Position::XmlPath("/Document/RmtAdvc/RmtInf[2]/Strd[1]/RfrdDocAmt/RmtdAmt".into())
        );
        // Without OrgnlPmtInf: the RmtId names it and the lines give the amount.
        let first = &p.payments[0];
        assert_eq!(
            (first.payment_id.as_str(), first.amount),
            ("R1", dec!(5.00))
        );
        assert!(
            first
                .warnings
                .iter()
                .any(|w| w.contains("no payment amount"))
        );
        // Nothing at all: a positional id, zero, and the reasons why.
        let empty = &p.payments[1];
        assert_eq!(
            (empty.payment_id.as_str(), empty.amount),
            ("ADV/3", dec!(0))
        );
        assert!(empty.warnings.iter().any(|w| w.contains("USD is assumed")));
    }

    #[test]
    fn the_original_payment_reference_is_the_payment_id() {
        let xml = format!(
            "{HEAD}<RmtInf><RmtId>R9</RmtId><OrgnlPmtInf><Refs><EndToEndId>NOTPROVIDED</EndToEndId>\
             <TxId>TX-1</TxId></Refs><Amt><InstdAmt Ccy=\"EUR\">1</InstdAmt></Amt>\
             <Dbtr><Pty><Nm>Payer</Nm></Pty></Dbtr><DbtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></DbtrAcct>\
             </OrgnlPmtInf></RmtInf></RmtAdvc></Document>"
        );
        let p = parse(xml.as_bytes(), "a.xml").unwrap().payments.remove(0);
        assert_eq!(p.payment_id, "TX-1");
        assert_eq!(p.payer.name.as_deref(), Some("Payer"));
        assert_eq!(p.payer.account.as_deref(), Some("DE89370400440532013000"));
    }

    #[test]
    fn files_that_are_not_remt_are_rejected() {
        let camt = format!(
            "{}/../fixtures/camt/camt053_genkgo_v4_strd.xml",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(camt).unwrap();
        assert!(!looks_like(&bytes));
        let e = parse(&bytes, "c.xml").unwrap_err();
        assert!(e.to_string().contains("expected RmtAdvc"), "{e}");
        assert!(
            parse(b"\xFF\xFE<\x00", "u16.xml")
                .unwrap_err()
                .to_string()
                .contains("UTF-16")
        );
        let e = parse(format!("{HEAD}<RmtInf>").as_bytes(), "t.xml").unwrap_err();
        assert!(e.to_string().contains("/Document/RmtAdvc/RmtInf[1]"), "{e}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
                let _ = parse(&bytes, "fuzz.xml");
                let _ = looks_like(&bytes);
            }

            #[test]
            fn damaged_samples_never_panic(at in 0usize..8000, junk in proptest::collection::vec(any::<u8>(), 0..12), cut in any::<bool>()) {
                let path = format!("{}/../fixtures/remt/remt001_bpc_tc2_credit_notes_discounts.xml", env!("CARGO_MANIFEST_DIR"));
                let mut bytes = std::fs::read(path).unwrap();
                let at = at.min(bytes.len());
                if cut { bytes.truncate(at) } else { bytes.splice(at..at, junk); }
                let _ = parse(&bytes, "fuzz.xml");
                let _ = crate::formats::camt::parse(&bytes, "fuzz.xml");
            }
        }
    }
}
