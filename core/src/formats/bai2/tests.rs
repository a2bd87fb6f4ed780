use super::reader::*;
use super::remit::*;
use super::split::*;
use super::writer::*;
use super::*;
use crate::domain::{
    Adjustment, Currency, Direction, Payer, Payment, ReferenceKind, RemittanceLine,
};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::io;

const CITI: &[u8] = include_bytes!("../../../../fixtures/bai2/bai2_moj_citi_gbp.bai2");
const NWB: &[u8] = include_bytes!("../../../../fixtures/bai2/bai2_moj_nwb_gbp.bai2");
const SVB: &[u8] = include_bytes!("../../../../fixtures/bai2/bai2_moj_svb_usd_two_groups.bai2");
const MOOV1: &[u8] =
    include_bytes!("../../../../fixtures/bai2/bai2_moov_sample1_cad_two_accounts.txt");
const MOOV2: &[u8] =
    include_bytes!("../../../../fixtures/bai2/bai2_moov_sample2_multigroup_lockbox.txt");
const MOOV3: &[u8] =
    include_bytes!("../../../../fixtures/bai2/bai2_moov_sample3_multi_records_per_line.txt");
const GS: &[u8] =
    include_bytes!("../../../../fixtures/bai2/bai2_moov_sample4_gs_no_slash_continuations.txt");
const SVB_WIRE: &[u8] =
    include_bytes!("../../../../fixtures/bai2/bai2_venturehacks_eod_wire_obi.bai2");

fn parsed(bytes: &[u8]) -> Parsed {
    let p = parse(bytes, "t.bai2").unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    p
}

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

fn sum(p: &Parsed, dir: Direction) -> Decimal {
    p.payments
        .iter()
        .filter(|x| x.direction == dir)
        .map(|x| x.amount)
        .sum()
}

fn split_all(text: &str) -> Vec<Split> {
    let mut s = Splitter::new(text.as_bytes());
    let mut out = Vec::new();
    while let Some(r) = s.next_record().unwrap() {
        out.push(r);
    }
    out
}

fn bodies(text: &str) -> Vec<(u8, String)> {
    split_all(text)
        .into_iter()
        .map(|s| match s {
            Split::Record(r) => (r.code, r.body),
            Split::Junk { text, .. } => (0, text),
        })
        .collect()
}

#[test]
fn citi_gbp_faster_payment_with_slashes_inside_88_text() {
    let p = parsed(CITI);
    assert_eq!(p.payments.len(), 1);
    let x = &p.payments[0];
    assert_eq!(x.payment_id, "1234567890");
    assert_eq!(
        (x.direction, x.amount, x.currency.as_str()),
        (Direction::Credit, dec!(0.01), "GBP")
    );
    assert_eq!(x.amount.to_string(), "0.01");
    assert_eq!(x.payment_date, date(2015, 7, 15));
    assert_eq!(x.payer.name.as_deref(), Some("DOE JO"));
    assert_eq!(x.payer.account.as_deref(), Some("11111111"));
    // The date of birth `22/03/66` holds slashes that must not end the record.
    assert!(
        x.free_text.iter().any(|t| t.ends_with("A1234BC 22/03/66")),
        "{:?}",
        x.free_text
    );
    assert!(
        x.free_text
            .contains(&"customer reference RP12312312312312".to_string())
    );
    assert!(x.warnings.is_empty(), "{:?}", x.warnings);
}

#[test]
fn natwest_transfers_without_bank_reference_get_synthetic_ids() {
    let p = parsed(NWB);
    let ids: Vec<&str> = p.payments.iter().map(|x| x.payment_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "NWBKGB2L:100215:2215:1",
            "NWBKGB2L:100215:2215:2",
            "NWBKGB2L:100215:2215:3",
            "NWBKGB2L:100215:2215:4",
            "NWBKGB2L:100215:2215:5"
        ]
    );
    let amounts: Vec<Decimal> = p.payments.iter().map(|x| x.amount).collect();
    assert_eq!(
        amounts,
        [dec!(9.71), dec!(1.00), dec!(1.23), dec!(15.71), dec!(0.89)]
    );
    // 699 is a debit, 399 a credit; the group gives no currency, the account GBP.
    assert_eq!(sum(&p, Direction::Debit), dec!(27.65));
    assert_eq!(sum(&p, Direction::Credit), dec!(0.89));
    assert!(p.payments.iter().all(|x| x.currency.as_str() == "GBP"));
    assert!(
        p.payments
            .iter()
            .all(|x| x.payment_date == date(2009, 12, 16))
    );
    // The last transfer's narrative wraps onto a second 88.
    assert_eq!(p.payments[4].free_text.len(), 2);
    assert_eq!(p.payments[4].free_text[1], "NT SECCY AC TFR");
    // Control totals (49 143764 / 14 records, 98, 99) reconcile.
    assert!(p.payments.iter().all(|x| x.warnings.is_empty()));
}

