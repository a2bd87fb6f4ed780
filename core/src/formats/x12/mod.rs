//! ANSI X12 820 (Payment Order/Remittance Advice): a streaming tokenizer, the mapping of each
//! ST/SE transaction set onto one canonical [`Payment`], and a writer.
//!
//! The delimiters come from the ISA header of each interchange and are never assumed: the element
//! separator is the byte after `ISA`, the component separator is ISA16, the segment terminator
//! the byte after ISA16, and ISA11 is the repetition separator from version 00402 on. Line
//! breaks, indentation and other control characters around segments are ignored, so files that
//! put each segment on its own line (or end segments with CR LF and nothing else) read the same.
//!
//! The reader holds one segment of input and one transaction at a time (plus the payment just
//! finished, kept until the envelope around it has been checked), so its memory does not grow
//! with the file. The field mapping is documented in `docs/formats/x12_820.md`.
//!
//! The parts: `tokenizer` (delimiters and segments), `elements` (values of single elements,
//! shared with NACHA and EDIFACT), `reader` (transaction sets into payments) and `writer`; the
//! entry points are here.

use crate::domain::Payment;
use crate::formats::{FormatError, Parsed};
use std::io::Read;

mod elements;
mod reader;
mod tokenizer;
mod writer;

pub(crate) use elements::{negate, parse_amount, parse_date, rmr_line};
use reader::Reader820;
pub(crate) use tokenizer::Elements;
use tokenizer::{Tokenizer, is_filler, scan_isa, trim_element};
pub use writer::write_820;

/// The name this module gives in `Payment::format`.
const FORMAT: &str = "x12_820";
/// The first read; the buffer grows (up to [`MAX_SEGMENT`]) only for a longer segment.
const INITIAL_BUFFER: usize = 64 * 1024;
/// A segment longer than this means the terminator is not what the ISA said, or the input is
/// not X12 at all; refusing it keeps memory bounded whatever the input.
const MAX_SEGMENT: usize = 1 << 20;
/// A padded ISA is 106 bytes; sloppy writers pad more, but not this much.
const ISA_SCAN: usize = 512;
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// How many bytes of a file that does not start with an ISA its error message shows.
const SHOWN_NOT_ISA: usize = 20;
/// The start of the warning given when a transaction has no TRN02 (NACHA looks for it).
pub(crate) const NO_TRN_WARNING: &str = "no TRN02 reassociation trace number";

/// Whether the first bytes of a file look like an X12 820 interchange.
pub fn looks_like(head: &[u8]) -> bool {
    let h = head.strip_prefix(BOM).unwrap_or(head);
    let skip = h.iter().take_while(|&&b| is_filler(b)).count();
    let h = h.get(skip..).unwrap_or_default();
    let Some(&sep) = h.get(3) else { return false };
    if !h.starts_with(b"ISA") || sep.is_ascii_alphanumeric() || sep.is_ascii_whitespace() {
        return false;
    }
    // An interchange may carry other transaction sets (810, 850); judge by what the head shows.
    let Ok(Some((_, d))) = scan_isa(h) else {
        return true;
    };
    for seg in h.split(|&b| b == d.segment) {
        let seg = seg.strip_prefix(BOM).unwrap_or(seg);
        let skip = seg.iter().take_while(|&&b| is_filler(b)).count();
        let mut elements = seg
            .get(skip..)
            .unwrap_or_default()
            .split(|&b| b == d.element);
        let (id, code) = (elements.next().unwrap_or_default(), elements.next());
        let code = code.map(trim_element).unwrap_or_default();
        match id {
            b"GS" if !code.is_empty() => return code == b"RA",
            b"ST" if !code.is_empty() => return code == b"820",
            _ => {}
        }
    }
    true
}

/// Reads a whole X12 820 file held in memory.
pub fn parse(bytes: &[u8], file: &str) -> Result<Parsed, FormatError> {
    let mut parsed = Parsed::default();
    parse_reader(bytes, file, &mut |r| match r {
        Ok(p) => parsed.payments.push(p),
        Err(e) => parsed.errors.push(e),
    })?;
    Ok(parsed)
}

/// Reads an X12 820 stream, handing each transaction set to `on_payment` as soon as its
/// envelope has been checked: `Ok` with the payment, or `Err` naming the segment and element
/// that made the transaction unreadable. Memory does not grow with the input. The `Err` return
/// is for faults of the whole input (not X12, an unreadable stream).
pub fn parse_reader<R: Read>(
    r: R,
    file: &str,
    on_payment: &mut dyn FnMut(Result<Payment, FormatError>),
) -> Result<(), FormatError> {
    let mut tokens = Tokenizer::new(r, file);
    let mut reader = Reader820::new(file, on_payment);
    let result = loop {
        match tokens.next_segment() {
            Ok(Some(seg)) => reader.segment(&seg),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    match result {
        Ok(()) => reader.finish(),
        // What was complete before the fault still counts; the transaction it cut does not.
        Err(_) => reader.flush(),
    }
    result
}

#[cfg(test)]
mod tests;
