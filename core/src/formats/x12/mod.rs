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

use crate::domain::{
    Adjustment, Currency, Direction, Payer, Payment, ReferenceKind, RemittanceLine,
};
use crate::formats::{FormatError, Parsed, Position};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::str::FromStr;

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

/// The delimiters of one interchange, as its ISA header declares them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Delimiters {
    pub(crate) element: u8,
    pub(crate) component: u8,
    pub(crate) segment: u8,
    /// ISA11 from version 00402 on; before that ISA11 is a standards identifier (`U`).
    pub(crate) repetition: Option<u8>,
}

/// Bytes that may surround a segment without being part of it: line breaks and indentation
/// after the terminator, and other control characters (NUL padding, a DOS end-of-file mark).
fn is_filler(b: u8) -> bool {
    b <= b' ' || b == 0x7F
}

fn trim_element(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// Access to the elements of one segment; element 0 is the segment id, as X12 numbers them.
pub(crate) trait Elements {
    /// Element `i`, trimmed of surrounding spaces; empty when absent.
    fn el(&self, i: usize) -> &[u8];
}

impl Elements for [&[u8]] {
    fn el(&self, i: usize) -> &[u8] {
        self.get(i).map(|e| trim_element(e)).unwrap_or_default()
    }
}

/// One segment, borrowed from the tokenizer's buffer until the next call.
pub(crate) struct Segment<'a> {
    data: &'a [u8],
    elems: &'a [(usize, usize)],
    /// Ordinal of the segment in the input, 1-based, counting every segment from the first ISA.
    pub(crate) index: usize,
}

impl Segment<'_> {
    pub(crate) fn id(&self) -> &[u8] {
        self.el(0)
    }

    /// Number of elements including the id.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.elems.len()
    }
}

impl Elements for Segment<'_> {
    fn el(&self, i: usize) -> &[u8] {
        self.elems
            .get(i)
            .and_then(|&(s, e)| self.data.get(s..e))
            .map(trim_element)
            .unwrap_or_default()
    }
}

/// Splits a byte stream into segments with the delimiters of each interchange's ISA header.
pub(crate) struct Tokenizer<R> {
    reader: R,
    file: String,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    delims: Option<Delimiters>,
    index: usize,
    seg: (usize, usize),
    elems: Vec<(usize, usize)>,
}

impl<R: Read> Tokenizer<R> {
    pub(crate) fn new(reader: R, file: &str) -> Self {
        Tokenizer {
            reader,
            file: file.to_string(),
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            eof: false,
            delims: None,
            index: 0,
            seg: (0, 0),
            elems: Vec::with_capacity(32),
        }
    }

    /// The delimiters of the current interchange, once its ISA has been read.
    #[cfg(test)]
    pub(crate) fn delimiters(&self) -> Option<Delimiters> {
        self.delims
    }