#[test]
fn svb_two_groups_with_an_extra_comma_and_unterminated_99() {
    let p = parsed(SVB);
    let got: Vec<(&str, Decimal, Option<NaiveDate>)> = p
        .payments
        .iter()
        .map(|x| (x.payment_id.as_str(), x.amount, x.payment_date))
        .collect();
    assert_eq!(
        got,
        [
            ("172629", dec!(4901.96), date(2022, 2, 1)),
            ("150675", dec!(9058.00), date(2022, 2, 2))
        ]
    );
    assert!(p.payments.iter().all(|x| x.direction == Direction::Credit));
    assert!(
        p.payments.iter().all(|x| x.warnings.is_empty()),
        "{:?}",
        p.payments[0].warnings
    );
    assert_eq!(p.payments[0].free_text, ["SOME PAYMENT ACH OFFSET"]);
}

#[test]
fn moov_cad_two_account_sections_of_one_account() {
    let p = parsed(MOOV1);
    assert_eq!(p.payments.len(), 17);
    assert_eq!(
        p.payments
            .iter()
            .filter(|x| x.direction == Direction::Credit)
            .count(),
        5
    );
    assert_eq!(sum(&p, Direction::Credit), dec!(3200.00));
    assert_eq!(sum(&p, Direction::Debit), dec!(3200.00));
    assert!(p.payments.iter().all(|x| x.currency.as_str() == "CAD"));
    assert_eq!(p.payments[0].free_text, ["RETURNED CHEQUE"]);
    assert_eq!(p.payments[0].direction, Direction::Debit);
    // Without bank references the ids count the 16 records through the file, so the two
    // sections of the same account and day do not collide.
    assert_eq!(p.payments[16].payment_id, "0004:060321:001:17");
    assert!(p.payments.iter().all(|x| x.warnings.is_empty()));
}

#[test]
fn moov_lockbox_deposits_with_distributed_availability() {
    let p = parsed(MOOV2);
    let got: Vec<(&str, Decimal)> = p
        .payments
        .iter()
        .map(|x| (x.payment_id.as_str(), x.amount))
        .collect();
    assert_eq!(
        got,
        [
            ("122099999:040621:1:1", dec!(4500.00)),
            ("122099999:040621:1:2", dec!(5000.00)),
            ("SP4738", dec!(200000.00)),
            ("122099999:040621:1:4", dec!(100000.00)),
        ]
    );
    // Funds type S adds three amounts; the text after them is still found.
    assert_eq!(p.payments[1].free_text, ["LOCK BOX NO.68751"]);
    // Funds type V adds a date and time before the references.
    assert_eq!(
        p.payments[2].free_text,
        [
            "customer reference YRC065321",
            "PROCEEDS OF LETTER OF CREDIT FROM THE ARAMCO OIL CO"
        ]
    );
    assert!(p.payments.iter().all(|x| x.currency == Currency::USD));
    assert!(
        p.payments
            .iter()
            .all(|x| x.payment_date == date(2004, 6, 20))
    );
    // The 03 summaries with 88 continuations and a D distribution add up to every 49/98/99.
    assert!(
        p.payments.iter().all(|x| x.warnings.is_empty()),
        "{:?}",
        p.payments[0].warnings
    );
}

