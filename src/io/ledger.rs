//! `customers.csv` and `invoices.csv`: the open-items ledger.

use super::{CsvFile, Loaded, Row, open, opt_str};
use crate::domain::{Currency, Customer, Invoice, Terms};
use crate::formats::{FormatError, Position};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::{Read, Write};
use std::path::Path;

const CUSTOMER_COLUMNS: [&str; 4] = ["customer_id", "name", "parent_id", "bank_accounts"];

const INVOICE_COLUMNS: [&str; 10] = [
    "invoice_id",
    "customer_id",
    "invoice_number",
    "po_number",
    "invoice_date",
    "due_date",
    "currency",
    "amount",
    "open_amount",
    "terms",
];

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
    let mut csv = CsvFile::new(reader, file)?;
    let id = csv.require("customer_id")?;
    let name = csv.require("name")?;
    let parent = csv.optional("parent_id");
    let accounts = csv.optional("bank_accounts");
    let mut out = Loaded::default();
    let mut lines = Vec::new();
    while let Some(row) = csv.next_row()? {
        let line = row.line;
        let parsed = (|| {
            row.check_width()?;
            Ok::<_, FormatError>(Customer {
                id: row.required(id)?.to_string(),
                name: row.required(name)?.to_string(),
                parent_id: row.opt_text(parent)?.map(str::to_string),
                bank_accounts: row
                    .opt_text(accounts)?
                    .map(|t| {
                        t.split(';')
                            .map(str::trim)
                            .filter(|a| !a.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })();
        match parsed {
            Ok(c) => {
                out.rows.push(c);
                lines.push(line);
            }
            Err(e) => out.errors.push(e),
        }
    }
    drop_duplicates(&mut out, &lines, file, id.index, "customer_id", |c| &c.id);
    Ok(out)
}

/// Reads `invoices.csv`, the open-items ledger.
pub fn read_invoices(path: impl AsRef<Path>) -> Result<Loaded<Invoice>, FormatError> {
    let (r, name) = open(path.as_ref())?;
    invoices_from_reader(r, &name)
}

/// Reads invoices from any reader; `file` names it in errors.
pub fn invoices_from_reader(reader: impl Read, file: &str) -> Result<Loaded<Invoice>, FormatError> {
    let mut csv = CsvFile::new(reader, file)?;
    let cols = InvoiceCols {
        id: csv.require("invoice_id")?,
        customer: csv.require("customer_id")?,
        number: csv.require("invoice_number")?,
        po: csv.optional("po_number"),
        invoice_date: csv.require("invoice_date")?,
        due_date: csv.require("due_date")?,
        currency: csv.optional("currency"),
        amount: csv.require("amount")?,
        open: csv.require("open_amount")?,
        terms: csv.optional("terms"),
    };
    let mut out = Loaded::default();
    let mut lines = Vec::new();
    // A ledger repeats a handful of terms spellings a million times; parse each once.
    let mut terms_seen: Vec<(String, Terms)> = Vec::new();
    while let Some(row) = csv.next_row()? {
        let line = row.line;
        match invoice_row(&row, &cols, &mut terms_seen) {
            Ok(inv) => {
                out.rows.push(inv);
                lines.push(line);
            }
            Err(e) => out.errors.push(e),
        }
    }
    drop_duplicates(&mut out, &lines, file, cols.id.index, "invoice_id", |i| {
        &i.id
    });
    Ok(out)
}

struct InvoiceCols {
    id: super::Col,
    customer: super::Col,
    number: super::Col,
    po: Option<super::Col>,
    invoice_date: super::Col,
    due_date: super::Col,
    currency: Option<super::Col>,
    amount: super::Col,
    open: super::Col,
    terms: Option<super::Col>,
}

fn invoice_row(
    row: &Row<'_>,
    c: &InvoiceCols,
    terms_seen: &mut Vec<(String, Terms)>,
) -> Result<Invoice, FormatError> {
    row.check_width()?;
    let id = row.required(c.id)?.to_string();
    let customer_id = row.required(c.customer)?.to_string();
    let number = row.required(c.number)?.to_string();
    let po_number = row.opt_text(c.po)?.map(str::to_string);
    let invoice_date = row.date(c.invoice_date)?;
    let due_date = row.date(c.due_date)?;
    let currency = match (c.currency, row.opt_text(c.currency)?) {
        (Some(col), Some(t)) => t.parse::<Currency>().map_err(|m| row.error(col, m))?,
        _ => Currency::USD,
    };
    let amount = row.money(c.amount)?;
    let open_amount = row.money(c.open)?;
    if !open_amount.is_zero() && open_amount.is_sign_negative() != amount.is_sign_negative() {
        return Err(row.error(
            c.open,
            format!("{open_amount} has the opposite sign to amount {amount}"),
        ));
    }
    if open_amount.abs() > amount.abs() {
        return Err(row.error(c.open, format!("{open_amount} is beyond amount {amount}")));
    }
    let terms = match (c.terms, row.opt_text(c.terms)?) {
        (Some(col), Some(t)) => match terms_seen.iter().find(|(s, _)| s == t) {
            Some((_, terms)) => *terms,
            None => {
                let parsed = Terms::parse(t).map_err(|m| row.error(col, m))?;
                if terms_seen.len() < 64 {
                    terms_seen.push((t.to_string(), parsed));
                }
                parsed
            }
        },
        _ => Terms::default(),
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

/// Drops every row whose id repeats an earlier row's, reporting it at its own line: an id is
/// what allocations name, so two rows with one id would make a decision mean two things.
fn drop_duplicates<T>(
    out: &mut Loaded<T>,
    lines: &[usize],
    file: &str,
    column: usize,
    what: &str,
    id: impl Fn(&T) -> &str,
) {
    // (row of the repeat, row of the first occurrence)
    let repeats: Vec<(usize, usize)> = {
        let mut first: HashMap<&str, usize> = HashMap::with_capacity(out.rows.len());
        out.rows
            .iter()
            .enumerate()
            .filter_map(|(i, row)| match first.entry(id(row)) {
                Entry::Occupied(e) => Some((i, *e.get())),
                Entry::Vacant(e) => {
                    e.insert(i);
                    None
                }
            })
            .collect()
    };
    if repeats.is_empty() {
        return;
    }
    let line = |i: usize| lines.get(i).copied().unwrap_or(0);
    let mut drop = vec![false; out.rows.len()];
    for &(dup, first) in &repeats {
        drop[dup] = true;
        out.errors.push(FormatError::new(
            file,
            Position::Line {
                line: line(dup),
                column: Some(column + 1),
            },
            format!(
                "{what}: {:?} repeats the {what} of line {}",
                id(&out.rows[dup]),
                line(first)
            ),
        ));
    }
    let mut i = 0;
    out.rows.retain(|_| {
        let keep = !drop[i];
        i += 1;
        keep
    });
    sort_errors(&mut out.errors);
}

/// Errors in file order, so a user fixes them top to bottom.
fn sort_errors(errors: &mut [FormatError]) {
    errors.sort_by_key(|e| match e.position {
        Position::Line { line, column } => (line, column.unwrap_or(0)),
        _ => (0, 0),
    });
}

/// Writes `customers.csv`.
pub fn write_customers<'a>(
    w: impl Write,
    customers: impl IntoIterator<Item = &'a Customer>,
) -> std::io::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(CUSTOMER_COLUMNS)?;
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
    out.write_record(INVOICE_COLUMNS)?;
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
