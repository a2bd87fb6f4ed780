//! Records: the CSV lexer over a buffered reader, quoted fields with line breaks, a record's
//! cells as byte ranges of one buffer, and the longest record the reader accepts.

use super::header::cell_text;
use std::borrow::Cow;
use std::io::BufRead;

/// The longest record (a quoted field may hold line breaks) before the file is refused: an
/// unbalanced quote would otherwise swallow the rest of the file into one field.
pub(super) const MAX_RECORD_BYTES: usize = 1 << 20;

/// One CSV record and the line (1-based) it starts on.
#[derive(Clone, Default)]
pub(super) struct Record {
    pub(super) line: usize,
    /// Every field's bytes, one after the other; `ends` says where each stops.
    pub(super) bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Record {
    pub(super) fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = match i.checked_sub(1) {
            Some(p) => *self.ends.get(p)?,
            None => 0,
        };
        self.bytes.get(start..end)
    }

    pub(super) fn fields(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.ends.len()).filter_map(|i| self.get(i))
    }

    /// The fields as text (see [`cell_text`]).
    pub(super) fn cells(&self) -> Vec<Cow<'_, str>> {
        self.fields().map(cell_text).collect()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    fn end_field(&mut self) {
        self.ends.push(self.bytes.len());
    }
}

/// A quote-aware CSV record reader that counts physical lines itself, so that an error names
/// the line a person sees in an editor (the `csv` crate's record positions lag by one line in
/// CRLF files). RFC 4180 quoting, leniently: a quote opens a quoted field only at the start of
/// a field (after blanks); text after a closing quote is kept; a quote inside an unquoted field
/// is a character. Lines that are empty (or blank) between records are skipped.
pub(super) struct Records<R> {
    pub(super) input: R,
    pub(super) delimiter: u8,
    /// Physical lines read so far.
    pub(super) lines: usize,
    pub(super) raw: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lex {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote seen inside a quoted field: a doubled quote or the field's end.
    QuoteInQuoted,
    AfterQuoted,
}

impl<R: BufRead> Records<R> {
    pub(super) fn new(delimiter: u8, input: R) -> Self {
        Records {
            input,
            delimiter,
            lines: 0,
            raw: Vec::new(),
        }
    }

    /// Reads the next record into `record`; `false` at the end of the input.
    pub(super) fn next(&mut self, record: &mut Record) -> std::io::Result<bool> {
        record.clear();
        let mut state = Lex::FieldStart;
        let mut started = false;
        let mut size = 0usize;
        loop {
            self.raw.clear();
            if self.input.read_until(b'\n', &mut self.raw)? == 0 {
                if !started {
                    return Ok(false);
                }
                // End of input inside a quoted field: the record ends there.
                record.end_field();
                return Ok(true);
            }
            self.lines += 1;
            let mut line: &[u8] = &self.raw;
            line = line.strip_suffix(b"\n").unwrap_or(line);
            line = line.strip_suffix(b"\r").unwrap_or(line);
            if !started {
                if line.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                started = true;
                record.line = self.lines;
            }
            size += line.len();
            if size > MAX_RECORD_BYTES {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "the record from line {} runs past {MAX_RECORD_BYTES} bytes \
                         (an unbalanced quote?)",
                        record.line
                    ),
                ));
            }
            state = self.lex(line, state, record);
            if state == Lex::Quoted {
                // A line break inside a quoted field belongs to the field.
                record.bytes.push(b'\n');
                continue;
            }
            record.end_field();
            return Ok(true);
        }
    }
}

impl<R> Records<R> {
    /// Splits one physical line into `record`'s fields, from `state`; returns the state at the
    /// line's end. Runs of plain bytes are copied whole between the bytes that matter (the
    /// delimiter outside quotes, the quote inside them), found with memchr.
    fn lex(&self, line: &[u8], mut state: Lex, record: &mut Record) -> Lex {
        let delimiter = self.delimiter;
        let mut rest = line;
        loop {
            match state {
                Lex::Unquoted | Lex::AfterQuoted => match memchr::memchr(delimiter, rest) {
                    Some(i) => {
                        record
                            .bytes
                            .extend_from_slice(rest.get(..i).unwrap_or_default());
                        record.end_field();
                        rest = rest.get(i + 1..).unwrap_or_default();
                        state = Lex::FieldStart;
                    }
                    None => {
                        record.bytes.extend_from_slice(rest);
                        return state;
                    }
                },
                Lex::Quoted => match memchr::memchr(b'"', rest) {
                    Some(i) => {
                        record
                            .bytes
                            .extend_from_slice(rest.get(..i).unwrap_or_default());
                        rest = rest.get(i + 1..).unwrap_or_default();
                        state = Lex::QuoteInQuoted;
                    }
                    None => {
                        record.bytes.extend_from_slice(rest);
                        return state;
                    }
                },
                Lex::FieldStart | Lex::QuoteInQuoted => {
                    let Some((&b, tail)) = rest.split_first() else {
                        return state;
                    };
                    rest = tail;
                    state = match (state, b) {
                        (_, d) if d == delimiter => {
                            record.end_field();
                            Lex::FieldStart
                        }
                        (Lex::FieldStart, b'"') => {
                            // Blanks before an opening quote are not part of the field.
                            let start = record.ends.last().copied().unwrap_or(0);
                            record.bytes.truncate(start);
                            Lex::Quoted
                        }
                        (Lex::FieldStart, b' ') => {
                            record.bytes.push(b);
                            Lex::FieldStart
                        }
                        (Lex::FieldStart, _) => {
                            record.bytes.push(b);
                            Lex::Unquoted
                        }
                        // A doubled quote inside quotes is one quote.
                        (_, b'"') => {
                            record.bytes.push(b'"');
                            Lex::Quoted
                        }
                        // Text after a closing quote is kept, leniently.
                        _ => {
                            record.bytes.push(b);
                            Lex::AfterQuoted
                        }
                    };
                }
            }
        }
    }
}
