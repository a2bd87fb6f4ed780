#![no_main]
//! The project CSV remittance reader: any bytes give payments, per-payment errors or one
//! file-level error, never a panic; detection never panics either; and what was read writes out
//! and reads back to the same payments (the writer's promise).

use cashmatch::formats;
use cashmatch::io;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = formats::detect(data);
    let Ok(parsed) = io::remittances_from_reader(data, "fuzz.csv") else {
        return;
    };
    let mut out = Vec::new();
    io::write_remittances(&mut out, &parsed.payments).expect("writing to memory");
    let again = io::remittances_from_reader(out.as_slice(), "written.csv").expect("own header");
    assert!(again.errors.is_empty(), "{:?}", again.errors);
    assert_eq!(again.payments, parsed.payments);
});
