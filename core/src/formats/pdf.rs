//! PDF remittance advices with a text layer: an AP system's "payment advice" printout, sent as an
//! email attachment or on its own.
//!
//! lopdf parses the file and decodes each page's content stream; the layout is ours. Every piece
//! of text is placed where the page draws it (the text and graphics matrices), pieces on one
//! baseline make a row, and pieces far apart on it are separate cells, so that a table's columns
//! stay apart: plain text extraction runs `INV-1001 2026-11-02 1,000.00 20.00 980.00` together
//! and loses which figure is the discount. The rows then go to [`super::ap_table`], which finds
//! the header (`Invoice / Date / Amount / Discount / Paid` and their synonyms) and reads the
//! lines under it. A PDF with text but no such table is read as free text.
//!
//! A PDF may be hostile. The file is bounded ([`MAX_BYTES`]); every compressed stream in it is
//! inflated into a counter before lopdf sees the file, and the file is refused when they would
//! inflate beyond [`MAX_INFLATED`] together (a flate bomb), because lopdf inflates without a
//! limit; encrypted PDFs and LZW streams (which the counter cannot bound) are refused; at most
//! [`MAX_PAGES`] pages and [`MAX_PIECES`] pieces of text are read; and a panic inside lopdf is
//! caught and reported as an unreadable file. A PDF without any text (a scan) is refused as
//! unreadable: it is for a person, never guessed at.

use super::ap_table::{self, Cell, Row};
use super::{Format, FormatError, Parsed, Position};
use lopdf::{Document, Object};
use std::collections::BTreeMap;
use std::io::Read;

/// Largest PDF read: a remittance advice of a few pages is some tens of kilobytes.
pub(crate) const MAX_BYTES: usize = 8 << 20;
/// Most bytes all compressed streams of the file may inflate to, together.
pub(crate) const MAX_INFLATED: u64 = 64 << 20;
/// Most pages read; an advice longer than this is read up to it, with a warning.
pub(crate) const MAX_PAGES: usize = 50;
/// Most pieces of text read, over all pages.
pub(crate) const MAX_PIECES: usize = 200_000;

/// Whether the head of a file is a PDF: the `%PDF-` header, which readers look for within the
/// first kilobyte.
pub fn looks_like(head: &[u8]) -> bool {
    let h = head.get(..1024).unwrap_or(head);
    memchr::memmem::find(h, b"%PDF-").is_some()
}

/// Reads a PDF advice into one advice; `file` names it in errors. A file that is not a readable
/// PDF, has no text (a scan), or is hostile is an `Err` saying so.
pub fn parse(bytes: &[u8], file: &str) -> Result<Parsed, FormatError> {
    let err = |m: String| FormatError::new(file, Position::File, m);
    let (rows, truncated) = text_rows(bytes).map_err(err)?;
    if !rows
        .iter()
        .flat_map(|r| &r.cells)
        .any(|c| c.text.chars().any(char::is_alphanumeric))
    {
        return Err(err(
            "a PDF without a text layer (a scanned image?): unreadable, for a person to read \
             (not guessed)"
                .to_string(),
        ));
    }
    let mut parsed = ap_table::read(&rows, file, Format::Pdf)?;
    if truncated {
        for p in &mut parsed.payments {
            p.warnings.push(format!(
                "only the first {MAX_PAGES} pages of the PDF were read"
            ));
        }
    }
    Ok(parsed)
}

/// The text of a PDF as rows of cells, page by page, top to bottom; and whether pages were
/// left unread beyond [`MAX_PAGES`]. The `Err` says why the file cannot be read.
pub(crate) fn text_rows(bytes: &[u8]) -> Result<(Vec<Row>, bool), String> {
    if bytes.len() > MAX_BYTES {
        return Err(format!(
            "PDF of {} bytes, more than the {MAX_BYTES} read",
            bytes.len()
        ));
    }
    if !looks_like(bytes) {
        return Err("not a PDF (no %PDF- header)".to_string());
    }
    if memchr::memmem::find(bytes, b"/Encrypt").is_some() {
        return Err("an encrypted PDF: unreadable, for a person to read".to_string());
    }
    if memchr::memmem::find(bytes, b"/LZWDecode").is_some() {
        return Err("a PDF with LZW-compressed streams, which are not read".to_string());
    }
    check_inflated(bytes)?;
    // lopdf is not written for hostile input; a panic in it is this file's fault, not the run's.
    std::panic::catch_unwind(|| read_pieces(bytes))
        .unwrap_or_else(|_| Err("not a readable PDF (the PDF reader failed on it)".to_string()))
        .map(|(pieces, truncated)| (rows_of(pieces), truncated))
}

