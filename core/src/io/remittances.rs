//! `remittances.csv`, the project's own remittance format: one row per remittance line, the
//! payment's fields repeated on each row, consecutive rows with one `payment_id` forming one
//! payment. Read as a stream, so memory holds one payment whatever the file's size.

use super::ledger::currency;
use super::table::{Column, Kind, Record, Table, optional, required};
use super::{CsvFile, open, opt_str};
use crate::domain::{
    Adjustment, Currency, Direction, Payer, Payment, ReferenceKind, RemittanceLine,
};
use crate::input::{FormatError, Parsed, Position};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::io::{Read, Write};
use std::path::Path;

/// The columns: the eleven of the issue, then the optional three. `write_remittances` writes
/// them in this order.
const COLUMNS: [Column; 14] = [
    required("payment_id", Kind::Text),
    optional("payment_date", Kind::Date),
    required("payment_amount", Kind::Money),
    optional("currency", Kind::Text),
    optional("payer_name", Kind::Text),
    optional("payer_account", Kind::Text),
    required("reference", Kind::Text),
    required("line_amount", Kind::Money),
    optional("adjustment_amount", Kind::Money),
    optional("adjustment_code", Kind::Text),
    optional("memo", Kind::Text),
    optional("reference_kind", Kind::Text),
    optional("invoice_amount", Kind::Money),
    optional("discount_amount", Kind::Money),
];
const ID: usize = 0;
const DATE: usize = 1;
const AMOUNT: usize = 2;
const CURRENCY: usize = 3;
const PAYER_NAME: usize = 4;
const PAYER_ACCOUNT: usize = 5;
const REFERENCE: usize = 6;
const LINE_AMOUNT: usize = 7;
const ADJ_AMOUNT: usize = 8;
const ADJ_CODE: usize = 9;
const MEMO: usize = 10;
const KIND: usize = 11;
const INVOICE_AMOUNT: usize = 12;
const DISCOUNT: usize = 13;

/// Reads a whole remittance file into memory.
pub fn read_remittances(path: impl AsRef<Path>) -> Result<Parsed, FormatError> {
    let (r, name) = open(path.as_ref())?;
    remittances_from_reader(r, &name)
}

/// Reads remittances from any reader into memory; `file` names it in errors.
pub fn remittances_from_reader(reader: impl Read, file: &str) -> Result<Parsed, FormatError> {
    let mut out = Parsed::default();
    for_each_remittance(reader, file, |p| match p {
        Ok(p) => out.payments.push(p),
        Err(e) => out.errors.push(e),
    })?;
    Ok(out)
}

/// The fields every row of a payment repeats.
#[derive(PartialEq)]
struct Head {
    date: Option<NaiveDate>,
    amount: Decimal,
    currency: Currency,
    payer_name: Option<String>,
    payer_account: Option<String>,
}

/// What one row adds to its payment.
struct Detail {
    reference: Option<String>,
    kind: ReferenceKind,
    line_amount: Option<Decimal>,
    invoice_amount: Option<Decimal>,
    discount: Option<Decimal>,
    adjustment: Option<Adjustment>,
    memo: Option<String>,
}

/// The payment being assembled from its consecutive rows.
struct Group {
    id: String,
    first_line: usize,
    head: Option<Head>,
    lines: Vec<RemittanceLine>,
    free_text: Vec<String>,
    error: Option<FormatError>,
}

impl Group {
    fn new(id: &str, line: usize) -> Self {
        Group {
            id: id.to_string(),
            first_line: line,
            head: None,
            lines: Vec::new(),
            free_text: Vec::new(),
            error: None,
        }
    }

    /// Marks the payment bad; the first fault is the one reported.
    fn fail(&mut self, mut e: FormatError) {
        if self.error.is_none() {
            e.message = format!("payment {}: {}", self.id, e.message);
            self.error = Some(e);
            self.lines = Vec::new();
            self.free_text = Vec::new();
        }
    }

