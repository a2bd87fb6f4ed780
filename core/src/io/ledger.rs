//! `customers.csv` and `invoices.csv`: the open-items ledger.

use super::table::{Column, Kind, Record, Table, optional, required};
use super::{CsvFile, Loaded, open, opt_str};
use crate::domain::{Currency, Customer, Invoice, Terms};
use crate::input::FormatError;
use rustc_hash::FxHashMap;
use std::collections::hash_map::Entry;
use std::io::{Read, Write};
use std::path::Path;

const CUSTOMER_COLUMNS: [Column; 4] = [
    required("customer_id", Kind::Text),
    required("name", Kind::Text),
    optional("parent_id", Kind::Text),
    optional("bank_accounts", Kind::Text),
];

const INVOICE_COLUMNS: [Column; 10] = [
    required("invoice_id", Kind::Text),
    required("customer_id", Kind::Text),
    required("invoice_number", Kind::Text),
    optional("po_number", Kind::Text),
    required("invoice_date", Kind::Date),
    required("due_date", Kind::Date),
    optional("currency", Kind::Text),
    required("amount", Kind::Money),
    required("open_amount", Kind::Money),
    optional("terms", Kind::Text),
];
const I_ID: usize = 0;
const I_CUSTOMER: usize = 1;
const I_NUMBER: usize = 2;
const I_PO: usize = 3;
const I_INVOICE_DATE: usize = 4;
const I_DUE_DATE: usize = 5;
const I_CURRENCY: usize = 6;
const I_AMOUNT: usize = 7;
const I_OPEN: usize = 8;
const I_TERMS: usize = 9;

/// Reads `customers.csv`.
pub fn read_customers(path: impl AsRef<Path>) -> Result<Loaded<Customer>, FormatError> {
    let (r, name) = open(path.as_ref())?;
    customers_from_reader(r, &name)
}

/// Reads customers from any reader; `file` names it in errors.
pub fn customers_from_reader(
    reader: impl Read,
    file: &str,
) -> Result<Loaded<Customer>, FormatError> {
    customers_from_table(&mut CsvFile::new(reader, file)?)
}

/// Reads customers from any table: `customer_id,name[,parent_id,bank_accounts]`.
pub fn customers_from_table(t: &mut dyn Table) -> Result<Loaded<Customer>, FormatError> {
    let mut out = Loaded::default();
    let mut ids = Ids::default();
    t.scan(&CUSTOMER_COLUMNS, &mut |r| {
        match customer_row(r).and_then(|c| ids.first(r, 0, "customer_id", &c.id).map(|()| c)) {
            Ok(c) => out.rows.push(c),
            Err(e) => out.errors.push(e),
        }
        Ok(())
    })?;
    Ok(out)
}

