//! The `lockbox` target: see `checks::lockbox` in `fuzz/checks.rs`, which the stable replay test in
//! `tests/formats.rs` also runs on every committed corpus and regression input.
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::lockbox(data));
