//! `labels.csv` (the truth for training and evaluation) and `cases.csv` (the case family of each
//! synthetic payment, for breaking figures down).
//!
//! A labels file may carry a `source` column saying who decided each row (docs/formats.md):
//! the service's `cashmatch export-labels` writes one, and the retraining job ranks sources by
//! it when they disagree about a payment.

use super::table::{Column, Kind, Table, optional, required};
use super::{CsvFile, Loaded, open};
use crate::domain::{Label, LabelSource};
use crate::input::FormatError;
use std::io::{Read, Write};
use std::path::Path;

const LABEL_COLUMNS: [Column; 4] = [
    required("payment_id", Kind::Text),
    required("invoice_id", Kind::Text),
    required("applied_amount", Kind::Money),
    optional("source", Kind::Text),
];

const CASE_COLUMNS: [Column; 2] = [
    required("payment_id", Kind::Text),
    required("case", Kind::Text),
];

/// Reads `labels.csv`: `payment_id,invoice_id,applied_amount[,source]`.
pub fn read_labels(path: impl AsRef<Path>) -> Result<Loaded<Label>, FormatError> {
    let (r, name) = open(path.as_ref())?;
    labels_from_reader(r, &name)
}

/// Reads labels from any reader; `file` names it in errors. A `source` column is checked and
/// dropped; [`labels_from_table`] keeps it.
pub fn labels_from_reader(reader: impl Read, file: &str) -> Result<Loaded<Label>, FormatError> {
    let got = labels_from_table(&mut CsvFile::new(reader, file)?, LabelSource::History)?;
    Ok(Loaded {
        rows: got.rows.into_iter().map(|(l, _)| l).collect(),
        errors: got.errors,
    })
}

/// Reads labels from any table, each with its source: the `source` column where the file has
/// one and the field is filled, else `default_source`.
pub fn labels_from_table(
    t: &mut dyn Table,
    default_source: LabelSource,
) -> Result<Loaded<(Label, LabelSource)>, FormatError> {
    let mut out = Loaded::default();
    t.scan(&LABEL_COLUMNS, &mut |r| {
        let row = (|| {
            r.check()?;
            let source = match r.text(3)? {
                None => default_source,
                Some(s) => LabelSource::parse(&s).map_err(|m| r.error(3, &m))?,
            };
            let label = Label {
                payment_id: r.required(0)?.into_owned(),
                invoice_id: r.required(1)?.into_owned(),
                applied_amount: r.money(2)?,
            };
            Ok::<_, FormatError>((label, source))
        })();
        match row {
            Ok(l) => out.rows.push(l),
            Err(e) => out.errors.push(e),
        }
        Ok(())
    })?;
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
    cases_from_table(&mut CsvFile::new(reader, file)?)
}

/// Reads case families from any table.
pub fn cases_from_table(t: &mut dyn Table) -> Result<Loaded<(String, String)>, FormatError> {
    let mut out = Loaded::default();
    t.scan(&CASE_COLUMNS, &mut |r| {
        let row = (|| {
            r.check()?;
            Ok::<_, FormatError>((r.required(0)?.into_owned(), r.required(1)?.into_owned()))
        })();
        match row {
            Ok(c) => out.rows.push(c),
            Err(e) => out.errors.push(e),
        }
        Ok(())
    })?;
    Ok(out)
}

/// Writes `labels.csv`.
pub fn write_labels<'a>(
    w: impl Write,
    labels: impl IntoIterator<Item = &'a Label>,
) -> std::io::Result<()> {
    let mut out = LabelsWriter::new(w, false)?;
    for l in labels {
        out.write(l, LabelSource::History)?;
    }
    out.finish()
}

/// Writes a labels file row by row, with or without the `source` column, so an export of any
/// size streams.
pub struct LabelsWriter<W: Write> {
    out: csv::Writer<W>,
    with_source: bool,
}

impl<W: Write> LabelsWriter<W> {
    /// Writes the header.
    pub fn new(w: W, with_source: bool) -> std::io::Result<Self> {
        let mut out = csv::Writer::from_writer(w);
        let columns = if with_source { 4 } else { 3 };
        out.write_record(LABEL_COLUMNS.iter().take(columns).map(|c| c.name))?;
        Ok(LabelsWriter { out, with_source })
    }

    /// One row; `source` is written only when the file has the column.
    pub fn write(&mut self, l: &Label, source: LabelSource) -> std::io::Result<()> {
        let amount = l.applied_amount.to_string();
        let mut row = vec![
            l.payment_id.as_str(),
            l.invoice_id.as_str(),
            amount.as_str(),
        ];
        if self.with_source {
            row.push(source.name());
        }
        self.out.write_record(row)?;
        Ok(())
    }

    /// Flushes what is buffered.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.out.flush()
    }
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
    use crate::input::Position;
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
    fn sources_are_written_read_back_and_checked() {
        let l = |p: &str, i: &str| Label {
            payment_id: p.into(),
            invoice_id: i.into(),
            applied_amount: dec!(10.00),
        };
        let mut buf = Vec::new();
        let mut w = LabelsWriter::new(&mut buf, true).unwrap();
        w.write(&l("P1", "I1"), LabelSource::Analyst).unwrap();
        w.write(&l("P2", "I2"), LabelSource::Auto).unwrap();
        w.finish().unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.starts_with("payment_id,invoice_id,applied_amount,source\n"));
        // A row without a source takes the default; a bad source is an error at its column.
        let text = format!("{text}P3,I3,10.00,\nP4,I4,10.00,robot\n");
        let got = labels_from_table(
            &mut CsvFile::new(text.as_bytes(), "l.csv").unwrap(),
            LabelSource::History,
        )
        .unwrap();
        assert_eq!(
            got.rows,
            vec![
                (l("P1", "I1"), LabelSource::Analyst),
                (l("P2", "I2"), LabelSource::Auto),
                (l("P3", "I3"), LabelSource::History),
            ]
        );
        assert_eq!(
            got.errors[0].position,
            Position::Line {
                line: 5,
                column: Some(4)
            }
        );
        assert!(got.errors[0].message.starts_with("source: \"robot\""));
        // The plain reader reads the same rows without their sources.
        let plain = labels_from_reader(text.as_bytes(), "l.csv").unwrap();
        assert_eq!(plain.rows.len(), 3);
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
