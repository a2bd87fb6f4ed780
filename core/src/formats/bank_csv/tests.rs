use super::conventions::*;
use super::header::*;
use super::records::*;
use super::values::*;
use super::vocabulary::*;
use super::*;
use crate::domain::{Currency, Direction, Payment, ReferenceKind};
use crate::formats::{Format, Parsed, Position};
use chrono::NaiveDate;
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::path::PathBuf;

/// A third-party sample ([`crate::formats::samples`]): skipped without it, a failure under CI.
fn sample(rel: &str) -> Option<Vec<u8>> {
    crate::formats::samples::read(rel).map(|(b, _)| b)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/bank_csv")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read(bytes: &[u8]) -> Parsed {
    parse(bytes, "export.csv").expect("file-level parse")
}

fn clean(bytes: &[u8]) -> Vec<Payment> {
    let p = read(bytes);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    p.payments
}

fn by_id<'a>(ps: &'a [Payment], id: &str) -> &'a Payment {
    ps.iter()
        .find(|p| p.payment_id == id)
        .unwrap_or_else(|| panic!("no payment {id}"))
}

fn refs(p: &Payment) -> Vec<(&str, ReferenceKind)> {
    p.lines
        .iter()
        .map(|l| (l.reference.as_deref().unwrap_or(""), l.reference_kind))
        .collect()
}

fn total(ps: &[Payment], direction: Direction, currency: &str) -> Decimal {
    ps.iter()
        .filter(|p| p.direction == direction && p.currency.as_str() == currency)
        .map(|p| p.amount)
        .sum()
}

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

// --- the third-party samples -----------------------------------------------------------------

#[test]
fn sample_french_bank_preamble_debit_credit_decimal_comma_footer() {
    let Some(bytes) = sample("csv/csv_bank_fr_metadata_debit_credit.csv") else {
        return;
    };
    assert_eq!(crate::formats::detect(&bytes), Format::BankCsv);
    let ps = clean(&bytes);
    // Four operations; the "Balance at end of period" line above the header is preamble and
    // "Balance at start of period" below the rows is a footer.
    let got: Vec<_> = ps
        .iter()
        .map(|p| (p.payment_id.as_str(), p.direction, p.amount, p.payment_date))
        .collect();
    assert_eq!(
        got,
        [
            (
                "UNIQUE OP 1",
                Direction::Debit,
                dec!(50.00),
                date(2020, 4, 1)
            ),
            (
                "UNIQUE OP 2",
                Direction::Debit,
                dec!(100.00),
                date(2020, 4, 1)
            ),
            (
                "UNIQUE OP 3",
                Direction::Debit,
                dec!(80.68),
                date(2020, 4, 2)
            ),
            (
                "UNIQUE OP 4",
                Direction::Credit,
                dec!(1300.00),
                date(2020, 4, 2)
            ),
        ]
    );
    // `Account Name : Account Owner,: EUR` in the preamble gives the currency.
    assert!(ps.iter().all(|p| p.currency.as_str() == "EUR"));
    assert_eq!(
        by_id(&ps, "UNIQUE OP 2").free_text,
        ["LABEL 2", "CLIENTS X"]
    );
    // 01/04/20 and 02/04/20 read either way; day-first spans a day, month-first a month (the
    // preamble's download period, 01/04/2020 to 02/04/2020, agrees).
    let w = &ps[0].warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("day-first") && w[0].contains("1 day"),
        "{w:?}"
    );
}

