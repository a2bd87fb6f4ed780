//! Bank and payment-portal CSV exports: a bank's "download as CSV", a PayPal activity or
//! statement report. One payment per transaction row.
//!
//! No two banks agree on the layout, so the reader finds its way from the content
//! (docs/formats/bank_csv.md has the whole vocabulary and the rules):
//!
//! - the **header** is the first row (after at most [`MAX_PREAMBLE`] rows) whose cells name a
//!   date column and an amount column, or debit/credit columns, in English, French, German,
//!   Dutch, Spanish or Italian; the rows above it are a preamble (account number, period,
//!   currency), which is read only for a currency code;
//! - the **delimiter** (`,` `;` tab) is the one under which such a header is found;
//! - the **decimal mark** is settled for the whole file from its amount cells, and the **date
//!   order** (day-first or month-first) for the whole date column, before any row is read, so
//!   that `03/04/2024` means the same date in every row.
//!
//! The file is read twice, once to settle those conventions and once to read the rows, so that
//! memory does not grow with it.
//!
//! The parts, in the order a file meets them: `records` (the CSV lexer), `header` (cells, header
//! names and finding the header row) with `vocabulary` (the names each column goes by),
//! `conventions` (decimal mark and date order), `values` (dates, amounts, currencies in cells)
//! and `rows` (rows into payments, footers told apart). The entry points are here.

use super::{FormatError, Parsed, Position};
use crate::domain::Payment;
use std::io::{BufRead, Read};
use std::path::Path;

mod conventions;
mod header;
mod records;
mod rows;
mod values;
mod vocabulary;

use conventions::survey;
pub(crate) use header::fold;
use header::{Sniffed, sniff};
use records::{Record, Records};
use rows::{RecentIds, Rows};

/// How many rows may come before the header; a preamble is a few lines of account metadata.
pub(crate) const MAX_PREAMBLE: usize = 50;

/// How much of the file is searched for the header.
const HEAD_BYTES: u64 = 64 * 1024;

/// The delimiters tried, in the order that breaks a tie.
const DELIMITERS: [u8; 3] = [b',', b';', b'\t'];

/// How many recent transaction ids are remembered to flag a repeat: bounded, like BAI2's, so
/// that memory stays flat on a long export.
const RECENT_IDS: usize = 65_536;

/// Whether the head of a file is a bank or portal CSV export: a header row naming a date and an
/// amount (or debit/credit) column. A table whose header names neither is also taken, so that
/// [`parse`] can refuse it with an error listing its columns rather than leave it to the
/// free-text reader, which would find a misleading figure in it or none at all.
pub fn looks_like(head: &[u8]) -> bool {
    !matches!(sniff(head), Sniffed::Nothing)
}

/// Reads a bank or portal CSV export; `file` names it in errors and in the fallback payment
/// ids. A file with no header row naming a date and an amount column is an `Err`; a row with a
/// bad date or amount is kept in [`Parsed::errors`] and the other rows go on.
pub fn parse(bytes: &[u8], file: &str) -> Result<Parsed, FormatError> {
    let mut parsed = Parsed::default();
    read_with(
        &mut || Ok::<_, std::io::Error>(bytes),
        file,
        &mut |r| match r {
            Ok(p) => parsed.payments.push(p),
            Err(e) => parsed.errors.push(e),
        },
    )?;
    Ok(parsed)
}

/// Streams the payments of a bank CSV file at `path` to `on_payment`, in file order. The file
/// is opened twice (conventions, then rows), so memory does not grow with it.
pub(crate) fn for_each_in_path(
    path: &Path,
    file: &str,
    on_payment: &mut dyn FnMut(Result<Payment, FormatError>),
) -> Result<(), FormatError> {
    read_with(
        &mut || std::fs::File::open(path).map(|f| std::io::BufReader::with_capacity(1 << 16, f)),
        file,
        on_payment,
    )
}

fn read_with<R: BufRead>(
    open: &mut dyn FnMut() -> std::io::Result<R>,
    file: &str,
    on_payment: &mut dyn FnMut(Result<Payment, FormatError>),
) -> Result<(), FormatError> {
    let io_error =
        |e: std::io::Error| FormatError::new(file, Position::File, format!("cannot read: {e}"));
    let mut head = Vec::new();
    open()
        .map_err(io_error)?
        .take(HEAD_BYTES)
        .read_to_end(&mut head)
        .map_err(io_error)?;
    let layout = match sniff(&head) {
        Sniffed::Bank(layout) => *layout,
        Sniffed::Table { line, columns } => {
            let names: Vec<String> = columns.iter().map(|c| format!("{c:?}")).collect();
            return Err(FormatError::new(
                file,
                Position::Line { line, column: None },
                format!(
                    "a CSV without payment_id (project format) or date and amount columns \
                     (bank export): columns are {}",
                    names.join(", ")
                ),
            ));
        }
        Sniffed::Nothing => {
            return Err(FormatError::new(
                file,
                Position::File,
                format!(
                    "not a bank CSV export: no header row naming a date column and an amount \
                     (or debit/credit) column after at most {MAX_PREAMBLE} rows of preamble"
                ),
            ));
        }
    };
    let conventions = survey(open().map_err(io_error)?, &layout, file)?;
    let stem = Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.to_string());
    let mut rows = Rows {
        layout: &layout,
        conventions: &conventions,
        file,
        stem: &stem,
        recent: RecentIds::default(),
    };
    let mut records = Records::new(layout.delimiter, open().map_err(io_error)?);
    let mut record = Record::default();
    let mut index = 0usize;
    while records.next(&mut record).map_err(io_error)? {
        let this = index;
        index += 1;
        if this <= layout.header_record {
            continue;
        }
        let cells = record.cells();
        if let Some(r) = rows.read(&cells, record.line) {
            on_payment(r);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
