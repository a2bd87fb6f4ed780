#![no_main]
//! Arbitrary bytes through the MT940 reader.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cashmatch_core::formats::mt940::looks_like(data);
    let _ = cashmatch_core::formats::mt940::parse(data, "fuzz.sta");
});
