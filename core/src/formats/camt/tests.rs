use super::*;
use crate::domain::{Adjustment, Payer};
use rust_decimal_macros::dec;

fn fixture(name: &str) -> Parsed {
    let path = format!("{}/../fixtures/camt/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap();
    parse(&bytes, name).unwrap()
}

/// A copyleft sample ([`crate::formats::samples`]): skipped without it, a failure under CI.
fn shared_sample(rel: &str) -> Option<(Vec<u8>, String)> {
    crate::formats::samples::read(rel).map(|(b, p)| (b, p.display().to_string()))
}

fn by_id<'a>(p: &'a Parsed, id: &str) -> &'a Payment {
    p.payments
        .iter()
        .find(|x| x.payment_id == id)
        .unwrap_or_else(|| panic!("no payment {id}"))
}

fn line(reference: &str, kind: ReferenceKind, paid: Option<Decimal>) -> RemittanceLine {
    RemittanceLine {
        reference: Some(reference.into()),
        reference_kind: kind,
        amount_paid: paid,
        ..RemittanceLine::default()
    }
}

fn total(p: &Parsed) -> Decimal {
    p.payments.iter().map(|x| x.amount).sum()
}

#[test]
fn handelsbanken_credit_notification() {
    let p = fixture("camt054_fi_handelsbanken_credit.xml");
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.payments.len(), 4);
    assert_eq!(total(&p), dec!(7048)); // TxsSummry/TtlNtries/Sum
    assert!(
        p.payments
            .iter()
            .all(|x| x.format == "camt054" && x.warnings.is_empty())
    );

    let first = by_id(&p, "End To End ID 11");
    assert_eq!(
        (first.amount, first.currency.as_str()),
        (dec!(88.16), "EUR")
    );
    assert_eq!(
        first.payment_date,
        chrono::NaiveDate::from_ymd_opt(2017, 1, 22)
    );
    assert_eq!(first.payer.name.as_deref(), Some("SUOMI OY"));
    assert_eq!(first.free_text, ["9597349"]);

    // 1371.13 remitted against a SCOR reference less a 628.68 credit note = 742.45.
    let second = by_id(&p, "End to End ID 12");
    assert_eq!(second.amount, dec!(742.45));
    assert_eq!(
        second.lines,
        [
            line("9544208", ReferenceKind::Unknown, Some(dec!(1371.13))),
            line("9582095", ReferenceKind::CreditNote, Some(dec!(-628.68))),
        ]
    );

    // 6256.70 - 166.46 - 89.70 = 6000.54; the invoice number's leading space is dropped.
    let third = by_id(&p, "EndToEndId 13");
    assert_eq!(
        third.lines,
        [
            line("9580572", ReferenceKind::Invoice, Some(dec!(6256.7))),
            line(
                "00000000000009580521",
                ReferenceKind::CreditNote,
                Some(dec!(-166.46))
            ),
            line(
                "00000000000009579095",
                ReferenceKind::CreditNote,
                Some(dec!(-89.7))
            ),
        ]
    );

    // No EndToEndId: the entry's AcctSvcrRef. The SEK instructed amount is not the payment;
    // the EUR transaction amount is.
    let fx = by_id(&p, "170130313190U60111");
    assert_eq!((fx.amount, fx.currency.as_str()), (dec!(216.85), "EUR"));
    assert_eq!(fx.free_text.len(), 5);
    assert_eq!(fx.free_text[3], "PARTIAL PYMT 170124         INV 43459");
}

