use super::elements::*;
use super::tokenizer::*;
use super::writer::*;
use super::*;
use crate::domain::{
    Adjustment, Currency, Direction, Payer, Payment, ReferenceKind, RemittanceLine,
};
use crate::formats::{FormatError, Parsed, Position};
use chrono::NaiveDate;
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::io::{self, Read};
use std::path::PathBuf;

/// A third-party sample ([`crate::formats::samples`]): skipped without it, a failure under CI.
fn sample(rel: &str) -> Option<Vec<u8>> {
    crate::formats::samples::read(rel).map(|(b, _)| b)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/x12")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read(bytes: &[u8]) -> Parsed {
    parse(bytes, "test.x12").expect("file-level parse")
}

fn one(bytes: &[u8]) -> Payment {
    let p = read(bytes);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.payments.len(), 1);
    p.payments.into_iter().next().unwrap()
}

fn line(reference: &str, kind: ReferenceKind, paid: Option<Decimal>) -> RemittanceLine {
    RemittanceLine {
        reference: Some(reference.into()),
        reference_kind: kind,
        amount_paid: paid,
        ..RemittanceLine::default()
    }
}

fn has_warning(p: &Payment, needle: &str) -> bool {
    p.warnings.iter().any(|w| w.contains(needle))
}

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

// ---- the third-party samples, as verified by reading them ----

#[test]
fn sample_vijshta_two_ent_with_st_se_control_mismatch() {
    let Some(b) = sample("edi820/820_1010_vijshta_two_ent.txt") else {
        return;
    };
    let p = one(&b);
    assert_eq!(p.payment_id, "5600516513");
    assert_eq!(p.amount, dec!(66.55));
    assert_eq!(p.direction, Direction::Credit);
    assert_eq!(p.payment_date, date(2005, 4, 13));
    assert_eq!(p.payer.name.as_deref(), Some("VIJSHTA Business Incor"));
    assert_eq!(p.payer.account.as_deref(), Some("051302352:601813151"));
    assert_eq!(p.lines.len(), 2);
    assert_eq!(
        p.lines[0],
        line(
            "3151551151025500",
            ReferenceKind::Invoice,
            Some(dec!(36.25))
        )
    );
    assert_eq!(p.lines[1].reference.as_deref(), Some("3151535551301500"));
    assert_eq!(p.lines[1].amount_paid, Some(dec!(52.35)));
    assert_eq!(p.lines[1].invoice_amount, Some(dec!(52.35)));
    assert_eq!(p.lines[1].discount, Some(dec!(0)));
    assert!(p.free_text.contains(&"EM 3151551151".to_string()));
    // ST02 0001203 against SE02 000001203; RMR04 sum 88.60 against BPR02 66.55.
    assert!(has_warning(
        &p,
        "SE02 control number \"000001203\" differs from ST02 \"0001203\""
    ));
    assert!(has_warning(&p, "remittance total 88.60"));
    assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
}

#[test]
fn sample_mortgage_bankers_bom_crlf_indented_cr_terminator() {
    let Some(b) = sample("edi820/820_4010_mortgage_bankers_ent_nm1.txt") else {
        return;
    };
    let p = one(&b);
    assert_eq!(p.payment_id, "888999");
    assert_eq!(p.amount, dec!(337.67));
    assert_eq!(p.payment_date, date(1999, 1, 5));
    // No N1*PR: the payer is named only as N1*41 (submitter), which is not the payer.
    assert_eq!(p.payer.name, None);
    assert_eq!(p.payer.account.as_deref(), Some("111111111:900555"));
    // RMR*ID (insurance certificate): a reference of no kind cashmatch knows.
    assert_eq!(
        p.lines,
        vec![
            line("8889444", ReferenceKind::Unknown, Some(dec!(236.00))),
            line("66666789", ReferenceKind::Unknown, Some(dec!(10167))),
        ]
    );
    assert_eq!(p.free_text, vec!["LD 992222", "LD 12345"]);
    // SE*24 is right; only the totals disagree.
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(has_warning(&p, "remittance total 10403.00"));
}