#[test]
fn sample_paypal_statement_month_first_gross_invoice_ids() {
    let Some(bytes) = sample("csv/csv_paypal_statement_en.csv") else {
        return;
    };
    assert_eq!(crate::formats::detect(&bytes), Format::BankCsv);
    let ps = clean(&bytes);
    assert_eq!(ps.len(), 19);
    let credits = ps.iter().filter(|p| p.direction == Direction::Credit);
    assert_eq!(credits.count(), 11);
    // Sums of |Gross| by direction and currency, added up by hand from the file.
    assert_eq!(total(&ps, Direction::Credit, "USD"), dec!(22010.80));
    assert_eq!(total(&ps, Direction::Debit, "USD"), dec!(20914.00));
    assert_eq!(total(&ps, Direction::Credit, "EUR"), dec!(17346.31));
    assert_eq!(total(&ps, Direction::Debit, "EUR"), dec!(17346.31));
    // "9/27/2018": the second field above 12 makes the whole column month-first.
    let p = by_id(&ps, "TID1");
    assert_eq!(
        (p.direction, p.amount, p.payment_date, p.currency.as_str()),
        (Direction::Debit, dec!(1058.09), date(2018, 9, 4), "EUR")
    );
    assert_eq!(p.free_text, ["General Withdrawal - Bank Account"]);
    let p = by_id(&ps, "TID9");
    assert_eq!(
        (p.direction, p.amount, p.payment_date, p.currency.as_str()),
        (Direction::Credit, dec!(1309.80), date(2018, 9, 4), "USD")
    );
    assert_eq!(p.payer.name.as_deref(), Some("Partner 1"));
    assert_eq!(refs(p), [("361", ReferenceKind::Invoice)]);
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("-48.76") && w.contains("1,261.04"))
    );
    let p = by_id(&ps, "TID17");
    assert_eq!(
        (p.amount, p.payment_date),
        (dec!(5600.00), date(2018, 9, 27))
    );
    let invoices: Vec<_> = ps.iter().flat_map(refs).map(|(r, _)| r).collect();
    assert_eq!(invoices, ["361", "362", "363", "366", "367", "371", "380"]);
    // `Reference Txn ID` links a conversion to its withdrawal: not a remittance reference.
    assert!(by_id(&ps, "TID2").lines.is_empty());
}

#[test]
fn sample_paypal_activity_day_first_status_and_invoice_numbers() {
    let Some(bytes) = sample("csv/csv_paypal_activity_en.csv") else {
        return;
    };
    assert_eq!(crate::formats::detect(&bytes), Format::BankCsv);
    let ps = clean(&bytes);
    assert_eq!(ps.len(), 76);
    assert_eq!(
        ps.iter()
            .filter(|p| p.direction == Direction::Debit)
            .count(),
        33
    );
    assert_eq!(total(&ps, Direction::Credit, "USD"), dec!(74408.02));
    assert_eq!(total(&ps, Direction::Debit, "USD"), dec!(71480.24));
    assert_eq!(total(&ps, Direction::Credit, "EUR"), dec!(59427.02));
    assert_eq!(total(&ps, Direction::Debit, "EUR"), dec!(59383.68));
    assert_eq!(total(&ps, Direction::Credit, "AUD"), dec!(100.00));
    // "29/12/2015": a first field above 12 makes the column day-first, so 12/02/2016 is
    // 12 February.
    assert_eq!(by_id(&ps, "TID1").payment_date, date(2015, 12, 29));
    assert_eq!(by_id(&ps, "TID2").payment_date, date(2016, 2, 12));
    let p = by_id(&ps, "TID4");
    assert_eq!(
        (p.direction, p.amount, p.currency.as_str()),
        (Direction::Credit, dec!(1653.75), "USD")
    );
    assert_eq!(p.payer.name.as_deref(), Some("PARTNER2"));
    assert_eq!(refs(p), [("31", ReferenceKind::Invoice)]);
    assert_eq!(p.free_text, ["Payment to My Company for invoice 31"]);
    let p = by_id(&ps, "TID11");
    assert_eq!(
        (p.direction, p.amount, p.currency.as_str()),
        (Direction::Debit, dec!(12431.37), "EUR")
    );
    assert!(p.warnings.contains(&"status \"Pending\"".to_string()));
    let pending = ps
        .iter()
        .filter(|p| p.warnings.iter().any(|w| w.starts_with("status")))
        .count();
    assert_eq!(pending, 14);
    let with_invoice = ps.iter().filter(|p| !p.lines.is_empty()).count();
    assert_eq!(with_invoice, 31);
    assert_eq!(
        refs(by_id(&ps, "TID7")),
        [("PARTNER3-INV1", ReferenceKind::Invoice)]
    );
    // No row of the activity export lacks a date: no error, no warning about dates.
    assert!(
        ps.iter()
            .all(|p| !p.warnings.iter().any(|w| w.contains("date")))
    );
}

// --- the original fixtures -------------------------------------------------------------------

