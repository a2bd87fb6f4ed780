//! The project's own files: the ledger (customers, invoices), the project CSV remittance format,
//! labels and case families for training and evaluation, and decisions as JSON Lines.
//! docs/formats.md describes every column.
//!
//! Readers share one shape: a file-level fault (the file cannot be opened, a required column is
//! missing from the header) is an `Err`; a bad row becomes a [`FormatError`] naming the file, the
//! line, the column and the bad value, and the good rows go on, in [`Loaded`] (or, for
//! remittances, in [`Parsed`](crate::input::Parsed)). Headers are matched by name in any order,
//! extra columns are ignored, a UTF-8 byte-order mark is tolerated and fields are trimmed.
//!
//! Each reader's rules are written once, against [`Table`]: `*_from_table` reads any table, and
//! the CSV readers here pass a [`CsvFile`]. The retraining job (`training/`) passes its polars
//! tables (CSV and Parquet at scale) to the same functions.
//!
//! Writers take any `impl Write` and write what the readers read back unchanged.

mod decisions;
mod labels;
mod ledger;
mod remittances;
mod table;

pub use decisions::{decisions_from_reader, read_decisions, write_decisions};
pub use labels::{
    LabelsWriter, cases_from_reader, cases_from_table, labels_from_reader, labels_from_table,
    read_cases, read_labels, write_cases, write_labels,
};
pub use ledger::{
    customers_from_reader, customers_from_table, invoices_from_reader, invoices_from_table,
    read_customers, read_invoices, write_customers, write_invoices,
};
pub use remittances::{
    RemittancesWriter, for_each_remittance, for_each_remittance_in, read_remittances,
    remittances_from_reader, write_remittances,
};
pub use table::{Column, Kind, Record, Table, optional, required};

use crate::input::{FormatError, Position};
use chrono::NaiveDate;
use csv::ByteRecord;
use rust_decimal::Decimal;
use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// What a reader made of a file: the rows it could read and the rows it could not.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded<T> {
    pub rows: Vec<T>,
    /// Rows skipped for a fault, each naming file, line and column; the rest was still read.
    pub errors: Vec<FormatError>,
}

impl<T> Default for Loaded<T> {
    fn default() -> Self {
        Loaded {
            rows: Vec::new(),
            errors: Vec::new(),
        }
    }
}

/// Opens a file for reading, turning the OS error into a file-level [`FormatError`].
pub(crate) fn open(path: &Path) -> Result<(BufReader<File>, String), FormatError> {
    let name = path.display().to_string();
    match File::open(path) {
        Ok(f) => Ok((BufReader::with_capacity(1 << 16, f), name)),
        Err(e) => Err(FormatError::new(
            &name,
            Position::File,
            format!("cannot open: {e}"),
        )),
    }
}

/// A column of a CSV file: where it is in this file and what it is called (for messages).
#[derive(Clone, Copy, Debug)]
struct Col {
    index: usize,
    name: &'static str,
}

/// A CSV file opened for reading, with its header mapped by name: the [`Table`] the CSV
/// readers scan.
pub struct CsvFile<R> {
    reader: csv::Reader<R>,
    file: String,
    header: Vec<String>,
    record: ByteRecord,
}