#[test]
fn sample_safeway_credit_memos_and_debit_adx_outside_rmr() {
    let Some(b) = sample("edi820/820_4010_safeway_ent_adx_rmr.txt") else {
        return;
    };
    let p = one(&b);
    assert_eq!(p.payment_id, "4311000190");
    assert_eq!(p.amount, dec!(416093.15));
    assert_eq!(p.payment_date, date(2005, 10, 20));
    assert_eq!(p.payer.name.as_deref(), Some("Safeway - U. S. Corporate"));
    assert_eq!(p.payer.account.as_deref(), Some("053000219:2000014804300"));
    assert_eq!(p.lines.len(), 10);
    let credit_memos: Vec<_> = p
        .lines
        .iter()
        .filter(|l| l.reference_kind == ReferenceKind::CreditNote)
        .collect();
    assert_eq!(credit_memos.len(), 3);
    assert_eq!(
        p.lines[0],
        line(
            "WSO_144324_05",
            ReferenceKind::CreditNote,
            Some(dec!(-13676.81))
        )
    );
    assert_eq!(
        p.lines[1],
        line(
            "WSO_144343_05",
            ReferenceKind::CreditNote,
            Some(dec!(-18200))
        )
    );
    let inv = &p.lines[2];
    assert_eq!(inv.reference.as_deref(), Some("6092392"));
    assert_eq!(inv.reference_kind, ReferenceKind::Invoice);
    assert_eq!(
        (inv.amount_paid, inv.invoice_amount, inv.discount),
        (
            Some(dec!(20430.34)),
            Some(dec!(20851.11)),
            Some(dec!(420.77))
        )
    );
    // ADX*210*ZZ*DB*P7817948-20: a debit memo that adds 210 to the payment.
    let db = &p.lines[7];
    assert_eq!(db.reference.as_deref(), Some("P7817948-20"));
    assert_eq!(db.amount_paid, None);
    assert_eq!(
        db.adjustments,
        vec![Adjustment {
            amount: dec!(-210),
            reason_code: Some("ZZ".into()),
            text: None
        }]
    );
    let last = &p.lines[9];
    assert_eq!(last.reference.as_deref(), Some("6093692"));
    assert_eq!(last.discount, Some(dec!(5901.76)));
    assert_eq!(p.lines[8].discount, None);
    // RMR04 448862.76, ADX -32559.61: 416303.15, 210 more than BPR02 (the DB memo).
    assert!(has_warning(&p, "remittance total 416303.15"));
    assert!(has_warning(&p, "difference -210.00"));
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(
        p.free_text
            .contains(&"UQ 302 -MEALS/INGREDIENTS".to_string())
    );
}

#[test]
fn sample_scana_trailing_spaces_and_at_component_separator() {
    let Some(b) = sample("edi820/820_4010_scana_energy_ctx.txt") else {
        return;
    };
    let p = one(&b);
    assert_eq!(p.payment_id, "0001");
    assert_eq!(p.amount, dec!(10000));
    assert_eq!(p.payment_date, date(2003, 1, 1));
    assert_eq!(p.payer.name.as_deref(), Some("CUSTOMER NAME"));
    assert_eq!(
        p.lines,
        vec![line(
            "5189800007544",
            ReferenceKind::Unknown,
            Some(dec!(5000))
        )]
    );
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(has_warning(&p, "remittance total 5000"));
}

#[test]
fn sample_wikipedia_backslash_terminator_reconciles() {
    let Some(b) = sample("edi820/820_4010_wikipedia_whizco.txt") else {
        return;
    };
    let p = one(&b);
    assert_eq!(p.payment_id, "0310162359");
    assert_eq!(p.amount, dec!(77.77));
    assert_eq!(p.payer.name.as_deref(), Some("WHIZCO OF AMERICA INC"));
    assert_eq!(p.payer.account.as_deref(), Some("234056789:0099109999"));
    assert_eq!(
        p.lines,
        vec![
            line(
                "1111111111111111",
                ReferenceKind::Invoice,
                Some(dec!(11.11))
            ),
            line(
                "2222222222222222",
                ReferenceKind::Invoice,
                Some(dec!(22.22))
            ),
            line(
                "4444444444444444",
                ReferenceKind::Invoice,
                Some(dec!(44.44))
            ),
        ]
    );
    // The BPR lacks BPR11, so the YYMMDD date 031016 sits in BPR15.
    assert_eq!(p.payment_date, date(2003, 10, 16));
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(has_warning(
        &p,
        "BPR16 (date) is missing and BPR15 holds a date"
    ));
}

