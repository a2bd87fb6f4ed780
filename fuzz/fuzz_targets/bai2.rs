#![no_main]
//! Arbitrary bytes through the BAI2 reader, in memory and streamed through a tiny buffer so
//! that the splitter's look-ahead crosses every chunk boundary.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cashmatch_core::formats::bai2::looks_like(data);
    let _ = cashmatch_core::formats::bai2::parse(data, "fuzz.bai2");
    let reader = std::io::BufReader::with_capacity(3, data);
    let _ = cashmatch_core::formats::bai2::parse_reader(reader, "fuzz.bai2", &mut |_| {});
});
