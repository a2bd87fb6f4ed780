//! Helpers several formats share: the fixed-record bank formats (BAI2, lockbox, MT940) decode
//! bytes, dates and minor-unit amounts the same way.

use crate::domain::Currency;
use chrono::NaiveDate;

/// Text from bytes: UTF-8 when valid, else Latin-1, which maps every byte to a character, so
/// decoding never fails and never loses a byte.
pub(crate) fn decode(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// A YYMMDD date; years 00–79 are 20xx and 80–99 are 19xx.
pub(crate) fn yymmdd(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let yy: i32 = s.get(0..2)?.parse().ok()?;
    let mm: u32 = s.get(2..4)?.parse().ok()?;
    let dd: u32 = s.get(4..6)?.parse().ok()?;
    NaiveDate::from_ymd_opt(if yy < 80 { 2000 + yy } else { 1900 + yy }, mm, dd)
}

/// The number of decimal places of a currency's minor unit (ISO 4217), which BAI2 and lockbox
/// amounts are counted in.
pub(crate) fn minor_unit_exponent(c: Currency) -> u32 {
    match c.as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}