#[test]
fn sample_premium_29_ent_with_adx_in_rmr_loops() {
    let Some(b) = sample("edi820/820_4010X061_premium_29ent_adx.txt") else {
        return;
    };
    let p = one(&b);
    assert_eq!(p.payment_id, "999999999");
    assert_eq!(p.amount, dec!(99999.99));
    assert_eq!(p.payment_date, date(2011, 5, 3));
    assert_eq!(p.payer.name.as_deref(), Some("XXXXXX XXX"));
    assert_eq!(p.lines.len(), 29);
    assert!(
        p.lines
            .iter()
            .all(|l| l.reference_kind == ReferenceKind::Invoice)
    );
    assert!(p.lines.iter().all(|l| l.adjustments.len() == 1));
    let codes = |c: &str| {
        p.lines
            .iter()
            .filter(|l| l.adjustments[0].reason_code.as_deref() == Some(c))
            .count()
    };
    assert_eq!((codes("53"), codes("52")), (24, 5));
    let first = &p.lines[0];
    assert_eq!(first.amount_paid, Some(dec!(16971.04)));
    assert_eq!(first.invoice_amount, Some(dec!(0)));
    // ADX01 +16971.04 increased the payment, so the adjustment (positive reduces) is negative.
    assert_eq!(first.adjustments[0].amount, dec!(-16971.04));
    let paid: Decimal = p.lines.iter().filter_map(|l| l.amount_paid).sum();
    assert_eq!(paid, dec!(28051.32));
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(has_warning(&p, "remittance total 28051.32"));
}

#[test]
fn sample_vics_check_without_trn_and_lf_terminator() {
    let Some(b) = sample("edi820/820_4010VICS_check_7inv_297it1.x12") else {
        return;
    };
    let p = one(&b);
    assert_eq!(p.payment_id, "111111111/000001692/000004420");
    assert!(has_warning(&p, NO_TRN_WARNING));
    assert_eq!(p.amount, dec!(47828.63));
    assert_eq!(p.payment_date, date(2004, 8, 5));
    assert_eq!(p.payer, Payer::default());
    assert_eq!(p.lines.len(), 7);
    let refs: Vec<_> = p
        .lines
        .iter()
        .filter_map(|l| l.reference.as_deref())
        .collect();
    assert_eq!(
        refs,
        [
            "0806170806",
            "0806190806",
            "617080602",
            "617080603",
            "617080604",
            "617080605",
            "619080602"
        ]
    );
    let l = &p.lines[4];
    assert_eq!(
        (l.amount_paid, l.invoice_amount, l.discount),
        (Some(dec!(13992.79)), Some(dec!(12165)), Some(dec!(349.82)))
    );
    let discounts: Decimal = p.lines.iter().filter_map(|l| l.discount).sum();
    assert_eq!(discounts, dec!(1274.29));
    assert!(p.free_text.contains(&"CK 2395888".to_string()));
    assert!(p.free_text.contains(&"PO 15302570000".to_string()));
    // SE*330 counts the 297 IT1 lines right.
    assert!(!has_warning(&p, "SE01"));
    assert!(has_warning(&p, "remittance total 50971.92"));
}

#[test]
fn sample_two_st_cad_with_nak_terminator() {
    let Some(b) = sample("edi820/820_4030_two_st_cad_nak_terminator.x12") else {
        return;
    };
    let parsed = read(&b);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let [a, b] = parsed.payments.as_slice() else {
        panic!("{:?}", parsed.payments)
    };
    assert_eq!(a.payment_id, "1111111111/017000934/017001511");
    assert_eq!(b.payment_id, "1111111111/017000934/017001512");
    for p in [a, b] {
        assert_eq!(p.currency.as_str(), "CAD");
        assert_eq!(p.payment_date, date(2005, 5, 31));
        assert!(has_warning(p, "BPR01 H: notification only"));
    }
    assert_eq!((a.amount, b.amount), (dec!(561.72), dec!(236.33)));
    assert_eq!(
        a.lines,
        vec![line(
            "00583236",
            ReferenceKind::PurchaseOrder,
            Some(dec!(541.2))
        )]
    );
    assert_eq!(
        b.lines,
        vec![line(
            "00583247",
            ReferenceKind::PurchaseOrder,
            Some(dec!(227.7))
        )]
    );
    assert!(a.free_text.contains(&"541.20".to_string()));
}

#[test]
fn sample_home_depot_template_is_rejected_at_bpr02() {
    let Some(b) = sample("edi820/820_4060_homedepot_template_placeholders.txt") else {
        return;
    };
    let parsed = read(&b);
    assert!(parsed.payments.is_empty());
    let [e] = parsed.errors.as_slice() else {
        panic!("{:?}", parsed.errors)
    };
    assert_eq!(
        e.position,
        Position::Segment {
            index: 4,
            id: "BPR".into(),
            element: Some(2)
        }
    );
    assert!(e.message.contains("\"TOTAL DOLLAR AMT OF CHECK\""), "{e}");
    assert_eq!(
        e.to_string(),
        "test.x12: segment 4 (BPR), element BPR02: transaction 000000044: BPR02 is not an \
         amount: \"TOTAL DOLLAR AMT OF CHECK\""
    );
}

