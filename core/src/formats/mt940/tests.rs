use super::*;
use crate::domain::ReferenceKind;
use rust_decimal_macros::dec;

const ABN: &[u8] = include_bytes!("../../../../fixtures/mt940/mt940_abnamro_nl_factuur.sta");
const CITI: &[u8] = include_bytes!("../../../../fixtures/mt940/mt940_citi_us.txt");
const DANSKE_DK: &[u8] = include_bytes!("../../../../fixtures/mt940/mt940_danskebank_dk.sta");
const DANSKE_NO: &[u8] =
    include_bytes!("../../../../fixtures/mt940/mt940_danskebank_no_kid_ocr.sta");
const CMXL: &[u8] =
    include_bytes!("../../../../fixtures/mt940/mt940_de_pl_cmxl_three_statements.sta");
const SEPA: &[u8] = include_bytes!("../../../../fixtures/mt940/mt940_de_sepa_structured86.sta");
const RABO: &[u8] = include_bytes!("../../../../fixtures/mt940/mt940_rabobank_structured86.sta");
const SPARKASSE: &[u8] =
    include_bytes!("../../../../fixtures/mt940/mt940_sparkasse_unescaped_umlauts.sta");

fn parsed(bytes: &[u8]) -> Parsed {
    let p = parse(bytes, "t.sta").unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    p
}

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

fn count(p: &Parsed, d: Direction) -> usize {
    p.payments.iter().filter(|x| x.direction == d).count()
}

fn total(p: &Parsed, d: Direction) -> Decimal {
    p.payments
        .iter()
        .filter(|x| x.direction == d)
        .map(|x| x.amount)
        .sum()
}