#[test]
fn moov_several_records_per_line_and_a_wrapped_record() {
    let p = parsed(MOOV3);
    assert_eq!(p.payments.len(), 26);
    assert_eq!(
        p.payments
            .iter()
            .filter(|x| x.direction == Direction::Credit)
            .count(),
        13
    );
    assert_eq!(sum(&p, Direction::Credit), dec!(397.13));
    assert_eq!(sum(&p, Direction::Debit), dec!(594.18));
    assert_eq!(
        p.payments[0].free_text,
        ["TRANSFER   PAYPAL             PPD"]
    );
    assert_eq!(
        p.payments[1].free_text,
        ["TRANSFER   MSPBNA BANK        PPD"]
    );
    // The record that wraps onto the next physical line is joined.
    assert_eq!(
        p.payments[8].free_text,
        [
            "111111     ACH_SETL           1111111111 111111111111111",
            "1111111111"
        ]
    );
    assert!(
        p.payments.iter().all(|x| x.warnings.is_empty()),
        "{:?}",
        p.payments[0].warnings
    );
}

#[test]
fn goldman_continuations_without_slashes_give_references_and_payers() {
    let p = parsed(GS);
    assert_eq!(p.payments.len(), 17);
    let by_id = |id: &str| p.payments.iter().find(|x| x.payment_id == id).unwrap();
    let first = by_id("SPB2322984714570");
    assert_eq!(
        (first.direction, first.amount),
        (Direction::Debit, dec!(600.00))
    );
    assert_eq!(first.lines[0].reference.as_deref(), Some("1111"));
    // The text field runs to the end of the record, commas included.
    assert!(first.free_text[0].starts_with("ACH Credit Payment,Entry Description: EXP; -, SEC"));
    let rtp = by_id("GI2228400005800");
    assert_eq!(
        (rtp.direction, rtp.amount),
        (Direction::Credit, dec!(500.50))
    );
    assert_eq!(rtp.payer.name.as_deref(), Some("SAMPLE INC"));
    assert_eq!(
        rtp.payer.account.as_deref(),
        Some("000000010:02122056789012205")
    );
    assert_eq!(rtp.lines[0].reference.as_deref(), Some("RTR60880840833"));
    assert!(rtp.free_text.contains(&"Test Remittance".to_string()));
    let wire = by_id("GI2229300000187");
    assert_eq!(
        (wire.direction, wire.amount),
        (Direction::Credit, dec!(11.25))
    );
    assert_eq!(wire.payer.account.as_deref(), Some("8348572423"));
    // The ACH return carries its R02 reason in the text.
    assert!(by_id("SB2322600000214").free_text[0].contains("Reason: \"R02\""));
    assert_eq!(by_id("SB2322600000214").direction, Direction::Debit);
    // Type code 557 (individual ACH return item) marks it returned, with the R-code of its text
    // and the original's reference from the customer reference field.
    let ret = by_id("SB2322600000214").returned.clone().expect("returned");
    assert_eq!(
        (ret.return_code.as_str(), ret.reason.as_deref()),
        ("R02", Some("account closed"))
    );
    assert_eq!(ret.original_trace.as_deref(), Some("021000080000030"));
    assert_eq!(by_id("GI2229300000187").returned, None);
    assert_eq!(by_id("GI2323300009168").amount, dec!(300000.00));
    // The sample's trailers do not reconcile (49 of the second account is -1260161341762,
    // the 98 counts 4 accounts of 5): warnings on the payments they cover.
    assert!(
        first
            .warnings
            .iter()
            .any(|w| w.contains("49 control total -1260161341762"))
    );
    assert!(
        rtp.warnings
            .iter()
            .any(|w| w.contains("98 account count \"4\""))
    );
    assert!(
        p.payments
            .iter()
            .all(|x| x.warnings.iter().any(|w| w.contains("99 record count")))
    );
}

#[test]
fn svb_fedwire_with_obi_invoice_and_crlf() {
    let p = parsed(SVB_WIRE);
    assert_eq!(p.payments.len(), 1);
    let x = &p.payments[0];
    assert_eq!(x.payment_id, "121140399:100831:000001:1");
    assert_eq!((x.direction, x.amount), (Direction::Credit, dec!(83259.82)));
    assert_eq!(x.payer.name.as_deref(), Some("OPTIONS LINK WIRE CLEARING"));
    assert!(x.free_text.contains(&"INVOICE 123456".to_string()));
    assert!(x.free_text[0].starts_with("FED NO: 20100831"));
    assert!(x.warnings.is_empty());
}