#[test]
fn every_sample_is_detected() {
    for name in [
        "820_1010_vijshta_two_ent.txt",
        "820_4010VICS_check_7inv_297it1.x12",
        "820_4010X061_premium_29ent_adx.txt",
        "820_4010_mortgage_bankers_ent_nm1.txt",
        "820_4010_safeway_ent_adx_rmr.txt",
        "820_4010_scana_energy_ctx.txt",
        "820_4010_wikipedia_whizco.txt",
        "820_4030_two_st_cad_nak_terminator.x12",
        "820_4060_homedepot_template_placeholders.txt",
    ] {
        let Some(b) = sample(&format!("edi820/{name}")) else {
            return;
        };
        let head = &b[..b.len().min(4096)];
        assert!(looks_like(head), "{name}");
        assert!(!crate::formats::nacha::looks_like(head), "{name}");
    }
}

// ---- the project's own fixtures ----

#[test]
fn fixture_005010_two_transactions_reconcile() {
    let parsed = read(&fixture("820_005010_two_st_adx_credit_memo.x12"));
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let [a, b] = parsed.payments.as_slice() else {
        panic!()
    };
    assert!(
        a.warnings.is_empty() && b.warnings.is_empty(),
        "{:?} {:?}",
        a.warnings,
        b.warnings
    );
    assert_eq!(a.payment_id, "ACH20240315A1");
    assert_eq!(a.amount, dec!(1530.50));
    assert_eq!(a.payment_date, date(2024, 3, 15));
    assert_eq!(a.payer.name.as_deref(), Some("ACME INDUSTRIAL SUPPLY CO"));
    assert_eq!(a.payer.account.as_deref(), Some("021000021:123456789"));
    assert_eq!(a.free_text, vec!["CK 000417"]);
    assert_eq!(a.lines.len(), 4);
    assert_eq!(
        a.lines[0],
        line("CM-7781", ReferenceKind::CreditNote, Some(dec!(-120.00)))
    );
    assert_eq!(a.lines[2].discount, Some(dec!(10.00)));
    assert_eq!(
        a.lines[3].adjustments,
        vec![Adjustment {
            amount: dec!(20.00),
            reason_code: Some("CS".into()),
            text: Some("DAMAGED CARTON".into())
        }]
    );
    assert_eq!(b.payment_id, "ACH20240316B2");
    assert_eq!(
        b.lines,
        vec![line(
            "PO-55012",
            ReferenceKind::PurchaseOrder,
            Some(dec!(250))
        )]
    );
    assert_eq!(b.free_text, vec!["PARTIAL PAYMENT ON ORDER"]);
}

#[test]
fn fixture_two_interchanges_with_their_own_delimiters() {
    let bytes = fixture("820_004010_two_interchanges_pipe_and_newline.x12");
    let parsed = read(&bytes);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let [a, b] = parsed.payments.as_slice() else {
        panic!()
    };
    assert_eq!(a.payment_id, "REV-2024-0401");
    assert_eq!(a.direction, Direction::Debit);
    assert_eq!(
        a.payment_date,
        date(2024, 4, 1),
        "dated by DTM*097 when BPR16 is absent"
    );
    assert_eq!(a.payer.account.as_deref(), Some("021000021:55501234"));
    assert!(has_warning(
        a,
        "SE01 says 9 segments, the transaction has 8"
    ));
    assert!(has_warning(
        a,
        "GE01 of group 501 says 2 transactions, the group has 1"
    ));
    assert_eq!(a.warnings.len(), 2, "{:?}", a.warnings);

    assert_eq!(b.payment_id, "CHK-88112");
    assert_eq!(b.amount, dec!(900));
    assert_eq!(b.payment_date, date(2024, 4, 2));
    assert_eq!(b.free_text, vec!["SEE ATTACHED STATEMENT"]);
    assert_eq!(b.lines.len(), 3);
    assert_eq!(b.lines[0].reference, None);
    assert_eq!(
        b.lines[0].adjustments,
        vec![Adjustment {
            amount: dec!(50),
            reason_code: Some("AX".into()),
            text: Some("FREIGHT ALLOWANCE".into())
        }]
    );
    assert_eq!(
        b.lines[2],
        line("CN-3002", ReferenceKind::CreditNote, Some(dec!(-50)))
    );
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);

    let mut t = Tokenizer::new(bytes.as_slice(), "t");
    let mut seen = Vec::new();
    while let Some(seg) = t.next_segment().unwrap() {
        if seg.id() == b"ISA" {
            seen.push(t.delimiters());
        }
    }
    let d = |e, c, s| {
        Some(Delimiters {
            element: e,
            component: c,
            segment: s,
            repetition: None,
        })
    };
    assert_eq!(seen, vec![d(b'|', b'>', b'!'), d(b'*', b':', b'\n')]);
}

