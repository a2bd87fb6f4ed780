//! What each fuzz target checks, one function a target, shared by the targets in `fuzz_targets/`
//! (nightly, libFuzzer) and by the stable replay test in `tests/formats.rs`, which runs every
//! committed corpus and regression input through the same function: CI has no fuzzer, but it
//! still checks that those inputs never panic and that X12 read in pieces reads as read whole.
//!
//! Each function takes any bytes and panics only where a promise of the reader is broken.

use cashmatch_core::formats::{
    self, Format, Position, bai2, bank_csv, camt, email, lockbox, mt940, nacha, pdf, remadv, remt,
    spreadsheet, text, x12,
};
use cashmatch_core::io;
use std::io::Read;

/// What a target checks of one input; it panics where a promise is broken.
pub type Check = fn(&[u8]);

/// The fuzz targets by name (the `[[bin]]` names in `fuzz/Cargo.toml`, the folders of
/// `fuzz/corpus/` and `fuzz/regressions/`) with their checks.
pub const TARGETS: [(&str, Check); 14] = [
    ("bai2", bai2),
    ("bank_csv", bank_csv),
    ("camt", camt),
    ("csv", csv),
    ("email", email),
    ("lockbox", lockbox),
    ("mt940", mt940),
    ("nacha", nacha),
    ("pdf", pdf),
    ("remadv", remadv),
    ("remt", remt),
    ("spreadsheet", spreadsheet),
    ("text", text),
    ("x12", x12),
];

/// Arbitrary bytes through the BAI2 reader, in memory and streamed through a tiny buffer so
/// that the splitter's look-ahead crosses every chunk boundary.
pub fn bai2(data: &[u8]) {
    let _ = bai2::looks_like(data);
    let _ = bai2::parse(data, "fuzz.bai2");
    let reader = std::io::BufReader::with_capacity(3, data);
    let _ = bai2::parse_reader(reader, "fuzz.bai2", &mut |_| {});
}

/// The bank CSV export reader: any bytes give payments, per-row errors or one file-level error,
/// never a panic; detection never panics either; every payment it reads has a date, a
/// non-negative amount and an id, and every row error names a line and column.
pub fn bank_csv(data: &[u8]) {
    let _ = formats::detect(data);
    let _ = bank_csv::looks_like(data);
    let Ok(parsed) = bank_csv::parse(data, "fuzz.csv") else {
        return;
    };
    for p in &parsed.payments {
        assert!(!p.amount.is_sign_negative() || p.amount.is_zero(), "{p:?}");
        assert!(p.payment_date.is_some());
        assert!(!p.payment_id.is_empty());
        assert_eq!(p.format, Format::BankCsv.name());
    }
    for e in &parsed.errors {
        assert!(
            matches!(
                e.position,
                Position::Line {
                    column: Some(_),
                    ..
                }
            ),
            "{e}"
        );
    }
}

/// camt.053/054: any bytes give a result, never a panic; what the parser accepts and the writer
/// can hold is written and must read back.
pub fn camt(data: &[u8]) {
    let _ = camt::variant(data);
    if let Ok(parsed) = camt::parse(data, "fuzz.xml") {
        let mut out = Vec::new();
        if camt::write_camt054(&parsed.payments, &mut out).is_ok() {
            let again = camt::parse(&out, "rewritten.xml");
            assert!(again.is_ok(), "written camt.054 does not parse: {again:?}");
        }
    }
}

/// The project CSV remittance reader: any bytes give payments, per-payment errors or one
/// file-level error, never a panic; detection never panics either; and what was read writes out
/// and reads back to the same payments (the writer's promise), unless two payments in a row
/// share an id.
pub fn csv(data: &[u8]) {
    let _ = formats::detect(data);
    let Ok(parsed) = io::remittances_from_reader(data, "fuzz.csv") else {
        return;
    };
    // Rows of one payment are consecutive rows with its id, so two payments in a row with the
    // same id (a repeat, when a bad payment between them was dropped) cannot be told apart once
    // written: they read back as one. Only then is the round trip not the identity.
    if parsed
        .payments
        .windows(2)
        .any(|w| w[0].payment_id == w[1].payment_id)
    {
        return;
    }
    let mut out = Vec::new();
    io::write_remittances(&mut out, &parsed.payments).expect("writing to memory");
    let again = io::remittances_from_reader(out.as_slice(), "written.csv").expect("own header");
    assert!(again.errors.is_empty(), "{:?}", again.errors);
    assert_eq!(again.payments, parsed.payments);
}