#[test]
fn every_sample_is_detected_and_other_formats_are_not() {
    for s in [CITI, NWB, SVB, MOOV1, MOOV2, MOOV3, GS, SVB_WIRE] {
        assert!(looks_like(&s[..s.len().min(4096)]));
    }
    assert!(!looks_like(include_bytes!(
        "../../../../fixtures/lockbox/lockbox_bai_fundersclub_one_check.bai"
    )));
    assert!(!looks_like(include_bytes!(
        "../../../../fixtures/mt940/mt940_citi_us.txt"
    )));
    assert!(!looks_like(b"01,02,03\n04,05,06\n"));
}

#[test]
fn splitter_handles_terminators_lines_and_text() {
    assert_eq!(
        bodies("01,a,b/ 02,c/\n03,d,,/\r\n16,195,1,,R1,,text/with/slash\n88,more/\n99,9"),
        [
            (1, "a,b".into()),
            (2, "c".into()),
            (3, "d,,".into()),
            (16, "195,1,,R1,,text/with/slash".into()),
            (88, "more".into()),
            (99, "9".into()),
        ]
    );
    // A 16 wrapped onto a line that does not start a record continues it.
    assert_eq!(
        bodies("16,142,1,Z,,,abc\ndef /\n49,1,2/"),
        [(16, "142,1,Z,,,abc def ".into()), (49, "1,2".into())]
    );
    // In a non-text record the slash always ends it; junk lines are reported.
    assert_eq!(
        bodies("49,1/2\nhello\n"),
        [(49, "1".into()), (0, "2".into()), (0, "hello".into())]
    );
    // A slash followed by blanks and a record start ends a text record on the same line.
    assert_eq!(
        bodies("88,x/   16,y/"),
        [(88, "x".into()), (16, "y".into())]
    );
    assert_eq!(bodies("\u{feff}01,a/"), [(1, "a".into())]);
}

#[test]
fn splitter_reads_through_one_byte_buffers() {
    for sample in [MOOV3, GS, CITI] {
        let whole = parse(sample, "t").unwrap().payments;
        let mut streamed = Vec::new();
        let reader = io::BufReader::with_capacity(1, sample);
        parse_reader(reader, "t", &mut |r| {
            if let Ok(p) = r {
                streamed.push(p)
            }
        })
        .unwrap();
        let strip = |v: &[Payment]| -> Vec<Payment> {
            v.iter()
                .cloned()
                .map(|mut p| {
                    p.warnings.clear();
                    p
                })
                .collect()
        };
        assert_eq!(strip(&whole), strip(&streamed));
    }
}

#[test]
fn streaming_reports_control_mismatches_as_errors_naming_the_trailer() {
    let text = "01,S,R,240101,0000,7,,,2/\n02,R,S,1,240102,,USD,2/\n03,A,USD/\n\
                16,195,1000,,REF1,,/\n49,999,3/\n98,999,1,5/\n99,999,1,7/\n";
    let mut got = Vec::new();
    parse_reader(text.as_bytes(), "f.bai", &mut |r| got.push(r)).unwrap();
    assert!(got[0].is_ok());
    let e = got[1].as_ref().unwrap_err();
    assert_eq!(
        e.position,
        Position::Line {
            line: 5,
            column: Some(2)
        }
    );
    assert!(
        e.to_string()
            .starts_with("f.bai: line 5, column 2: 49 control total 999"),
        "{e}"
    );
    // In memory the same finding is a warning on the payment.
    let p = parse(text.as_bytes(), "f.bai").unwrap();
    assert!(p.errors.is_empty());
    assert!(p.payments[0].warnings[0].contains("49 control total 999"));
}

