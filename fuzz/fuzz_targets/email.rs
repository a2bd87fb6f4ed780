#![no_main]
//! Arbitrary bytes through the email reader: MIME structure, encodings, and every attachment
//! reader behind it (CSV, spreadsheet, PDF, the other formats), which must refuse bad input with
//! an error and never panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cashmatch_core::formats::email::looks_like(data);
    let _ = cashmatch_core::formats::email::parse(data, "fuzz.eml");
});