#[test]
fn fixture_semicolon_decimal_comma_preamble() {
    let bytes = fixture("semicolon_decimal_comma_preamble.csv");
    assert_eq!(crate::formats::detect(&bytes), Format::BankCsv);
    let ps = parse(
        &bytes,
        "fixtures/bank_csv/semicolon_decimal_comma_preamble.csv",
    )
    .unwrap()
    .payments;
    let got: Vec<_> = ps
        .iter()
        .map(|p| (p.payment_id.as_str(), p.direction, p.amount, p.payment_date))
        .collect();
    // CRLF lines: the header is line 6, the rows 7-10, the Endsaldo footer 11 is skipped.
    assert_eq!(
        got,
        [
            (
                "semicolon_decimal_comma_preamble:7",
                Direction::Credit,
                dec!(1234.56),
                date(2024, 3, 5)
            ),
            (
                "semicolon_decimal_comma_preamble:8",
                Direction::Debit,
                dec!(89.90),
                date(2024, 3, 7)
            ),
            (
                "semicolon_decimal_comma_preamble:9",
                Direction::Credit,
                dec!(9800.00),
                date(2024, 3, 12)
            ),
            (
                "semicolon_decimal_comma_preamble:10",
                Direction::Debit,
                dec!(12.50),
                date(2024, 3, 28)
            ),
        ]
    );
    assert!(ps.iter().all(|p| p.currency.as_str() == "EUR"));
    let p = &ps[0];
    assert_eq!(p.payer.name.as_deref(), Some("Muster Handels GmbH"));
    // NOTPROVIDED in the customer-reference column is SEPA's "none".
    assert_eq!(refs(p), [("2024-0117", ReferenceKind::Invoice)]);
    assert_eq!(p.free_text, ["Zahlung RE 2024-0117 und 2024-0121"]);
    assert_eq!(p.warnings.len(), 1);
    assert!(
        p.warnings[0].starts_with("no transaction id"),
        "{:?}",
        p.warnings
    );
    let p = &ps[2];
    assert_eq!(p.payer.name.as_deref(), Some("Becker & Söhne KG"));
    assert_eq!(
        refs(p),
        [
            ("2024-0130", ReferenceKind::Invoice),
            ("E2E-4471", ReferenceKind::Unknown)
        ]
    );
}

#[test]
fn fixture_comma_quoted_thousands() {
    let bytes = fixture("comma_quoted_thousands.csv");
    assert_eq!(crate::formats::detect(&bytes), Format::BankCsv);
    let ps = clean(&bytes);
    let got: Vec<_> = ps
        .iter()
        .map(|p| (p.payment_id.as_str(), p.direction, p.amount, p.payment_date))
        .collect();
    assert_eq!(
        got,
        [
            (
                "TXN-20240314-001",
                Direction::Credit,
                dec!(1530.50),
                date(2024, 3, 14)
            ),
            (
                "TXN-20240315-002",
                Direction::Credit,
                dec!(12000.00),
                date(2024, 3, 15)
            ),
            (
                "TXN-20240315-003",
                Direction::Debit,
                dec!(250.00),
                date(2024, 3, 15)
            ),
            (
                "TXN-20240318-004",
                Direction::Credit,
                dec!(980.25),
                date(2024, 3, 18)
            ),
        ]
    );
    let p = &ps[0];
    assert_eq!(
        refs(p),
        [
            ("INV-10442", ReferenceKind::Invoice),
            ("PO-7781", ReferenceKind::PurchaseOrder)
        ]
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(
        ps[1].payer.name.as_deref(),
        Some("Harbor Freight Lines, Inc.")
    );
    assert_eq!(ps[3].warnings, ["status \"Pending\""]);
}

#[test]
fn fixture_debit_credit_columns_tab() {
    let bytes = fixture("debit_credit_columns_tab.csv");
    assert_eq!(crate::formats::detect(&bytes), Format::BankCsv);
    let ps = clean(&bytes);
    let got: Vec<_> = ps
        .iter()
        .map(|p| (p.direction, p.amount, p.payment_date, p.currency.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Direction::Credit, dec!(2450.00), date(2024, 2, 2), "EUR"),
            (Direction::Debit, dec!(1100.00), date(2024, 2, 9), "EUR"),
            (Direction::Credit, dec!(845.10), date(2024, 2, 20), "EUR"),
        ]
    );
    let p = &ps[0];
    assert_eq!(p.payment_id, "export:6");
    assert_eq!(p.payer.account.as_deref(), Some("NL20INGB0001234567"));
    assert_eq!(refs(p), [("F24-0031", ReferenceKind::Invoice)]);
}