impl<R: Read> CsvFile<R> {
    /// Reads the header row; `file` names the source in errors. An unreadable or empty header,
    /// or a column named twice, is a file-level error.
    pub fn new(reader: R, file: &str) -> Result<Self, FormatError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            // Short and long rows are reported per row, not as a fatal reader error.
            .flexible(true)
            .from_reader(reader);
        let raw = reader
            .byte_headers()
            .map_err(|e| csv_error(file, &e))?
            .clone();
        let mut header = Vec::with_capacity(raw.len());
        for (i, h) in raw.iter().enumerate() {
            let h = std::str::from_utf8(h).map_err(|_| {
                FormatError::new(
                    file,
                    Position::Line {
                        line: 1,
                        column: Some(i + 1),
                    },
                    "header is not valid UTF-8",
                )
            })?;
            header.push(h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase());
        }
        if header.iter().all(|h| h.is_empty()) {
            return Err(FormatError::new(
                file,
                Position::File,
                "empty file: no header row",
            ));
        }
        for (i, h) in header.iter().enumerate() {
            if !h.is_empty() && header[..i].contains(h) {
                return Err(FormatError::new(
                    file,
                    Position::Line {
                        line: 1,
                        column: Some(i + 1),
                    },
                    format!("column {h:?} appears twice in the header"),
                ));
            }
        }
        Ok(CsvFile {
            reader,
            file: file.to_string(),
            header,
            record: ByteRecord::new(),
        })
    }

    /// Whether the header has a column of this (lower-case) name.
    pub fn has(&self, name: &str) -> bool {
        self.header.iter().any(|h| h == name)
    }

    /// Where each of `columns` is in this file; a missing required one is a file-level error.
    fn map(&self, columns: &[Column]) -> Result<Vec<Option<Col>>, FormatError> {
        columns
            .iter()
            .map(|c| {
                let found = self
                    .header
                    .iter()
                    .position(|h| h == c.name)
                    .map(|index| Col {
                        index,
                        name: c.name,
                    });
                if found.is_none() && c.required {
                    return Err(missing_column(&self.file, c.name, &self.header));
                }
                Ok(found)
            })
            .collect()
    }
}

/// The file-level error for a required column the header lacks, listing the header found.
pub(crate) fn missing_column(file: &str, name: &str, header: &[impl AsRef<str>]) -> FormatError {
    let names: Vec<&str> = header.iter().map(AsRef::as_ref).collect();
    FormatError::new(
        file,
        Position::Line {
            line: 1,
            column: None,
        },
        format!(
            "missing required column {name:?}; the header has: {}",
            names.join(",")
        ),
    )
}

impl<R: Read> Table for CsvFile<R> {
    fn file(&self) -> &str {
        &self.file
    }

    fn scan(
        &mut self,
        columns: &[Column],
        f: &mut dyn FnMut(&dyn Record) -> Result<(), FormatError>,
    ) -> Result<(), FormatError> {
        let cols = self.map(columns)?;
        let width = self.header.len();
        loop {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => return Ok(()),
                Ok(true) => {
                    let row = CsvRecord {
                        record: &self.record,
                        file: &self.file,
                        line: self.record.position().map_or(0, |p| p.line() as usize),
                        width,
                        columns,
                        cols: &cols,
                    };
                    f(&row)?;
                }
                Err(e) => return Err(csv_error(&self.file, &e)),
            }
        }
    }
}

fn csv_error(file: &str, e: &csv::Error) -> FormatError {
    let position = match e.position() {
        Some(p) => Position::Line {
            line: p.line() as usize,
            column: None,
        },
        None => Position::File,
    };
    FormatError::new(file, position, format!("cannot read CSV: {e}"))
}

/// One data row of a CSV file.
struct CsvRecord<'a> {
    record: &'a ByteRecord,
    file: &'a str,
    line: usize,
    /// Fields in the header.
    width: usize,
    columns: &'a [Column],
    /// Where each of `columns` is in the file.
    cols: &'a [Option<Col>],
}

