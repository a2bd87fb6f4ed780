use super::*;
use proptest::prelude::*;
use rust_decimal_macros::dec;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/nacha")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read(bytes: &[u8]) -> Parsed {
    parse(bytes, "test.ach").expect("file-level parse")
}

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

fn has_warning(p: &Payment, needle: &str) -> bool {
    p.warnings.iter().any(|w| w.contains(needle))
}

// ---- the samples (Apache-2.0, copied to fixtures/nacha), as verified by reading them ----

#[test]
fn bank_export_13_ccd_credits_with_crlf_and_9_padding() {
    let b = fixture("nacha_ccd_bank_export_13_credits_crlf.ach");
    let parsed = read(&b);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert_eq!(parsed.payments.len(), 13);
    let total: Decimal = parsed.payments.iter().map(|p| p.amount).sum();
    assert_eq!(total, dec!(13000.91));
    let first = &parsed.payments[0];
    assert_eq!(first.payment_id, "021406660004489");
    assert_eq!(first.amount, dec!(1000.01));
    assert_eq!(first.direction, Direction::Credit);
    assert_eq!(first.payment_date, date(2022, 8, 19));
    assert_eq!(first.payer.name.as_deref(), Some("ABC TEST COMPANY"));
    assert_eq!(first.payer.account.as_deref(), Some("1116001925"));
    assert_eq!(first.free_text, vec!["113504464"]);
    let last = &parsed.payments[12];
    assert_eq!(
        (last.payment_id.as_str(), last.amount),
        ("021406660004959", dec!(1000.13))
    );
    // Controls (count 13, hash 0293892300, credit 13000.91, 2 blocks) all agree.
    assert!(
        parsed.payments.iter().all(|p| p.warnings.is_empty()),
        "{:?}",
        first.warnings
    );
}

#[test]
fn ccd_debits_name_the_receiver_as_payer() {
    let parsed = read(&fixture("nacha_ccd_debit_two_entries.ach"));
    assert!(parsed.errors.is_empty());
    let [pay, fee] = parsed.payments.as_slice() else {
        panic!()
    };
    assert_eq!(pay.payment_id, "031300010000001");
    assert_eq!((pay.amount, fee.amount), (dec!(5000.00), dec!(1.25)));
    assert!(
        parsed
            .payments
            .iter()
            .all(|p| p.direction == Direction::Debit)
    );
    assert_eq!(pay.payer.name.as_deref(), Some("Best Co. #1"));
    assert_eq!(pay.payer.account.as_deref(), Some("231380104:744-5678-99"));
    assert_eq!(pay.payment_date, date(2018, 11, 27));
    assert_eq!(pay.free_text, vec!["location #1"]);
    assert_eq!(fee.free_text, vec!["Fee #1"]);
    assert!(pay.warnings.is_empty() && fee.warnings.is_empty());
}

#[test]
fn invalid_format_code_is_a_warning_on_every_payment() {
    let parsed = read(&fixture("nacha_ccdplus_ppd_invalid_format_code.txt"));
    assert!(parsed.errors.is_empty());
    let ids: Vec<_> = parsed
        .payments
        .iter()
        .map(|p| p.payment_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "999999980000005",
            "999999980000006",
            "999999980000007",
            "999999980000008"
        ]
    );
    let dirs: Vec<_> = parsed.payments.iter().map(|p| p.direction).collect();
    use Direction::{Credit, Debit};
    // 22 and 47 in the CCD batch, 27 and 42 in the PPD batch.
    assert_eq!(dirs, [Credit, Debit, Debit, Credit]);
    let amounts: Vec<_> = parsed.payments.iter().map(|p| p.amount).collect();
    assert_eq!(
        amounts,
        [dec!(48.12), dec!(48.12), dec!(13.13), dec!(13.13)]
    );
    assert_eq!(
        parsed.payments[1].free_text,
        ["Main Street Branch April 2025 Rent Payment"]
    );
    assert_eq!(
        parsed.payments[0].payer.name.as_deref(),
        Some("JH ACH Demo")
    );
    for p in &parsed.payments {
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert!(has_warning(
            p,
            "format code (position 40) is \"9\", expected \"1\""
        ));
    }
}