    fn add(&mut self, head: Head, detail: Detail, row: &dyn Record) {
        match &self.head {
            None => self.head = Some(head),
            Some(first) if *first != head => {
                let (col, was, now) = first_difference(first, &head);
                let e = row.error(
                    col,
                    &format!(
                        "{now} differs from {was} on line {} (each row of a payment repeats its \
                         payment fields)",
                        self.first_line
                    ),
                );
                self.fail(e);
                return;
            }
            Some(_) => {}
        }
        if let Some(memo) = detail.memo {
            if !self.free_text.contains(&memo) {
                self.free_text.push(memo);
            }
        }
        let has_line = detail.reference.is_some()
            || detail.line_amount.is_some()
            || detail.invoice_amount.is_some()
            || detail.discount.is_some()
            || detail.kind != ReferenceKind::Unknown;
        if has_line {
            self.lines.push(RemittanceLine {
                reference: detail.reference,
                reference_kind: detail.kind,
                amount_paid: detail.line_amount,
                invoice_amount: detail.invoice_amount,
                discount: detail.discount,
                adjustments: detail.adjustment.into_iter().collect(),
            });
        } else if let Some(adj) = detail.adjustment {
            // A row with only an adjustment carries another adjustment of the line above it;
            // before any line, it is a payment-level deduction on a line of its own.
            match self.lines.last_mut() {
                Some(line) => line.adjustments.push(adj),
                None => self.lines.push(RemittanceLine {
                    adjustments: vec![adj],
                    ..Default::default()
                }),
            }
        }
    }

    fn finish(self, file: &str) -> Result<Payment, FormatError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let head = self.head.ok_or_else(|| {
            FormatError::new(
                file,
                Position::Line {
                    line: self.first_line,
                    column: None,
                },
                "empty payment",
            )
        })?;
        Ok(Payment {
            payment_id: self.id,
            format: "csv".to_string(),
            direction: Direction::Credit,
            payment_date: head.date,
            amount: head.amount,
            currency: head.currency,
            payer: Payer {
                name: head.payer_name,
                account: head.payer_account,
            },
            lines: self.lines,
            free_text: self.free_text,
            warnings: Vec::new(),
            returned: None,
        })
    }
}

/// The first payment field two rows of one payment disagree on: its column, and the two values.
fn first_difference(a: &Head, b: &Head) -> (usize, String, String) {
    let opt = |v: &Option<String>| {
        v.clone()
            .map_or_else(|| "(empty)".to_string(), |s| format!("{s:?}"))
    };
    if a.amount != b.amount {
        return (AMOUNT, a.amount.to_string(), b.amount.to_string());
    }
    if a.date != b.date {
        let d = |v: &Option<NaiveDate>| v.map_or_else(|| "(empty)".to_string(), |d| d.to_string());
        return (DATE, d(&a.date), d(&b.date));
    }
    if a.currency != b.currency {
        return (CURRENCY, a.currency.to_string(), b.currency.to_string());
    }
    if a.payer_name != b.payer_name {
        return (PAYER_NAME, opt(&a.payer_name), opt(&b.payer_name));
    }
    (PAYER_ACCOUNT, opt(&a.payer_account), opt(&b.payer_account))
}

fn parse_row(r: &dyn Record) -> Result<(Head, Detail), FormatError> {
    r.check()?;
    let amount = r.money(AMOUNT)?;
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(r.error(
            AMOUNT,
            &format!("{amount} is negative; a remittance pays money in"),
        ));
    }
    let head = Head {
        date: r.opt_date(DATE)?,
        amount,
        currency: currency(r, CURRENCY)?,
        payer_name: r.text(PAYER_NAME)?.map(|s| s.into_owned()),
        payer_account: r.text(PAYER_ACCOUNT)?.map(|s| s.into_owned()),
    };
    let kind = match r.text(KIND)? {
        Some(t) => parse_kind(&t).map_err(|m| r.error(KIND, &m))?,
        None => ReferenceKind::Unknown,
    };
    let adjustment = match (r.opt_money(ADJ_AMOUNT)?, r.text(ADJ_CODE)?) {
        (Some(amount), code) => Some(Adjustment {
            amount,
            reason_code: code.map(|c| c.into_owned()),
            text: None,
        }),
        (None, Some(code)) => {
            return Err(r.error(
                ADJ_CODE,
                &format!("{code:?} is given without an adjustment_amount"),
            ));
        }
        (None, None) => None,
    };
    let detail = Detail {
        reference: r.text(REFERENCE)?.map(|s| s.into_owned()),
        kind,
        line_amount: r.opt_money(LINE_AMOUNT)?,
        invoice_amount: r.opt_money(INVOICE_AMOUNT)?,
        discount: r.opt_money(DISCOUNT)?,
        adjustment,
        memo: r.text(MEMO)?.map(|s| s.into_owned()),
    };
    Ok((head, detail))
}

