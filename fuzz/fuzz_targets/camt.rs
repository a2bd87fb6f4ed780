#![no_main]
//! camt.053/054: any bytes give a result, never a panic; what the parser accepts and the writer
//! can hold is written and must read back.

use cashmatch_core::formats::camt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = camt::variant(data);
    if let Ok(parsed) = camt::parse(data, "fuzz.xml") {
        let mut out = Vec::new();
        if camt::write_camt054(&parsed.payments, &mut out).is_ok() {
            let again = camt::parse(&out, "rewritten.xml");
            assert!(again.is_ok(), "written camt.054 does not parse: {again:?}");
        }
    }
});
