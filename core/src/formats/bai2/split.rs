//! Splitting the byte stream into logical records, under the rules of the module doc: `/` or
//! nothing at the end, several records on a line, records wrapped onto the next.

use super::{MAX_LOOKAHEAD_BLANKS, MAX_RECORD_BYTES};
use crate::formats::common::decode;
use std::io::{self, BufRead};

/// One logical BAI2 record: its code, the physical line it starts on, and its body after the
/// code and comma, without the terminating `/`; a wrapped record's lines are joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RawRecord {
    pub(crate) code: u8,
    pub(crate) line: usize,
    pub(crate) body: String,
}

/// What the splitter found at a record position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Split {
    Record(RawRecord),
    /// A line that does not start with a record code; the splitter skipped to its end.
    Junk {
        line: usize,
        text: String,
    },
}

/// A fault that stops the splitter: an I/O error or a record too long to be BAI2.
#[derive(Debug)]
pub(super) struct SplitFault {
    pub(crate) line: usize,
    pub(crate) message: String,
}

/// The record codes BAI2 defines. Only these start a record in the middle of a line or end an
/// unterminated record at a line start, so stray digits in text do not split it.
pub(super) fn is_known_code(code: u8) -> bool {
    matches!(code, 1 | 2 | 3 | 16 | 49 | 88 | 98 | 99)
}

/// Splits a BAI2 byte stream into [`RawRecord`]s, reading through a small look-ahead window.
///
/// The rules, from what banks actually send:
/// - a record starts with two digits and a comma, after any blanks;
/// - in `01`, `02`, `03`, `49`, `98` and `99` records, whose fields cannot contain it, `/` ends
///   the record;
/// - in `16` and `88` records, whose last field is free text, `/` ends the record only when the
///   rest of the line is blank or the next record follows (`.../ 16,...`); `22/03/66` stays text;
/// - at a line end an unterminated record ends if the next line starts a record, is blank or
///   the input ends; otherwise the next line continues it (a wrapped record), joined with a
///   space in text records.
pub(super) struct Splitter<R> {
    input: Lookahead<R>,
    line: usize,
    body: Vec<u8>,
}

impl<R: BufRead> Splitter<R> {
    pub(crate) fn new(r: R) -> Self {
        Splitter {
            input: Lookahead::new(r),
            line: 1,
            body: Vec::new(),
        }
    }

    pub(super) fn peek(&mut self, k: usize) -> Result<Option<u8>, SplitFault> {
        let line = self.line;
        self.input.peek(k).map_err(|e| SplitFault {
            line,
            message: format!("read error: {e}"),
        })
    }

    /// Consumes one line end (`\n`, `\r\n` or a lone `\r`) and counts it.
    pub(super) fn eat_line_end(&mut self) -> Result<(), SplitFault> {
        if self.peek(0)? == Some(b'\r') {
            self.input.bump(1);
            if self.peek(0)? == Some(b'\n') {
                self.input.bump(1);
            }
        } else {
            self.input.bump(1);
        }
        self.line += 1;
        Ok(())
    }

    /// Whether a record (known code and a comma) starts `k` bytes ahead, after blanks.
    pub(super) fn record_starts_at(&mut self, mut k: usize) -> Result<Option<bool>, SplitFault> {
        let mut blanks = 0;
        while matches!(self.peek(k)?, Some(b' ' | b'\t')) {
            k += 1;
            blanks += 1;
            if blanks > MAX_LOOKAHEAD_BLANKS {
                return Ok(Some(false));
            }
        }
        match self.peek(k)? {
            None | Some(b'\r' | b'\n') => Ok(None),
            Some(d0) => {
                let (d1, comma) = (self.peek(k + 1)?, self.peek(k + 2)?);
                Ok(Some(match (d1, comma) {
                    (Some(d1), Some(b',')) if d0.is_ascii_digit() && d1.is_ascii_digit() => {
                        is_known_code((d0 - b'0') * 10 + (d1 - b'0'))
                    }
                    _ => false,
                }))
            }
        }
    }

    /// The next record, junk line, or `None` at the end of input.
    pub(crate) fn next_record(&mut self) -> Result<Option<Split>, SplitFault> {
        // Blanks, blank lines, a byte-order mark, NULs and DOS end-of-file marks between records.
        loop {
            match self.peek(0)? {
                None => return Ok(None),
                Some(b'\r' | b'\n') => self.eat_line_end()?,
                Some(b' ' | b'\t' | 0 | 0x1A | 0x0C) => self.input.bump(1),
                Some(0xEF) if self.peek(1)? == Some(0xBB) && self.peek(2)? == Some(0xBF) => {
                    self.input.bump(3)
                }
                Some(_) => break,
            }
        }
        let line = self.line;
        let (d0, d1, comma) = (self.peek(0)?, self.peek(1)?, self.peek(2)?);
        let code = match (d0, d1, comma) {
            (Some(a), Some(b), Some(b',')) if a.is_ascii_digit() && b.is_ascii_digit() => {
                (a - b'0') * 10 + (b - b'0')
            }
            _ => return self.junk_line(line).map(Some),
        };
        self.input.bump(3);
        let text_record = code == 16 || code == 88;
        self.body.clear();
        loop {
            match self.peek(0)? {
                None => break,
                Some(b'/') => {
                    if !text_record {
                        self.input.bump(1);
                        break;
                    }
                    match self.record_starts_at(1)? {
                        None | Some(true) => {
                            self.input.bump(1);
                            break;
                        }
                        Some(false) => {
                            self.body.push(b'/');
                            self.input.bump(1);
                        }
                    }
                }
                Some(b'\r' | b'\n') => {
                    self.eat_line_end()?;
                    match self.record_starts_at(0)? {
                        None | Some(true) => break,
                        Some(false) => {
                            if text_record {
                                self.body.push(b' ');
                            }
                        }
                    }
                }
                Some(b) => {
                    self.body.push(b);
                    self.input.bump(1);
                    if self.body.len() > MAX_RECORD_BYTES {
                        return Err(SplitFault {
                            line,
                            message: format!(
                                "record {code:02} is longer than {MAX_RECORD_BYTES} bytes; \
                                 this is not a BAI2 file"
                            ),
                        });
                    }
                }
            }
        }
        Ok(Some(Split::Record(RawRecord {
            code,
            line,
            body: decode(&self.body),
        })))
    }

    /// Skips to the end of a line that does not start a record and returns it as junk.
    pub(super) fn junk_line(&mut self, line: usize) -> Result<Split, SplitFault> {
        let mut text = Vec::new();
        while let Some(b) = self.peek(0)? {
            if b == b'\r' || b == b'\n' {
                break;
            }
            if text.len() < 200 {
                text.push(b);
            }
            self.input.bump(1);
        }
        Ok(Split::Junk {
            line,
            text: decode(&text),
        })
    }
}

/// A byte reader with a look-ahead of a few bytes over any [`BufRead`], keeping only the
/// unread part of the last chunks.
pub(super) struct Lookahead<R> {
    r: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: BufRead> Lookahead<R> {
    pub(super) fn new(r: R) -> Self {
        Lookahead {
            r,
            buf: Vec::new(),
            pos: 0,
            eof: false,
        }
    }

    pub(super) fn peek(&mut self, k: usize) -> io::Result<Option<u8>> {
        while self.pos + k >= self.buf.len() && !self.eof {
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            let chunk = match self.r.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                self.eof = true;
                break;
            }
            let n = chunk.len();
            self.buf.extend_from_slice(chunk);
            self.r.consume(n);
        }
        Ok(self.buf.get(self.pos + k).copied())
    }

    pub(super) fn bump(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }
}
