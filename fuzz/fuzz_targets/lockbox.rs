#![no_main]
//! Arbitrary bytes through the lockbox reader.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cashmatch_core::formats::lockbox::looks_like(data);
    let _ = cashmatch_core::formats::lockbox::parse(data, "fuzz.lockbox");
});
