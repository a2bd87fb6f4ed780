//! Spreadsheets (XLSX, XLS, ODS): the first sheet with content is read as a table and handed to
//! the CSV readers, so a spreadsheet's columns mean what the same columns of a CSV file mean:
//! the project's remittance columns (`payment_id`, ...) or an AP or bank export's (`Invoice`,
//! `Date`, `Amount`, ...).
//!
//! A spreadsheet is a zip archive (XLSX, ODS) or an OLE file (XLS) and may be hostile: the
//! archive's declared sizes are checked before anything is inflated, and the sheet read is
//! bounded in rows and columns, so that a zip bomb or a sheet of a million rows is refused with
//! an error rather than filling memory.

use super::{Format, FormatError, Parsed, Position};
use chrono::NaiveDate;
use std::io::Cursor;

/// Largest spreadsheet file read.
pub(crate) const MAX_BYTES: usize = 16 << 20;
/// Largest total of the archive's members once inflated.
const MAX_INFLATED: u64 = 64 << 20;
/// Most members of the archive (an XLSX has some ten).
const MAX_MEMBERS: usize = 1_000;
/// Most rows and columns of the sheet read: an advice is some hundreds of lines.
pub const MAX_ROWS: usize = 20_000;
const MAX_COLUMNS: usize = 64;

/// Whether the head of a file is a spreadsheet: a zip archive that holds a workbook, or an OLE
/// compound file (XLS).
pub fn looks_like(head: &[u8]) -> bool {
    let zip = head.starts_with(b"PK\x03\x04") && memchr::memmem::find(head, b"xl/").is_some()
        || memchr::memmem::find(head, b"[Content_Types].xml").is_some() && head.starts_with(b"PK")
        || head.starts_with(b"PK\x03\x04")
            && memchr::memmem::find(head, b"application/vnd.oasis.opendocument.spreadsheet")
                .is_some();
    zip || head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1])
}

/// Reads the first sheet with content as a CSV table (RFC 4180, comma-separated), for the CSV
/// readers. Numbers are written as the shortest decimal that reads back as the same binary
/// number, which is the decimal the spreadsheet's own XML holds for any amount of up to 15
/// significant digits: money is never rounded through arithmetic here. Dates become ISO dates.
pub(crate) fn to_csv(bytes: &[u8], file: &str) -> Result<Vec<u8>, FormatError> {
    let err = |m: String| FormatError::new(file, Position::File, m);
    if bytes.len() > MAX_BYTES {
        return Err(err(format!(
            "spreadsheet of {} bytes, more than the {} read",
            bytes.len(),
            MAX_BYTES
        )));
    }
    if bytes.starts_with(b"PK") {
        check_archive(bytes).map_err(err)?;
    }
    use calamine::Reader;
    let mut book = calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
        .map_err(|e| err(format!("not a readable spreadsheet: {e}")))?;
    let names = book.sheet_names();
    let mut out = csv::Writer::from_writer(Vec::new());
    for name in names {
        let range = book
            .worksheet_range(&name)
            .map_err(|e| err(format!("sheet {name:?}: {e}")))?;
        if range.is_empty() {
            continue;
        }
        let (rows, cols) = range.get_size();
        if rows > MAX_ROWS || cols > MAX_COLUMNS {
            return Err(err(format!(
                "sheet {name:?} has {rows} rows and {cols} columns; at most {MAX_ROWS} rows and {MAX_COLUMNS} columns are read"
            )));
        }
        for row in range.rows() {
            let cells: Vec<String> = row.iter().map(cell_text).collect();
            // Blank rows between blocks are not records.
            if cells.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            out.write_record(&cells)
                .map_err(|e| err(format!("sheet {name:?}: {e}")))?;
        }
        return out
            .into_inner()
            .map_err(|e| err(format!("sheet {name:?}: {e}")));
    }
    Err(err("the spreadsheet has no sheet with content".to_string()))
}

/// Reads a spreadsheet as the CSV it holds: the project's remittance CSV when a column is
/// `payment_id`, a bank or AP export otherwise.
pub fn parse(bytes: &[u8], file: &str) -> Result<Parsed, FormatError> {
    let csv = to_csv(bytes, file)?;
    let format = if super::detect(&csv) == Format::Csv {
        Format::Csv
    } else {
        Format::BankCsv
    };
    super::parse(&csv, file, Some(format))
}

/// Refuses an archive whose members would inflate beyond [`MAX_INFLATED`] or that has too
/// many of them, from the sizes its central directory declares (checked before inflating; the
/// zip reader also stops a member at its declared size).
fn check_archive(bytes: &[u8]) -> Result<(), String> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format!("not a readable spreadsheet (zip archive): {e}"))?;
    if zip.len() > MAX_MEMBERS {
        return Err(format!(
            "the archive has {} members, more than the {MAX_MEMBERS} a spreadsheet may have",
            zip.len()
        ));
    }
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let m = zip
            .by_index_raw(i)
            .map_err(|e| format!("archive member {i}: {e}"))?;
        total = total.saturating_add(m.size());
        if total > MAX_INFLATED {
            return Err(format!(
                "the archive inflates to more than {MAX_INFLATED} bytes (a zip bomb?)"
            ));
        }
    }
    Ok(())
}

fn cell_text(c: &calamine::Data) -> String {
    use calamine::Data;
    match c {
        Data::Empty | Data::Error(_) => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => excel_date(d.as_f64()).unwrap_or_default(),
    }
}

/// An Excel serial date (days since 1899-12-30, the 1900 leap-year bug folded in) as an ISO
/// date; `None` outside the dates a remittance holds.
fn excel_date(serial: f64) -> Option<String> {
    if !(1.0..200_000.0).contains(&serial) {
        return None;
    }
    let base = NaiveDate::from_ymd_opt(1899, 12, 30)?;
    let d = base.checked_add_days(chrono::Days::new(serial.floor() as u64))?;
    Some(d.format("%Y-%m-%d").to_string())
}