fn parse_kind(t: &str) -> Result<ReferenceKind, String> {
    match t.to_ascii_lowercase().as_str() {
        "invoice" => Ok(ReferenceKind::Invoice),
        "credit_note" => Ok(ReferenceKind::CreditNote),
        "purchase_order" => Ok(ReferenceKind::PurchaseOrder),
        "unknown" => Ok(ReferenceKind::Unknown),
        _ => Err(format!(
            "{t:?} is not a reference kind (invoice, credit_note, purchase_order or unknown)"
        )),
    }
}

fn kind_name(k: ReferenceKind) -> &'static str {
    match k {
        ReferenceKind::Invoice => "invoice",
        ReferenceKind::CreditNote => "credit_note",
        ReferenceKind::PurchaseOrder => "purchase_order",
        ReferenceKind::Unknown => "",
    }
}

/// Streams the payments of a remittance file to `f`, one at a time, in file order.
///
/// Consecutive rows with the same `payment_id` form one payment. A payment with a bad field, or
/// whose rows disagree on a payment field, reaches `f` as one `Err` naming the first bad line
/// and column; the payments around it are unaffected. The `Err` this function returns is
/// file-level: the file cannot be read or lacks a required column.
pub fn for_each_remittance(
    reader: impl Read,
    file: &str,
    f: impl FnMut(Result<Payment, FormatError>),
) -> Result<(), FormatError> {
    for_each_remittance_in(&mut CsvFile::new(reader, file)?, f)
}

/// [`for_each_remittance`] over any table.
pub fn for_each_remittance_in(
    t: &mut dyn Table,
    mut f: impl FnMut(Result<Payment, FormatError>),
) -> Result<(), FormatError> {
    let file = t.file().to_string();
    let mut current: Option<Group> = None;
    t.scan(&COLUMNS, &mut |row| {
        let id = match row.required(ID) {
            Ok(id) => id,
            Err(e) => {
                f(Err(e));
                return Ok(());
            }
        };
        if current.as_ref().is_none_or(|g| g.id != *id) {
            if let Some(done) = current.take() {
                f(done.finish(&file));
            }
            current = Some(Group::new(&id, row.line()));
        }
        let Some(group) = current.as_mut() else {
            return Ok(());
        };
        if group.error.is_some() {
            return Ok(());
        }
        match parse_row(row) {
            Ok((head, detail)) => group.add(head, detail, row),
            Err(e) => group.fail(e),
        }
        Ok(())
    })?;
    if let Some(done) = current {
        f(done.finish(&file));
    }
    Ok(())
}

/// Writes payments in the project CSV format, one row per line.
///
/// A line's second and later adjustments go on rows of their own with no reference or line
/// amount, which the reader adds back to that line. A payment with exactly one free-text entry
/// repeats it on every row like the payment fields; several entries go one per row.
pub fn write_remittances<'a>(
    w: impl Write,
    payments: impl IntoIterator<Item = &'a Payment>,
) -> std::io::Result<()> {
    let mut out = RemittancesWriter::new(w)?;
    for p in payments {
        out.write(p)?;
    }
    out.finish()
}

/// [`write_remittances`] one payment at a time, so an export of any size streams.
pub struct RemittancesWriter<W: Write> {
    out: csv::Writer<W>,
}

impl<W: Write> RemittancesWriter<W> {
    /// Writes the header.
    pub fn new(w: W) -> std::io::Result<Self> {
        let mut out = csv::Writer::from_writer(w);
        out.write_record(COLUMNS.map(|c| c.name))?;
        Ok(RemittancesWriter { out })
    }

    /// Writes one payment's rows.
    pub fn write(&mut self, p: &Payment) -> std::io::Result<()> {
        let head = [
            p.payment_id.clone(),
            opt_str(&p.payment_date),
            p.amount.to_string(),
            p.currency.to_string(),
            opt_str(&p.payer.name),
            opt_str(&p.payer.account),
        ];
        let mut rows: Vec<[String; 8]> = Vec::new();
        for line in &p.lines {
            let adj = |a: Option<&Adjustment>| {
                (
                    a.map(|a| a.amount.to_string()).unwrap_or_default(),
                    a.and_then(|a| a.reason_code.clone()).unwrap_or_default(),
                )
            };
            let (amount, code) = adj(line.adjustments.first());
            rows.push([
                opt_str(&line.reference),
                opt_str(&line.amount_paid),
                amount,
                code,
                String::new(),
                kind_name(line.reference_kind).to_string(),
                opt_str(&line.invoice_amount),
                opt_str(&line.discount),
            ]);
            for a in line.adjustments.iter().skip(1) {
                let (amount, code) = adj(Some(a));
                let mut r: [String; 8] = Default::default();
                r[2] = amount;
                r[3] = code;
                rows.push(r);
            }
        }
        match p.free_text.as_slice() {
            [only] => rows.iter_mut().for_each(|r| r[4].clone_from(only)),
            many => {
                for (i, text) in many.iter().enumerate() {
                    match rows.get_mut(i) {
                        Some(r) => r[4].clone_from(text),
                        None => {
                            let mut r: [String; 8] = Default::default();
                            r[4].clone_from(text);
                            rows.push(r);
                        }
                    }
                }
            }
        }
        if rows.is_empty() {
            let mut r: [String; 8] = Default::default();
            if let [only] = p.free_text.as_slice() {
                r[4].clone_from(only);
            }
            rows.push(r);
        }
        for r in &rows {
            self.out.write_record(head.iter().chain(r.iter()))?;
        }
        Ok(())
    }