#[test]
fn fixture_faulty_transactions_are_reported_and_the_good_one_kept() {
    let parsed = read(&fixture("820_005010_faulty_transactions.x12"));
    let ids: Vec<_> = parsed
        .payments
        .iter()
        .map(|p| p.payment_id.as_str())
        .collect();
    assert_eq!(ids, ["GOOD-1"]);
    let positions: Vec<_> = parsed.errors.iter().map(|e| e.position.clone()).collect();
    let at = |index, id: &str, element| Position::Segment {
        index,
        id: id.into(),
        element,
    };
    assert_eq!(
        positions,
        vec![
            at(13, "RMR", Some(4)),
            at(15, "ST", Some(1)),
            at(19, "BPR", Some(3))
        ]
    );
    assert!(
        parsed.errors[0]
            .message
            .contains("RMR04 is not an amount: \"12O.00\"")
    );
    assert!(
        parsed.errors[1]
            .message
            .contains("only 820 transaction sets")
    );
    assert!(parsed.errors[2].message.contains("BPR03 must be C or D"));
}

#[test]
fn the_repetition_separator_is_read_from_isa11_from_00402() {
    let b = fixture("820_005010_two_st_adx_credit_memo.x12");
    let mut t = Tokenizer::new(b.as_slice(), "t");
    let isa = t.next_segment().unwrap().unwrap();
    assert_eq!(isa.len(), 17);
    assert_eq!(isa.el(12), b"00501");
    assert_eq!(t.delimiters().unwrap().repetition, Some(b'^'));
}

// ---- tolerance and faults ----

#[test]
fn terminators_bom_and_line_breaks_do_not_change_the_result() {
    let original = String::from_utf8(fixture("820_005010_two_st_adx_credit_memo.x12")).unwrap();
    let expected = read(original.as_bytes());
    assert_eq!(expected.payments.len(), 2);
    for (terminator, after) in [
        ("\u{15}", "\r\n"),
        ("\\", "\r\n    "),
        ("~", ""),
        ("'", "\n"),
    ] {
        let text = original.replace("~\n", &format!("{terminator}{after}"));
        for bom in ["", "\u{feff}"] {
            let bytes = format!("{bom}{text}");
            assert!(looks_like(bytes.as_bytes()), "{terminator:?}");
            let parsed = read(bytes.as_bytes());
            assert_eq!(
                parsed.payments, expected.payments,
                "{terminator:?} {after:?}"
            );
            assert!(parsed.errors.is_empty());
        }
    }
}

#[test]
fn several_groups_in_one_interchange() {
    let text = format!(
        "{ISA}GS*RA*S*R*20240101*1200*1*X*004010~ST*820*1~BPR*C*5*C~TRN*1*A~SE*4*1~GE*1*1~\
         GS*RA*S*R*20240101*1200*2*X*004010~ST*820*1~BPR*C*6*C~TRN*1*B~SE*4*1~\
         ST*820*2~BPR*C*7*C~TRN*1*C~SE*4*2~GE*2*2~IEA*2*000000001~"
    );
    let parsed = read(text.as_bytes());
    let ids: Vec<_> = parsed
        .payments
        .iter()
        .map(|p| p.payment_id.as_str())
        .collect();
    assert_eq!(ids, ["A", "B", "C"]);
    assert!(
        parsed.payments.iter().all(|p| p.warnings.is_empty()),
        "{:?}",
        parsed.payments
    );
}

const ISA: &str = "ISA*00*          *00*          *ZZ*S              *ZZ*R              \
                   *240101*1200*U*00401*000000001*0*P*>~";

fn envelope(body: &str) -> String {
    format!("{ISA}GS*RA*S*R*20240101*1200*1*X*004010~{body}GE*1*1~IEA*1*000000001~")
}

#[test]
fn a_missing_se_keeps_the_payment_with_a_warning() {
    let text = format!("{ISA}GS*RA*S*R*20240101*1200*1*X*004010~ST*820*1~BPR*C*5*C~TRN*1*T1~");
    let p = one(text.as_bytes());
    assert_eq!(p.payment_id, "T1");
    assert!(has_warning(&p, "ends without an SE segment"));
    assert!(has_warning(&p, "group 1 has no GE segment"));
    assert!(has_warning(&p, "interchange 000000001 has no IEA segment"));
}