#[test]
fn streams_a_generated_file_without_holding_it() {
    // A reader that makes the file up as it is read: the parser never sees it whole.
    struct Gen {
        n: usize,
        i: usize,
        pending: Vec<u8>,
    }
    impl io::Read for Gen {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pending.is_empty() {
                self.pending = match self.i {
                    0 => {
                        b"01,S,R,240101,0000,1,,,2/\n02,R,S,1,240102,,USD,2/\n03,A,USD/\n".to_vec()
                    }
                    i if i <= self.n => {
                        format!("16,195,100,,R{i},,/\n88,EREF: INV-{i}\n").into_bytes()
                    }
                    i if i == self.n + 1 => format!(
                        "49,{},{}/\n98,{},1,{}/\n99,{},1,{}/\n",
                        100 * self.n,
                        2 * self.n + 2,
                        100 * self.n,
                        2 * self.n + 4,
                        100 * self.n,
                        2 * self.n + 6
                    )
                    .into_bytes(),
                    _ => return Ok(0),
                };
                self.i += 1;
            }
            let k = buf.len().min(self.pending.len());
            buf[..k].copy_from_slice(&self.pending[..k]);
            self.pending.drain(..k);
            Ok(k)
        }
    }
    let n = 20_000;
    let (mut ok, mut bad) = (0usize, 0usize);
    let reader = io::BufReader::new(Gen {
        n,
        i: 0,
        pending: Vec::new(),
    });
    parse_reader(reader, "gen", &mut |r| match r {
        Ok(p) => {
            assert_eq!(
                p.lines[0].reference.as_deref(),
                Some(format!("INV-{}", ok + 1).as_str())
            );
            ok += 1;
        }
        Err(e) => {
            eprintln!("{e}");
            bad += 1
        }
    })
    .unwrap();
    assert_eq!((ok, bad), (n, 0));
}

#[test]
fn a_bad_detail_is_reported_with_line_and_field_and_the_rest_is_read() {
    let text = "01,S,R,240101,0000,1,,,2/\n02,R,S,1,240102,,USD,2/\n03,A,USD/\n\
                16,195,12x4,,R1,,/\n16,195,100,,R2,,/\n16,890,0,,R3,,/\n16,195,5,Q,R4/\n49,1100,6/\n98,1100,1,8/\n99,1100,1,10/\n";
    let p = parse(text.as_bytes(), "bad.bai").unwrap();
    assert_eq!(p.payments.len(), 1);
    assert_eq!(p.payments[0].payment_id, "R2");
    let msgs: Vec<String> = p.errors.iter().map(ToString::to_string).collect();
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert!(
        msgs[0].starts_with("bad.bai: line 4, column 3: 16 transaction detail: amount \"12x4\""),
        "{}",
        msgs[0]
    );
    assert!(
        msgs[1].contains("line 6, column 2") && msgs[1].contains("type code 890"),
        "{}",
        msgs[1]
    );
    assert!(
        msgs[2].contains("line 7, column 4") && msgs[2].contains("unknown funds type \"Q\""),
        "{}",
        msgs[2]
    );
}

#[test]
fn not_bai2_is_rejected_naming_file_and_line() {
    let e = parse(b"\n\n16,195,1,,R/\n", "x.txt").unwrap_err();
    assert_eq!(
        e.to_string(),
        "x.txt: line 3, column 1: not a BAI2 file: the first record is 16, expected the 01 file header"
    );
    let e = parse(b"", "empty.bai").unwrap_err();
    assert_eq!(e.position, Position::File);
}

#[test]
fn truncated_file_warns_on_its_payments() {
    let text = "01,S,R,240101,0000,1,,,2/\n02,R,S,1,240102,,USD,2/\n03,A,USD/\n16,195,100,,R1,,/\n";
    let p = parse(text.as_bytes(), "t").unwrap();
    let w = &p.payments[0].warnings;
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(w[0].contains("without its 49 trailer"));
}

#[test]
fn repeated_bank_references_get_suffixes_and_a_warning() {
    let text = "01,S,R,240101,0000,1,,,2/\n02,R,S,1,240102,,JPY,2/\n03,A,/\n\
                16,195,100,,R1,,/\n16,475,100,,R1,,/\n49,200,4/\n98,200,1,6/\n99,200,1,8/\n";
    let p = parsed(text.as_bytes());
    assert_eq!(p.payments[0].payment_id, "R1");
    assert_eq!(p.payments[1].payment_id, "R1#2");
    assert_eq!(p.payments[1].direction, Direction::Debit);
    assert!(p.payments[1].warnings[0].contains("appears 2 times"));
    assert!(p.payments[0].warnings.is_empty());
    // JPY has no minor unit: 100 is 100 yen.
    assert_eq!(p.payments[0].amount, dec!(100));
    assert_eq!(p.payments[0].currency.as_str(), "JPY");
}