#[test]
fn finnish_reference_notification() {
    let p = fixture("camt054_fi_ffi_sample.xml");
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    // 6 entries: batches of 2, 2, 2, 3 and 2 transactions, and 1 of 2 reversed.
    assert_eq!(p.payments.len(), 13);
    assert_eq!(total(&p), dec!(10830.05)); // TxsSummry/TtlNtries/Sum

    let a = by_id(&p, "D091029N987654321S001");
    assert_eq!(a.amount, dec!(1900.00));
    assert_eq!(
        a.lines,
        [
            line("3900", ReferenceKind::Unknown, Some(dec!(2500.00))),
            line("12344", ReferenceKind::CreditNote, Some(dec!(-600.00))),
        ]
    );
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);

    let rf = by_id(&p, "EndToEndIdAT-41-001");
    assert_eq!(
        rf.lines[0],
        line("RF7812345", ReferenceKind::Unknown, Some(dec!(3500.00)))
    );
    assert_eq!(
        rf.lines[1],
        line("RF0812344", ReferenceKind::CreditNote, Some(dec!(-1000.00)))
    );

    let ult = by_id(&p, "EndToEndIdAT-41-002");
    assert_eq!(ult.payer.name.as_deref(), Some("AT-02 DEBTOR NAME 02"));
    assert_eq!(
        ult.free_text,
        [
            "RFB/557742358",
            "ultimate debtor: AT-08 ULTIMATE DEBTOR NAME"
        ]
    );

    let debit = by_id(&p, "091029ARCH03003");
    assert_eq!(
        (debit.direction, debit.amount),
        (Direction::Debit, dec!(1230.02))
    );
    assert_eq!(
        debit.lines,
        [line("217827182718", ReferenceKind::Invoice, None)]
    );

    // The instructed USD amount is not the payment; the EUR transaction amount is.
    let fx = by_id(&p, "ISSRBKREF12345678");
    assert_eq!((fx.amount, fx.currency.as_str()), (dec!(500.00), "EUR"));
    assert!(
        fx.free_text
            .iter()
            .any(|t| t.starts_with("THIS AREA IS FOR BANK MESSAGE"))
    );

    // The reversed INFO entry: direction as given, with the reversal and return reason.
    let rev = by_id(&p, "D091029N987654321S288");
    assert_eq!(
        (rev.direction, rev.amount),
        (Direction::Credit, dec!(40.00))
    );
    assert!(
        rev.warnings.iter().any(|w| w.starts_with("reversal")),
        "{:?}",
        rev.warnings
    );
    assert!(rev.warnings.iter().any(|w| w.contains("INFO")));
    assert!(rev.warnings.iter().any(|w| w.contains("reason AC01")));
    assert!(
        by_id(&p, "D091029N987654321S289")
            .warnings
            .iter()
            .any(|w| w.contains("reason CUST"))
    );
}

#[test]
fn finnish_statement() {
    let p = fixture("camt053_fi_ffi_sample.xml");
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.payments.len(), 13);
    assert!(p.payments.iter().all(|x| x.format == "camt053"));
    let credits: Decimal = p
        .payments
        .iter()
        .filter(|x| x.direction == Direction::Credit)
        .map(|x| x.amount)
        .sum();
    let debits: Decimal = p
        .payments
        .iter()
        .filter(|x| x.direction == Direction::Debit)
        .map(|x| x.amount)
        .sum();
    assert_eq!((credits, debits), (dec!(23075.00), dec!(9430.17))); // TtlCdtNtries, TtlDbtNtries

    // An entry without TxDtls is one payment named by its AcctSvcrRef.
    assert_eq!(by_id(&p, "091029ACCTSTMTARCH02").amount, dec!(4000.00));
    // A TxDtls without an amount takes the entry's.
    assert_eq!(by_id(&p, "091029ACCTSTMTARCH01").amount, dec!(1000.12));
    assert_eq!(
        by_id(&p, "091029ARCH03002").free_text,
        ["Invoices 123 and 321"]
    );

    // Charges of 45.00 were taken from 5500.00: the remitted amount does not add up.
    let charged = by_id(&p, "091029ACCTSTMTARCH07");
    assert_eq!(charged.amount, dec!(5455.00));
    assert_eq!(
        charged.lines,
        [line(
            "RF98123456789012",
            ReferenceKind::Unknown,
            Some(dec!(5500.00))
        )]
    );
    assert!(
        charged
            .warnings
            .iter()
            .any(|w| w.contains("add up to 5500.00")),
        "{:?}",
        charged.warnings
    );

    let sct = by_id(&p, "EndToEndIdSCT01");
    assert_eq!(sct.payer.name.as_deref(), Some("DEBTOR"));
    assert!(
        sct.free_text
            .contains(&"ultimate debtor: ULTIMATE DEBTOR".to_string())
    );

    // Both charge transactions carry the same AcctSvcrRef: the second is made unique.
    let dup = by_id(&p, "091029ARCH09001#2");
    assert_eq!(dup.amount, dec!(100.00));
    assert!(
        dup.warnings
            .iter()
            .any(|w| w.contains("earlier transaction"))
    );
}

