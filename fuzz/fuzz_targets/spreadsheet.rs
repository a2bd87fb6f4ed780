#![no_main]
//! Arbitrary bytes through the spreadsheet reader (zip archive checks, calamine, the CSV readers
//! behind it). Seed the corpus with `fixtures/advices/pioneer.xlsx` so that mutations stay near
//! a real workbook.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cashmatch_core::formats::spreadsheet::looks_like(data);
    let _ = cashmatch_core::formats::spreadsheet::parse(data, "fuzz.xlsx");
});
