//! X12 820: any bytes give payments, per-transaction errors or one file-level error, never a
//! panic; reading in pieces gives what reading the whole gives; and what was read writes out
//! as an 820 that reads back without errors.
#![no_main]

use cashmatch_core::formats::x12;
use libfuzzer_sys::fuzz_target;
use std::io::Read;

/// Hands out the input a few bytes at a time, so the tokenizer meets every buffer boundary.
struct Pieces<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = x12::looks_like(data);
    let whole = x12::parse(data, "fuzz");
    let step = data.first().map_or(1, |b| usize::from(b % 13) + 1);
    let mut payments = Vec::new();
    let mut errors = Vec::new();
    let streamed = x12::parse_reader(Pieces { data, step }, "fuzz", &mut |r| match r {
        Ok(p) => payments.push(p),
        Err(e) => errors.push(e),
    });
    let Ok(whole) = whole else {
        assert!(streamed.is_err());
        return;
    };
    assert!(streamed.is_ok());
    assert_eq!(payments, whole.payments);
    assert_eq!(errors, whole.errors);

    let mut out = Vec::new();
    x12::write_820(&whole.payments, &mut out).expect("writing to memory");
    let again = x12::parse(&out, "written").expect("the writer's output is X12");
    assert!(again.errors.is_empty(), "{:?}", again.errors);
    assert_eq!(again.payments.len(), whole.payments.len());
});