#[test]
fn genkgo_v4_structured_reference() {
    let p = fixture("camt053_genkgo_v4_strd.xml");
    assert_eq!(p.payments.len(), 1);
    let x = &p.payments[0];
    assert_eq!(x.payment_id, "AAAASESS-FP-CN_98765/01");
    // The transaction states 0 SEK on a EUR entry of 8.85: the booked amount is kept.
    assert_eq!((x.amount, x.currency.as_str()), (dec!(8.85), "EUR"));
    assert!(
        x.warnings.iter().any(|w| w.contains("0 SEK")),
        "{:?}",
        x.warnings
    );
    assert_eq!(
        x.payer,
        Payer {
            name: Some("NAME NAME".into()),
            account: Some("NL56AGDH9619008421".into())
        }
    );
    assert_eq!(
        x.lines,
        [line("4654654654654654", ReferenceKind::Unknown, None)]
    );
}

#[test]
fn postfinance_statement() {
    let p = fixture("camt053_postfinance_ch.xml");
    assert_eq!(p.payments.len(), 5);
    assert_eq!(total(&p), dec!(4811.42));
    let debit = by_id(&p, "0758103031480977");
    assert_eq!(
        (debit.direction, debit.amount),
        (Direction::Debit, dec!(77.70))
    );
    assert!(
        debit.warnings.iter().any(|w| w.contains("says CRDT")),
        "{:?}",
        debit.warnings
    );
    // Two entries share one AcctSvcrRef.
    assert_eq!(by_id(&p, "07582000303KBMSU").amount, dec!(1537.00));
    assert_eq!(by_id(&p, "07582000303KBMSU#2").amount, dec!(1692.22));
    assert!(by_id(&p, "07582000303F0C7U").free_text[0].starts_with("SAMMELGUTSCHRIFT FÜR KONTO"));
}

#[test]
fn postfinance_esr_batch() {
    let p = fixture("camt054_postfinance_esr.xml");
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.payments.len(), 6);
    let amounts: Vec<Decimal> = p.payments.iter().map(|x| x.amount).collect();
    assert_eq!(
        amounts,
        [
            dec!(250),
            dec!(200),
            dec!(300),
            dec!(324),
            dec!(463),
            dec!(147)
        ]
    );
    assert!(
        p.payments
            .iter()
            .all(|x| !x.warnings.iter().any(|w| w.contains("add up")))
    );
    let ids: Vec<&str> = p.payments.iter().map(|x| x.payment_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "EndToEndId-001-02-02",
            "EndToEndId-001-02-01",
            "EndToEndId-001-02-03",
            "180315CH02ZZ4OOX",
            "180315CH02ZZ4OOY",
            "180410CH02UZ2PC1"
        ]
    );
    let x = by_id(&p, "180315CH02ZZ4OOY");
    assert_eq!(
        x.lines,
        [line(
            "684388397169969395754931859",
            ReferenceKind::Unknown,
            None
        )]
    );
    assert_eq!(x.payer.account.as_deref(), Some("CH5109000000250092291"));
    assert_eq!(by_id(&p, "180410CH02UZ2PC1").direction, Direction::Debit);
}

#[test]
fn postfinance_ustrd_batch() {
    let p = fixture("camt054_postfinance_ustrd_strd.xml");
    assert_eq!(p.payments.len(), 6);
    assert_eq!(total(&p), dec!(1500.00));
    // A Strd holding only AddtlRmtInf is free text, not a line.
    assert!(
        p.payments
            .iter()
            .all(|x| x.lines.is_empty() && x.warnings.is_empty())
    );
    let x = by_id(&p, "EndToEndId-001-03-05");
    assert_eq!(x.amount, dec!(50.00));
    assert_eq!(x.free_text[0], "Rg.-Nr. 1234567890");
}

#[test]
fn a_reversal_is_a_returned_item_naming_its_original_by_end_to_end_id() {
    let p = fixture("camt054_reversal_rvslind_original.xml");
    let [rev, bare] = p.payments.as_slice() else {
        panic!("{:?}", p.payments)
    };
    // Its own id, so that it is never taken for a second sending of the original.
    assert_eq!(rev.payment_id, format!("E2E-NW-20261130-7{RETURN_SUFFIX}"));
    assert_eq!(
        (rev.direction, rev.amount, rev.currency.as_str()),
        (Direction::Debit, dec!(3420.75), "USD")
    );
    assert_eq!(
        rev.returned,
        Some(ReturnedItem {
            return_code: "AC04".into(),
            reason: Some("Closed account number".into()),
            original_trace: Some("E2E-NW-20261130-7".into()),
        })
    );
    assert_eq!(rev.payer.account.as_deref(), Some("021000021:4000123456"));
    // No transaction details: no original id and no reason, only the flag.
    assert_eq!(bare.payment_id, "BNK-RV-77002");
    assert_eq!(
        bare.returned,
        Some(ReturnedItem {
            return_code: "RVSL".into(),
            reason: None,
            original_trace: None,
        })
    );
}

