//! Remittance and bank formats: each turns bytes into canonical [`Payment`]s.
//!
//! Every parser has the same shape: `parse(bytes, file) -> Result<Parsed, FormatError>`, where a
//! file-level fault (not the format at all, a broken envelope) is an `Err`, and a fault confined
//! to one transaction is kept in [`Parsed::errors`] while the good transactions go on.
//!
//! [`detect`] tells the formats apart from the first 4 KiB, [`parse`] reads bytes in any of
//! them, and [`parse_path`] and [`for_each_payment`] read a file, streaming it through the
//! parsers that can (X12 820, BAI2 and the project CSV) so that memory does not grow with it.

mod ap_table;
pub mod bai2;
pub mod bank_csv;
mod common;
pub mod email;
pub mod lockbox;
pub mod mt940;

pub mod text;

use crate::domain::Payment;
pub use crate::input::{FormatError, Parsed, Position};
use std::fmt;
use std::io::{BufReader, Cursor, Read};
use std::path::Path;

pub mod nacha;
pub mod pdf;
pub mod remadv;
pub mod x12;

/// A remittance or bank-statement format that cashmatch reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// The project's own remittance CSV (docs/formats.md).
    Csv,
    /// A bank or payment-portal CSV export (docs/formats/bank_csv.md).
    BankCsv,
    X12_820,
    /// A UN/EDIFACT REMADV remittance advice.
    Remadv,
    Bai2,
    Lockbox,
    Camt053,
    Camt054,
    Remt001,
    Nacha,
    Mt940,
    /// An email message (.eml, MIME) carrying advices in its attachments or body.
    Email,
    /// A spreadsheet (XLSX, XLS, ODS) holding a remittance table.
    Spreadsheet,
    /// A PDF with a text layer: an AP system's payment advice (its remittance table).
    Pdf,
    FreeText,
}

impl Format {
    /// Every format, in the order `detect` tries them.
    pub const ALL: [Format; 15] = [
        Format::Pdf,
        Format::Spreadsheet,
        Format::X12_820,
        Format::Remadv,
        Format::Nacha,
        Format::Camt054,
        Format::Camt053,
        Format::Remt001,
        Format::Bai2,
        Format::Lockbox,
        Format::Mt940,
        Format::Email,
        Format::Csv,
        Format::BankCsv,
        Format::FreeText,
    ];

    /// The name used on the command line and in `Payment::format`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::BankCsv => "bank_csv",
            Format::X12_820 => "x12_820",
            Format::Remadv => "remadv",
            Format::Bai2 => "bai2",
            Format::Lockbox => "lockbox",
            Format::Camt053 => "camt053",
            Format::Camt054 => "camt054",
            Format::Remt001 => "remt001",
            Format::Nacha => "nacha",
            Format::Mt940 => "mt940",
            Format::Email => "eml",
            Format::Spreadsheet => "xlsx",
            Format::Pdf => "pdf",
            Format::FreeText => "text",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let l = s.trim().to_ascii_lowercase().replace(['-', '.'], "_");
        Format::ALL
            .into_iter()
            .find(|f| f.name() == l || (l == "820" && *f == Format::X12_820))
            .ok_or_else(|| {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
                format!("unknown format {s:?}; expected one of {}", names.join(", "))
            })
    }
}

pub mod camt;
pub(crate) mod iso20022;
pub mod remt;
#[cfg(test)]
pub(crate) mod samples;
pub mod spreadsheet;

/// How much of a file [`detect`] looks at.
pub const DETECT_BYTES: usize = 4096;

/// Tells the format of a file from its first bytes (at most [`DETECT_BYTES`] are looked at).
///
/// The formats are tried in the order of [`Format::ALL`]: a PDF (`%PDF-` in the first
/// kilobyte), a spreadsheet (a zip archive holding
/// a workbook, or an OLE file), an X12 interchange (`ISA` with the
/// delimiters it declares), an EDIFACT interchange (`UNA` or `UNB+`, read as REMADV), a NACHA file header (`101`, record size `094` or a `5` batch header
/// next), an ISO 20022 document (camt.054, camt.053, remt.001 by namespace or message element;
/// only when the file opens with `<`, so that a memo quoting a namespace is not XML), a BAI2 `01`
/// file header of version 2, a BAI lockbox `1` header followed by a `2` service record, an
/// MT940 statement (`:20:`, `:25:`, `:60F:` or a `{2:O940` block), an email message (header
/// fields such as `From:` and `Subject:`), the project CSV (a header
/// with a `payment_id` column), a bank or portal CSV export (a header row, after any preamble,
/// naming a date and an amount or debit/credit column), and free text for anything else. The signatures are disjoint
/// at the start of a file, so the order matters only for text that resembles several.
pub fn detect(head: &[u8]) -> Format {
    let head = head.get(..DETECT_BYTES).unwrap_or(head);
    Format::ALL
        .into_iter()
        .find(|&f| looks_like(f, head))
        .unwrap_or(Format::FreeText)
}

