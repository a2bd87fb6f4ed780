//! BAI2 cash-management balance reporting (BAI version 2), the US banks' prior-day and intraday
//! statement format, and a writer for it.
//!
//! A file is a flat list of comma-separated records, each opening with a two-digit code:
//! `01` file header, `02` group header (as-of date, currency), `03` account identifier and
//! summary, `16` transaction detail, `88` continuation of the record before it, and the trailers
//! `49` (account), `98` (group) and `99` (file) with control totals and record counts.
//! docs/formats/bai2.md gives the field mapping to [`Payment`].
//!
//! Real files bend the layout: records end with `/` or with nothing at all, several records
//! share a physical line, a long record wraps onto the next line, and the free-text field of a
//! `16` or `88` record may itself contain `/`. The [`Splitter`] turns the byte stream into
//! logical records under those rules; the reader on top of it keeps only the current group,
//! account and transaction in memory, so a file of any size streams in bounded memory.

mod reader;
mod remit;
mod split;
#[cfg(test)]
mod tests;
mod writer;

pub use writer::write_bai2;

use super::common::decode;
use super::{FormatError, Parsed, Position};
use crate::domain::Payment;
use reader::{Reader, clip};
use split::{Split, Splitter};
use std::io::BufRead;

/// The name every payment read from BAI2 carries in [`Payment::format`].
const FORMAT: &str = "bai2";

/// A record longer than this is not BAI2 (or the file is binary); we stop rather than buffer it.
const MAX_RECORD_BYTES: usize = 1 << 20;

/// How far the splitter looks past a `/` or a line end for the start of the next record. Runs of
/// blanks longer than this are treated as text, which keeps the look-ahead bounded.
const MAX_LOOKAHEAD_BLANKS: usize = 256;

/// How many recent bank references are remembered to detect repeats. Bounded so that streaming
/// memory does not grow with the file; real repeats are close together (same account and day).
const RECENT_REFERENCES: usize = 65_536;

/// Whether the first bytes of a file look like BAI2: the first record is a `01` file header
/// with nine fields, a YYMMDD creation date and version `2`.
pub fn looks_like(head: &[u8]) -> bool {
    let text = decode(head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head));
    let Some(first) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return false;
    };
    let Some(body) = first.strip_prefix("01,") else {
        return false;
    };
    let record = body.split('/').next().unwrap_or("");
    let fields: Vec<&str> = record.split(',').map(str::trim).collect();
    fields.len() >= 8
        && fields
            .get(2)
            .is_some_and(|d| d.len() == 6 && d.bytes().all(|b| b.is_ascii_digit()))
        && fields.get(7) == Some(&"2")
}

/// Reads a whole BAI2 file held in memory.
///
/// Control totals and record counts that do not reconcile become warnings on the payments of
/// the account, group or file they cover; a transaction that cannot be read is listed in
/// [`Parsed::errors`] and the rest of the file is still read. A file that does not open with a
/// `01` record is an `Err`.
pub fn parse(bytes: &[u8], file: &str) -> Result<Parsed, FormatError> {
    let mut parsed = Parsed::default();
    run(bytes, file, &mut |event| match event {
        Event::Payment(p) => parsed.payments.push(*p),
        Event::Error(e) => parsed.errors.push(e),
        Event::Control { since, error } => {
            if let Some(covered) = parsed.payments.get_mut(since..) {
                let warning = format!("{}: {}", error.position, error.message);
                for p in covered {
                    p.warnings.push(warning.clone());
                }
            }
        }
    })?;
    Ok(parsed)
}

/// Streams a BAI2 file: each payment is handed to `on_payment` as soon as its `16` record and
/// `88` continuations are complete, so memory does not grow with the file.
///
/// A transaction that cannot be read arrives as `Err` and the stream goes on. A control total
/// or record count that does not reconcile is discovered only at the trailer, after the
/// payments it covers were handed on, so here it also arrives as an `Err` naming the trailer
/// (the payments stay valid); [`parse`] attaches the same findings as payment warnings instead.
/// The result is `Err` only for faults of the whole file: not BAI2, unreadable, a runaway record.
pub fn parse_reader<R: BufRead>(
    r: R,
    file: &str,
    on_payment: &mut dyn FnMut(Result<Payment, FormatError>),
) -> Result<(), FormatError> {
    run(r, file, &mut |event| match event {
        Event::Payment(p) => on_payment(Ok(*p)),
        Event::Error(e) => on_payment(Err(e)),
        Event::Control { error, .. } => on_payment(Err(FormatError {
            message: format!(
                "{} (warning: the payments it covers were kept)",
                error.message
            ),
            ..error
        })),
    })
}

/// What the reader reports while it streams.
pub(super) enum Event {
    Payment(Box<Payment>),
    /// A transaction or record that could not be read.
    Error(FormatError),
    /// A control that does not reconcile; it covers the payments emitted from index `since` on.
    Control {
        since: usize,
        error: FormatError,
    },
}

fn run<R: BufRead>(r: R, file: &str, sink: &mut dyn FnMut(Event)) -> Result<(), FormatError> {
    let mut splitter = Splitter::new(r);
    let mut reader = Reader::new(file);
    while let Some(item) = splitter.next_record().map_err(|e| reader.fatal(e))? {
        match item {
            Split::Record(raw) => reader.record(raw, sink)?,
            Split::Junk { line, text } => sink(Event::Error(FormatError::new(
                file,
                Position::Line {
                    line,
                    column: Some(1),
                },
                format!(
                    "expected a BAI2 record starting with a two-digit code and a comma, \
                     found {:?}",
                    clip(&text)
                ),
            ))),
        }
    }
    reader.finish(sink)
}