/// Arbitrary bytes through the email reader: MIME structure, encodings, and every attachment
/// reader behind it (CSV, spreadsheet, PDF, the other formats), which must refuse bad input with
/// an error and never panic.
pub fn email(data: &[u8]) {
    let _ = email::looks_like(data);
    let _ = email::parse(data, "fuzz.eml");
}

/// Arbitrary bytes through the lockbox reader.
pub fn lockbox(data: &[u8]) {
    let _ = lockbox::looks_like(data);
    let _ = lockbox::parse(data, "fuzz.lockbox");
}

/// Arbitrary bytes through the MT940 reader.
pub fn mt940(data: &[u8]) {
    let _ = mt940::looks_like(data);
    let _ = mt940::parse(data, "fuzz.sta");
}

/// NACHA: any bytes give payments, per-record errors or one file-level error, never a panic.
pub fn nacha(data: &[u8]) {
    let _ = nacha::looks_like(data);
    if let Ok(parsed) = nacha::parse(data, "fuzz") {
        for p in &parsed.payments {
            assert!(!p.payment_id.is_empty());
            assert!(!p.amount.is_sign_negative());
        }
    }
}

/// Arbitrary bytes through the PDF text reader: the inflate bound, lopdf's parser (whose panics
/// the reader catches), the text layout and the table reader. Uncompressed seeds
/// (`fixtures/advices/make_pdf.py` with `compress=False`) let mutations reach the
/// content-stream operators.
pub fn pdf(data: &[u8]) {
    let _ = pdf::looks_like(data);
    let _ = pdf::parse(data, "fuzz.pdf");
}

/// Arbitrary bytes through the EDIFACT REMADV reader (service string, release character,
/// segments, messages).
pub fn remadv(data: &[u8]) {
    let _ = remadv::looks_like(data);
    let _ = remadv::parse(data, "fuzz.edi");
}

/// remt.001: any bytes give a result, never a panic.
pub fn remt(data: &[u8]) {
    let _ = remt::looks_like(data);
    let _ = remt::parse(data, "fuzz.xml");
}

/// Arbitrary bytes through the spreadsheet reader (zip archive checks, calamine, the CSV readers
/// behind it).
pub fn spreadsheet(data: &[u8]) {
    let _ = spreadsheet::looks_like(data);
    let _ = spreadsheet::parse(data, "fuzz.xlsx");
}

/// The free-text reader (and the reference extraction under it): any bytes give one payment or
/// a file-level error, never a panic; the payment's amount is one the text states.
pub fn text(data: &[u8]) {
    let _ = text::looks_like(data);
    if let Ok(parsed) = text::parse(data, "fuzz.txt") {
        assert_eq!(parsed.payments.len(), 1);
        assert!(!parsed.payments[0].amount.is_sign_negative());
    }
    let _ = formats::parse(data, "fuzz.txt", Some(Format::FreeText));
}

/// Hands out the input a few bytes at a time, so the X12 tokenizer meets every buffer boundary.
pub struct Pieces<'a> {
    pub data: &'a [u8],
    pub step: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// X12 820: any bytes give payments, per-transaction errors or one file-level error, never a
/// panic; reading in pieces gives what reading the whole gives; and what was read writes out
/// as an 820 that reads back without errors. The piece size comes from the first byte, so the
/// fuzzer varies it; [`x12_in_pieces`] takes it as given.
pub fn x12(data: &[u8]) {
    let step = data.first().map_or(1, |b| usize::from(b % 13) + 1);
    x12_in_pieces(data, step);
}

/// [`x12`] with the input handed out `step` bytes at a time.
pub fn x12_in_pieces(data: &[u8], step: usize) {
    let _ = x12::looks_like(data);
    let whole = x12::parse(data, "fuzz");
    let mut payments = Vec::new();
    let mut errors = Vec::new();
    let streamed = x12::parse_reader(Pieces { data, step }, "fuzz", &mut |r| match r {
        Ok(p) => payments.push(p),
        Err(e) => errors.push(e),
    });
    let whole = match whole {
        Ok(whole) => whole,
        Err(e) => {
            assert_eq!(streamed.err(), Some(e), "step {step}");
            return;
        }
    };
    assert!(streamed.is_ok(), "step {step}: {streamed:?}");
    assert_eq!(payments, whole.payments, "step {step}");
    assert_eq!(errors, whole.errors, "step {step}");

    let mut out = Vec::new();
    x12::write_820(&whole.payments, &mut out).expect("writing to memory");
    let again = x12::parse(&out, "written").expect("the writer's output is X12");
    assert!(again.errors.is_empty(), "{:?}", again.errors);
    assert_eq!(again.payments.len(), whole.payments.len());
}