fn looks_like(format: Format, head: &[u8]) -> bool {
    match format {
        Format::X12_820 => x12::looks_like(head),
        Format::Remadv => remadv::looks_like(head),
        Format::Nacha => nacha::looks_like(head),
        Format::Camt054 => opens_xml(head) && camt::looks_like_054(head),
        Format::Camt053 => opens_xml(head) && camt::looks_like_053(head),
        Format::Remt001 => opens_xml(head) && remt::looks_like(head),
        Format::Bai2 => bai2::looks_like(head),
        Format::Lockbox => lockbox::looks_like(head),
        Format::Mt940 => mt940::looks_like(head),
        Format::Email => email::looks_like(head),
        Format::Spreadsheet => spreadsheet::looks_like(head),
        Format::Pdf => pdf::looks_like(head),
        Format::Csv => csv_header(head),
        Format::BankCsv => bank_csv::looks_like(head),
        Format::FreeText => text::looks_like(head),
    }
}

/// Whether the first thing in the file, after a byte-order mark and blanks, is markup.
fn opens_xml(head: &[u8]) -> bool {
    let h = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    h.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}

/// Whether the first non-blank line is a CSV header with a `payment_id` column. Only that one
/// column is asked for, so that a project CSV missing another required column is still read as
/// CSV and refused with an error naming the column, rather than taken for free text.
fn csv_header(head: &[u8]) -> bool {
    let h = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let Some(line) = h
        .split(|&b| b == b'\n')
        .find(|l| l.iter().any(|b| !b.is_ascii_whitespace()))
    else {
        return false;
    };
    line.split(|&b| b == b',').any(|field| {
        let f = field.trim_ascii();
        let f = f
            .strip_prefix(b"\"")
            .and_then(|f| f.strip_suffix(b"\""))
            .unwrap_or(f);
        f.eq_ignore_ascii_case(b"payment_id")
    })
}

/// Reads remittance bytes in `format`, or in the format [`detect`] finds when `None`. `file`
/// names the input in errors.
pub fn parse(bytes: &[u8], file: &str, format: Option<Format>) -> Result<Parsed, FormatError> {
    match format.unwrap_or_else(|| detect(bytes)) {
        Format::Csv => crate::io::remittances_from_reader(bytes, file),
        Format::BankCsv => bank_csv::parse(bytes, file),
        Format::X12_820 => x12::parse(bytes, file),
        Format::Remadv => remadv::parse(bytes, file),
        Format::Bai2 => bai2::parse(bytes, file),
        Format::Lockbox => lockbox::parse(bytes, file),
        // One reader serves both; it tells them apart by the message element.
        Format::Camt053 | Format::Camt054 => camt::parse(bytes, file),
        Format::Remt001 => remt::parse(bytes, file),
        Format::Nacha => nacha::parse(bytes, file),
        Format::Mt940 => mt940::parse(bytes, file),
        Format::Email => email::parse(bytes, file),
        Format::Spreadsheet => spreadsheet::parse(bytes, file),
        Format::Pdf => pdf::parse(bytes, file),
        Format::FreeText => text::parse(bytes, file),
    }
}

/// Reads a remittance file in `format`, or in the format [`detect`] finds when `None`.
///
/// X12 820, BAI2 and the project CSV are streamed from the file, and a bank CSV export is read
/// from it twice (conventions, then rows); the other formats are read whole (bank statements and advices, small by nature). One difference follows from
/// streaming: a BAI2 control total or record count that does not reconcile is found only at
/// its trailer, after the payments it covers were read, so it is reported in
/// [`Parsed::errors`] at that trailer (the payments are kept) rather than as a warning on each
/// payment as [`parse`] does.
pub fn parse_path(path: &Path, format: Option<Format>) -> Result<Parsed, FormatError> {
    let mut parsed = Parsed::default();
    for_each_payment(path, format, &mut |r| match r {
        Ok(p) => parsed.payments.push(p),
        Err(e) => parsed.errors.push(e),
    })?;
    Ok(parsed)
}