    /// The next segment, or `None` at the end of the input.
    pub(crate) fn next_segment(&mut self) -> Result<Option<Segment<'_>>, FormatError> {
        if !self.advance()? {
            return Ok(None);
        }
        let data = self.buf.get(self.seg.0..self.seg.1).unwrap_or_default();
        Ok(Some(Segment {
            data,
            elems: &self.elems,
            index: self.index,
        }))
    }

    fn error(&self, message: String) -> FormatError {
        let id = if self.index == 0 { "ISA" } else { "?" };
        let position = Position::Segment {
            index: self.index + 1,
            id: id.into(),
            element: None,
        };
        FormatError::new(&self.file, position, message)
    }

    /// Reads more input after what is buffered, moving the unread part to the front first.
    fn fill(&mut self) -> Result<(), FormatError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() > MAX_SEGMENT {
                return Err(self.error(format!(
                    "no segment terminator within {MAX_SEGMENT} bytes: the terminator the ISA \
                     declares is not used, or this is not X12"
                )));
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            let Some(space) = self.buf.get_mut(self.end..) else {
                return Ok(());
            };
            match self.reader.read(space) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(FormatError::new(&self.file, Position::File, e.to_string())),
            }
        }
    }

    fn pending(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Finds the next segment and records its range and element ranges; false at the end.
    fn advance(&mut self) -> Result<bool, FormatError> {
        loop {
            if let Some(found) = self.advance_one()? {
                return Ok(found);
            }
        }
    }

    /// One step of [`Self::advance`]; `None` when it met an empty segment and must go on.
    fn advance_one(&mut self) -> Result<Option<bool>, FormatError> {
        // Skip what lies between segments; a BOM may precede an ISA.
        loop {
            let skip = self
                .pending()
                .iter()
                .take_while(|&&b| self.filler(b))
                .count();
            self.start += skip;
            let rest = self.pending();
            if rest.starts_with(BOM) {
                self.start += BOM.len();
                continue;
            }
            // A segment that may be an ISA needs four bytes to tell; a BOM needs three.
            let short = rest.len() < 4 && (b"ISA".starts_with(rest) || BOM.starts_with(rest));
            if rest.is_empty() || (short && !self.eof) {
                if self.eof {
                    return Ok(Some(false));
                }
                self.fill()?;
                continue;
            }
            break;
        }
        let rest = self.pending();
        let is_isa = rest.starts_with(b"ISA")
            && rest
                .get(3)
                .is_some_and(|b| !b.is_ascii_alphanumeric() && !b.is_ascii_whitespace());
        if is_isa {
            return self.read_isa().map(|()| Some(true));
        }
        let Some(delims) = self.delims else {
            // The message shows the same bytes however the input arrives: read in pieces, fewer
            // than 20 may be buffered yet (a fuzzer-found difference, fuzz/regressions/x12/).
            while self.pending().len() < SHOWN_NOT_ISA && !self.eof {
                self.fill()?;
            }
            let shown: String = self
                .pending()
                .iter()
                .take(SHOWN_NOT_ISA)
                .map(|&b| b as char)
                .collect();
            return Err(self.error(format!(
                "not an X12 interchange: expected an ISA segment, found {shown:?}"
            )));
        };
        let mut scanned = 0;
        let seg_end = loop {
            let rest = self.pending();
            if let Some(p) = rest
                .get(scanned..)
                .and_then(|r| memchr::memchr(delims.segment, r))
            {
                break scanned + p;
            }
            scanned = rest.len();
            if self.eof {
                // The last segment may lack its terminator.
                break scanned;
            }
            self.fill()?;
        };
        let s = self.start;
        let mut e = s + seg_end;
        self.start = (e + 1).min(self.end);
        while e > s && self.buf.get(e - 1).is_some_and(|&b| self.filler(b)) {
            e -= 1;
        }
        if e == s {
            // Two terminators in a row: an empty segment, which carries nothing.
            return Ok(None);
        }
        self.set_segment(s, e, delims.element);
        Ok(Some(true))
    }

    /// Filler, unless the interchange uses that control character as a separator.
    fn filler(&self, b: u8) -> bool {
        is_filler(b)
            && self
                .delims
                .is_none_or(|d| b != d.element && b != d.component)
    }

    fn set_segment(&mut self, s: usize, e: usize, sep: u8) {
        self.index += 1;
        self.seg = (s, e);
        self.elems.clear();
        let data = self.buf.get(s..e).unwrap_or_default();
        let mut from = 0;
        for p in memchr::memchr_iter(sep, data) {
            self.elems.push((from, p));
            from = p + 1;
        }
        self.elems.push((from, data.len()));
    }

    /// Reads an ISA header, taking the interchange's delimiters from it.
    fn read_isa(&mut self) -> Result<(), FormatError> {
        loop {
            match scan_isa(self.pending()) {
                Ok(Some((len, delims))) => {
                    let s = self.start;
                    self.start = (s + len + 1).min(self.end);
                    self.delims = Some(delims);
                    self.set_segment(s, s + len, delims.element);
                    return Ok(());
                }
                // `scan_isa` asks for more only while the header can still complete within
                // its window, so filling until it answers cannot run away; it must not stop at
                // a fixed length, or a header ending near the window's edge would read whole
                // and fail in pieces.
                Ok(None) if !self.eof => self.fill()?,
                Ok(None) => {
                    return Err(self.isa_error(
                        "the ISA header is cut short: it needs 16 elements, a component \
                         separator and a segment terminator"
                            .into(),
                    ));
                }
                Err(m) => return Err(self.isa_error(m)),
            }
        }
    }

    fn isa_error(&self, message: String) -> FormatError {
        let position = Position::Segment {
            index: self.index + 1,
            id: "ISA".into(),
            element: None,
        };
        FormatError::new(&self.file, position, message)
    }
}

/// Finds the end of an ISA segment at the start of `data` and the delimiters it declares.
/// `Ok(None)` means more bytes are needed.
fn scan_isa(data: &[u8]) -> Result<Option<(usize, Delimiters)>, String> {
    let Some(&element) = data.get(3) else {
        return Ok(None);
    };
    let mut seps = 0;
    let mut isa11 = (0, 0);
    let mut isa12 = (0, 0);
    let mut at16 = None;
    for (i, &b) in data.iter().enumerate().skip(3).take(ISA_SCAN) {
        if b != element {
            continue;
        }
        seps += 1;
        match seps {
            11 => isa11.0 = i + 1,
            12 => (isa11.1, isa12.0) = (i, i + 1),
            13 => isa12.1 = i,
            16 => {
                at16 = Some(i);
                break;
            }
            _ => {}
        }
    }
    let Some(i) = at16 else {
        // Judged only once the whole window is there: with fewer bytes a later separator
        // could still be the 16th.
        return if data.len() >= 3 + ISA_SCAN {
            Err(format!(
                "the ISA header has {seps} elements within {ISA_SCAN} bytes, not 16"
            ))
        } else {
            Ok(None)
        };
    };
    let (Some(&component), Some(&segment)) = (data.get(i + 1), data.get(i + 2)) else {
        return Ok(None);
    };
    if component.is_ascii_alphanumeric() || component.is_ascii_whitespace() || component == element
    {
        return Err(format!(
            "ISA16 (component separator) is {:?}, which cannot be a delimiter",
            component as char
        ));
    }
    if segment.is_ascii_alphanumeric() || segment == element || segment == component {
        return Err(format!(
            "the segment terminator after ISA16 is {:?}, which cannot be a delimiter",
            segment as char
        ));
    }
    let version = data
        .get(isa12.0..isa12.1)
        .map(trim_element)
        .unwrap_or_default();
    let rep = data
        .get(isa11.0..isa11.1)
        .map(trim_element)
        .unwrap_or_default();
    let repetition = match rep {
        [r] if version >= b"00402".as_slice()
            && !r.is_ascii_alphanumeric()
            && ![element, component, segment].contains(r) =>
        {
            Some(*r)
        }
        _ => None,
    };
    Ok(Some((
        i + 2,
        Delimiters {
            element,
            component,
            segment,
            repetition,
        },
    )))
}

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

fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        // Senders outside UTF-8 are nearly always Latin-1, whose bytes are the first 256 chars.
        Err(_) => b.iter().map(|&c| c as char).collect(),
    }
}

fn opt_text(b: &[u8]) -> Option<String> {
    (!b.is_empty()).then(|| text(b))
}

fn shown(b: &[u8]) -> String {
    let t = text(b);
    if t.chars().count() > 40 {
        format!("{}...", t.chars().take(40).collect::<String>())
    } else {
        t
    }
}

/// Parses an X12 decimal (type R): optional sign, digits, at most one decimal point.
pub(crate) fn parse_amount(b: &[u8]) -> Result<Decimal, String> {
    let digits = b
        .strip_prefix(b"-")
        .or_else(|| b.strip_prefix(b"+"))
        .unwrap_or(b);
    let points = digits.iter().filter(|&&c| c == b'.').count();
    let ok = !digits.is_empty()
        && points <= 1
        && digits.iter().any(u8::is_ascii_digit)
        && digits.iter().all(|&c| c.is_ascii_digit() || c == b'.');
    if !ok {
        return Err(format!("is not an amount: {:?}", shown(b)));
    }
    let s = std::str::from_utf8(b).map_err(|_| format!("is not an amount: {:?}", shown(b)))?;
    Decimal::from_str(s.strip_prefix('+').unwrap_or(s))
        .map_err(|e| format!("is not a usable amount: {s:?} ({e})"))
}

/// Parses CCYYMMDD, or YYMMDD as versions before 004010 wrote it (and some 004010 files still
/// do); two-digit years below 50 are taken as 20xx.
pub(crate) fn parse_date(b: &[u8]) -> Option<NaiveDate> {
    if !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b.get(r)?
            .iter()
            .try_fold(0u32, |n, &d| Some(n * 10 + u32::from(d - b'0')))
    };
    let (year, rest) = match b.len() {
        8 => (i32::try_from(num(0..4)?).ok()?, 4),
        6 => {
            let yy = i32::try_from(num(0..2)?).ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
        }
        _ => return None,
    };
    NaiveDate::from_ymd_opt(year, num(rest..rest + 2)?, num(rest + 2..rest + 4)?)
}

/// What an X12 reference qualifier (RMR01, ADX03) says the reference is.
pub(crate) fn reference_kind(qualifier: &[u8]) -> ReferenceKind {
    match qualifier {
        // IV seller's invoice, IK invoice number, OI original invoice, AP accounts-receivable
        // open item (an invoice in practice).
        b"IV" | b"IK" | b"OI" | b"AP" => ReferenceKind::Invoice,
        b"CM" | b"CR" => ReferenceKind::CreditNote,
        b"PO" => ReferenceKind::PurchaseOrder,
        _ => ReferenceKind::Unknown,
    }
}

fn qualifier_for(kind: ReferenceKind) -> &'static str {
    match kind {
        ReferenceKind::Invoice => "IV",
        ReferenceKind::CreditNote => "CM",
        ReferenceKind::PurchaseOrder => "PO",
        ReferenceKind::Unknown => "ZZ",
    }
}

/// Maps an RMR segment to a remittance line; the error names the element.
pub(crate) fn rmr_line<E: Elements + ?Sized>(seg: &E) -> Result<RemittanceLine, (usize, String)> {
    let amount = |i: usize| -> Result<Option<Decimal>, (usize, String)> {
        let b = seg.el(i);
        if b.is_empty() {
            return Ok(None);
        }
        parse_amount(b)
            .map(Some)
            .map_err(|m| (i, format!("RMR{i:02} {m}")))
    };
    let mut adjustments = Vec::new();
    // RMR07/RMR08 (version 004020 on): an adjustment reason and amount on the line itself.
    if let Some(a) = amount(8)? {
        if !a.is_zero() {
            adjustments.push(Adjustment {
                amount: a,
                reason_code: opt_text(seg.el(7)),
                text: None,
            });
        }
    }
    Ok(RemittanceLine {
        reference: opt_text(seg.el(2)),
        reference_kind: reference_kind(seg.el(1)),
        amount_paid: amount(4)?,
        invoice_amount: amount(5)?,
        discount: amount(6)?,
        adjustments,
    })
}