fn customer_row(r: &dyn Record) -> Result<Customer, FormatError> {
    r.check()?;
    Ok(Customer {
        id: r.required(0)?.into_owned(),
        name: r.required(1)?.into_owned(),
        parent_id: r.text(2)?.map(|s| s.into_owned()),
        bank_accounts: r
            .text(3)?
            .map(|t| {
                t.split(';')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Reads `invoices.csv`, the open-items ledger.
pub fn read_invoices(path: impl AsRef<Path>) -> Result<Loaded<Invoice>, FormatError> {
    let (r, name) = open(path.as_ref())?;
    invoices_from_reader(r, &name)
}

/// Reads invoices from any reader; `file` names it in errors.
pub fn invoices_from_reader(reader: impl Read, file: &str) -> Result<Loaded<Invoice>, FormatError> {
    invoices_from_table(&mut CsvFile::new(reader, file)?)
}

/// Reads invoices from any table, with the open-amount rules of docs/formats.md.
pub fn invoices_from_table(t: &mut dyn Table) -> Result<Loaded<Invoice>, FormatError> {
    let mut out = Loaded::default();
    let mut ids = Ids::default();
    // A ledger repeats a handful of terms spellings a million times; parse each once.
    let mut terms_seen: Vec<(String, Terms)> = Vec::new();
    t.scan(&INVOICE_COLUMNS, &mut |r| {
        match invoice_row(r, &mut terms_seen)
            .and_then(|i| ids.first(r, I_ID, "invoice_id", &i.id).map(|()| i))
        {
            Ok(inv) => out.rows.push(inv),
            Err(e) => out.errors.push(e),
        }
        Ok(())
    })?;
    Ok(out)
}

/// A currency field; absent or empty means USD.
pub(crate) fn currency(r: &dyn Record, c: usize) -> Result<Currency, FormatError> {
    match r.text(c)? {
        Some(t) => t.parse::<Currency>().map_err(|m| r.error(c, &m)),
        None => Ok(Currency::USD),
    }
}

fn invoice_row(
    r: &dyn Record,
    terms_seen: &mut Vec<(String, Terms)>,
) -> Result<Invoice, FormatError> {
    r.check()?;
    let id = r.required(I_ID)?.into_owned();
    let customer_id = r.required(I_CUSTOMER)?.into_owned();
    let number = r.required(I_NUMBER)?.into_owned();
    let po_number = r.text(I_PO)?.map(|s| s.into_owned());
    let invoice_date = r.date(I_INVOICE_DATE)?;
    let due_date = r.date(I_DUE_DATE)?;
    let currency = currency(r, I_CURRENCY)?;
    let amount = r.money(I_AMOUNT)?;
    let open_amount = r.money(I_OPEN)?;
    if !open_amount.is_zero() && open_amount.is_sign_negative() != amount.is_sign_negative() {
        return Err(r.error(
            I_OPEN,
            &format!("{open_amount} has the opposite sign to amount {amount}"),
        ));
    }
    if open_amount.abs() > amount.abs() {
        return Err(r.error(I_OPEN, &format!("{open_amount} is beyond amount {amount}")));
    }
    let terms = match r.text(I_TERMS)? {
        Some(t) => match terms_seen.iter().find(|(s, _)| *s == *t) {
            Some((_, terms)) => *terms,
            None => {
                let parsed = Terms::parse(&t).map_err(|m| r.error(I_TERMS, &m))?;
                if terms_seen.len() < 64 {
                    terms_seen.push((t.into_owned(), parsed));
                }
                parsed
            }
        },
        None => Terms::default(),
    };
    Ok(Invoice {
        id,
        customer_id,
        number,
        po_number,
        invoice_date,
        due_date,
        currency,
        amount,
        open_amount,
        terms,
    })
}

/// The ids read so far, with their lines. A repeated id is an error at the later row, which is
/// dropped: an id is what allocations name, so two rows with one id would make a decision mean
/// two things.
///
/// Fx-hashed: ids come from the AR system's own files, and SipHash on a million of them was a
/// tenth of reading a ledger.
#[derive(Default)]
struct Ids(FxHashMap<String, usize>);

impl Ids {
    /// `Ok` when `id`, read from column `c` (named `what`) of `r`, is new.
    fn first(&mut self, r: &dyn Record, c: usize, what: &str, id: &str) -> Result<(), FormatError> {
        match self.0.entry(id.to_string()) {
            Entry::Occupied(e) => {
                Err(r.error(c, &format!("{id:?} repeats the {what} of line {}", e.get())))
            }
            Entry::Vacant(e) => {
                e.insert(r.line());
                Ok(())
            }
        }
    }
}

/// Writes `customers.csv`.
pub fn write_customers<'a>(
    w: impl Write,
    customers: impl IntoIterator<Item = &'a Customer>,
) -> std::io::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(CUSTOMER_COLUMNS.map(|c| c.name))?;
    for c in customers {
        out.write_record([
            c.id.as_str(),
            c.name.as_str(),
            c.parent_id.as_deref().unwrap_or_default(),
            c.bank_accounts.join(";").as_str(),
        ])?;
    }
    out.flush()
}

/// Writes `invoices.csv`.
pub fn write_invoices<'a>(
    w: impl Write,
    invoices: impl IntoIterator<Item = &'a Invoice>,
) -> std::io::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(INVOICE_COLUMNS.map(|c| c.name))?;
    for i in invoices {
        out.write_record([
            i.id.as_str(),
            i.customer_id.as_str(),
            i.number.as_str(),
            opt_str(&i.po_number).as_str(),
            i.invoice_date.to_string().as_str(),
            i.due_date.to_string().as_str(),
            i.currency.as_str(),
            i.amount.to_string().as_str(),
            i.open_amount.to_string().as_str(),
            i.terms.to_string().as_str(),
        ])?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Position;
    use chrono::NaiveDate;
    use rust_decimal_macros::dec;

    const HEADER: &str = "invoice_id,customer_id,invoice_number,po_number,invoice_date,due_date,currency,amount,open_amount,terms\n";

    #[test]
    fn bad_amount_names_file_line_column_and_keeps_good_rows() {
        let text = format!(
            "{HEADER}I1,C1,INV-1,,2026-01-05,2026-02-04,USD,\"1,234.50\",1234.50,NET 30\n\
             I2,C1,INV-2,,2026-01-06,2026-02-05,USD,12.3.4,12.00,NET 30\n\
             I3,C2,INV-3,PO-9,2026-01-07,2026-02-06,usd,-40.00,-40.00,2/10 NET 30\n"
        );
        let got = invoices_from_reader(text.as_bytes(), "invoices.csv").unwrap();
        assert_eq!(got.rows.len(), 2);
        assert_eq!(got.rows[0].amount, dec!(1234.50));
        assert_eq!(got.rows[1].po_number.as_deref(), Some("PO-9"));
        assert!(got.rows[1].is_credit());
        assert_eq!(got.errors.len(), 1);
        let e = &got.errors[0];
        assert_eq!(e.file, "invoices.csv");
        assert_eq!(
            e.position,
            Position::Line {
                line: 3,
                column: Some(8)
            }
        );
        let shown = e.to_string();
        assert!(
            shown.starts_with("invoices.csv: line 3, column 8: amount:"),
            "{shown}"
        );
        assert!(shown.contains("\"12.3.4\""), "{shown}");
    }

    #[test]
    fn open_amount_beyond_amount_or_wrong_sign_is_a_row_error() {
        let text = format!(
            "{HEADER}I1,C1,N1,,2026-01-05,2026-02-04,USD,100.00,100.01,NET 30\n\
             I2,C1,N2,,2026-01-05,2026-02-04,USD,100.00,-5.00,NET 30\n\
             I3,C1,N3,,2026-01-05,2026-02-04,USD,100.00,0,NET 30\n"
        );
        let got = invoices_from_reader(text.as_bytes(), "inv.csv").unwrap();
        assert_eq!(got.rows.len(), 1, "a closed invoice (open 0) is a good row");
        assert_eq!(got.errors.len(), 2);
        assert!(
            got.errors
                .iter()
                .all(|e| e.message.starts_with("open_amount:"))
        );
        assert_eq!(
            got.errors[1].position,
            Position::Line {
                line: 3,
                column: Some(9)
            }
        );
    }

    #[test]
    fn headers_in_any_order_with_bom_extra_columns_and_padding() {
        let text = "\u{feff}Amount , open_amount,comment,invoice_id,customer_id,invoice_number,invoice_date,due_date\n\
                    \" 10.00 \",10.00,hello,I1 , C1,N1,2026-03-01,2026-03-31\n";
        let got = invoices_from_reader(text.as_bytes(), "inv.csv").unwrap();
        assert!(got.errors.is_empty(), "{:?}", got.errors);
        let inv = &got.rows[0];
        assert_eq!((inv.id.as_str(), inv.customer_id.as_str()), ("I1", "C1"));
        assert_eq!(inv.amount, dec!(10.00));
        assert_eq!(inv.currency, Currency::USD);
        assert_eq!(inv.terms, Terms::default());
    }

    #[test]
    fn missing_required_column_is_a_file_error() {
        let text = "invoice_id,customer_id,invoice_number,invoice_date,due_date,amount\nI1,C1,N1,2026-01-01,2026-01-31,5\n";
        let e = invoices_from_reader(text.as_bytes(), "inv.csv").unwrap_err();
        assert!(e.message.contains("\"open_amount\""), "{e}");
        assert_eq!(e.file, "inv.csv");
    }

    #[test]
    fn missing_file_is_a_file_error() {
        let e = read_invoices("/nonexistent/cashmatch/invoices.csv").unwrap_err();
        assert_eq!(e.position, Position::File);
        assert!(
            e.to_string()
                .contains("/nonexistent/cashmatch/invoices.csv")
        );
    }

    #[test]
    fn bad_date_terms_currency_and_short_rows_are_row_errors() {
        let text = format!(
            "{HEADER}I1,C1,N1,,2026-13-01,2026-02-04,USD,1.00,1.00,NET 30\n\
             I2,C1,N2,,2026-01-01,2026-02-04,USD,1.00,1.00,whenever\n\
             I3,C1,N3,,2026-01-01,2026-02-04,US,1.00,1.00,NET 30\n\
             I4,C1,N4\n\
             ,C1,N5,,2026-01-01,2026-02-04,USD,1.00,1.00,NET 30\n\
             I6,C1,N6,,2026-01-01,2026-02-04,USD,1.00,1.00,NET 30\n"
        );
        let got = invoices_from_reader(text.as_bytes(), "inv.csv").unwrap();
        assert_eq!(got.rows.len(), 1);
        let cols: Vec<_> = got.errors.iter().map(|e| e.position.clone()).collect();
        assert_eq!(
            cols,
            vec![
                Position::Line {
                    line: 2,
                    column: Some(5)
                },
                Position::Line {
                    line: 3,
                    column: Some(10)
                },
                Position::Line {
                    line: 4,
                    column: Some(7)
                },
                Position::Line {
                    line: 5,
                    column: None
                },
                Position::Line {
                    line: 6,
                    column: Some(1)
                },
            ]
        );
        assert!(got.errors[0].message.contains("invoice_date"));
        assert!(got.errors[4].message.contains("invoice_id: is empty"));
    }

    #[test]
    fn duplicate_ids_are_reported_at_the_later_line() {
        let text = "customer_id,name\nC1,A\nC2,B\nC1,C\n";
        let got = customers_from_reader(text.as_bytes(), "customers.csv").unwrap();
        assert_eq!(got.rows.len(), 2);
        assert_eq!(got.errors.len(), 1);
        assert_eq!(
            got.errors[0].position,
            Position::Line {
                line: 4,
                column: Some(1)
            }
        );
        assert!(
            got.errors[0].message.contains("line 2"),
            "{}",
            got.errors[0]
        );
    }

    #[test]
    fn customers_and_invoices_round_trip() {
        let customers = vec![
            Customer {
                id: "C1".into(),
                name: "Northwind Industrial Supply, Inc".into(),
                parent_id: None,
                bank_accounts: vec!["021000021:123456789".into(), "55512345".into()],
            },
            Customer {
                id: "C2".into(),
                name: "Bluegrass \"Foods\" LLC".into(),
                parent_id: Some("C1".into()),
                bank_accounts: vec![],
            },
        ];
        let mut buf = Vec::new();
        write_customers(&mut buf, &customers).unwrap();
        let back = customers_from_reader(buf.as_slice(), "c.csv").unwrap();
        assert!(back.errors.is_empty());
        assert_eq!(back.rows, customers);

        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let invoices = vec![
            Invoice {
                id: "I1".into(),
                customer_id: "C1".into(),
                number: "INV-0012345".into(),
                po_number: Some("PO-4500123456".into()),
                invoice_date: d(1, 5),
                due_date: d(2, 4),
                currency: Currency::USD,
                amount: dec!(1234.50),
                open_amount: dec!(234.50),
                terms: Terms::parse("2/10 NET 30").unwrap(),
            },
            Invoice {
                id: "I2".into(),
                customer_id: "C2".into(),
                number: "CM-000042".into(),
                po_number: None,
                invoice_date: d(1, 6),
                due_date: d(1, 6),
                currency: "CAD".parse().unwrap(),
                amount: dec!(-50.00),
                open_amount: dec!(-50.00),
                terms: Terms::default(),
            },
        ];
        let mut buf = Vec::new();
        write_invoices(&mut buf, &invoices).unwrap();
        let back = invoices_from_reader(buf.as_slice(), "i.csv").unwrap();
        assert!(back.errors.is_empty(), "{:?}", back.errors);
        assert_eq!(back.rows, invoices);
    }
}
