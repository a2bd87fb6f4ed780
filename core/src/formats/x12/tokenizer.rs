//! The streaming tokenizer: the delimiters an ISA header declares, segments split into
//! elements without copying, and the buffer that holds one segment of input at a time.

use super::{BOM, INITIAL_BUFFER, ISA_SCAN, MAX_SEGMENT, SHOWN_NOT_ISA};
use crate::formats::{FormatError, Position};
use std::io::{self, Read};

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
pub(super) fn is_filler(b: u8) -> bool {
    b <= b' ' || b == 0x7F
}

pub(super) fn trim_element(mut b: &[u8]) -> &[u8] {
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
    pub(super) data: &'a [u8],
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
    pub(super) file: String,
    pub(super) buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    delims: Option<Delimiters>,
    pub(super) index: usize,
    pub(super) seg: (usize, usize),
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

    pub(super) fn error(&self, message: String) -> FormatError {
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

    pub(super) fn pending(&self) -> &[u8] {
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
pub(super) fn scan_isa(data: &[u8]) -> Result<Option<(usize, Delimiters)>, String> {
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