#[test]
fn remittance_in_88_text_becomes_lines() {
    let text = "01,S,R,240101,0000,1,,,2/\n02,R,S,1,240102,,USD,2/\n03,A,USD/\n\
                16,195,125000,,R1,,/\n88,REMI: RMR*IV*INV-1001*PI*1200.00*1250.00*50.00\\ADX*-25.00*CS\\RMR*CM*CM-7**-10.00\n\
                88,OBI=SEE INV 1002/1003\n88,EREF/E2E-9\n49,250000,5/\n98,250000,1,7/\n99,250000,1,9/\n";
    let p = parsed(text.as_bytes());
    let x = &p.payments[0];
    assert_eq!(x.lines.len(), 3);
    let l = &x.lines[0];
    assert_eq!(
        (l.reference.as_deref(), l.reference_kind),
        (Some("INV-1001"), ReferenceKind::Invoice)
    );
    assert_eq!(
        (l.amount_paid, l.invoice_amount, l.discount),
        (Some(dec!(1200.00)), Some(dec!(1250.00)), Some(dec!(50.00)))
    );
    assert_eq!(
        l.adjustments,
        [Adjustment {
            amount: dec!(25.00),
            reason_code: Some("CS".into()),
            text: None
        }]
    );
    assert_eq!(x.lines[1].reference_kind, ReferenceKind::CreditNote);
    assert_eq!(x.lines[1].amount_paid, Some(dec!(-10.00)));
    assert_eq!(x.lines[2].reference.as_deref(), Some("E2E-9"));
    assert_eq!(x.free_text, ["SEE INV 1002/1003"]);
}

#[test]
fn direction_follows_the_type_code_ranges() {
    assert_eq!(direction_of(108), Some(Direction::Credit));
    assert_eq!(direction_of(399), Some(Direction::Credit));
    assert_eq!(direction_of(400), Some(Direction::Debit));
    assert_eq!(direction_of(699), Some(Direction::Debit));
    assert_eq!(direction_of(930), Some(Direction::Credit));
    assert_eq!(direction_of(975), Some(Direction::Debit));
    assert_eq!(direction_of(15), None);
    assert_eq!(direction_of(890), None);
}

fn sample_payments() -> Vec<Payment> {
    let base = Payment {
        payment_id: "P-1".into(),
        format: FORMAT.into(),
        direction: Direction::Credit,
        payment_date: date(2024, 3, 1),
        amount: dec!(1225.00),
        currency: Currency::USD,
        payer: Payer {
            name: Some("ACME, Inc. / AP Dept".into()),
            account: Some("021000021:12345".into()),
        },
        lines: vec![
            RemittanceLine {
                reference: Some("INV-1001".into()),
                reference_kind: ReferenceKind::Invoice,
                amount_paid: Some(dec!(1200.00)),
                invoice_amount: Some(dec!(1250.00)),
                discount: Some(dec!(25.00)),
                adjustments: vec![Adjustment {
                    amount: dec!(25.00),
                    reason_code: Some("CS".into()),
                    text: Some("damaged * 2 ~ crates\\".into()),
                }],
            },
            RemittanceLine {
                reference: Some("CM/77".into()),
                reference_kind: ReferenceKind::CreditNote,
                amount_paid: Some(dec!(-10.00)),
                ..Default::default()
            },
            RemittanceLine {
                reference: Some("PO 4711".into()),
                reference_kind: ReferenceKind::PurchaseOrder,
                ..Default::default()
            },
            RemittanceLine {
                amount_paid: Some(dec!(35)),
                ..Default::default()
            },
        ],
        free_text: vec![
            "INV 1001-1004, see 50%/50 split".into(),
            "line one\nline two/".into(),
            "  padded  ".into(),
            "Grüße".into(),
            "".into(),
        ],
        warnings: vec![],
        returned: None,
    };
    let debit = Payment {
        payment_id: "D,2/x".into(),
        direction: Direction::Debit,
        amount: dec!(0.07),
        payer: Payer {
            name: Some("Supplier".into()),
            account: None,
        },
        lines: vec![],
        free_text: vec![],
        ..base.clone()
    };
    let yen = Payment {
        payment_id: "Y3".into(),
        currency: "JPY".parse().unwrap(),
        amount: dec!(5000),
        payment_date: date(2024, 3, 2),
        payer: Payer::default(),
        lines: vec![],
        free_text: vec!["RMR*IV*NOT-A-LINE".into()],
        ..base.clone()
    };
    vec![base, debit, yen]
}