// --- detection and file-level errors ---------------------------------------------------------

#[test]
fn detection_leaves_the_project_csv_and_free_text_alone() {
    use crate::formats::detect;
    assert_eq!(
        detect(b"payment_id,payment_amount,reference\nP1,5,INV1\n"),
        Format::Csv
    );
    assert_eq!(detect(b"Please apply $10.00 to INV 1001"), Format::FreeText);
    let memo =
        b"Hello,\nPlease apply our payment of $3,300.00 to INV 1001, 1002 & 1005.\nThanks, AP team";
    assert_eq!(detect(memo), Format::FreeText);
    assert_eq!(
        detect(b"INV 1001, INV 1002, INV 1003\nINV 1004, INV 1005, INV 1006\n"),
        Format::FreeText
    );
    assert_eq!(detect(b"Date;Montant\n01/02/2024;12,50\n"), Format::BankCsv);
    assert_eq!(detect(b"\"Datum\"\t\"Bedrag (EUR)\"\n"), Format::BankCsv);
}

#[test]
fn a_table_without_date_and_amount_columns_is_refused_listing_its_columns() {
    let bytes = b"Posted,Value,Memo\n2024-01-02,5.00,hello\n2024-01-03,6.00,world\n";
    assert_eq!(crate::formats::detect(bytes), Format::BankCsv);
    let e = crate::formats::parse(bytes, "odd.csv", None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "odd.csv: line 1: a CSV without payment_id (project format) or date and amount columns \
         (bank export): columns are \"Posted\", \"Value\", \"Memo\""
    );
}

#[test]
fn text_read_as_a_bank_csv_is_refused_naming_the_file() {
    let e = parse(b"Please apply $10.00 to INV 1001", "memo.txt").unwrap_err();
    assert_eq!(e.file, "memo.txt");
    assert_eq!(e.position, Position::File);
    assert!(e.message.starts_with("not a bank CSV export"), "{e}");
}

#[test]
fn a_header_deep_in_a_long_preamble_is_not_looked_for() {
    let mut text = "Bank statement\n".repeat(MAX_PREAMBLE + 1);
    text.push_str("Date,Amount\n2024-01-02,5.00\n");
    assert!(parse(text.as_bytes(), "x.csv").is_err());
    let text = "Bank statement\n".repeat(MAX_PREAMBLE) + "Date,Amount\n2024-01-02,5.00\n";
    assert_eq!(clean(text.as_bytes()).len(), 1);
}

// --- rows ------------------------------------------------------------------------------------

#[test]
fn a_bad_date_or_amount_is_an_error_at_its_line_and_column_and_the_rest_go_on() {
    let bytes = b"Date,Description,Amount\r\n\
        2024-01-02,ok,5.00\r\n\
        2024-13-40,bad date,6.00\r\n\
        2024-01-04,bad amount,12.3.4\r\n\
        2024-01-05,\"two\r\nlines\",7.00\r\n\
        yesterday,no date,8.00\r\n\
        2024-01-06,no amount,\r\n\
        2024-01-07,ok,9.00\r\n";
    let p = parse(bytes, "b.csv").unwrap();
    let amounts: Vec<_> = p.payments.iter().map(|p| p.amount).collect();
    assert_eq!(amounts, [dec!(5.00), dec!(7.00), dec!(9.00)]);
    // The quoted line break keeps the row after it on its own line number.
    assert_eq!(p.payments[1].free_text, ["two\nlines"]);
    assert_eq!(p.payments[2].payment_id, "b:9");
    let errors: Vec<String> = p.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(
        errors[0].starts_with("b.csv: line 3, column 1: Date: not a date \"2024-13-40\""),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("b.csv: line 4, column 3: Amount: not an amount \"12.3.4\""),
        "{errors:?}"
    );
    assert!(
        errors[2].starts_with("b.csv: line 7, column 1: Date: not a date \"yesterday\""),
        "{errors:?}"
    );
    assert_eq!(
        errors[3],
        "b.csv: line 8, column 3: Amount: no amount (in Amount)"
    );
}

