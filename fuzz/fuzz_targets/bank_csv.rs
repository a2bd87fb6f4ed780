#![no_main]
//! The bank CSV export reader: any bytes give payments, per-row errors or one file-level error,
//! never a panic; detection never panics either; every payment it reads has a date, a
//! non-negative amount and an id, and every row error names a line and column.

use cashmatch_core::formats::{self, Format, Position, bank_csv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = formats::detect(data);
    let _ = bank_csv::looks_like(data);
    let Ok(parsed) = bank_csv::parse(data, "fuzz.csv") else {
        return;
    };
    for p in &parsed.payments {
        assert!(!p.amount.is_sign_negative() || p.amount.is_zero(), "{p:?}");
        assert!(p.payment_date.is_some());
        assert!(!p.payment_id.is_empty());
        assert_eq!(p.format, Format::BankCsv.name());
    }
    for e in &parsed.errors {
        assert!(
            matches!(e.position, Position::Line { column: Some(_), .. }),
            "{e}"
        );
    }
});