/// Whether a count element (SE01, GE01, IEA01) states `actual`; leading zeros are allowed.
fn counts(declared: &[u8], actual: usize) -> bool {
    std::str::from_utf8(declared)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        == Some(actual)
}

pub(crate) fn negate(d: Decimal) -> Decimal {
    if d.is_zero() { Decimal::ZERO } else { -d }
}

/// Which loop the last segment opened, for the segments that belong to it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ctx {
    Header,
    Entity,
    Rmr(usize),
    RmrAdx { line: usize, adj: usize },
    EntityAdx { adj: Option<(usize, usize)> },
}

struct Bpr {
    amount: Decimal,
    direction: Direction,
    account: Option<String>,
    date: Option<NaiveDate>,
}

/// One transaction set being read.
struct Txn {
    st_index: usize,
    control: String,
    segments: usize,
    error: Option<FormatError>,
    bpr: Option<Bpr>,
    trn: Option<String>,
    currency: Option<Currency>,
    payer_name: Option<String>,
    header_date: Option<NaiveDate>,
    in_entity: bool,
    ctx: Ctx,
    lines: Vec<RemittanceLine>,
    free_text: Vec<String>,
    warnings: Vec<String>,
    remitted: Decimal,
    has_remitted: bool,
}

fn seg_error(
    file: &str,
    seg: &Segment<'_>,
    element: Option<usize>,
    message: String,
) -> FormatError {
    let id = text(seg.id());
    FormatError::new(
        file,
        Position::Segment {
            index: seg.index,
            id,
            element,
        },
        message,
    )
}

impl Txn {
    fn new(seg: &Segment<'_>, file: &str) -> Txn {
        let control = text(seg.el(2));
        let code = seg.el(1);
        let error = (code != b"820").then(|| {
            seg_error(
                file,
                seg,
                Some(1),
                format!(
                    "transaction {control}: ST01 is {:?}; only 820 transaction sets are read",
                    shown(code)
                ),
            )
        });
        Txn {
            st_index: seg.index,
            control,
            segments: 1,
            error,
            bpr: None,
            trn: None,
            currency: None,
            payer_name: None,
            header_date: None,
            in_entity: false,
            ctx: Ctx::Header,
            lines: Vec::new(),
            free_text: Vec::new(),
            warnings: Vec::new(),
            remitted: Decimal::ZERO,
            has_remitted: false,
        }
    }

    fn segment(&mut self, seg: &Segment<'_>, file: &str) {
        self.segments += 1;
        if self.error.is_some() {
            return;
        }
        if let Err((element, message)) = self.map(seg) {
            let message = format!("transaction {}: {message}", self.control);
            self.error = Some(seg_error(file, seg, element, message));
        }
    }