#[test]
fn balance_and_total_rows_are_skipped_but_a_payment_from_total_energies_is_not() {
    let bytes = "Date opération;Libellé;Montant\n\
        ;Solde au 31/03/2024;1.000,00\n\
        02/04/2024;VIR TOTAL ENERGIES FACTURE 123;250,00\n\
        Solde final;;1.250,00\n\
        30/04/2024;Solde;1.250,00\n\
        Total des opérations;;250,00\n"
        .as_bytes();
    let ps = clean(bytes);
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].free_text, ["VIR TOTAL ENERGIES FACTURE 123"]);
    assert_eq!(ps[0].payment_date, date(2024, 4, 2));
}

#[test]
fn windows_1252_french_export_with_currency_in_the_column_names() {
    // "Date opération;Libellé;Débit euros;Crédit euros" as a French bank writes it.
    let bytes = b"Date op\xe9ration;Libell\xe9;D\xe9bit euros;Cr\xe9dit euros\r\n\
        15/03/2024;PRLV SEPA EDF;45,20;\r\n\
        16/03/2024;VIR DUPONT FACT F-2024-88;;1 200,00\r\n";
    let ps = clean(bytes);
    let got: Vec<_> = ps
        .iter()
        .map(|p| (p.direction, p.amount, p.currency.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Direction::Debit, dec!(45.20), "EUR"),
            (Direction::Credit, dec!(1200.00), "EUR")
        ]
    );
    assert_eq!(ps[1].free_text, ["VIR DUPONT FACT F-2024-88"]);
    assert!(
        ps.iter()
            .all(|p| p.warnings.iter().all(|w| !w.contains("USD")))
    );
}

#[test]
fn an_indicator_column_gives_the_direction_of_unsigned_amounts() {
    // ING (NL) style: unsigned "Bedrag (EUR)" and "Af Bij".
    let bytes = b"\"Datum\";\"Naam / Omschrijving\";\"Af Bij\";\"Bedrag (EUR)\";\"Mededelingen\"\n\
        \"20240301\";\"Klant BV\";\"Bij\";\"1.500,00\";\"Factuur 2024-015\"\n\
        \"20240302\";\"Leverancier BV\";\"Af\";\"99,95\";\"\"\n";
    let ps = clean(bytes);
    let got: Vec<_> = ps
        .iter()
        .map(|p| (p.direction, p.amount, p.currency.as_str(), p.payment_date))
        .collect();
    assert_eq!(
        got,
        [
            (Direction::Credit, dec!(1500.00), "EUR", date(2024, 3, 1)),
            (Direction::Debit, dec!(99.95), "EUR", date(2024, 3, 2)),
        ]
    );
    assert_eq!(ps[0].payer.name.as_deref(), Some("Klant BV"));
}

#[test]
fn no_currency_anywhere_is_usd_with_a_warning_and_repeated_ids_are_made_unique() {
    let bytes = b"Date,Amount,Transaction ID\n2024-01-02,5.00,T1\n2024-01-03,6.00,T1\n";
    let ps = clean(bytes);
    assert_eq!(ps[0].currency, Currency::USD);
    assert!(ps[0].warnings.iter().any(|w| w.contains("USD assumed")));
    assert_eq!(ps[0].payment_id, "T1");
    assert_eq!(ps[1].payment_id, "T1#3");
    assert!(ps[1].warnings.iter().any(|w| w.contains("repeats")));
}

#[test]
fn an_amount_column_and_debit_credit_columns_together() {
    // Deutsche Bank style: Betrag is empty where Soll/Haben carry the amount.
    let bytes = "Buchungstag;Verwendungszweck;Betrag;Soll;Haben;Währung\n\
        01.03.2024;A;-10,00;;;EUR\n\
        02.03.2024;B;;;20,00;EUR\n\
        03.03.2024;C;;5,00;;EUR\n\
        04.03.2024;D;;5,00;6,00;EUR\n\
        13.03.2024;E;;0,00;7,00;EUR\n"
        .as_bytes();
    let p = read(bytes);
    let got: Vec<_> = p.payments.iter().map(|p| (p.direction, p.amount)).collect();
    assert_eq!(
        got,
        [
            (Direction::Debit, dec!(10.00)),
            (Direction::Credit, dec!(20.00)),
            (Direction::Debit, dec!(5.00)),
            (Direction::Credit, dec!(7.00)),
        ]
    );
    assert_eq!(p.errors.len(), 1);
    assert_eq!(
        p.errors[0].to_string(),
        "export.csv: line 5, column 4: Soll: both the debit and the credit column hold an amount"
    );
}