#[test]
fn ccd_plus_tax_payment_keeps_txp_as_free_text() {
    let p = read(&fixture("nacha_ccdplus_txp_credit.ach"))
        .payments
        .remove(0);
    assert_eq!(p.payment_id, "123456780000001");
    assert_eq!(p.amount, dec!(123.45));
    assert_eq!(p.payer.name.as_deref(), Some("ACME CORP"));
    assert_eq!(
        p.free_text,
        [
            "123456789",
            "TXP*123456789*941*250901*941*12345*1*1000*2*500***VER"
        ]
    );
    // The batch header's fields are shifted: the effective date reads "16    ".
    assert_eq!(p.payment_date, None);
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(has_warning(
        &p,
        "effective entry date (positions 70-75) is \"16    \""
    ));
}

#[test]
fn ccd_plus_debit_with_one_free_text_addendum() {
    let parsed = read(&fixture("nacha_ccdplus_with_addenda.ach"));
    let [p] = parsed.payments.as_slice() else {
        panic!()
    };
    assert_eq!(p.payment_id, "221475780110541");
    assert_eq!((p.amount, p.direction), (dec!(15.00), Direction::Debit));
    assert_eq!(p.payer.name.as_deref(), Some("Ramen Corp"));
    assert_eq!(p.payer.account.as_deref(), Some("273976369:2739763699"));
    assert_eq!(p.free_text, ["TRX123123231"]);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn ctx_with_free_text_addenda() {
    let parsed = read(&fixture("nacha_ctx_debit_freetext_addenda.ach"));
    let [p] = parsed.payments.as_slice() else {
        panic!()
    };
    assert_eq!(p.payment_id, "121042880000001");
    assert_eq!(
        (p.amount, p.direction),
        (dec!(1000000.00), Direction::Debit)
    );
    // CTX puts the addenda count in 55-58 and the receiving company in 59-74.
    assert_eq!(p.payer.name.as_deref(), Some("Receiver Company"));
    assert_eq!(
        p.free_text,
        ["45689033", "Debit First Account", "Debit Second Account"]
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

fn check_ctx_820(p: &Payment) {
    assert_eq!(p.payment_id, "111111110000001");
    assert_eq!(
        (p.amount, p.direction),
        (dec!(1000000.00), Direction::Debit)
    );
    assert_eq!(p.payment_date, date(2019, 6, 25));
    // The 820 names the payer and its account, which the ACH entry does not.
    assert_eq!(p.payer.name.as_deref(), Some("META PLATFORMS INC"));
    assert_eq!(p.payer.account.as_deref(), Some("026009593:8765117001"));
    let refs: Vec<_> = p
        .lines
        .iter()
        .map(|l| l.reference.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(refs, ["/PHON 888-888-8888 /CONT JO SM", "ANG"]);
    assert!(
        p.lines
            .iter()
            .all(|l| l.reference_kind == ReferenceKind::Invoice)
    );
    assert!(
        p.free_text.contains(&"M4986O3TM2".to_string()),
        "TRN02 kept: {:?}",
        p.free_text
    );
    assert!(
        p.free_text
            .contains(&"C2 PAYEXPENSEPAY_120603391031634".to_string())
    );
    assert!(has_warning(
        p,
        "the 820's BPR02 amount 1352.88 differs from the entry amount"
    ));
    assert!(has_warning(
        p,
        "the 820 says Credit, the transaction code says Debit"
    ));
    assert!(has_warning(
        p,
        "file control entry/addenda count (positions 14-21) is 1, the file adds up to 13"
    ));
    assert!(has_warning(
        p,
        "block count (positions 8-13) is 1, the file has 20 records"
    ));
    assert_eq!(p.warnings.len(), 4, "{:?}", p.warnings);
}

#[test]
fn ctx_carrying_an_820_in_latin1() {
    let parsed = read(&fixture("nacha_ctx_820_in_addenda_brokenbar_latin1.ach"));
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let [p] = parsed.payments.as_slice() else {
        panic!()
    };
    check_ctx_820(p);
}

#[test]
fn ctx_carrying_an_820_in_utf8_reads_the_same() {
    let utf8 = read(&fixture("nacha_ctx_820_in_addenda_brokenbar_utf8.ach"));
    let latin1 = read(&fixture("nacha_ctx_820_in_addenda_brokenbar_latin1.ach"));
    assert!(utf8.errors.is_empty(), "{:?}", utf8.errors);
    check_ctx_820(&utf8.payments[0]);
    assert_eq!(utf8.payments, latin1.payments);
}

#[test]
fn every_sample_is_detected_as_nacha_only() {
    for name in [
        "nacha_ccd_bank_export_13_credits_crlf.ach",
        "nacha_ccd_debit_two_entries.ach",
        "nacha_ccdplus_ppd_invalid_format_code.txt",
        "nacha_ccdplus_txp_credit.ach",
        "nacha_ccdplus_with_addenda.ach",
        "nacha_ctx_820_in_addenda_brokenbar_latin1.ach",
        "nacha_ctx_820_in_addenda_brokenbar_utf8.ach",
        "nacha_ctx_debit_freetext_addenda.ach",
    ] {
        let b = fixture(name);
        let head = &b[..b.len().min(4096)];
        assert!(looks_like(head), "{name}");
        assert!(!x12::looks_like(head), "{name}");
    }
}

// ---- synthetic files: the layout built field by field ----

fn pad(s: &str) -> String {
    format!("{s:<94}")
}

fn file_header() -> String {
    pad(&format!(
        "101 021000021 1234567892406101200A094101{:<23}{:<23}{:<8}",
        "DEST BANK", "ORIGIN BANK", ""
    ))
}

fn batch_header(class: &str, company: &str, sec: &str, batch: u32) -> String {
    pad(&format!(
        "5{class}{company:<16}{:<20}{:<10}{sec}{:<10}{:<6}240611   1{:<8}{batch:07}",
        "", "9876543210", "PAYMENT", "", "02100002"
    ))
}

fn entry(tc: &str, amount_cents: u64, id: &str, name: &str, addenda: bool, trace: &str) -> String {
    pad(&format!(
        "6{tc}021000021{:<17}{amount_cents:010}{id:<15}{name:<22}  {}{trace:<15}",
        "4455667788",
        u8::from(addenda)
    ))
}

fn addendum(text: &str, seq: u32, trace: &str) -> String {
    format!("705{text:<80}{seq:04}{}", &trace[8..])
}

fn batch_control(
    class: &str,
    count: u64,
    hash: u64,
    debit: u64,
    credit: u64,
    batch: u32,
) -> String {
    pad(&format!(
        "8{class}{count:06}{hash:010}{debit:012}{credit:012}{:<10}{:<19}{:<6}{:<8}{batch:07}",
        "9876543210", "", "", "02100002"
    ))
}

fn file_control(
    batches: u64,
    blocks: u64,
    count: u64,
    hash: u64,
    debit: u64,
    credit: u64,
) -> String {
    pad(&format!(
        "9{batches:06}{blocks:06}{count:08}{hash:010}{debit:012}{credit:012}"
    ))
}

/// A CCD+ file with one credit whose addendum holds RMR segments, and one without addenda.
fn ccd_plus() -> Vec<String> {
    let t1 = "021000020000001";
    let t2 = "021000020000002";
    vec![
        file_header(),
        batch_header("220", "GLOBEX CORP", "CCD", 1),
        entry("22", 30000, "CUST-77", "CASHMATCH DEMO", true, t1),
        addendum(
            "RMR*IV*INV-1001*PI*150.00*155.00*5.00\\RMR*IV*INV-1002*PI*150\\",
            1,
            t1,
        ),
        entry("32", 1234, "", "CASHMATCH DEMO", false, t2),
        batch_control("220", 3, 2 * 2100002, 0, 31234, 1),
        file_control(1, 1, 3, 2 * 2100002, 0, 31234),
        "9".repeat(94),
        "9".repeat(94),
        "9".repeat(94),
    ]
}

#[test]
fn ccd_plus_rmr_addenda_become_lines() {
    let text = ccd_plus().join("\n");
    let parsed = read(text.as_bytes());
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let [a, b] = parsed.payments.as_slice() else {
        panic!("{:?}", parsed.payments)
    };
    assert!(
        a.warnings.is_empty() && b.warnings.is_empty(),
        "{:?} {:?}",
        a.warnings,
        b.warnings
    );
    assert_eq!(a.payment_id, "021000020000001");
    assert_eq!(a.amount, dec!(300.00));
    assert_eq!(a.payer.name.as_deref(), Some("GLOBEX CORP"));
    assert_eq!(a.payer.account.as_deref(), Some("9876543210"));
    assert_eq!(a.payment_date, date(2024, 6, 11));
    assert_eq!(a.free_text, ["CUST-77"]);
    assert_eq!(a.lines.len(), 2);
    assert_eq!(a.lines[0].reference.as_deref(), Some("INV-1001"));
    assert_eq!(
        (
            a.lines[0].amount_paid,
            a.lines[0].invoice_amount,
            a.lines[0].discount
        ),
        (Some(dec!(150.00)), Some(dec!(155.00)), Some(dec!(5.00)))
    );
    assert_eq!(a.lines[1].amount_paid, Some(dec!(150)));
    assert_eq!(b.amount, dec!(12.34));
    assert!(b.lines.is_empty() && b.free_text.is_empty());
}

#[test]
fn unpadded_records_without_line_ends_read_the_same() {
    let records = ccd_plus();
    let expected = read(records.join("\r\n").as_bytes()).payments;
    // Trailing spaces dropped, no final newline.
    let trimmed: Vec<_> = records.iter().map(|r| r.trim_end().to_string()).collect();
    assert_eq!(read(trimmed.join("\n").as_bytes()).payments, expected);
    // Back to back, as some systems write them, with or without the padding records.
    assert_eq!(read(records.concat().as_bytes()).payments, expected);
    let unpadded = read(records[..7].concat().trim_end().as_bytes()).payments;
    assert_eq!(unpadded.len(), 2);
    assert_eq!(unpadded[0].lines, expected[0].lines);
}

#[test]
fn control_mismatches_are_warnings() {
    let mut records = ccd_plus();
    records[5] = batch_control("220", 4, 999, 0, 31235, 1);
    records[6] = file_control(2, 1, 3, 2 * 2100002, 0, 31234);
    let parsed = read(records.join("\n").as_bytes());
    let p = &parsed.payments[0];
    for w in [
        "batch control entry/addenda count (positions 5-10) is 4, the batch adds up to 3",
        "batch control entry hash (positions 11-20) is 999, the batch adds up to 4200004",
        "batch control total credit amount (positions 33-44) is 31235, the batch adds up to 31234",
        "file control batch count (positions 2-7) is 2, the file adds up to 1",
    ] {
        assert!(has_warning(p, w), "{w}: {:?}", p.warnings);
    }
    assert_eq!(p.warnings.len(), 4, "{:?}", p.warnings);
}

#[test]
fn a_bad_entry_is_an_error_and_the_rest_goes_on() {
    let mut records = ccd_plus();
    records[2] = records[2].replacen("0000030000", "00000300X0", 1);
    records.insert(5, entry("99", 5, "", "X", false, "021000020000003"));
    let parsed = read(records.join("\n").as_bytes());
    let positions: Vec<_> = parsed.errors.iter().map(|e| e.position.clone()).collect();
    assert_eq!(
        positions,
        [
            Position::Record {
                line: 3,
                from: 30,
                to: 39
            },
            Position::Record {
                line: 6,
                from: 2,
                to: 3
            }
        ]
    );
    assert!(
        parsed.errors[0]
            .message
            .contains("\"00000300X0\" is not a number of cents")
    );
    assert!(
        parsed.errors[1]
            .message
            .contains("unknown transaction code \"99\"")
    );
    // The addendum of the bad entry is skipped with it; the good entry stays.
    let ids: Vec<_> = parsed
        .payments
        .iter()
        .map(|p| p.payment_id.as_str())
        .collect();
    assert_eq!(ids, ["021000020000002"]);
}

#[test]
fn returns_prenotes_and_misplaced_codes_are_flagged() {
    let t = "021000020000009";
    let records = [
        file_header(),
        batch_header("225", "GLOBEX CORP", "CCD", 1),
        entry("21", 0, "", "A", true, t),
        format!("799R01{t}      02100002{:<44}{:<15}", "", "021000020000001"),
        entry("23", 0, "", "B", false, "021000020000010"),
        batch_control("225", 3, 2 * 2100002, 0, 0, 1),
        file_control(1, 1, 3, 2 * 2100002, 0, 0),
    ];
    let parsed = read(records.join("\n").as_bytes());
    let [ret, pre] = parsed.payments.as_slice() else {
        panic!("{:?}", parsed)
    };
    assert!(has_warning(
        ret,
        "automated return or notification of change"
    ));
    assert!(has_warning(ret, "returned entry: return reason R01"));
    assert_eq!(
        ret.returned,
        Some(ReturnedItem {
            return_code: "R01".into(),
            reason: Some("insufficient funds".into()),
            original_trace: Some(t.into()),
        })
    );
    assert_eq!(pre.returned, None);
    assert!(has_warning(
        ret,
        "does not belong in a batch of service class 225"
    ));
    assert!(has_warning(pre, "prenotification: no funds move"));
}

#[test]
fn iat_batches_are_refused_once() {
    let records = [
        file_header(),
        batch_header("220", "GLOBEX CORP", "IAT", 1),
        entry("22", 100, "", "A", true, "021000020000001"),
        addendum("ANYTHING", 1, "021000020000001"),
        batch_control("220", 2, 2100002, 0, 100, 1),
        file_control(1, 1, 2, 2100002, 0, 100),
    ];
    let parsed = read(records.join("\n").as_bytes());
    assert!(parsed.payments.is_empty());
    let [e] = parsed.errors.as_slice() else {
        panic!("{:?}", parsed.errors)
    };
    assert_eq!(
        e.position,
        Position::Record {
            line: 2,
            from: 51,
            to: 53
        }
    );
}

#[test]
fn not_nacha_is_a_file_level_error() {
    let e = parse(b"5220 batch first", "x.ach").unwrap_err();
    assert!(e.message.contains("expected a file header"), "{e}");
    assert!(parse(b"\n\n", "x.ach").is_err());
    assert!(!looks_like(b"ISA*00*"));
    assert!(!looks_like(b"hello"));
    assert!(looks_like(file_header().as_bytes()));
}

#[test]
fn a_missing_file_control_is_a_warning() {
    let records = &ccd_plus()[..6];
    let parsed = read(records.join("\n").as_bytes());
    assert!(has_warning(
        &parsed.payments[0],
        "the file has no file control record"
    ));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..800)) {
        let _ = parse(&data, "p");
    }

    #[test]
    fn damaged_records_never_panic(
        cut in 0usize..94, at in 0usize..7, junk in "[ -~\u{a6}]{0,120}",
    ) {
        let mut records = ccd_plus();
        let r = &mut records[at];
        let keep: String = r.chars().take(cut).collect();
        *r = format!("{keep}{junk}");
        let _ = parse(records.join("\n").as_bytes(), "p");
    }
}

// ---- original fixtures (written for cashmatch) ----

#[test]
fn a_return_file_marks_each_entry_returned_with_its_r_code_and_original_trace() {
    let parsed = read(&fixture("nacha_returns_r01_r02_original.ach"));
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let [nsf, closed] = parsed.payments.as_slice() else {
        panic!("{:?}", parsed.payments)
    };
    // Every control total of the file reconciles: the only warnings are the return notes.
    for p in [nsf, closed] {
        assert!(
            p.warnings
                .iter()
                .all(|w| w.starts_with("transaction code 26") || w.starts_with("returned entry")),
            "{:?}",
            p.warnings
        );
    }
    assert_eq!(nsf.payment_id, "021000020000011");
    assert_eq!(
        (nsf.amount, nsf.direction),
        (dec!(1250.00), Direction::Debit)
    );
    assert_eq!(nsf.payment_date, date(2026, 12, 4));
    // The receiver whose debit was returned: the account a customer is known by.
    assert_eq!(nsf.payer.account.as_deref(), Some("021000021:4000123456"));
    let r = nsf.returned.as_ref().expect("returned");
    assert_eq!(
        (r.return_code.as_str(), r.original_trace.as_deref()),
        ("R01", Some("091000010000001"))
    );
    assert_eq!(r.reason.as_deref(), Some("insufficient funds"));
    let r = closed.returned.as_ref().expect("returned");
    assert_eq!(
        (r.return_code.as_str(), r.reason.as_deref()),
        ("R02", Some("account closed"))
    );
}

#[test]
fn a_return_addenda_with_a_code_that_is_not_an_r_code_is_kept_and_flagged() {
    let t = "021000020000009";
    let records = [
        file_header(),
        batch_header("225", "GLOBEX CORP", "CCD", 1),
        entry("26", 0, "", "A", true, t),
        format!("799X99{t}      02100002{:<44}{:<15}", "BANK TEXT", t),
        batch_control("225", 2, 2100002, 0, 0, 1),
        file_control(1, 1, 2, 2100002, 0, 0),
    ];
    let parsed = read(records.join("\n").as_bytes());
    let r = parsed.payments[0].returned.as_ref().expect("returned");
    assert_eq!(r.return_code, "X99");
    assert_eq!(r.reason.as_deref(), Some("BANK TEXT"));
    assert!(has_warning(&parsed.payments[0], "is not an R-code"));
}