#[test]
fn oca_reversal_read_in_place() {
    let Some((bytes, path)) = shared_sample("camt/camt053_oca_nl_ustrd_reversal.xml") else {
        return;
    };
    let p = parse(&bytes, &path).unwrap();
    assert_eq!(p.payments.len(), 4);
    // A reversal gets an id of its own; its end-to-end id names the original.
    let rev = by_id(&p, "TESTBANK/NL/20141229/01206408/return");
    assert_eq!(
        (rev.direction, rev.amount),
        (Direction::Debit, dec!(564.05))
    );
    assert!(rev.warnings.iter().any(|w| w.starts_with("reversal")));
    assert!(rev.warnings.iter().any(|w| w.contains("reason AC06")));
    let r = rev
        .returned
        .as_ref()
        .expect("a reversal is a returned item");
    assert_eq!(r.return_code, "AC06");
    assert_eq!(
        r.original_trace.as_deref(),
        Some("TESTBANK/NL/20141229/01206408")
    );
    let credit = by_id(&p, "115");
    assert_eq!(
        (credit.direction, credit.amount),
        (Direction::Credit, dec!(1405.31))
    );
    assert_eq!(credit.payer.account.as_deref(), Some("NL69ABNA0522123643"));
    assert_eq!(credit.free_text, ["#RD PARTY MEDIA CUSNO 90782 4210773"]);
}

#[test]
fn every_sample_detects_as_its_variant() {
    let dir = format!("{}/../fixtures/camt", env!("CARGO_MANIFEST_DIR"));
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let want = if name.starts_with("camt054") {
            Format::Camt054
        } else {
            Format::Camt053
        };
        assert_eq!(variant(&bytes), Some(want), "{name}");
    }
    let remt = format!(
        "{}/../fixtures/remt/remt001_bpc_tc1_two_invoices.xml",
        env!("CARGO_MANIFEST_DIR")
    );
    assert!(!looks_like(&std::fs::read(remt).unwrap()));
    assert!(!looks_like(b"ISA*00*          *00*"));
}

const HEAD: &str = "<?xml version=\"1.0\"?><Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.054.001.02\">\
        <BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>M1</MsgId></GrpHdr><Ntfctn><Id>N1</Id>";
const TAIL: &str = "</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>";

fn doc(entries: &str) -> String {
    format!("{HEAD}{entries}{TAIL}")
}

const GOOD: &str = "<Ntry><Amt Ccy=\"EUR\">10.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>";

#[test]
fn a_bad_entry_is_reported_with_its_path_and_the_rest_go_on() {
    let xml = doc(&format!(
        "{GOOD}{GOOD}<Ntry><Amt Ccy=\"EUR\">1O.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>{GOOD}"
    ));
    let p = parse(xml.as_bytes(), "bad.xml").unwrap();
    assert_eq!(p.payments.len(), 3);
    assert_eq!(p.errors.len(), 1);
    let e = &p.errors[0];
    assert_eq!(
        e.position,
        Position::XmlPath("/Document/BkToCstmrDbtCdtNtfctn/Ntfctn[1]/Ntry[3]/Amt".into())
    );
    assert!(
        e.to_string().starts_with(
            "bad.xml: /Document/BkToCstmrDbtCdtNtfctn/Ntfctn[1]/Ntry[3]/Amt: amount \"1O.00\""
        ),
        "{e}"
    );
    // Entries without any reference get positional ids from the notification's Id.
    assert_eq!(p.payments[0].payment_id, "N1/1");
    assert_eq!(p.payments[2].payment_id, "N1/4");
}