// --- conventions -----------------------------------------------------------------------------

#[test]
fn the_date_order_is_decided_by_the_whole_column() {
    let order = |dates: &[&str], body_amount: &str| {
        let mut text = String::from("Date;Amount\n");
        for d in dates {
            text.push_str(&format!("{d};{body_amount}\n"));
        }
        read(text.as_bytes())
    };
    // One first field above 12 anywhere makes every row day-first, the first row included.
    let p = order(&["03/04/2024", "05/04/2024", "13/04/2024"], "1");
    let dates: Vec<_> = p.payments.iter().map(|p| p.payment_date).collect();
    assert_eq!(
        dates,
        [date(2024, 4, 3), date(2024, 4, 5), date(2024, 4, 13)]
    );
    assert!(
        p.payments[0]
            .warnings
            .iter()
            .all(|w| !w.contains("date read"))
    );
    // One second field above 12 makes it month-first.
    let p = order(&["03/04/2024", "03/14/2024"], "1");
    let dates: Vec<_> = p.payments.iter().map(|p| p.payment_date).collect();
    assert_eq!(dates, [date(2024, 3, 4), date(2024, 3, 14)]);
    // Both: the order that reads more rows wins; the others are errors.
    let p = order(&["13/04/2024", "14/04/2024", "04/15/2024"], "1");
    assert_eq!(p.payments.len(), 2);
    assert_eq!(p.errors.len(), 1);
    assert!(p.errors[0].message.contains("day-first"), "{}", p.errors[0]);
    // Neither: the reading that gives the shorter period wins, with a warning: 1-2 March
    // rather than 3 January to 3 February, and the other way round.
    let p = order(&["01/03/2024", "02/03/2024"], "1");
    let dates: Vec<_> = p.payments.iter().map(|p| p.payment_date).collect();
    assert_eq!(dates, [date(2024, 3, 1), date(2024, 3, 2)]);
    assert!(
        p.payments[0].warnings[0].contains("day-first"),
        "{:?}",
        p.payments[0].warnings
    );
    let p = order(&["03/01/2024", "03/02/2024"], "1");
    let dates: Vec<_> = p.payments.iter().map(|p| p.payment_date).collect();
    assert_eq!(dates, [date(2024, 3, 1), date(2024, 3, 2)]);
    assert!(
        p.payments[0].warnings[0].contains("month-first"),
        "{:?}",
        p.payments[0].warnings
    );
    // A single ambiguous date: decimal points mean month-first, commas (or dots in the date)
    // day-first, each with a warning.
    let p = read(b"Date,Amount\n03/04/2024,1.50\n");
    assert_eq!(p.payments[0].payment_date, date(2024, 3, 4));
    assert!(
        p.payments[0]
            .warnings
            .iter()
            .any(|w| w.contains("decimal points"))
    );
    let p = read(b"Date;Amount\n03/04/2024;1,50\n");
    assert_eq!(p.payments[0].payment_date, date(2024, 4, 3));
    let p = read(b"Date,Amount\n03.04.2024,1.50\n");
    assert_eq!(p.payments[0].payment_date, date(2024, 4, 3));
    // Year-first and compact dates need no rule; a time after the date is ignored.
    let p = read(b"Date,Amount\n2024/03/04 13:30,1\n20240305,1\n2024-03-06T10:00:00Z,1\n");
    let dates: Vec<_> = p.payments.iter().map(|p| p.payment_date).collect();
    assert_eq!(
        dates,
        [date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6)]
    );
    assert!(
        p.payments
            .iter()
            .all(|p| p.warnings.iter().all(|w| !w.contains("date")))
    );
    // Two-digit years: below 70 is 20YY.
    assert_eq!(
        read_date("31/12/69"),
        DateCell::Pair {
            first: 31,
            second: 12,
            year: 2069,
            dotted: false
        }
    );
    assert_eq!(
        read_date("31/12/70"),
        DateCell::Pair {
            first: 31,
            second: 12,
            year: 1970,
            dotted: false
        }
    );
}