#[test]
fn a_transaction_without_bpr_is_an_error() {
    let parsed = read(envelope("ST*820*1~TRN*1*T1~SE*3*1~").as_bytes());
    assert!(parsed.payments.is_empty());
    let [e] = parsed.errors.as_slice() else {
        panic!()
    };
    assert_eq!(
        e.position,
        Position::Segment {
            index: 3,
            id: "ST".into(),
            element: None
        }
    );
    assert!(e.message.contains("no BPR segment"));
}

#[test]
fn not_x12_is_a_file_level_error() {
    let e = parse(b"hello, world", "memo.txt").unwrap_err();
    assert!(e.message.contains("expected an ISA segment"), "{e}");
    let e = parse(b"ISA*00*  *00", "short.x12").unwrap_err();
    assert!(e.message.contains("cut short"), "{e}");
    let e = parse(b"ISA*00*1*2*3*4*5*6*7*8*9*10*11*12*13*14*15*AB", "bad.x12").unwrap_err();
    assert!(e.message.contains("ISA16"), "{e}");
    assert!(parse(b"", "empty").unwrap().payments.is_empty());
}

#[test]
fn garbage_after_the_last_iea_is_reported_once() {
    let text = format!(
        "{}JUNK*1~MORE*2~",
        envelope("ST*820*1~BPR*C*5*C~TRN*1*T~SE*4*1~")
    );
    let parsed = read(text.as_bytes());
    assert_eq!(parsed.payments.len(), 1);
    assert_eq!(parsed.errors.len(), 1);
    assert!(parsed.errors[0].message.contains("outside any interchange"));
}