#[test]
fn entry_faults_name_what_is_missing() {
    for (entry, needle) in [
        (
            "<Ntry><CdtDbtInd>CRDT</CdtDbtInd></Ntry>",
            "entry without Amt",
        ),
        (
            "<Ntry><Amt>1</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>",
            "without a Ccy",
        ),
        (
            "<Ntry><Amt Ccy=\"EURO\">1</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>",
            "bad Ccy",
        ),
        ("<Ntry><Amt Ccy=\"EUR\">1</Amt></Ntry>", "without CdtDbtInd"),
        (
            "<Ntry><Amt Ccy=\"EUR\">1</Amt><CdtDbtInd>CR</CdtDbtInd></Ntry>",
            "neither CRDT nor DBIT",
        ),
        (
            "<Ntry><Amt Ccy=\"EUR\">3</Amt><CdtDbtInd>CRDT</CdtDbtInd><NtryDtls><TxDtls/><TxDtls/></NtryDtls></Ntry>",
            "batch entry has no amount",
        ),
    ] {
        let p = parse(doc(entry).as_bytes(), "f.xml").unwrap();
        let msgs: Vec<String> = p.errors.iter().map(|e| e.to_string()).collect();
        assert!(
            msgs.iter()
                .any(|m| m.contains(needle) && m.contains("Ntry[1]")),
            "{entry}: {msgs:?}"
        );
    }
}

#[test]
fn batch_totals_that_do_not_add_up_are_warned() {
    let xml = doc(
        "<Ntry><Amt Ccy=\"EUR\">30</Amt><CdtDbtInd>CRDT</CdtDbtInd><AcctSvcrRef>B</AcctSvcrRef>\
             <NtryDtls><TxDtls><Amt Ccy=\"EUR\">10</Amt></TxDtls><TxDtls><Amt Ccy=\"EUR\">15</Amt></TxDtls></NtryDtls></Ntry>",
    );
    let p = parse(xml.as_bytes(), "f.xml").unwrap();
    let ids: Vec<&str> = p.payments.iter().map(|x| x.payment_id.as_str()).collect();
    assert_eq!(ids, ["B/1", "B/2"]);
    assert!(
        p.payments
            .iter()
            .all(|x| x.warnings.iter().any(|w| w.contains("add up to 25")))
    );
}

#[test]
fn not_provided_end_to_end_id_counts_as_absent() {
    let xml = doc(
        "<Ntry><Amt Ccy=\"EUR\">1</Amt><CdtDbtInd>CRDT</CdtDbtInd><AcctSvcrRef>BANKREF</AcctSvcrRef>\
             <NtryDtls><TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs></TxDtls></NtryDtls></Ntry>",
    );
    assert_eq!(
        parse(xml.as_bytes(), "f").unwrap().payments[0].payment_id,
        "BANKREF"
    );
}

#[test]
fn files_that_are_not_camt_are_rejected() {
    let cases: [(&[u8], &str); 6] = [
        (b"", "no XML element"),
        (b"ISA*00*", "no XML element"),
        (
            b"<Document><RmtAdvc/></Document>",
            "not a camt.053 or camt.054",
        ),
        (b"<Document><BkToCstmrAcctRpt/></Document>", "camt.052"),
        (
            b"<Document><BkToCstmrStmt><Stmt><Ntry></Stmt>",
            "malformed XML",
        ),
        (b"<Document><BkToCstmrStmt>", "ends inside"),
    ];
    for (bytes, needle) in cases {
        let e = parse(bytes, "x.xml").unwrap_err();
        assert!(
            e.to_string().contains(needle),
            "{:?}: {e}",
            String::from_utf8_lossy(bytes)
        );
    }
    let e = parse(format!("{}<Ntry>", &HEAD).as_bytes(), "t.xml").unwrap_err();
    assert!(e.to_string().contains("/Ntfctn[1]/Ntry[1]"), "{e}");
}