#[test]
fn writer_output_reads_back_to_the_same_payments() {
    let payments = sample_payments();
    let mut out = Vec::new();
    write_bai2(&payments, &mut out).unwrap();
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(looks_like(&out));
    let p = parse(&out, "w.bai2").unwrap();
    assert!(p.errors.is_empty(), "{:?}\n{text}", p.errors);
    assert_eq!(p.payments, payments, "{text}");
    // The file is plain BAI2: groups per date and currency, balanced trailers.
    assert!(
        text.starts_with("01,CASHMATCH,CASHMATCH,240301,0000,1,,,2/\n"),
        "{text}"
    );
    assert!(
        text.contains("\n16,195,122500,,P-1,,/\n88,DBNM: ACME%2C Inc. %2F AP Dept\n"),
        "{text}"
    );
    assert!(
        text.contains("\n88,RMR*IV*INV-1001*PI*1200.00*1250.00*25.00\n88,ADX*-25.00*CS*ZZ*"),
        "{text}"
    );
    assert!(text.ends_with("99,255014,2,27/\n"), "{text}");
}

#[test]
fn writer_refuses_what_bai2_cannot_carry() {
    let mut p = sample_payments().remove(0);
    p.amount = dec!(1.005);
    assert_eq!(
        write_bai2(&[p.clone()], io::sink()).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    p.amount = dec!(-1);
    assert!(write_bai2(&[p.clone()], io::sink()).is_err());
    p.amount = dec!(1);
    p.payment_id.clear();
    assert!(write_bai2(&[p], io::sink()).is_err());
    let mut empty = Vec::new();
    write_bai2(&[], &mut empty).unwrap();
    assert!(parse(&empty, "e").unwrap().payments.is_empty());
}

#[test]
fn percent_escapes_round_trip_and_leave_bank_percent_signs() {
    for s in ["", " a ", "a/b,c*d\\e~f%g\r\nh", "\tx\t", "100%"] {
        assert_eq!(percent_decode(&percent_encode(s)), s);
    }
    assert_eq!(percent_decode("50% OFF %ZZ %2"), "50% OFF %ZZ %2");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn record() -> impl Strategy<Value = (u8, String)> {
        let code = prop::sample::select(vec![1u8, 2, 3, 16, 49, 88, 98, 99]);
        // Bodies without line ends or slashes, trimmed at the end the way the splitter
        // compares them, not empty so that a blank body cannot vanish between lines.
        (code, "[A-Za-z0-9 ,.:*-]{0,30}[A-Za-z0-9]")
    }

    proptest! {
        #[test]
        fn splitter_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let mut s = Splitter::new(&bytes[..]);
            let mut n = 0;
            while let Ok(Some(_)) = s.next_record() {
                n += 1;
                prop_assert!(n <= bytes.len());
            }
        }

        #[test]
        fn parse_never_panics(text in "(0[1-3]|16|49|88|9[89]|[0-9]{1,3}|[ ,/A-Z+-])+(\n[ ,/0-9A-Z+-]*){0,12}") {
            let _ = parse(text.as_bytes(), "p");
        }

        #[test]
        fn splitter_recovers_records_however_they_are_laid_out(
            records in prop::collection::vec(record(), 1..12),
            layout in prop::collection::vec(0u8..4, 12),
        ) {
            let mut text = String::new();
            for (i, (code, body)) in records.iter().enumerate() {
                text.push_str(&format!("{code:02},{body}"));
                text.push_str(match layout[i] {
                    0 => "/\n",
                    1 => "\r\n",
                    2 => "/  ",
                    _ => "/",
                });
            }
            prop_assert_eq!(bodies(&text), records.clone());
        }
    }
}