    fn map(&mut self, seg: &Segment<'_>) -> Result<(), (Option<usize>, String)> {
        let id = seg.id();
        if !(2..=3).contains(&id.len()) || !id.iter().all(u8::is_ascii_alphanumeric) {
            return Err((None, format!("{:?} is not a segment id", shown(id))));
        }
        let amount = |i: usize| -> Result<Decimal, (Option<usize>, String)> {
            let b = seg.el(i);
            if b.is_empty() {
                return Err((Some(i), format!("{}{i:02} (amount) is missing", text(id))));
            }
            parse_amount(b).map_err(|m| (Some(i), format!("{}{i:02} {m}", text(id))))
        };
        match id {
            b"BPR" => {
                if self.bpr.is_some() {
                    return Err((None, "a second BPR segment in one transaction".into()));
                }
                match seg.el(1) {
                    b"H" => self
                        .warnings
                        .push("BPR01 H: notification only, no funds move".into()),
                    b"P" => self
                        .warnings
                        .push("BPR01 P: prenotification, no funds move".into()),
                    _ if seg.el(4) == b"NON" => self
                        .warnings
                        .push("BPR04 NON: non-payment, no funds move".into()),
                    _ => {}
                }
                let amount = amount(2)?;
                let direction = match seg.el(3) {
                    b"C" => Direction::Credit,
                    b"D" => Direction::Debit,
                    b"" => {
                        self.warnings
                            .push("BPR03 (credit/debit flag) is missing: taken as credit".into());
                        Direction::Credit
                    }
                    other => {
                        return Err((
                            Some(3),
                            format!("BPR03 must be C or D, found {:?}", shown(other)),
                        ));
                    }
                };
                let account = match (seg.el(7), seg.el(9)) {
                    (_, b"") => None,
                    (b"", acct) => Some(text(acct)),
                    (dfi, acct) => Some(format!("{}:{}", text(dfi), text(acct))),
                };
                let date = match seg.el(16) {
                    b"" => {
                        // Some senders drop an empty element in the middle (the Wikipedia
                        // example lacks BPR11), which moves the date to BPR15.
                        let shifted = (seg.el(15).len() >= 6).then(|| parse_date(seg.el(15)));
                        if let Some(Some(d)) = shifted {
                            self.warnings.push(format!(
                                "BPR16 (date) is missing and BPR15 holds a date, {d}: taken as \
                                 the payment date, assuming an element was left out"
                            ));
                        }
                        shifted.flatten()
                    }
                    d => Some(parse_date(d).ok_or_else(|| {
                        (
                            Some(16),
                            format!("BPR16 is not a date (CCYYMMDD): {:?}", shown(d)),
                        )
                    })?),
                };
                self.bpr = Some(Bpr {
                    amount,
                    direction,
                    account,
                    date,
                });
            }
            b"TRN" if self.trn.is_none() => self.trn = opt_text(seg.el(2)),
            b"CUR" if self.currency.is_none() => {
                let c = text(seg.el(2));
                let c = Currency::from_str(&c).map_err(|m| (Some(2), format!("CUR02: {m}")))?;
                self.currency = Some(c);
            }
            b"REF" => {
                let parts: Vec<String> = (1..=3)
                    .map(|i| seg.el(i))
                    .filter(|b| !b.is_empty())
                    .map(text)
                    .collect();
                if parts.len() > 1 {
                    self.free_text.push(parts.join(" "));
                }
            }
            b"DTM" if !self.in_entity && self.header_date.is_none() => {
                self.header_date = parse_date(seg.el(2));
            }
            b"N1" => {
                self.ctx = Ctx::Header;
                if seg.el(1) == b"PR" && self.payer_name.is_none() {
                    self.payer_name = opt_text(seg.el(2));
                }
            }
            b"ENT" => {
                self.in_entity = true;
                self.ctx = Ctx::Entity;
            }
            b"RMR" => {
                let line = rmr_line(seg).map_err(|(i, m)| (Some(i), m))?;
                if let Some(paid) = line.amount_paid {
                    self.remitted += paid;
                    self.has_remitted = true;
                }
                self.lines.push(line);
                self.ctx = Ctx::Rmr(self.lines.len() - 1);
            }
            b"ADX" => {
                let value = amount(1)?;
                let reason_code = opt_text(seg.el(2));
                match self.ctx {
                    Ctx::Rmr(line) | Ctx::RmrAdx { line, .. } => {
                        let words: Vec<String> = [seg.el(3), seg.el(4)]
                            .into_iter()
                            .filter(|b| !b.is_empty())
                            .map(text)
                            .collect();
                        let text = (!words.is_empty()).then(|| words.join(" "));
                        let adj = Adjustment {
                            amount: negate(value),
                            reason_code,
                            text,
                        };
                        let Some(l) = self.lines.get_mut(line) else {
                            return Ok(());
                        };
                        l.adjustments.push(adj);
                        self.ctx = Ctx::RmrAdx {
                            line,
                            adj: l.adjustments.len() - 1,
                        };
                    }
                    _ => {
                        // An adjustment outside any RMR loop moves the payment by itself.
                        self.remitted += value;
                        self.has_remitted = true;
                        let reference = opt_text(seg.el(4));
                        let kind = reference_kind(seg.el(3));
                        if kind == ReferenceKind::CreditNote && reference.is_some() {
                            self.lines.push(RemittanceLine {
                                reference,
                                reference_kind: kind,
                                amount_paid: Some(value),
                                ..RemittanceLine::default()
                            });
                            self.ctx = Ctx::EntityAdx { adj: None };
                        } else {
                            self.lines.push(RemittanceLine {
                                reference,
                                reference_kind: kind,
                                adjustments: vec![Adjustment {
                                    amount: negate(value),
                                    reason_code,
                                    text: None,
                                }],
                                ..RemittanceLine::default()
                            });
                            self.ctx = Ctx::EntityAdx {
                                adj: Some((self.lines.len() - 1, 0)),
                            };
                        }
                    }
                }
            }
            b"NTE" => {
                let Some(note) = opt_text(seg.el(2)) else {
                    return Ok(());
                };
                let target = match self.ctx {
                    Ctx::RmrAdx { line, adj }
                    | Ctx::EntityAdx {
                        adj: Some((line, adj)),
                    } => self
                        .lines
                        .get_mut(line)
                        .and_then(|l| l.adjustments.get_mut(adj)),
                    _ => None,
                };
                match target {
                    Some(a) => match &mut a.text {
                        Some(t) => {
                            t.push(' ');
                            t.push_str(&note);
                        }
                        None => a.text = Some(note),
                    },
                    None => self.free_text.push(note),
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Ends the transaction at its SE (or where it was cut off) and builds the payment.
    fn finish(
        mut self,
        se: Option<&Segment<'_>>,
        file: &str,
        envelope: &str,
    ) -> Result<Payment, FormatError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let Some(bpr) = self.bpr else {
            let position = Position::Segment {
                index: self.st_index,
                id: "ST".into(),
                element: None,
            };
            return Err(FormatError::new(
                file,
                position,
                format!(
                    "transaction {} has no BPR segment, so no payment amount",
                    self.control
                ),
            ));
        };
        match se {
            Some(se) => {
                let declared = se.el(1);
                if !counts(declared, self.segments) {
                    self.warnings.push(format!(
                        "SE01 says {} segments, the transaction has {}",
                        shown(declared),
                        self.segments
                    ));
                }
                if se.el(2) != self.control.as_bytes() {
                    self.warnings.push(format!(
                        "SE02 control number {:?} differs from ST02 {:?}",
                        shown(se.el(2)),
                        self.control
                    ));
                }
            }
            None => self.warnings.push(format!(
                "transaction {} ends without an SE segment: the file may be cut short",
                self.control
            )),
        }
        if self.has_remitted && self.remitted != bpr.amount {
            self.warnings.push(format!(
                "BPR02 amount {} does not equal the remittance total {} (RMR04 plus ADX01 \
                 outside RMR loops); difference {}",
                bpr.amount,
                self.remitted,
                bpr.amount - self.remitted
            ));
        }
        let payment_id = match self.trn {
            Some(id) => id,
            None => {
                let id = format!("{envelope}/{}", self.control);
                self.warnings.push(format!(
                    "{NO_TRN_WARNING}: payment_id {id:?} made of ISA06/ISA13/ST02"
                ));
                id
            }
        };
        Ok(Payment {
            payment_id,
            format: FORMAT.to_string(),
            direction: bpr.direction,
            payment_date: bpr.date.or(self.header_date),
            amount: bpr.amount,
            currency: self.currency.unwrap_or(Currency::USD),
            payer: Payer {
                name: self.payer_name,
                account: bpr.account,
            },
            lines: self.lines,
            free_text: self.free_text,
            warnings: self.warnings,
            returned: None,
        })
    }
}

struct Interchange {
    /// ISA06/ISA13, which with ST02 name a transaction that has no TRN.
    name: String,
    control: String,
    groups: usize,
}

struct Group {
    control: String,
    transactions: usize,
}

/// Follows the envelope (ISA/GS/ST ... SE/GE/IEA) and hands out finished payments.
struct Reader820<'a> {
    file: &'a str,
    on_payment: &'a mut dyn FnMut(Result<Payment, FormatError>),
    interchange: Option<Interchange>,
    group: Option<Group>,
    txn: Option<Txn>,
    /// The last payment, held until the envelope after it has been checked, so that a control
    /// count that does not agree can be told on a payment without holding more than one.
    pending: Option<Payment>,
    stray_reported: bool,
}

impl<'a> Reader820<'a> {
    fn new(file: &'a str, on_payment: &'a mut dyn FnMut(Result<Payment, FormatError>)) -> Self {
        Reader820 {
            file,
            on_payment,
            interchange: None,
            group: None,
            txn: None,
            pending: None,
            stray_reported: false,
        }
    }

    fn flush(&mut self) {
        if let Some(p) = self.pending.take() {
            (self.on_payment)(Ok(p));
        }
    }

    fn warn_pending(&mut self, warning: String) {
        if let Some(p) = &mut self.pending {
            p.warnings.push(warning);
        }
    }

    fn close_txn(&mut self, se: Option<&Segment<'_>>) {
        let Some(txn) = self.txn.take() else { return };
        let envelope = self
            .interchange
            .as_ref()
            .map(|i| i.name.as_str())
            .unwrap_or("");
        match txn.finish(se, self.file, envelope) {
            Ok(p) => {
                self.flush();
                self.pending = Some(p);
            }
            Err(e) => (self.on_payment)(Err(e)),
        }
    }

    fn close_group(&mut self, ge: Option<&Segment<'_>>) {
        let Some(group) = self.group.take() else {
            return;
        };
        match ge {
            Some(ge) => {
                if !counts(ge.el(1), group.transactions) {
                    self.warn_pending(format!(
                        "GE01 of group {} says {} transactions, the group has {}",
                        group.control,
                        shown(ge.el(1)),
                        group.transactions
                    ));
                }
                if ge.el(2) != group.control.as_bytes() {
                    self.warn_pending(format!(
                        "GE02 control number {:?} differs from GS06 {:?}",
                        shown(ge.el(2)),
                        group.control
                    ));
                }
            }
            None => self.warn_pending(format!("group {} has no GE segment", group.control)),
        }
    }

    fn close_interchange(&mut self, iea: Option<&Segment<'_>>) {
        self.close_txn(None);
        self.close_group(None);
        let Some(ic) = self.interchange.take() else {
            return;
        };
        match iea {
            Some(iea) => {
                if !counts(iea.el(1), ic.groups) {
                    self.warn_pending(format!(
                        "IEA01 says {} groups, the interchange has {}",
                        shown(iea.el(1)),
                        ic.groups
                    ));
                }
                if iea.el(2) != ic.control.as_bytes() {
                    self.warn_pending(format!(
                        "IEA02 control number {:?} differs from ISA13 {:?}",
                        shown(iea.el(2)),
                        ic.control
                    ));
                }
            }
            None => self.warn_pending(format!("interchange {} has no IEA segment", ic.control)),
        }
        self.flush();
    }

    fn segment(&mut self, seg: &Segment<'_>) {
        match seg.id() {
            b"ISA" => {
                if self.interchange.is_some() {
                    self.close_interchange(None);
                }
                let sender = text(seg.el(6));
                let control = text(seg.el(13));
                let name = format!("{sender}/{control}");
                self.interchange = Some(Interchange {
                    name,
                    control,
                    groups: 0,
                });
                self.stray_reported = false;
            }
            b"IEA" => self.close_interchange(Some(seg)),
            b"GS" => {
                self.close_txn(None);
                if self.group.is_some() {
                    self.close_group(None);
                }
                if let Some(ic) = &mut self.interchange {
                    ic.groups += 1;
                }
                self.group = Some(Group {
                    control: text(seg.el(6)),
                    transactions: 0,
                });
            }
            b"GE" => {
                self.close_txn(None);
                self.close_group(Some(seg));
            }
            b"ST" => {
                self.close_txn(None);
                self.flush();
                if let Some(g) = &mut self.group {
                    g.transactions += 1;
                }
                self.txn = Some(Txn::new(seg, self.file));
            }
            b"SE" => {
                if let Some(t) = &mut self.txn {
                    t.segments += 1;
                }
                self.close_txn(Some(seg));
            }
            _ => match &mut self.txn {
                Some(t) => t.segment(seg, self.file),
                None if self.interchange.is_none() && !self.stray_reported => {
                    self.stray_reported = true;
                    let e = seg_error(
                        self.file,
                        seg,
                        None,
                        "segment outside any interchange (after its IEA); ignored up to the next \
                         ISA"
                        .into(),
                    );
                    (self.on_payment)(Err(e));
                }
                // Acknowledgements (TA1) and the like between envelopes carry no payment.
                None => {}
            },
        }
    }

    fn finish(&mut self) {
        if self.interchange.is_some() {
            self.close_interchange(None);
        } else {
            self.close_txn(None);
            self.close_group(None);
        }
        self.flush();
    }
}

/// Writes payments as one X12 005010 820 interchange, one ST/SE transaction set per payment.
///
/// What 820 carries comes back unchanged through [`parse`]: payment id (TRN02), direction,
/// date, amount, currency, payer name (N1*PR) and account (BPR07/BPR09 from `routing:account`),
/// the lines (RMR with their ADX and NTE) and free text (NTE). X12 forbids a delimiter inside a
/// value, so the delimiters are chosen per file among characters no value uses (`*` `:` `~`
/// `^` when the text allows, else `|` `>` `'` `{` and so on, then control characters); only a
/// value that uses every candidate has the offending characters replaced by spaces, as line
/// breaks always are.
pub fn write_820(payments: &[Payment], mut w: impl Write) -> io::Result<()> {
    let d = WriteDelimiters::for_payments(payments);
    let date = payments
        .iter()
        .find_map(|p| p.payment_date)
        .or_else(|| NaiveDate::from_ymd_opt(2000, 1, 1))
        .unwrap_or_default();
    let e = d.element;
    writeln!(
        w,
        "ISA{e}00{e}{:10}{e}00{e}{:10}{e}ZZ{e}{:<15}{e}ZZ{e}{:<15}{e}{}{e}0000{e}{}{e}00501{e}\
         000000001{e}0{e}P{e}{}{}",
        "",
        "",
        "CASHMATCH",
        "CASHMATCH",
        date.format("%y%m%d"),
        d.repetition,
        d.component,
        d.segment
    )?;
    let mut envelope = SegmentWriter {
        w: &mut w,
        count: 0,
        d,
    };
    let gs_date = date.format("%Y%m%d").to_string();
    envelope.seg(&[
        "GS",
        "RA",
        "CASHMATCH",
        "CASHMATCH",
        &gs_date,
        "0000",
        "1",
        "X",
        "005010",
    ])?;
    for (i, p) in payments.iter().enumerate() {
        let control = format!("{:04}", i + 1);
        let mut s = SegmentWriter {
            w: &mut w,
            count: 0,
            d,
        };
        s.seg(&["ST", "820", &control])?;
        let (dfi_q, dfi, acct_q, acct) = match p.payer.account.as_deref() {
            Some(a) => match a.split_once(':') {
                Some((dfi, acct)) => ("01", dfi, "DA", acct),
                None => ("", "", "DA", a),
            },
            None => ("", "", "", ""),
        };
        let flag = match p.direction {
            Direction::Credit => "C",
            Direction::Debit => "D",
        };
        let date = p
            .payment_date
            .map(|d| d.format("%Y%m%d").to_string())
            .unwrap_or_default();
        let amount = p.amount.to_string();
        s.seg(&[
            "BPR", "C", &amount, flag, "ACH", "CTX", dfi_q, dfi, acct_q, acct, "", "", "", "", "",
            "", &date,
        ])?;
        for note in &p.free_text {
            s.seg(&["NTE", "ZZZ", note])?;
        }
        s.seg(&["TRN", "1", &p.payment_id])?;
        s.seg(&["CUR", "PR", p.currency.as_str()])?;
        if let Some(name) = &p.payer.name {
            s.seg(&["N1", "PR", name])?;
        }
        if !p.lines.is_empty() {
            s.seg(&["ENT", "1"])?;
        }
        let money = |d: Option<Decimal>| d.map(|d| d.to_string()).unwrap_or_default();
        for line in &p.lines {
            let reference = line.reference.as_deref().unwrap_or("");
            let qualifier = if reference.is_empty() {
                ""
            } else {
                qualifier_for(line.reference_kind)
            };
            s.seg(&[
                "RMR",
                qualifier,
                reference,
                "",
                &money(line.amount_paid),
                &money(line.invoice_amount),
                &money(line.discount),
            ])?;
            for adj in &line.adjustments {
                let value = negate(adj.amount).to_string();
                s.seg(&["ADX", &value, adj.reason_code.as_deref().unwrap_or("")])?;
                if let Some(t) = &adj.text {
                    s.seg(&["NTE", "ZZZ", t])?;
                }
            }
        }
        let count = (s.count + 1).to_string();
        s.seg(&["SE", &count, &control])?;
    }
    let mut envelope = SegmentWriter {
        w: &mut w,
        count: 0,
        d,
    };
    envelope.seg(&["GE", &payments.len().to_string(), "1"])?;
    envelope.seg(&["IEA", "1", "000000001"])?;
    Ok(())
}

/// The delimiters `write_820` uses for one file.
#[derive(Clone, Copy, Debug, PartialEq)]
struct WriteDelimiters {
    element: char,
    component: char,
    segment: char,
    repetition: char,
}

impl WriteDelimiters {
    /// The first candidate of each kind that no value of the payments uses. The candidates end
    /// in control characters (information separators), which text practically never holds.
    fn for_payments(payments: &[Payment]) -> Self {
        let mut used: HashSet<char> = HashSet::new();
        let mut note = |s: &str| used.extend(s.chars().filter(|c| !c.is_alphanumeric()));
        for p in payments {
            let lines = p.lines.iter();
            let line_texts = lines.flat_map(|l| {
                let adjustments = l.adjustments.iter();
                let adjustment_texts = adjustments.flat_map(|a| [&a.reason_code, &a.text]);
                std::iter::once(&l.reference).chain(adjustment_texts)
            });
            let texts = [&p.payer.name, &p.payer.account]
                .into_iter()
                .chain(line_texts);
            note(&p.payment_id);
            p.free_text.iter().for_each(|t| note(t));
            texts.flatten().for_each(|t| note(t));
        }
        let mut taken: Vec<char> = Vec::new();
        let mut pick = |candidates: &[char]| {
            let c = candidates
                .iter()
                .copied()
                .find(|c| !used.contains(c) && !taken.contains(c))
                .or_else(|| candidates.iter().copied().find(|c| !taken.contains(c)))
                .unwrap_or('\u{1D}');
            taken.push(c);
            c
        };
        WriteDelimiters {
            element: pick(&['*', '|', '!', '\u{1D}']),
            component: pick(&[':', '>', '\\', '\u{1F}']),
            segment: pick(&['~', '\'', '\u{1C}']),
            repetition: pick(&['^', '{', '}', '\u{1E}']),
        }
    }

    fn is_delimiter(&self, c: char) -> bool {
        c == self.element || c == self.component || c == self.segment || c == self.repetition
    }
}

struct SegmentWriter<'w, W: Write> {
    w: &'w mut W,
    count: usize,
    d: WriteDelimiters,
}

impl<W: Write> SegmentWriter<'_, W> {
    fn seg(&mut self, elements: &[&str]) -> io::Result<()> {
        let clean = |e: &str| -> String {
            e.chars()
                .map(|c| {
                    if self.d.is_delimiter(c) || matches!(c, '\r' | '\n') {
                        ' '
                    } else {
                        c
                    }
                })
                .collect::<String>()
                .trim()
                .to_string()
        };
        let mut parts: Vec<String> = elements.iter().map(|e| clean(e)).collect();
        // X12 drops trailing empty elements rather than writing their separators.
        while parts.last().is_some_and(String::is_empty) {
            parts.pop();
        }
        self.count += 1;
        let mut sep = [0u8; 4];
        let sep: &str = self.d.element.encode_utf8(&mut sep);
        writeln!(self.w, "{}{}", parts.join(sep), self.d.segment)
    }
}

#[cfg(test)]
mod tests;