#[test]
fn version_08_shapes_are_read() {
    let xml = "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\"><BkToCstmrStmt><Stmt>\
            <Ntry><Amt Ccy=\"USD\">98.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>PDNG</Cd></Sts>\
            <BookgDt><DtTm>2024-03-01T10:00:00</DtTm></BookgDt><NtryDtls><TxDtls>\
            <Refs><EndToEndId>E1</EndToEndId></Refs>\
            <RltdPties><Dbtr><Pty><Nm>ACME</Nm></Pty></Dbtr><DbtrAcct><Id><Othr><Id>123</Id></Othr></Id></DbtrAcct></RltdPties>\
            <RmtInf><Strd><RfrdDocInf><Tp><CdOrPrtry><Cd>CINV</Cd></CdOrPrtry></Tp><Nb>INV-1</Nb></RfrdDocInf>\
            <RfrdDocAmt><DuePyblAmt Ccy=\"USD\">100</DuePyblAmt><DscntApldAmt><Tp><Cd>TMDS</Cd></Tp><Amt Ccy=\"USD\">2</Amt></DscntApldAmt>\
            <RmtdAmt Ccy=\"USD\">98.00</RmtdAmt></RfrdDocAmt></Strd></RmtInf></TxDtls></NtryDtls></Ntry></Stmt></BkToCstmrStmt></Document>";
    let p = parse(xml.as_bytes(), "v8.xml").unwrap();
    let x = &p.payments[0];
    assert_eq!(
        x.payer,
        Payer {
            name: Some("ACME".into()),
            account: Some("123".into())
        }
    );
    assert_eq!(x.payment_date, chrono::NaiveDate::from_ymd_opt(2024, 3, 1));
    assert_eq!(x.warnings, ["entry status PDNG: not booked"]);
    assert_eq!(
        x.lines,
        [RemittanceLine {
            reference: Some("INV-1".into()),
            reference_kind: ReferenceKind::Invoice,
            amount_paid: Some(dec!(98.00)),
            invoice_amount: Some(dec!(100)),
            discount: Some(dec!(2)),
            adjustments: vec![],
        }]
    );
}

fn sample_payments() -> Vec<Payment> {
    let base = Payment {
        payment_id: "P-1".into(),
        format: "synth".into(),
        direction: Direction::Credit,
        payment_date: chrono::NaiveDate::from_ymd_opt(2024, 5, 2),
        amount: dec!(1234.50),
        currency: Currency::USD,
        payer: Payer {
            name: Some("Acme & Sons <AP>".into()),
            account: Some("DE89370400440532013000".into()),
        },
        lines: vec![
            RemittanceLine {
                reference: Some("INV-1001".into()),
                reference_kind: ReferenceKind::Invoice,
                amount_paid: Some(dec!(980.00)),
                invoice_amount: Some(dec!(1000.00)),
                discount: Some(dec!(20.00)),
                adjustments: vec![],
            },
            RemittanceLine {
                reference: Some("CM-7".into()),
                reference_kind: ReferenceKind::CreditNote,
                amount_paid: Some(dec!(-45.50)),
                invoice_amount: Some(dec!(-45.50)),
                ..RemittanceLine::default()
            },
            RemittanceLine {
                reference: Some("PO 88".into()),
                reference_kind: ReferenceKind::PurchaseOrder,
                amount_paid: Some(dec!(300.00)),
                invoice_amount: Some(dec!(310.00)),
                adjustments: vec![
                    Adjustment {
                        amount: dec!(12.00),
                        reason_code: Some("CS".into()),
                        text: Some("short shipped".into()),
                    },
                    Adjustment {
                        amount: dec!(-2.00),
                        reason_code: None,
                        text: None,
                    },
                ],
                ..RemittanceLine::default()
            },
            RemittanceLine {
                amount_paid: Some(dec!(0)),
                ..RemittanceLine::default()
            },
        ],
        free_text: vec!["paying INV 1001 less credit".into()],
        warnings: vec![],
        returned: None,
    };
    let debit = Payment {
        payment_id: "P-2".into(),
        direction: Direction::Debit,
        payment_date: None,
        amount: dec!(7),
        currency: "EUR".parse().unwrap(),
        payer: Payer {
            name: None,
            account: Some("12-345".into()),
        },
        lines: vec![],
        free_text: vec![],
        ..base.clone()
    };
    vec![base, debit]
}

fn comparable(mut p: Payment, format: &str) -> Payment {
    p.warnings.clear();
    p.format = format.to_string();
    p
}

#[test]
fn written_camt054_reads_back_the_same_payments() {
    let payments = sample_payments();
    let mut out = Vec::new();
    write_camt054(&payments, &mut out).unwrap();
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(
        text.contains("camt.054.001.08") && text.contains("<Nm>Acme &amp; Sons &lt;AP&gt;</Nm>")
    );
    assert_eq!(variant(&out), Some(Format::Camt054));
    let parsed = parse(&out, "written.xml").unwrap();
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let back: Vec<Payment> = parsed
        .payments
        .into_iter()
        .map(|p| comparable(p, "synth"))
        .collect();
    assert_eq!(back, payments);
}

