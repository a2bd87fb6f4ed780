#![no_main]
//! Arbitrary bytes through the PDF text reader: the inflate bound, lopdf's parser (whose panics
//! the reader catches), the text layout and the table reader. Seed the corpus with
//! `fixtures/advices/pdf/*.pdf`; uncompressed seeds (`make_pdf.py` with `compress=False`) let
//! mutations reach the content-stream operators.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cashmatch_core::formats::pdf::looks_like(data);
    let _ = cashmatch_core::formats::pdf::parse(data, "fuzz.pdf");
});