impl Record for CsvRecord<'_> {
    fn line(&self) -> usize {
        self.line
    }

    fn error(&self, c: usize, message: &dyn std::fmt::Display) -> FormatError {
        let col = self.cols.get(c).copied().flatten();
        let name = col
            .map(|col| col.name)
            .or_else(|| self.columns.get(c).map(|c| c.name))
            .unwrap_or("?");
        FormatError::new(
            self.file,
            Position::Line {
                line: self.line,
                column: col.map(|col| col.index + 1),
            },
            format!("{name}: {message}"),
        )
    }

    /// A row that is shorter than the header lost fields somewhere: reject it whole rather than
    /// guess which fields moved.
    fn check(&self) -> Result<(), FormatError> {
        if self.record.len() < self.width {
            return Err(FormatError::new(
                self.file,
                Position::Line {
                    line: self.line,
                    column: None,
                },
                format!(
                    "row has {} fields but the header has {}",
                    self.record.len(),
                    self.width
                ),
            ));
        }
        Ok(())
    }

    fn text(&self, c: usize) -> Result<Option<Cow<'_, str>>, FormatError> {
        let Some(col) = self.cols.get(c).copied().flatten() else {
            return Ok(None);
        };
        let raw = self.record.get(col.index).unwrap_or_default();
        let t = std::str::from_utf8(raw).map(str::trim).map_err(|_| {
            self.error(
                c,
                &format!("not valid UTF-8: {:?}", String::from_utf8_lossy(raw)),
            )
        })?;
        Ok((!t.is_empty()).then_some(Cow::Borrowed(t)))
    }
}

/// Parses a money amount: an optional sign, digits with optional thousands commas, and an
/// optional decimal point with digits after it (`1234.50`, `-12.00`, `1,234.50`).
///
/// Written by hand rather than through `Decimal::from_str` because that accepts forms a ledger
/// must not (`1e3`), and rejects the thousands commas that spreadsheets write.
pub fn parse_money(s: &str) -> Result<Decimal, String> {
    let bad = || {
        format!(
            "{s:?} is not an amount (expected digits with an optional sign, decimal point and \
             thousands commas, such as -1,234.50)"
        )
    };
    let t = s.trim();
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    if int.is_empty() {
        return Err(bad());
    }
    let mut digits = String::with_capacity(body.len() + 1);
    if negative {
        digits.push('-');
    }
    if int.contains(',') {
        // Thousands commas must group by three, or `1,2345` would silently mean 12345.
        let mut groups = int.split(',');
        let first = groups.next().unwrap_or_default();
        if first.is_empty() || first.len() > 3 || !first.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        digits.push_str(first);
        for g in groups {
            if g.len() != 3 || !g.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            digits.push_str(g);
        }
    } else {
        if !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        digits.push_str(int);
    }
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        digits.push('.');
        digits.push_str(f);
    }
    digits
        .parse::<Decimal>()
        .map_err(|_| format!("{s:?} is out of range for an amount"))
}

/// Parses a date written `YYYY-MM-DD`, the only date form the project's files use.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return Err(format!("{s:?} is not a date (expected YYYY-MM-DD)"));
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok()).unwrap_or(0);
    NaiveDate::from_ymd_opt(num(0..4) as i32, num(5..7), num(8..10))
        .ok_or_else(|| format!("{s:?} is not a calendar date"))
}

/// Formats an optional value for a CSV field: empty when absent.
pub(crate) fn opt_str<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn money_accepts_plain_signed_and_grouped() {
        assert_eq!(parse_money("1234.50"), Ok(dec!(1234.50)));
        assert_eq!(parse_money("-12.00"), Ok(dec!(-12.00)));
        assert_eq!(parse_money("1,234.50"), Ok(dec!(1234.50)));
        assert_eq!(parse_money("1,234,567"), Ok(dec!(1234567)));
        assert_eq!(parse_money(" +7 "), Ok(dec!(7)));
        assert_eq!(parse_money("0.5"), Ok(dec!(0.5)));
    }

    #[test]
    fn money_rejects_what_a_ledger_must_not_guess() {
        for bad in [
            "12.3.4",
            "abc",
            "NaN",
            "",
            "-",
            "1,2345.00",
            ",123",
            "12.",
            ".5",
            "1e3",
            "$5",
            "1 000",
        ] {
            assert!(parse_money(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_money("99999999999999999999999999999999").is_err());
    }

    #[test]
    fn dates_are_iso() {
        assert_eq!(
            parse_date("2026-02-28"),
            Ok(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap())
        );
        for bad in [
            "2026-02-30",
            "2026-2-28",
            "28/02/2026",
            "2026-02-28T00:00",
            "",
        ] {
            assert!(parse_date(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