#[test]
fn every_sample_parses_with_its_statement_lines_counted() {
    for (bytes, n) in [
        (ABN, 10),
        (CITI, 5),
        (DANSKE_DK, 89),
        (DANSKE_NO, 24),
        (CMXL, 16),
        (SEPA, 11),
        (RABO, 4),
        (SPARKASSE, 3),
    ] {
        assert!(looks_like(&bytes[..bytes.len().min(4096)]));
        assert_eq!(parsed(bytes).payments.len(), n);
        // Payment ids are unique within each file, whatever the banks put in :61:.
        let p = parsed(bytes);
        let mut ids: Vec<&str> = p.payments.iter().map(|x| x.payment_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
    assert!(!looks_like(include_bytes!(
        "../../../../fixtures/bai2/bai2_moj_citi_gbp.bai2"
    )));
}

#[test]
fn sepa_structured_86_gives_payer_end_to_end_and_purpose() {
    let p = parsed(SEPA);
    let x = &p.payments[0];
    assert_eq!(
        x.payment_id, "0724710333343453",
        "NONREF falls back to the bank reference"
    );
    assert_eq!(
        (x.direction, x.amount, x.currency.as_str()),
        (Direction::Credit, dec!(50990.05), "EUR")
    );
    assert_eq!(
        x.payment_date,
        date(2007, 9, 4),
        "entry date 0904 before value date 070907"
    );
    assert_eq!(x.payer.name.as_deref(), Some("KARL KAUFMANN"));
    assert_eq!(x.payer.account.as_deref(), Some("DE14508800500194785000"));
    assert_eq!(x.lines.len(), 1);
    assert_eq!(
        x.lines[0].reference.as_deref(),
        Some("EndToEndId TFNR 22 004 00001")
    );
    assert_eq!(x.lines[0].reference_kind, ReferenceKind::Unknown);
    assert_eq!(x.free_text, ["Verw CTSc-01 BC-PPP TFNr 22 004"]);
    // Subfields wrapped mid-word are joined.
    assert_eq!(
        p.payments[1].free_text,
        ["Strukturierter Verwendungszweck 30030004 DE"]
    );
    assert_eq!(p.payments[1].payer.name.as_deref(), Some("Quentin Quast"));
    // `KREF+` as the :61: reference points at the KREF in :86:.
    assert_eq!(p.payments[3].payment_id, "TFNr 01022 MSGID CTSc-01 EBB");
    assert_eq!(p.payments[3].direction, Direction::Debit);
    // Returns are flagged from the booking text.
    let r = &p.payments[4];
    assert_eq!((r.direction, r.amount), (Direction::Debit, dec!(0.08)));
    assert!(r.warnings.iter().any(|w| w.contains("RETOURE")));
    assert_eq!(
        r.free_text,
        ["Grund nicht spezifiziert Reject aus SEPA-Ueberweisungsauftrag"]
    );
    assert_eq!(
        (count(&p, Direction::Credit), count(&p, Direction::Debit)),
        (8, 3)
    );
    // First statement reconciles; the second is 300.08 off in the sample itself.
    assert!(p.payments[0].warnings.is_empty());
    assert!(
        p.payments[4]
            .warnings
            .iter()
            .any(|w| w.contains("closing balance at line 55 is -4472049.09"))
    );
}

#[test]
fn rabobank_slash_codes_and_counterparty_iban_line() {
    let p = parsed(RABO);
    let x = &p.payments[0];
    // Rabobank's :61: reference `EREF` points at the end-to-end reference in :86:.
    assert_eq!(x.payment_id, "01-01-2013 12:00 0030000987654321");
    assert_eq!((x.direction, x.amount), (Direction::Debit, dec!(25.00)));
    assert_eq!(
        x.payer.name.as_deref(),
        Some("CONTRA ACCOUNT HOLDER"),
        "NAME wrapped over two lines"
    );
    assert_eq!(x.payer.account.as_deref(), Some("NL70ABNA0987654321"));
    assert_eq!(
        x.lines[0].reference.as_deref(),
        Some("01-01-2013 12:00 0030000987654321")
    );
    let y = &p.payments[1];
    assert_eq!(y.payment_id, "NL71RABO0123456789:0:130102:2");
    assert_eq!(y.payer.name.as_deref(), Some("JOHN DOE"));
    assert_eq!(y.free_text, ["P001234567", "Reference 201301234"]);
    assert_eq!(p.payments[3].payment_date, date(2013, 1, 9));
    assert!(
        p.payments.iter().all(|x| x.warnings.is_empty()),
        "balances reconcile"
    );
}

#[test]
fn abn_amro_banners_decimal_commas_and_an_unbalanced_sample() {
    let p = parsed(ABN);
    let amounts: Vec<Decimal> = p.payments.iter().map(|x| x.amount).collect();
    assert_eq!(
        amounts,
        [
            dec!(9),
            dec!(11.59),
            dec!(11.63),
            dec!(11.8),
            dec!(13.45),
            dec!(15.49),
            dec!(107),
            dec!(141.48),
            dec!(9.49),
            dec!(15)
        ]
    );
    assert_eq!(p.payments[0].amount.to_string(), "9.00");
    assert_eq!(count(&p, Direction::Debit), 10);
    assert_eq!(p.payments[0].payment_id, "517852257:19321/1:110524:1");
    assert!(p.payments[0].free_text[0].contains("BETREFT FACTUUR D.D. 20-05-2011"));
    assert_eq!(p.payments[0].free_text[0].lines().count(), 3);
    // 3236.28 - 321.44 is not the 876.84 the sample closes with.
    assert!(
        p.payments[0].warnings[0]
            .contains("gives 2914.84, but the closing balance at line 27 is 876.84")
    );
}

#[test]
fn citi_blank_entry_date_supplementary_details_and_zero_lines() {
    let p = parsed(CITI);
    assert_eq!(
        (count(&p, Direction::Debit), total(&p, Direction::Debit)),
        (3, dec!(1142.75))
    );
    assert_eq!(
        (count(&p, Direction::Credit), total(&p, Direction::Credit)),
        (2, dec!(0))
    );
    assert_eq!(p.payments[0].free_text[0], "/ABC/DEF/MISCELLANEOUS");
    assert!(p.payments[2].warnings[0].starts_with("zero amount"));
    assert!(p.payments.iter().all(|x| x.currency == Currency::USD));
    assert!(
        p.payments[0].warnings.is_empty(),
        "17376.67 - 1142.75 = 16233.92 reconciles"
    );
}

#[test]
fn danske_preamble_statement_info_and_kid_credits() {
    let p = parsed(DANSKE_NO);
    assert_eq!(
        (count(&p, Direction::Credit), count(&p, Direction::Debit)),
        (10, 14)
    );
    assert!(p.payments.iter().all(|x| x.currency.as_str() == "NOK"));
    let ocr = p
        .payments
        .iter()
        .find(|x| x.payment_id == "33333333333")
        .unwrap();
    assert_eq!(
        (ocr.direction, ocr.amount),
        (Direction::Credit, dec!(562279.00))
    );
    assert!(ocr.warnings[0].contains("\"Sumpost OCR-\" repeats"));
    // The statement-level :86: lines after :60F: belong to no entry.
    assert!(
        p.payments
            .iter()
            .all(|x| !x.free_text.iter().any(|t| t.contains("For your inform")))
    );
    assert!(
        p.payments
            .iter()
            .any(|x| x.free_text == ["DBT.Faktura 12345 -pakke"])
    );
    let dk = parsed(DANSKE_DK);
    assert!(dk.payments.iter().all(|x| x.currency.as_str() == "DKK"));
    let faktura = dk
        .payments
        .iter()
        .find(|x| x.payment_id == "DB faktura")
        .unwrap();
    assert_eq!(faktura.amount, dec!(2000.00));
    assert_eq!(
        faktura.free_text,
        ["DB faktura 1234567\nTestkunde\nHOLMENS KANAL 2-12\n1192  KOBENHAVN H"]
    );
    assert!(
        dk.payments
            .iter()
            .all(|x| !x.warnings.iter().any(|w| w.contains("closing")))
    );
}

#[test]
fn cmxl_three_currencies_german_and_polish_subfields() {
    let p = parsed(CMXL);
    let currencies: Vec<&str> = p.payments.iter().map(|x| x.currency.as_str()).collect();
    assert_eq!(currencies.iter().filter(|c| **c == "DEM").count(), 11);
    assert_eq!(currencies.iter().filter(|c| **c == "EUR").count(), 2);
    assert_eq!(currencies.iter().filter(|c| **c == "PLN").count(), 3);
    assert_eq!(p.payments[0].payment_id, "16703074");
    assert_eq!(
        p.payments[0].free_text,
        ["PN5477SCHECK-NR. 0000016703074"],
        "code 999 is plain text"
    );
    let rent = &p.payments[11];
    assert_eq!(
        (rent.payment_id.as_str(), rent.amount),
        ("55555", dec!(800))
    );
    assert_eq!(rent.payer.name.as_deref(), Some("MUELLER"));
    assert_eq!(rent.payer.account.as_deref(), Some("10020030:234567"));
    assert_eq!(rent.free_text, ["Miete November"]);
    let pl = &p.payments[13];
    assert_eq!(pl.payment_id, "8327000090031789");
    assert_eq!(
        pl.payer.account.as_deref(),
        Some("PL08106000760000777777777777")
    );
    assert_eq!(pl.free_text[0], "Card transaction");
    assert!(
        pl.free_text[1].ends_with("FAKTURA 333/2003."),
        "{:?}",
        pl.free_text
    );
    assert_eq!(p.payments[14].payment_id, "REF 25611247");
}

#[test]
fn umlauts_read_the_same_in_utf8_and_latin1() {
    let p = parsed(SPARKASSE);
    assert_eq!(total(&p, Direction::Debit), dec!(141.04));
    let text = &p.payments[2].free_text[0];
    assert!(
        text.contains("some ümläuté and öther stüff för some rëäsön"),
        "{text}"
    );
    let latin1: Vec<u8> = std::str::from_utf8(SPARKASSE)
        .unwrap()
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect();
    assert_ne!(latin1.as_slice(), SPARKASSE);
    assert_eq!(parsed(&latin1).payments, p.payments);
}

#[test]
fn swift_blocks_reversals_and_year_end() {
    let text = "{1:F01BANKDEFFAXXX0000000000}{2:O9401200991231BANKDEFFAXXX00000000009912311200N}{4:\r\n\
                    :20:STMT1\r\n:25:DE89370400440532013000\r\n:28C:1/1\r\n:60F:C991230EUR100,\r\n\
                    :61:9912310102RC10,5NTRFINV-1//B1\r\n:86:/EREF/INV-1/NAME/ACME/\r\n\
                    :61:991231RD1,NRTIREF2\r\n:62F:C000102EUR90,5\r\n-}{5:{CHK:123}}\r\n";
    assert!(looks_like(text.as_bytes()));
    let p = parsed(text.as_bytes());
    assert_eq!(p.payments.len(), 2);
    let rc = &p.payments[0];
    assert_eq!(
        (rc.payment_id.as_str(), rc.direction, rc.amount),
        ("INV-1", Direction::Debit, dec!(10.50))
    );
    assert_eq!(
        rc.payment_date,
        date(2000, 1, 2),
        "entry date in the next year"
    );
    assert_eq!(rc.warnings, ["reversal of a credit (RC)"]);
    assert_eq!(rc.payer.name.as_deref(), Some("ACME"));
    let rd = &p.payments[1];
    assert_eq!(
        (rd.direction, rd.payment_date),
        (Direction::Credit, date(1999, 12, 31))
    );
    // 100 - 10.50 (RC) + 1 (RD) = 90.50: the reversal signs reconcile the balances.
    assert_eq!(
        rd.warnings,
        [
            "reversal of a debit (RD)",
            "returned item (transaction type NRTI)"
        ]
    );
}

#[test]
fn faults_name_the_line() {
    let text = ":20:X\n:25:A\n:60F:C240101EUR1,00\n:61:2401XXD1,NTRFR1\n:61:240102D1,NTRFR2\n:62F:C240102EUR0,\n";
    let p = parse(text.as_bytes(), "f.sta").unwrap();
    assert_eq!(p.payments.len(), 1);
    assert_eq!(
        p.errors[0].to_string(),
        "f.sta: line 4: :61: statement line: value date \"2401XX\" is not a YYMMDD date; the line was skipped"
    );
    let no_balance = parse(b":20:X\n:61:240102D1,NTRFR2\n", "n.sta").unwrap();
    assert!(no_balance.payments.is_empty());
    assert!(
        no_balance.errors[0]
            .to_string()
            .contains("no readable balance")
    );
    let e = parse(b"hello\nworld\n", "h.txt").unwrap_err();
    assert_eq!(
        e.to_string(),
        "h.txt: file: not an MT940 file: no :20: or :61: field found"
    );
}

#[test]
fn statement_line_parts() {
    let l = parse_61(&[
        "0310201020D10000,00FTRFREF 25611247//8327000090031790".into(),
        "Transfer".into(),
    ])
    .unwrap();
    assert_eq!(
        (l.value_date, l.entry_date),
        (date(2003, 10, 20).unwrap(), date(2003, 10, 20))
    );
    assert_eq!(
        (l.mark.as_str(), l.amount, l.transaction_type.as_str()),
        ("D", dec!(10000.00), "FTRF")
    );
    assert_eq!(
        (
            l.customer_ref.as_str(),
            l.bank_ref.as_str(),
            l.supplementary.as_str()
        ),
        ("REF 25611247", "8327000090031790", "Transfer")
    );
    let l = parse_61(&["1003260326CK104104,00NTRFSumpost OCR-//11111111111".into()]).unwrap();
    assert_eq!(
        (l.mark.as_str(), l.amount),
        ("C", dec!(104104.00)),
        "K is the funds code"
    );
    assert!(parse_61(&["240101X1,NTRF".into()]).is_err());
    assert!(parse_61(&["240101D,5NTRF".into()]).is_err());
    assert!(parse_61(&["240101D1,N".into()]).is_err());
}

#[test]
fn tokenizer_skips_banners_and_keeps_continuations() {
    let t = tokenize("banner\n:20:A\n:86:one\ntwo\n-\nABNANL2A\n940\n:20:B\n");
    let f = |t: &Token| match t {
        Token::Field(f) => format!("{}@{}={}", f.tag, f.line, f.lines.join("|")),
        Token::End { line } => format!("-@{line}"),
    };
    let got: Vec<String> = t.iter().map(f).collect();
    assert_eq!(got, ["20@2=A", "86@3=one|two", "-@5", "20@8=B"]);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn tokenizer_never_panics(text in "\\PC{0,300}") {
            let _ = tokenize(&text);
        }

        #[test]
        fn tokenizer_keeps_every_field(fields in prop::collection::vec(
            (prop::sample::select(vec!["20", "25", "28C", "60F", "61", "86", "62F"]), "[A-Za-z0-9 ,/?+]{1,40}"), 0..10))
        {
            let text: String = fields.iter().map(|(t, v)| format!(":{t}:{v}\r\n")).collect();
            let got: Vec<(String, String)> = tokenize(&text)
                .into_iter()
                .filter_map(|t| match t {
                    Token::Field(f) => Some((f.tag, f.lines.join("\n"))),
                    Token::End { .. } => None,
                })
                .collect();
            let want: Vec<(String, String)> = fields.iter().map(|(t, v)| (t.to_string(), v.clone())).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn narrative_and_line_parsing_never_panic(text in "[0-9?/A-Z+ :,.\\n-]{0,200}") {
            let lines: Vec<String> = text.split('\n').map(String::from).collect();
            let _ = narrative(&lines);
            let _ = parse_61(&lines);
        }

        #[test]
        fn parse_never_panics(text in "(:(20|25|28C|60F|61|86|62F):[0-9A-Z,/?+ ]{0,40}\n){0,12}") {
            let _ = parse(text.as_bytes(), "p");
        }
    }
}
