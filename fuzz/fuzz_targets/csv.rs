#![no_main]
//! The project CSV remittance reader: any bytes give payments, per-payment errors or one
//! file-level error, never a panic; detection never panics either; and what was read writes out
//! and reads back to the same payments (the writer's promise), unless two payments in a row
//! share an id.

use cashmatch_core::formats;
use cashmatch_core::io;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = formats::detect(data);
    let Ok(parsed) = io::remittances_from_reader(data, "fuzz.csv") else {
        return;
    };
    // Rows of one payment are consecutive rows with its id, so two payments in a row with the
    // same id (a repeat, when a bad payment between them was dropped) cannot be told apart once
    // written: they read back as one. Only then is the round trip not the identity.
    let ids = parsed.payments.windows(2);
    if ids.into_iter().any(|w| w[0].payment_id == w[1].payment_id) {
        return;
    }
    let mut out = Vec::new();
    io::write_remittances(&mut out, &parsed.payments).expect("writing to memory");
    let again = io::remittances_from_reader(out.as_slice(), "written.csv").expect("own header");
    assert!(again.errors.is_empty(), "{:?}", again.errors);
    assert_eq!(again.payments, parsed.payments);
});