#[test]
fn the_decimal_mark_is_decided_by_the_whole_file() {
    let mark = |cells: &[&str], delimiter: u8| {
        let mut ev = Evidence::default();
        for c in cells {
            match decimal_evidence(c) {
                Some(DecimalMark::Comma) => ev.comma_decimal += 1,
                Some(DecimalMark::Dot) => ev.dot_decimal += 1,
                None => {}
            }
        }
        decide(&ev, delimiter).decimal
    };
    assert_eq!(mark(&["1.234,56"], b','), DecimalMark::Comma);
    assert_eq!(mark(&["1,234.56"], b';'), DecimalMark::Dot);
    assert_eq!(mark(&["12,5"], b','), DecimalMark::Comma);
    assert_eq!(mark(&["1,234,567"], b';'), DecimalMark::Dot);
    // "1,234" alone could be either: the delimiter decides.
    assert_eq!(mark(&["1,234"], b';'), DecimalMark::Comma);
    assert_eq!(mark(&["1,234"], b','), DecimalMark::Dot);
    assert_eq!(mark(&["1,234", "5.00"], b';'), DecimalMark::Dot);
    // A whole file: "1.234" reads as 1234 beside "5,00".
    let ps = clean(b"Date;Amount\n2024-01-02;1.234\n2024-01-03;5,00\n");
    assert_eq!(ps[0].amount, dec!(1234));
}

#[test]
fn amounts_in_every_common_spelling() {
    let ok = |text: &str, mark: DecimalMark| read_amount(text, mark).map(|(v, _)| v);
    use DecimalMark::{Comma, Dot};
    assert_eq!(ok("1234.50", Dot), Ok(dec!(1234.50)));
    assert_eq!(ok("-1,234.50", Dot), Ok(dec!(-1234.50)));
    assert_eq!(ok("(1,234.50)", Dot), Ok(dec!(-1234.50)));
    assert_eq!(ok("1.234,50-", Comma), Ok(dec!(-1234.50)));
    assert_eq!(ok("+31070,11", Comma), Ok(dec!(31070.11)));
    assert_eq!(ok("1 300,00", Comma), Ok(dec!(1300.00)));
    assert_eq!(ok("1\u{a0}300,00", Comma), Ok(dec!(1300.00)));
    assert_eq!(ok("1'300.00", Dot), Ok(dec!(1300.00)));
    assert_eq!(ok("$1,234.56", Dot), Ok(dec!(1234.56)));
    assert_eq!(ok("-$5.00", Dot), Ok(dec!(-5.00)));
    assert_eq!(ok("1,234.56 DR", Dot), Ok(dec!(-1234.56)));
    assert_eq!(ok("1,234.56 CR", Dot), Ok(dec!(1234.56)));
    assert_eq!(ok("7", Dot), Ok(dec!(7)));
    assert_eq!(ok("−12,00", Comma), Ok(dec!(-12.00)));
    assert_eq!(
        read_amount("12,50 EUR", Comma),
        Ok((dec!(12.50), "EUR".parse().ok()))
    );
    assert_eq!(
        read_amount("€ 12,50", Comma),
        Ok((dec!(12.50), "EUR".parse().ok()))
    );
    for bad in [
        "12.3.4",
        "abc",
        "1e3",
        "NaN",
        "1,2345.00",
        ".5",
        "12.",
        "--5",
        "(5",
        "5)",
        "1,23",
        "",
        "-",
        "99999999999999999999999999999",
    ] {
        assert!(ok(bad, Dot).is_err(), "{bad:?} read as {:?}", ok(bad, Dot));
    }
    assert!(ok("12,34", Dot).is_err());
    assert!(ok("1.234.5", Comma).is_err());
}