    /// Flushes what is buffered.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    const HEADER: &str = "payment_id,payment_date,payment_amount,currency,payer_name,payer_account,reference,line_amount,adjustment_amount,adjustment_code,memo\n";

    fn parse(text: &str) -> Parsed {
        remittances_from_reader(text.as_bytes(), "remittances.csv").unwrap()
    }

    #[test]
    fn consecutive_rows_form_one_payment() {
        let got = parse(&format!(
            "{HEADER}P1,2026-03-02,\"1,500.00\",USD,NORTHWIND INDL,021000021:1234,INV-1,1000.00,,,PMT RUN 7\n\
             P1,2026-03-02,1500.00,USD,NORTHWIND INDL,021000021:1234,INV-2,550.00,50.00,DAMAGE,PMT RUN 7\n\
             P1,2026-03-02,1500.00,USD,NORTHWIND INDL,021000021:1234,CM-9,-50.00,,,\n\
             P2,2026-03-03,75.10,,,,,,,,INV 5 6 & 7\n"
        ));
        assert!(got.errors.is_empty(), "{:?}", got.errors);
        assert_eq!(got.payments.len(), 2);
        let p = &got.payments[0];
        assert_eq!((p.format.as_str(), p.direction), ("csv", Direction::Credit));
        assert_eq!(p.amount, dec!(1500.00));
        assert_eq!(p.payer.account.as_deref(), Some("021000021:1234"));
        assert_eq!(p.lines.len(), 3);
        assert_eq!(p.lines[1].adjustments[0].amount, dec!(50.00));
        assert_eq!(
            p.lines[1].adjustments[0].reason_code.as_deref(),
            Some("DAMAGE")
        );
        assert_eq!(p.lines[2].amount_paid, Some(dec!(-50.00)));
        assert_eq!(
            p.free_text,
            vec!["PMT RUN 7".to_string()],
            "memo deduplicated"
        );
        let q = &got.payments[1];
        assert!(
            q.lines.is_empty(),
            "a payment with no line detail has no lines"
        );
        assert_eq!(q.free_text, vec!["INV 5 6 & 7".to_string()]);
        assert_eq!(q.payer, Payer::default());
    }

    #[test]
    fn bad_field_fails_only_its_payment_with_line_and_column() {
        let got = parse(&format!(
            "{HEADER}P1,2026-03-02,100.00,USD,A,,INV-1,100.00,,,\n\
             P2,2026-03-02,200.00,USD,B,,INV-2,100.00,,,\n\
             P2,2026-03-02,200.00,USD,B,,INV-3,1O0.00,,,\n\
             P2,2026-03-02,200.00,USD,B,,INV-4,abc,,,\n\
             P3,2026-03-04,300.00,USD,C,,INV-5,300.00,,,\n"
        ));
        let ids: Vec<_> = got.payments.iter().map(|p| p.payment_id.as_str()).collect();
        assert_eq!(ids, ["P1", "P3"]);
        assert_eq!(got.errors.len(), 1);
        let e = &got.errors[0];
        assert_eq!(
            e.position,
            Position::Line {
                line: 4,
                column: Some(8)
            }
        );
        assert!(
            e.to_string().starts_with(
                "remittances.csv: line 4, column 8: payment P2: line_amount: \"1O0.00\""
            ),
            "{e}"
        );
    }

