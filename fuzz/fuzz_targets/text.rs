#![no_main]
//! The free-text reader (and the reference extraction under it): any bytes give one payment or
//! a file-level error, never a panic; the payment's amount is one the text states.

use cashmatch_core::formats::{self, Format, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = text::looks_like(data);
    if let Ok(parsed) = text::parse(data, "fuzz.txt") {
        assert_eq!(parsed.payments.len(), 1);
        assert!(!parsed.payments[0].amount.is_sign_negative());
    }
    let _ = formats::parse(data, "fuzz.txt", Some(Format::FreeText));
});
