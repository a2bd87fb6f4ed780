#![no_main]
//! Arbitrary bytes through the EDIFACT REMADV reader (service string, release character,
//! segments, messages). Seed with `fixtures/advices/remadv/`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cashmatch_core::formats::remadv::looks_like(data);
    let _ = cashmatch_core::formats::remadv::parse(data, "fuzz.edi");
});