    #[test]
    fn rows_that_disagree_on_payment_fields_are_one_error() {
        let got = parse(&format!(
            "{HEADER}P1,2026-03-02,100.00,USD,A,,INV-1,60.00,,,\n\
             P1,2026-03-02,120.00,USD,A,,INV-2,40.00,,,\n\
             P2,2026-03-02,5.00,USD,A,,INV-3,5.00,,,\n"
        ));
        assert_eq!(got.payments.len(), 1);
        let e = &got.errors[0];
        assert_eq!(
            e.position,
            Position::Line {
                line: 3,
                column: Some(3)
            }
        );
        assert!(
            e.message.contains("120.00 differs from 100.00 on line 2"),
            "{e}"
        );
    }

    #[test]
    fn reference_kind_is_an_optional_column() {
        let text = "payment_id,payment_amount,reference,line_amount,reference_kind\n\
                    P1,10.00,PO-77,10.00,purchase_order\nP2,10.00,X,10.00,order\n";
        let got = parse(text);
        assert_eq!(
            got.payments[0].lines[0].reference_kind,
            ReferenceKind::PurchaseOrder
        );
        assert_eq!(
            got.errors[0].position,
            Position::Line {
                line: 3,
                column: Some(5)
            }
        );
    }

    #[test]
    fn adjustment_code_without_amount_and_negative_payment_are_errors() {
        let got = parse(&format!(
            "{HEADER}P1,2026-03-02,100.00,USD,A,,INV-1,100.00,,DAMAGE,\n\
             P2,2026-03-02,-5.00,USD,A,,INV-2,-5.00,,,\n"
        ));
        assert!(got.payments.is_empty());
        assert_eq!(got.errors.len(), 2);
        assert_eq!(
            got.errors[0].position,
            Position::Line {
                line: 2,
                column: Some(10)
            }
        );
        assert_eq!(
            got.errors[1].position,
            Position::Line {
                line: 3,
                column: Some(3)
            }
        );
    }

    #[test]
    fn missing_required_column_is_a_file_error() {
        let e =
            remittances_from_reader("payment_id,payment_amount,reference\n".as_bytes(), "r.csv")
                .unwrap_err();
        assert!(e.message.contains("\"line_amount\""), "{e}");
    }

    #[test]
    fn remittances_round_trip() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 2);
        let payer = Payer {
            name: Some("AP DEPT NORTHWIND".into()),
            account: Some("1:2".into()),
        };
        let payments = vec![
            Payment {
                payment_id: "P1".into(),
                format: "csv".into(),
                direction: Direction::Credit,
                payment_date: d,
                amount: dec!(1450.00),
                currency: Currency::USD,
                payer: payer.clone(),
                lines: vec![
                    RemittanceLine {
                        reference: Some("INV-0012345".into()),
                        reference_kind: ReferenceKind::Invoice,
                        amount_paid: Some(dec!(980.00)),
                        invoice_amount: Some(dec!(1000.00)),
                        discount: Some(dec!(20.00)),
                        adjustments: vec![],
                    },
                    RemittanceLine {
                        reference: Some("4500123456".into()),
                        reference_kind: ReferenceKind::PurchaseOrder,
                        amount_paid: Some(dec!(470.00)),
                        invoice_amount: None,
                        discount: None,
                        adjustments: vec![
                            Adjustment {
                                amount: dec!(20),
                                reason_code: Some("FRT".into()),
                                text: None,
                            },
                            Adjustment {
                                amount: dec!(10),
                                reason_code: None,
                                text: None,
                            },
                        ],
                    },
                ],
                free_text: vec!["RUN 12, \"weekly\"".into()],
                warnings: vec![],
                returned: None,
            },
            Payment {
                payment_id: "P2".into(),
                format: "csv".into(),
                direction: Direction::Credit,
                payment_date: None,
                amount: dec!(99.99),
                currency: "EUR".parse().unwrap(),
                payer: Payer::default(),
                lines: vec![],
                free_text: vec!["INV 1001-1004".into(), "second note".into(), "third".into()],
                warnings: vec![],
                returned: None,
            },
            Payment {
                payment_id: "P3".into(),
                format: "csv".into(),
                direction: Direction::Credit,
                payment_date: d,
                amount: dec!(5),
                currency: Currency::USD,
                payer,
                lines: vec![],
                free_text: vec![],
                warnings: vec![],
                returned: None,
            },
        ];
        let mut buf = Vec::new();
        write_remittances(&mut buf, &payments).unwrap();
        let back = remittances_from_reader(buf.as_slice(), "r.csv").unwrap();
        assert!(back.errors.is_empty(), "{:?}", back.errors);
        assert_eq!(back.payments, payments);
    }
}