#[test]
fn the_writer_refuses_what_the_schema_cannot_hold() {
    let mut p = sample_payments().remove(0);
    p.lines[0].amount_paid = Some(dec!(-1));
    let e = write_camt054(&[p], Vec::new()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("INV-1001"), "{e}");

    let mut p = sample_payments().remove(0);
    p.payment_id = "X".repeat(36);
    assert!(write_camt054(&[p], Vec::new()).is_err());
    let mut p = sample_payments().remove(0);
    p.lines[2].adjustments[0].reason_code = Some("TOO/LONG".into());
    assert!(write_camt054(&[p], Vec::new()).is_err());
    let mut p = sample_payments().remove(0);
    p.lines[2].adjustments[0].text = Some("/RSN/X/".into());
    assert!(write_camt054(&[p], Vec::new()).is_err());
    let mut p = sample_payments().remove(0);
    p.amount = dec!(1.000001);
    assert!(write_camt054(&[p], Vec::new()).is_err());
}

#[test]
fn reason_codes_over_four_characters_travel_in_addtlinf() {
    let mut payments = sample_payments();
    payments[0].lines[2].adjustments[0].reason_code = Some("DAMAGE".into());
    payments[0].lines[2].adjustments[0].text = Some("CARTON / CRUSHED".into());
    payments[0].lines[2].adjustments[1].reason_code = Some("PROMO".into());
    let mut xml = Vec::new();
    write_camt054(&payments, &mut xml).unwrap();
    let xml = String::from_utf8(xml).unwrap();
    assert!(
        xml.contains("<AddtlInf>/RSN/DAMAGE/CARTON / CRUSHED</AddtlInf>"),
        "{xml}"
    );
    let back = parse(xml.as_bytes(), "w.xml").unwrap();
    let a = &back.payments[0].lines[2].adjustments;
    assert_eq!(a[0].reason_code.as_deref(), Some("DAMAGE"));
    assert_eq!(a[0].text.as_deref(), Some("CARTON / CRUSHED"));
    assert_eq!(
        (a[1].reason_code.as_deref(), a[1].text.as_deref()),
        (Some("PROMO"), None)
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn text(max: usize) -> impl Strategy<Value = Option<String>> {
        proptest::option::of(proptest::string::string_regex(&format!("[ -~]{{0,{max}}}")).unwrap())
            .prop_map(|s| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
    }

    fn money(max: i64) -> impl Strategy<Value = Decimal> {
        (0..max, 0u32..=2).prop_map(|(m, s)| Decimal::new(m, s))
    }

    fn line() -> impl Strategy<Value = RemittanceLine> {
        let kind = prop_oneof![
            Just(ReferenceKind::Invoice),
            Just(ReferenceKind::CreditNote),
            Just(ReferenceKind::PurchaseOrder),
            Just(ReferenceKind::Unknown)
        ];
        let adjustment = (-50_000i64..50_000, text(4), text(60)).prop_map(|(a, r, t)| Adjustment {
            amount: Decimal::new(a, 2),
            reason_code: r,
            text: t,
        });
        (
            kind,
            text(35),
            proptest::option::of(money(10_000_000)),
            proptest::option::of(money(10_000_000)),
            proptest::option::of(money(100_000)),
            proptest::collection::vec(adjustment, 0..3),
        )
            .prop_map(|(kind, reference, paid, invoice, discount, adjustments)| {
                let sign = |v: Decimal| {
                    if kind == ReferenceKind::CreditNote {
                        -v
                    } else {
                        v
                    }
                };
                RemittanceLine {
                    reference,
                    reference_kind: kind,
                    amount_paid: paid.map(sign),
                    invoice_amount: invoice.map(sign),
                    discount,
                    adjustments,
                }
            })
    }

    fn payment() -> impl Strategy<Value = Payment> {
        let currency = prop_oneof![Just("USD"), Just("EUR"), Just("CHF"), Just("JPY")];
        (
            any::<bool>(),
            proptest::option::of(0i64..20_000),
            money(100_000_000_000),
            currency,
            text(140),
            prop_oneof![
                Just(None),
                Just(Some("CH5109000000250092291".to_string())),
                "[0-9]{4,17}".prop_map(Some)
            ],
            proptest::collection::vec(line(), 0..5),
            proptest::collection::vec(text(140), 0..3),
        )
            .prop_map(
                |(credit, day, amount, ccy, name, account, lines, free)| Payment {
                    payment_id: String::new(),
                    format: "synth".into(),
                    direction: if credit {
                        Direction::Credit
                    } else {
                        Direction::Debit
                    },
                    payment_date: day.and_then(|d| {
                        chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
                            .and_then(|s| s.checked_add_days(chrono::Days::new(d as u64)))
                    }),
                    amount,
                    currency: ccy.parse().unwrap(),
                    payer: Payer { name, account },
                    lines: lines
                        .into_iter()
                        .filter(|l| *l != RemittanceLine::default())
                        .collect(),
                    free_text: free.into_iter().flatten().collect(),
                    warnings: vec![],
                    returned: None,
                },
            )
    }

    proptest! {
        #[test]
        fn write_then_parse_is_identity(mut payments in proptest::collection::vec(payment(), 0..6)) {
            for (i, p) in payments.iter_mut().enumerate() {
                p.payment_id = format!("PAY-{i}");
            }
            let mut out = Vec::new();
            write_camt054(&payments, &mut out).unwrap();
            let parsed = parse(&out, "w.xml").unwrap();
            prop_assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
            let back: Vec<Payment> = parsed.payments.into_iter().map(|p| comparable(p, "synth")).collect();
            prop_assert_eq!(back, payments);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse(&bytes, "fuzz.xml");
            let _ = variant(&bytes);
        }

        #[test]
        fn xml_ish_input_never_panics(tokens in proptest::collection::vec(prop_oneof![
            Just("<Document>"), Just("</Document>"), Just("<BkToCstmrStmt>"), Just("<BkToCstmrDbtCdtNtfctn>"),
            Just("<Stmt>"), Just("</Stmt>"), Just("<Ntfctn>"), Just("<Ntry>"), Just("</Ntry>"),
            Just("<Amt Ccy=\"EUR\">"), Just("<Amt>"), Just("</Amt>"), Just("12.50"), Just("99999999999999999999999999999"),
            Just("<CdtDbtInd>CRDT</CdtDbtInd>"), Just("<CdtDbtInd>DBIT</CdtDbtInd>"), Just("<NtryDtls>"), Just("</NtryDtls>"),
            Just("<TxDtls>"), Just("</TxDtls>"), Just("<TxDtls/>"), Just("<RmtInf>"), Just("</RmtInf>"), Just("<Strd>"), Just("</Strd>"),
            Just("<RfrdDocInf><Tp><CdOrPrtry><Cd>CREN</Cd></CdOrPrtry></Tp><Nb>1</Nb></RfrdDocInf>"),
            Just("<RfrdDocAmt>"), Just("</RfrdDocAmt>"), Just("<CdtNoteAmt Ccy=\"EUR\">79228162514264337593543950335</CdtNoteAmt>"),
            Just("<RmtdAmt Ccy=\"EUR\">79228162514264337593543950335</RmtdAmt>"), Just("<DuePyblAmt Ccy=\"USD\">1</DuePyblAmt>"),
            Just("<TaxAmt><Amt Ccy=\"EUR\">5</Amt></TaxAmt>"), Just("<AdjstmntAmtAndRsn><Amt Ccy=\"EUR\">79228162514264337593543950335</Amt><CdtDbtInd>CRDT</CdtDbtInd></AdjstmntAmtAndRsn>"),
            Just("<LineDtls><Amt><AdjstmntAmtAndRsn><Amt>1</Amt></AdjstmntAmtAndRsn></Amt></LineDtls>"),
            Just("&amp;"), Just("&#0;"), Just("&#x110000;"), Just("&nope;"), Just("<![CDATA[x]]>"), Just("<!-- c -->"),
            Just("<?xml version=\"1.0\" encoding=\"windows-1252\"?>"), Just("\u{FEFF}"), Just("<a:Ntry xmlns:a=\"x\">"),
            Just("<BookgDt><Dt>2024-02-30</Dt></BookgDt>"), Just("<Refs><EndToEndId>E</EndToEndId></Refs>"), Just("<RvslInd>true</RvslInd>"),
        ], 0..60)) {
            let s: String = tokens.concat();
            let _ = parse(s.as_bytes(), "fuzz.xml");
            let _ = crate::formats::remt::parse(s.as_bytes(), "fuzz.xml");
        }
    }
}