#[test]
fn header_names_fold_accents_punctuation_and_currency() {
    assert_eq!(
        header_name("Date opération"),
        ("date operation".into(), None)
    );
    assert_eq!(
        header_name("N° d'opération"),
        ("n d operation".into(), None)
    );
    assert_eq!(
        header_name("Betrag (EUR)"),
        ("betrag".into(), "EUR".parse().ok())
    );
    assert_eq!(
        header_name("Umsatz in EUR"),
        ("umsatz".into(), "EUR".parse().ok())
    );
    assert_eq!(
        header_name("Montant (€)"),
        ("montant".into(), "EUR".parse().ok())
    );
    assert_eq!(role_of(&header_name("Währung").0), Some(Role::Currency));
    assert_eq!(
        role_of(&header_name("Shipping and Handling Amount").0),
        None
    );
    assert_eq!(role_of(&header_name("Reference Txn ID").0), None);
    assert_eq!(
        role_of(&header_name("Invoice Number").0),
        Some(Role::Reference(ReferenceKind::Invoice))
    );
}

#[test]
fn records_count_physical_lines_through_crlf_blank_lines_and_quoted_breaks() {
    let mut r = Records::new(
        b',',
        &b"a,b\r\n\r\n\"x\r\ny\",\"q\"\"q\"\r\n  \r\nlast, \"sp\" ,z"[..],
    );
    let mut rec = Record::default();
    let mut got = Vec::new();
    while r.next(&mut rec).unwrap() {
        let fields: Vec<String> = rec
            .fields()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        got.push((rec.line, fields));
    }
    assert_eq!(
        got,
        [
            (1, vec!["a".to_string(), "b".into()]),
            (3, vec!["x\ny".into(), "q\"q".into()]),
            (6, vec!["last".into(), "sp ".into(), "z".into()]),
        ]
    );
}

#[test]
fn an_unbalanced_quote_does_not_swallow_memory() {
    let mut text = b"Date,Amount\n2024-01-02,\"5.00\n".to_vec();
    text.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + 10));
    let e = parse(&text, "q.csv").unwrap_err();
    assert!(e.message.contains("unbalanced quote"), "{e}");
}

#[test]
fn streaming_from_a_path_gives_what_parsing_the_bytes_gives() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/bank_csv/semicolon_decimal_comma_preamble.csv");
    let name = path.display().to_string();
    let whole = parse(&std::fs::read(&path).unwrap(), &name).unwrap();
    let mut streamed = Vec::new();
    for_each_in_path(&path, &name, &mut |r| streamed.push(r.unwrap())).unwrap();
    assert_eq!(whole.payments, streamed);
}

// --- never panic -----------------------------------------------------------------------------

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = looks_like(text.as_bytes());
        let _ = parse(text.as_bytes(), "p.csv");
    }

    #[test]
    fn arbitrary_rows_under_a_real_header_never_panic(
        rows in prop::collection::vec(
            prop::collection::vec("[0-9A-Za-z ,.;()/\"'$€+-]{0,14}", 0..6), 0..12),
        delimiter in prop::sample::select(vec![",", ";", "\t"]),
    ) {
        let mut text = ["Date", "Description", "Debit", "Credit", "Amount", "Currency"]
            .join(delimiter);
        for r in &rows {
            text.push('\n');
            text.push_str(&r.join(delimiter));
        }
        let parsed = parse(text.as_bytes(), "p.csv").unwrap();
        for p in parsed.payments {
            prop_assert!(!p.amount.is_sign_negative());
            prop_assert!(p.payment_date.is_some());
        }
    }

    #[test]
    fn amounts_written_in_any_locale_read_back(
        cents in 0i64..100_000_000_000,
        negative: bool,
        comma: bool,
        grouped: bool,
        parens: bool,
    ) {
        let value = Decimal::new(cents, 2);
        let (mark, sep) = if comma { (',', '.') } else { ('.', ',') };
        let int = (cents / 100).to_string();
        let int = if grouped {
            let digits: Vec<char> = int.chars().collect();
            let mut out = String::new();
            for (i, c) in digits.iter().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    out.push(sep);
                }
                out.push(*c);
            }
            out
        } else {
            int
        };
        let body = format!("{int}{mark}{:02}", cents % 100);
        let text = match (negative, parens) {
            (true, true) => format!("({body})"),
            (true, false) => format!("-{body}"),
            (false, _) => body,
        };
        let decimal = if comma { DecimalMark::Comma } else { DecimalMark::Dot };
        let want = if negative { -value } else { value };
        prop_assert_eq!(read_amount(&text, decimal).map(|(v, _)| v), Ok(want));
    }
}