/// Streams the payments of a remittance file to `on_payment`, in file order for the streaming
/// formats (X12 820, BAI2, the project CSV; see [`parse_path`]), and for the others the payments
/// first and then the transactions that could not be read. Returns the format read. The `Err`
/// is for faults of the whole file: it cannot be opened or read, or it is not the format.
pub fn for_each_payment(
    path: &Path,
    format: Option<Format>,
    on_payment: &mut dyn FnMut(Result<Payment, FormatError>),
) -> Result<Format, FormatError> {
    let file = path.display().to_string();
    let io_error =
        |e: std::io::Error| FormatError::new(&file, Position::File, format!("cannot read: {e}"));
    let mut f = std::fs::File::open(path)
        .map_err(|e| FormatError::new(&file, Position::File, format!("cannot open: {e}")))?;
    let mut head = Vec::with_capacity(DETECT_BYTES);
    (&mut f)
        .take(DETECT_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(io_error)?;
    let format = format.unwrap_or_else(|| detect(&head));
    // The head goes back in front of the rest, so each reader sees the whole file.
    let whole = Cursor::new(head).chain(f);
    match format {
        // The tokenizer buffers for itself.
        Format::X12_820 => x12::parse_reader(whole, &file, on_payment)?,
        Format::Bai2 => {
            bai2::parse_reader(BufReader::with_capacity(1 << 16, whole), &file, on_payment)?
        }
        Format::Csv => crate::io::for_each_remittance(whole, &file, on_payment)?,
        // Read twice from the path (conventions, then rows) rather than held in memory.
        Format::BankCsv => {
            drop(whole);
            bank_csv::for_each_in_path(path, &file, on_payment)?
        }
        _ => {
            let mut bytes = Vec::new();
            BufReader::new(whole)
                .read_to_end(&mut bytes)
                .map_err(io_error)?;
            let parsed = parse(&bytes, &file, Some(format))?;
            parsed.payments.into_iter().for_each(|p| on_payment(Ok(p)));
            parsed.errors.into_iter().for_each(|e| on_payment(Err(e)));
        }
    }
    Ok(format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixtures() -> Vec<(PathBuf, Format)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
        let mut out = Vec::new();
        for (dir, format) in [
            ("bai2", Format::Bai2),
            ("camt", Format::Camt053),
            ("lockbox", Format::Lockbox),
            ("mt940", Format::Mt940),
            ("nacha", Format::Nacha),
            ("remt", Format::Remt001),
            ("x12", Format::X12_820),
            ("bank_csv", Format::BankCsv),
            ("advices/mail", Format::Email),
            ("advices/pdf", Format::Pdf),
            ("advices/remadv", Format::Remadv),
        ] {
            let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                // Subfolders (x12/regressions: fuzz-found inputs that are not valid files of
                // their format) are not fixtures of the format.
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy();
                    p.is_file() && !name.starts_with('.') && !name.ends_with(".md")
                })
                .collect();
            files.sort();
            for p in files {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                let f = if name.starts_with("camt054") {
                    Format::Camt054
                } else if name.ends_with(".eml") {
                    Format::Email
                } else {
                    format
                };
                out.push((p, f));
            }
        }
        out.push((root.join("cases/remittances.csv"), Format::Csv));
        out
    }

    #[test]
    fn every_fixture_is_detected_as_its_format() {
        let all = fixtures();
        assert!(all.len() > 40, "{} fixtures", all.len());
        for (path, want) in all {
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(detect(&bytes), want, "{}", path.display());
        }
    }

    #[test]
    fn reading_a_file_streamed_gives_what_parsing_its_bytes_gives() {
        for (path, format) in fixtures() {
            let bytes = std::fs::read(&path).unwrap();
            let name = path.display().to_string();
            let whole = parse(&bytes, &name, None);
            let streamed = parse_path(&path, None);
            match (whole, streamed) {
                (Ok(w), Ok(s)) => {
                    let strip = |ps: &[Payment]| {
                        ps.iter()
                            .map(|p| Payment {
                                warnings: vec![],
                                ..p.clone()
                            })
                            .collect::<Vec<_>>()
                    };
                    assert_eq!(strip(&w.payments), strip(&s.payments), "{name}");
                    if format != Format::Bai2 {
                        assert_eq!(w.payments, s.payments, "{name}");
                        assert_eq!(w.errors, s.errors, "{name}");
                    }
                }
                (Err(w), Err(s)) => assert_eq!(w, s, "{name}"),
                (w, s) => panic!("{name}: {w:?} in memory but {s:?} streamed"),
            }
        }
    }

    #[test]
    fn detection_falls_back_to_csv_and_free_text() {
        assert_eq!(
            detect(b"\xEF\xBB\xBFPayment_ID,payment_amount\nP1,5\n"),
            Format::Csv
        );
        assert_eq!(detect(b"\"payment_id\",\"reference\"\n"), Format::Csv);
        assert_eq!(detect(b"Please apply $10.00 to INV 1001"), Format::FreeText);
        assert_eq!(detect(b""), Format::FreeText);
        // A namespace quoted in a memo does not make the memo XML.
        assert_eq!(
            detect(b"see urn:iso:std:iso:20022:tech:xsd:camt.054.001.08 for INV 7, $5.00"),
            Format::FreeText
        );
    }

    #[test]
    fn a_csv_missing_a_required_column_is_refused_naming_it() {
        let e = parse(b"payment_id,payment_amount\nP1,5.00\n", "r.csv", None).unwrap_err();
        assert!(e.to_string().contains("\"reference\""), "{e}");
    }

    #[test]
    fn a_forced_format_is_used_and_a_missing_file_is_a_file_error() {
        let e = parse(b"INV 1001 $5.00", "m.txt", Some(Format::X12_820)).unwrap_err();
        assert_eq!(e.file, "m.txt");
        let e = parse_path(Path::new("/nonexistent/r.csv"), None).unwrap_err();
        assert_eq!(e.position, Position::File);
        assert!(e.message.starts_with("cannot open"), "{e}");
    }
}