#[test]
fn amounts_are_strict_decimals() {
    assert_eq!(parse_amount(b"-18200"), Ok(dec!(-18200)));
    assert_eq!(parse_amount(b".015"), Ok(dec!(0.015)));
    assert_eq!(parse_amount(b"+5"), Ok(dec!(5)));
    for bad in [
        &b""[..],
        b"-",
        b".",
        b"1.2.3",
        b"1,000.00",
        b"1e5",
        b"12O",
        b"--1",
        b"1_000",
    ] {
        assert!(
            parse_amount(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(parse_amount(b"99999999999999999999999999999999").is_err());
}

#[test]
fn dates_take_ccyymmdd_and_yymmdd() {
    assert_eq!(parse_date(b"20240229"), date(2024, 2, 29));
    assert_eq!(parse_date(b"990105"), date(1999, 1, 5));
    assert_eq!(parse_date(b"031016"), date(2003, 10, 16));
    assert_eq!(parse_date(b"051513"), None);
    assert_eq!(parse_date(b"CCYYMMDD"), None);
}

/// A reader that hands out a few bytes at a time, to cross every buffer boundary.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn via_reader(data: &[u8], step: usize) -> (Vec<Payment>, Vec<FormatError>) {
    let mut payments = Vec::new();
    let mut errors = Vec::new();
    let r = parse_reader(Trickle { data, step }, "test.x12", &mut |r| match r {
        Ok(p) => payments.push(p),
        Err(e) => errors.push(e),
    });
    if let Err(e) = r {
        errors.push(e);
    }
    (payments, errors)
}

#[test]
fn reading_in_small_pieces_gives_the_same_result() {
    for bytes in [
        fixture("820_005010_two_st_adx_credit_memo.x12"),
        fixture("820_004010_two_interchanges_pipe_and_newline.x12"),
        fixture("820_005010_faulty_transactions.x12"),
    ] {
        let whole = read(&bytes);
        for step in [1, 2, 3, 7, 64] {
            let (payments, errors) = via_reader(&bytes, step);
            assert_eq!(payments, whole.payments, "step {step}");
            assert_eq!(errors, whole.errors, "step {step}");
        }
    }
}

#[test]
fn memory_stays_bounded_on_a_long_stream() {
    let body: String = (0..4000)
        .map(|i| {
            format!(
                "ST*820*{i:04}~BPR*C*30*C*ACH*CTX~TRN*1*P{i}~ENT*1~RMR*IV*A{i}**10~\
                 RMR*IV*B{i}**20~SE*7*{i:04}~"
            )
        })
        .collect();
    let text = format!("{ISA}GS*RA*S*R*20240101*1200*1*X*004010~{body}GE*4000*1~IEA*1*000000001~");
    assert!(text.len() > 300_000);
    let mut t = Tokenizer::new(text.as_bytes(), "t");
    let mut n = 0;
    while t.next_segment().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 4 + 4000 * 7);
    assert_eq!(t.buf.len(), INITIAL_BUFFER, "the buffer grew");
    let mut count = 0;
    parse_reader(text.as_bytes(), "t", &mut |r| {
        assert!(r.unwrap().warnings.is_empty());
        count += 1;
    })
    .unwrap();
    assert_eq!(count, 4000);
}

#[test]
fn an_endless_segment_is_refused_not_buffered() {
    let mut text = format!("{ISA}GS*RA");
    text.push_str(&"x".repeat(3 * MAX_SEGMENT));
    let e = parse(text.as_bytes(), "t").unwrap_err();
    assert!(e.message.contains("no segment terminator"), "{e}");
}

// ---- the writer ----

fn sample_payments() -> Vec<Payment> {
    let base = Payment {
        payment_id: "PAY-1".into(),
        format: FORMAT.into(),
        direction: Direction::Credit,
        payment_date: date(2024, 6, 3),
        amount: dec!(1234.50),
        currency: Currency::USD,
        payer: Payer {
            name: Some("GLOBEX CORP".into()),
            account: Some("021000021:99887766".into()),
        },
        lines: vec![
            RemittanceLine {
                reference: Some("INV-100".into()),
                reference_kind: ReferenceKind::Invoice,
                amount_paid: Some(dec!(980.00)),
                invoice_amount: Some(dec!(1000.00)),
                discount: Some(dec!(20.00)),
                adjustments: vec![],
            },
            RemittanceLine {
                reference: Some("INV-101".into()),
                reference_kind: ReferenceKind::Invoice,
                amount_paid: Some(dec!(304.50)),
                invoice_amount: Some(dec!(330.00)),
                discount: None,
                adjustments: vec![Adjustment {
                    amount: dec!(25.50),
                    reason_code: Some("CS".into()),
                    text: Some("SHORT SHIPPED".into()),
                }],
            },
            RemittanceLine {
                reference: Some("CM-7".into()),
                reference_kind: ReferenceKind::CreditNote,
                amount_paid: Some(dec!(-50)),
                ..RemittanceLine::default()
            },
            RemittanceLine {
                reference: Some("PO-9".into()),
                reference_kind: ReferenceKind::PurchaseOrder,
                ..RemittanceLine::default()
            },
        ],
        free_text: vec!["INVOICES 100 AND 101".into()],
        warnings: vec![],
        returned: None,
    };
    let debit = Payment {
        payment_id: "PAY-2".into(),
        direction: Direction::Debit,
        payment_date: None,
        amount: dec!(75),
        currency: "EUR".parse().unwrap(),
        payer: Payer {
            name: None,
            account: Some("55501234".into()),
        },
        lines: vec![RemittanceLine {
            reference: Some("X-1".into()),
            reference_kind: ReferenceKind::Unknown,
            amount_paid: Some(dec!(75)),
            ..RemittanceLine::default()
        }],
        free_text: vec![],
        ..base.clone()
    };
    let bare = Payment {
        payment_id: "PAY-3".into(),
        payer: Payer::default(),
        lines: vec![],
        free_text: vec![],
        ..base.clone()
    };
    vec![base, debit, bare]
}

#[test]
fn written_820_reads_back_the_same() {
    let payments = sample_payments();
    let mut out = Vec::new();
    write_820(&payments, &mut out).unwrap();
    let text = String::from_utf8(out.clone()).unwrap();
    let isa = text.lines().next().unwrap();
    assert_eq!(isa.len(), 106, "{isa}");
    assert!(looks_like(&out));
    let parsed = read(&out);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    // The writer leaves no envelope fault: the only warning is the real short remittance.
    assert_eq!(parsed.payments, payments);
    assert!(
        text.contains("RMR*IV*INV-101**304.50*330.00~\nADX*-25.50*CS~\nNTE*ZZZ*SHORT SHIPPED~")
    );
    assert!(text.contains("SE*14*0001~"), "{text}");
    assert!(text.ends_with("GE*3*1~\nIEA*1*000000001~\n"));
}

#[test]
fn the_writer_keeps_delimiters_out_of_values() {
    let mut p = sample_payments().remove(2);
    p.payment_id = "A*B~C".into();
    p.free_text = vec!["x:y^z\nw".into()];
    let mut out = Vec::new();
    write_820(&[p], &mut out).unwrap();
    let back = one(&out);
    assert_eq!(
        back.payment_id, "A*B~C",
        "delimiters chosen around the values"
    );
    assert_eq!(back.free_text, vec!["x:y^z w"]);
    let isa = String::from_utf8(out).unwrap();
    assert!(isa.starts_with("ISA|00|"), "{isa}");

    // When the values use every candidate, the first is taken and replaced in the values.
    let mut p = sample_payments().remove(2);
    p.payment_id = "A*B|C!D".into();
    p.free_text = vec!["x\u{1D}y".into()];
    let mut out = Vec::new();
    write_820(&[p], &mut out).unwrap();
    assert!(out.starts_with(b"ISA*00*"));
    assert_eq!(one(&out).payment_id, "A B|C!D");
}

// ---- properties ----

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse(&data, "p");
    }

    #[test]
    fn arbitrary_bytes_after_an_isa_never_panic(
        data in proptest::collection::vec(
            prop_oneof![any::<u8>(), Just(b'*'), Just(b'~'), Just(b'S'), Just(b'E')], 0..800),
        step in 1usize..9,
    ) {
        let mut bytes = ISA.as_bytes().to_vec();
        bytes.extend_from_slice(b"GS*RA~ST*820*1~BPR*C*1*C~");
        bytes.extend_from_slice(&data);
        let whole = parse(&bytes, "test.x12");
        let (payments, errors) = via_reader(&bytes, step);
        if let Ok(whole) = whole {
            prop_assert_eq!(payments, whole.payments);
            prop_assert_eq!(errors, whole.errors);
        }
    }

    #[test]
    fn generated_segments_tokenize_back(
        delims in prop::sample::select(vec![
            (b'*', b':', b'~'), (b'|', b'>', b'!'), (b'^', b'\\', b'\n'), (0xA6, b'^', b'~'),
            (b'*', b'>', 0x15), (b'!', b':', b'\\'), (0x1D, 0x1F, 0x1C),
        ]),
        segments in proptest::collection::vec(
            ("[A-Z][A-Z0-9]{1,2}", proptest::collection::vec("[A-Za-z0-9.-]{0,6}", 0..8)), 0..20),
        after in prop::sample::select(vec!["", "\r\n", "\n  ", "\n"]),
    ) {
        let (e, c, t) = delims;
        let mut out: Vec<u8> = Vec::new();
        let isa = ISA.replace('*', "\u{1}").replace('>', "\u{2}").replace('~', "\u{3}");
        for ch in isa.bytes() {
            out.push(match ch { 1 => e, 2 => c, 3 => t, b => b });
        }
        out.extend_from_slice(after.as_bytes());
        let segments: Vec<_> = segments.into_iter().filter(|(id, _)| id != "ISA").collect();
        for (id, elements) in &segments {
            out.extend_from_slice(id.as_bytes());
            for el in elements {
                out.push(e);
                out.extend_from_slice(el.as_bytes());
            }
            out.push(t);
            out.extend_from_slice(after.as_bytes());
        }
        let mut tok = Tokenizer::new(Trickle { data: &out, step: 5 }, "p");
        let isa = tok.next_segment().unwrap().unwrap();
        prop_assert_eq!(isa.id(), b"ISA");
        prop_assert_eq!(isa.len(), 17);
        prop_assert_eq!(tok.delimiters().map(|d| (d.element, d.component, d.segment)), Some((e, c, t)));
        for (id, elements) in &segments {
            let seg = tok.next_segment().unwrap().unwrap();
            prop_assert_eq!(seg.id(), id.as_bytes());
            prop_assert_eq!(seg.len(), elements.len() + 1);
            for (i, el) in elements.iter().enumerate() {
                prop_assert_eq!(seg.el(i + 1), el.as_bytes());
            }
        }
        prop_assert!(tok.next_segment().unwrap().is_none());
    }
}

/// A fuzzer-found input (issue 16): read whole it parsed, read 11 bytes at a time it failed at
/// file level, so `cashmatch parse` (streamed) and the service (whole) disagreed on one file.
#[test]
fn fuzz_streamed_and_whole_reading_agree() {
    let bytes = fixture("regressions/fuzz-streamed-differs.x12");
    let whole = parse(&bytes, "test.x12");
    for step in 1..=13 {
        let mut payments = Vec::new();
        let mut errors = Vec::new();
        let streamed = parse_reader(
            Trickle { data: &bytes, step },
            "test.x12",
            &mut |r| match r {
                Ok(p) => payments.push(p),
                Err(e) => errors.push(e),
            },
        );
        match &whole {
            Ok(w) => {
                assert!(streamed.is_ok(), "step {step}: {streamed:?}");
                assert_eq!(payments, w.payments, "step {step}");
                assert_eq!(errors, w.errors, "step {step}");
            }
            Err(e) => assert_eq!(streamed.as_ref().err(), Some(e), "step {step}"),
        }
    }
}
