//! `labels.csv` (the truth for training and evaluation) and `cases.csv` (the case family of each
//! synthetic payment, for breaking figures down).

use super::{CsvFile, Loaded, open};
use crate::domain::Label;
use crate::formats::FormatError;
use std::io::{Read, Write};
use std::path::Path;

/// Reads `labels.csv`: `payment_id,invoice_id,applied_amount`.
pub fn read_labels(path: impl AsRef<Path>) -> Result<Loaded<Label>, FormatError> {
    let (r, name) = open(path.as_ref())?;
    labels_from_reader(r, &name)
}

/// Reads labels from any reader; `file` names it in errors.
pub fn labels_from_reader(reader: impl Read, file: &str) -> Result<Loaded<Label>, FormatError> {
    let mut csv = CsvFile::new(reader, file)?;
    let payment = csv.require("payment_id")?;
    let invoice = csv.require("invoice_id")?;
    let applied = csv.require("applied_amount")?;
    let mut out = Loaded::default();
    while let Some(row) = csv.next_row()? {
        let parsed = (|| {
            row.check_width()?;
            Ok::<_, FormatError>(Label {
                payment_id: row.required(payment)?.to_string(),
                invoice_id: row.required(invoice)?.to_string(),
                applied_amount: row.money(applied)?,
            })
        })();
        match parsed {
            Ok(l) => out.rows.push(l),
            Err(e) => out.errors.push(e),
        }
    }
    Ok(out)
}

/// Reads `cases.csv`: `payment_id,case`, as `(payment_id, case)` pairs.
pub fn read_cases(path: impl AsRef<Path>) -> Result<Loaded<(String, String)>, FormatError> {
    let (r, name) = open(path.as_ref())?;
    cases_from_reader(r, &name)
}

/// Reads case families from any reader; `file` names it in errors.
pub fn cases_from_reader(
    reader: impl Read,
    file: &str,
) -> Result<Loaded<(String, String)>, FormatError> {
    let mut csv = CsvFile::new(reader, file)?;
    let payment = csv.require("payment_id")?;
    let case = csv.require("case")?;
    let mut out = Loaded::default();
    while let Some(row) = csv.next_row()? {
        let parsed = (|| {
            row.check_width()?;
            Ok::<_, FormatError>((
                row.required(payment)?.to_string(),
                row.required(case)?.to_string(),
            ))
        })();
        match parsed {
            Ok(c) => out.rows.push(c),
            Err(e) => out.errors.push(e),
        }
    }
    Ok(out)
}

/// Writes `labels.csv`.
pub fn write_labels<'a>(
    w: impl Write,
    labels: impl IntoIterator<Item = &'a Label>,
) -> std::io::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(["payment_id", "invoice_id", "applied_amount"])?;
    for l in labels {
        out.write_record([
            l.payment_id.as_str(),
            l.invoice_id.as_str(),
            l.applied_amount.to_string().as_str(),
        ])?;
    }
    out.flush()
}

/// Writes `cases.csv` from `(payment_id, case)` pairs.
pub fn write_cases<'a>(
    w: impl Write,
    cases: impl IntoIterator<Item = &'a (String, String)>,
) -> std::io::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(["payment_id", "case"])?;
    for (p, c) in cases {
        out.write_record([p.as_str(), c.as_str()])?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::Position;
    use rust_decimal_macros::dec;

    #[test]
    fn labels_round_trip_and_bad_rows_name_their_column() {
        let labels = vec![
            Label {
                payment_id: "P1".into(),
                invoice_id: "I1".into(),
                applied_amount: dec!(100.00),
            },
            Label {
                payment_id: "P1".into(),
                invoice_id: "I9".into(),
                applied_amount: dec!(-20.50),
            },
        ];
        let mut buf = Vec::new();
        write_labels(&mut buf, &labels).unwrap();
        let back = labels_from_reader(buf.as_slice(), "labels.csv").unwrap();
        assert_eq!(back.rows, labels);

        let text = "payment_id,invoice_id,applied_amount\nP1,I1,ten\nP2,I2,5.00\n";
        let got = labels_from_reader(text.as_bytes(), "labels.csv").unwrap();
        assert_eq!(got.rows.len(), 1);
        assert_eq!(
            got.errors[0].position,
            Position::Line {
                line: 2,
                column: Some(3)
            }
        );
        assert!(got.errors[0].message.starts_with("applied_amount: \"ten\""));
    }

    #[test]
    fn cases_round_trip() {
        let cases = vec![("P1".to_string(), "exact_single".to_string())];
        let mut buf = Vec::new();
        write_cases(&mut buf, &cases).unwrap();
        assert_eq!(
            cases_from_reader(buf.as_slice(), "cases.csv").unwrap().rows,
            cases
        );
        let e = cases_from_reader("payment_id\nP1\n".as_bytes(), "cases.csv").unwrap_err();
        assert!(e.message.contains("\"case\""));
    }
}
