//! NACHA: any bytes give payments, per-record errors or one file-level error, never a panic.
#![no_main]

use cashmatch_core::formats::nacha;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nacha::looks_like(data);
    if let Ok(parsed) = nacha::parse(data, "fuzz") {
        for p in &parsed.payments {
            assert!(!p.payment_id.is_empty());
            assert!(!p.amount.is_sign_negative());
        }
    }
});
