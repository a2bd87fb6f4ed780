#![no_main]
//! remt.001: any bytes give a result, never a panic.

use cashmatch_core::formats::remt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = remt::looks_like(data);
    let _ = remt::parse(data, "fuzz.xml");
});