/// Refuses a file whose streams would inflate beyond [`MAX_INFLATED`] together. Each stream is
/// inflated into a counter, as zlib and as raw deflate (lopdf falls back to raw deflate when
/// the zlib header is bad), so the bound holds whatever lopdf later does with it; memory stays
/// at the inflater's window.
fn check_inflated(bytes: &[u8]) -> Result<(), String> {
    let mut total: u64 = 0;
    let mut at = 0;
    while let Some(k) = memchr::memmem::find(&bytes[at..], b"stream") {
        let start = at + k;
        at = start + 6;
        if bytes[..start].ends_with(b"end") {
            continue;
        }
        let skip = match bytes.get(at..) {
            Some(d) if d.starts_with(b"\r\n") => 2,
            Some(d) if d.starts_with(b"\n") || d.starts_with(b"\r") => 1,
            _ => continue,
        };
        let data = &bytes[at + skip..];
        let end = memchr::memmem::find(data, b"endstream").unwrap_or(data.len());
        let data = &data[..end];
        // The scan goes on after this stream's end, so that every byte is looked at a bounded
        // number of times whatever the file holds (a file of nothing but `stream` keywords).
        at += skip + end;
        let left = MAX_INFLATED - total;
        let zlib = inflated_len(flate2::read::ZlibDecoder::new(data), left);
        let raw = inflated_len(flate2::read::DeflateDecoder::new(data), left);
        total += zlib.max(raw);
        if total >= MAX_INFLATED {
            return Err(format!(
                "the PDF's streams inflate to more than {MAX_INFLATED} bytes (a flate bomb?)"
            ));
        }
    }
    Ok(())
}

/// How many bytes a decoder yields, up to `limit`; a stream that is not of its kind yields what
/// it gave before the error (usually nothing).
fn inflated_len(decoder: impl Read, limit: u64) -> u64 {
    let mut limited = decoder.take(limit);
    let mut n = 0;
    let mut buf = [0u8; 1 << 14];
    loop {
        match limited.read(&mut buf) {
            Ok(0) | Err(_) => return n,
            Ok(k) => n += k as u64,
        }
    }
}

/// A piece of text as the page places it: its baseline start in page space, its estimated end,
/// and its font size there.
#[derive(Clone, Debug)]
struct Piece {
    page: usize,
    x: f32,
    y: f32,
    x1: f32,
    size: f32,
    text: String,
}

/// An affine matrix `[a b c d e f]` as PDF writes them (row vector times matrix).
#[derive(Clone, Copy, Debug)]
struct Matrix([f32; 6]);

impl Matrix {
    const IDENTITY: Matrix = Matrix([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);

    fn translate(x: f32, y: f32) -> Matrix {
        Matrix([1.0, 0.0, 0.0, 1.0, x, y])
    }

    /// `self` then `then`.
    fn then(self, then: Matrix) -> Matrix {
        let [a, b, c, d, e, f] = self.0;
        let [a2, b2, c2, d2, e2, f2] = then.0;
        Matrix([
            a * a2 + b * c2,
            a * b2 + b * d2,
            c * a2 + d * c2,
            c * b2 + d * d2,
            e * a2 + f * c2 + e2,
            e * b2 + f * d2 + f2,
        ])
    }

    fn of(operands: &[Object]) -> Option<Matrix> {
        let v: Vec<f32> = operands.iter().filter_map(|o| o.as_float().ok()).collect();
        let m: [f32; 6] = v.try_into().ok()?;
        m.iter().all(|x| x.is_finite()).then_some(Matrix(m))
    }
}

/// The average advance of a character, in text space units of one em. Widths are estimated
/// rather than read from the fonts' metrics: they only decide which column a piece of text
/// stands under, and a table's columns are far wider apart than the error.
const EM_PER_CHAR: f32 = 0.5;

fn read_pieces(bytes: &[u8]) -> Result<(Vec<Piece>, bool), String> {
    let doc = Document::load_mem(bytes).map_err(|e| format!("not a readable PDF: {e}"))?;
    let pages = doc.get_pages();
    let truncated = pages.len() > MAX_PAGES;
    let mut pieces = Vec::new();
    for (n, (_, &page_id)) in pages.iter().enumerate().take(MAX_PAGES) {
        let page = n + 1;
        // A font whose encoding lopdf cannot tell is read as Latin-1: its text may come out
        // wrong, and wrong text finds no column header or amount, rather than a wrong one.
        let encodings: BTreeMap<Vec<u8>, lopdf::Encoding> = doc
            .get_page_fonts(page_id)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(name, font)| font.get_font_encoding(&doc).ok().map(|e| (name, e)))
            .collect();
        let content = doc
            .get_page_content(page_id)
            .map_err(|e| format!("page {page}: {e}"))?;
        let ops = lopdf::content::Content::decode(&content)
            .map_err(|e| format!("page {page}: unreadable content: {e}"))?
            .operations;
        let mut st = TextState {
            ctm: Matrix::IDENTITY,
            stack: Vec::new(),
            tm: Matrix::IDENTITY,
            tlm: Matrix::IDENTITY,
            size: 0.0,
            leading: 0.0,
            font: None,
        };
        for op in &ops {
            st.apply(op, &encodings, page, &mut pieces);
            if pieces.len() > MAX_PIECES {
                return Err(format!(
                    "more than {MAX_PIECES} pieces of text: not a remittance advice"
                ));
            }
        }
    }
    Ok((pieces, truncated))
}

/// What the content stream has set that places text.
struct TextState {
    ctm: Matrix,
    stack: Vec<Matrix>,
    tm: Matrix,
    tlm: Matrix,
    size: f32,
    leading: f32,
    font: Option<Vec<u8>>,
}

/// Deepest `q` nesting kept; deeper saves are counted but not stored (a hostile stream).
const MAX_SAVES: usize = 64;

impl TextState {
    fn apply(
        &mut self,
        op: &lopdf::content::Operation,
        encodings: &BTreeMap<Vec<u8>, lopdf::Encoding>,
        page: usize,
        out: &mut Vec<Piece>,
    ) {
        let num = |i: usize| op.operands.get(i).and_then(|o| o.as_float().ok());
        match op.operator.as_str() {
            "q" if self.stack.len() < MAX_SAVES => self.stack.push(self.ctm),
            "Q" => self.ctm = self.stack.pop().unwrap_or(Matrix::IDENTITY),
            "cm" => {
                if let Some(m) = Matrix::of(&op.operands) {
                    self.ctm = m.then(self.ctm);
                }
            }
            "BT" => {
                self.tm = Matrix::IDENTITY;
                self.tlm = Matrix::IDENTITY;
            }
            "Tf" => {
                self.font = op
                    .operands
                    .first()
                    .and_then(|o| o.as_name().ok())
                    .map(<[u8]>::to_vec);
                self.size = num(1).unwrap_or(0.0);
            }
            "TL" => self.leading = num(0).unwrap_or(0.0),
            "Td" | "TD" => {
                let (x, y) = (num(0).unwrap_or(0.0), num(1).unwrap_or(0.0));
                if op.operator == "TD" {
                    self.leading = -y;
                }
                self.next_line(x, y);
            }
            "Tm" => {
                if let Some(m) = Matrix::of(&op.operands) {
                    self.tm = m;
                    self.tlm = m;
                }
            }
            "T*" => self.next_line(0.0, -self.leading),
            "Tj" => self.show(op.operands.first(), encodings, page, out),
            "'" => {
                self.next_line(0.0, -self.leading);
                self.show(op.operands.first(), encodings, page, out);
            }
            "\"" => {
                self.next_line(0.0, -self.leading);
                self.show(op.operands.get(2), encodings, page, out);
            }
            "TJ" => {
                let Some(Ok(items)) = op.operands.first().map(Object::as_array) else {
                    return;
                };
                for item in items {
                    match item {
                        Object::String(..) => self.show(Some(item), encodings, page, out),
                        // A kerning adjustment, in thousandths of an em, leftwards.
                        other => {
                            if let Ok(k) = other.as_float() {
                                self.advance(-k / 1000.0 * self.size);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn next_line(&mut self, x: f32, y: f32) {
        self.tlm = Matrix::translate(x, y).then(self.tlm);
        self.tm = self.tlm;
    }

    fn advance(&mut self, width: f32) {
        if width.is_finite() {
            self.tm = Matrix::translate(width, 0.0).then(self.tm);
        }
    }

    fn show(
        &mut self,
        operand: Option<&Object>,
        encodings: &BTreeMap<Vec<u8>, lopdf::Encoding>,
        page: usize,
        out: &mut Vec<Piece>,
    ) {
        let Some(Object::String(bytes, _)) = operand else {
            return;
        };
        let encoding = self.font.as_ref().and_then(|f| encodings.get(f));
        let text = encoding
            .and_then(|e| e.bytes_to_string(bytes).ok())
            .unwrap_or_else(|| bytes.iter().map(|&b| char::from(b)).collect());
        let text: String = text.chars().filter(|c| !c.is_control()).collect();
        let width = text.chars().count() as f32 * EM_PER_CHAR * self.size;
        let trm = self.tm.then(self.ctm);
        let [a, b, c, d, e, f] = trm.0;
        let piece = Piece {
            page,
            x: e,
            y: f,
            x1: e + width * a.hypot(b),
            size: (self.size * c.hypot(d)).abs(),
            text,
        };
        self.advance(width);
        if !piece.text.trim().is_empty()
            && [piece.x, piece.y, piece.x1].iter().all(|v| v.is_finite())
        {
            out.push(piece);
        }
    }
}

/// Pieces into rows: a page's pieces whose baselines lie within a third of the font size make
/// one row, top to bottom; along a row, pieces closer than about an em are one cell (words of
/// one label, or a figure drawn in parts), and farther ones start a new cell.
fn rows_of(mut pieces: Vec<Piece>) -> Vec<Row> {
    pieces.sort_by(|p, q| {
        p.page
            .cmp(&q.page)
            .then(q.y.total_cmp(&p.y))
            .then(p.x.total_cmp(&q.x))
    });
    let mut rows: Vec<(usize, f32, Vec<Piece>)> = Vec::new();
    for p in pieces {
        match rows.last_mut() {
            Some((page, y, row))
                if *page == p.page && (*y - p.y).abs() <= p.size.max(1.0) / 3.0 =>
            {
                row.push(p)
            }
            _ => rows.push((p.page, p.y, vec![p])),
        }
    }
    rows.into_iter()
        .map(|(page, _, mut pieces)| {
            pieces.sort_by(|p, q| p.x.total_cmp(&q.x));
            let mut cells: Vec<Cell> = Vec::new();
            for p in pieces {
                let gap_limit = p.size.max(1.0) * 0.9;
                match cells.last_mut() {
                    Some(c) if p.x - c.x1 < gap_limit => {
                        if p.x - c.x1 > p.size * 0.1 && !c.text.ends_with(' ') {
                            c.text.push(' ');
                        }
                        c.text.push_str(&p.text);
                        c.x1 = c.x1.max(p.x1);
                    }
                    _ => cells.push(Cell {
                        x0: p.x,
                        x1: p.x1,
                        text: p.text,
                    }),
                }
            }
            for c in &mut cells {
                c.text = c.text.split_whitespace().collect::<Vec<_>>().join(" ");
            }
            Row { page, cells }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use rust_decimal_macros::dec;
    use std::path::Path;

    fn fixture(name: &str) -> (Vec<u8>, String) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/advices/pdf")
            .join(name);
        (std::fs::read(&path).unwrap(), path.display().to_string())
    }

    /// Reference, invoice amount, discount, paid.
    type Line = (String, Option<Decimal>, Option<Decimal>, Option<Decimal>);

    fn lines(p: &crate::domain::Payment) -> Vec<Line> {
        p.lines
            .iter()
            .map(|l| {
                (
                    l.reference.clone().unwrap_or_default(),
                    l.invoice_amount,
                    l.discount,
                    l.amount_paid,
                )
            })
            .collect()
    }

    #[test]
    fn a_table_drawn_cell_by_cell_gives_its_lines_with_discounts() {
        let (bytes, file) = fixture("northwind_advice.pdf");
        assert_eq!(super::super::detect(&bytes), Format::Pdf);
        let parsed = parse(&bytes, &file).unwrap();
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let [p] = parsed.payments.as_slice() else {
            panic!("{:?}", parsed.payments)
        };
        assert_eq!(p.payment_id, "pdf:northwind_advice");
        assert_eq!(p.amount, dec!(2166.00));
        assert_eq!(
            p.payer.name.as_deref(),
            Some("Northwind Industrial Supply Inc")
        );
        assert_eq!(p.payment_date, chrono::NaiveDate::from_ymd_opt(2026, 12, 7));
        assert_eq!(
            lines(p),
            [
                (
                    "INV-100201".into(),
                    Some(dec!(1000.00)),
                    Some(dec!(20.00)),
                    Some(dec!(980.00))
                ),
                (
                    "INV-100202".into(),
                    Some(dec!(500.00)),
                    None,
                    Some(dec!(500.00))
                ),
                (
                    "INV-100203".into(),
                    Some(dec!(700.00)),
                    Some(dec!(14.00)),
                    Some(dec!(686.00))
                ),
            ]
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn a_table_in_kerned_arrays_over_two_pages_reads_each_pages_header() {
        let (bytes, file) = fixture("pioneer_advice.pdf");
        let p = &parse(&bytes, &file).unwrap().payments[0];
        assert_eq!(p.amount, dec!(2000.00));
        assert_eq!(p.payer.name.as_deref(), Some("Pioneer Optical Inc"));
        assert_eq!(
            lines(p),
            [
                (
                    "INV-300401".into(),
                    Some(dec!(820.40)),
                    None,
                    Some(dec!(820.40))
                ),
                (
                    "INV-300402".into(),
                    Some(dec!(1179.60)),
                    None,
                    Some(dec!(1179.60))
                ),
            ]
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn a_pdf_without_text_is_refused_as_unreadable() {
        let (bytes, file) = fixture("scan.pdf");
        let e = parse(&bytes, &file).unwrap_err();
        assert!(
            e.message.contains("without a text layer") && e.message.contains("unreadable"),
            "{e}"
        );
    }

    #[test]
    fn a_broken_pdf_is_refused_not_a_panic() {
        let (bytes, file) = fixture("northwind_advice.pdf");
        for cut in [9, 100, 400, bytes.len() - 60] {
            let e = parse(&bytes[..cut], &file).unwrap_err();
            assert_eq!(e.position, Position::File, "{e}");
        }
        let mut garbled = bytes.clone();
        for b in garbled.iter_mut().skip(200).step_by(7) {
            *b ^= 0x5a;
        }
        // Whatever lopdf makes of it, the answer is an error or an advice, not a panic.
        let _ = parse(&garbled, &file);
        assert!(parse(b"%PDF-1.4\nnothing else", "x.pdf").is_err());
    }

    #[test]
    fn damaged_copies_of_the_fixtures_are_read_or_refused_without_a_panic() {
        for name in ["northwind_advice.pdf", "pioneer_advice.pdf", "scan.pdf"] {
            let (bytes, _) = fixture(name);
            for at in (0..bytes.len()).step_by(3) {
                let mut damaged = bytes.clone();
                damaged[at] = damaged[at].wrapping_add(0x41);
                let _ = parse(&damaged, name);
                let _ = parse(&bytes[..at], name);
            }
        }
    }

    /// A PDF whose one stream inflates to `inflated` zero bytes.
    fn with_stream_of_zeros(inflated: usize) -> Vec<u8> {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let block = vec![0u8; 1 << 20];
        for _ in 0..inflated / block.len() {
            z.write_all(&block).unwrap();
        }
        let data = z.finish().unwrap();
        let mut pdf = b"%PDF-1.4\n4 0 obj\n<< /Length ".to_vec();
        pdf.extend(format!("{} /Filter /FlateDecode >>\nstream\n", data.len()).bytes());
        pdf.extend(&data);
        pdf.extend(b"\nendstream\nendobj\ntrailer\n<< /Size 5 >>\n%%EOF\n");
        pdf
    }

    #[test]
    fn a_flate_bomb_is_refused_before_it_is_inflated() {
        let bomb = with_stream_of_zeros(80 << 20);
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let t = std::time::Instant::now();
        let e = parse(&bomb, "bomb.pdf").unwrap_err();
        assert!(e.message.contains("flate bomb"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(10));
        // A stream of a sane size passes the check (and fails later for being no document).
        assert!(check_inflated(&with_stream_of_zeros(1 << 20)).is_ok());
    }

    #[test]
    fn a_file_of_stream_keywords_is_read_in_bounded_time() {
        let mut hostile = b"%PDF-1.4\n".to_vec();
        while hostile.len() < MAX_BYTES - 16 {
            hostile.extend(b"stream\n");
        }
        let t = std::time::Instant::now();
        assert!(parse(&hostile, "k.pdf").is_err());
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn hostile_headers_are_refused_by_what_they_are() {
        let e = parse(b"%PDF-1.4\n<< /Encrypt 5 0 R >>", "e.pdf").unwrap_err();
        assert!(e.message.contains("encrypted"), "{e}");
        let e = parse(&vec![b' '; MAX_BYTES + 1], "big.pdf").unwrap_err();
        assert!(e.message.contains("more than"), "{e}");
    }
}
